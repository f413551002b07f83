//! SoftHSM tokens for the PKCS#11 key provider tests: Debian's softhsm2 with its default config
//! (/etc/softhsm/softhsm2.conf, tokens in /var/lib/softhsm/tokens), one token with a unique label
//! per test, deleted again when the [`Token`] is dropped (also when the test fails). Keys are
//! made and deleted with OpenSC's `pkcs11-tool` in a separate process, as an operator would.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use eugate::keys::provider::{Pkcs11Config, ProviderConfig, ProviderSettings};

/// SoftHSM reads its token list once, at C_Initialize, and the provider never finalises the
/// module: a process sees only tokens that existed when it first loaded it. So each test runs
/// its body in a fresh process of the test binary (under `cargo test` and nextest alike).
/// Returns true in that child (run the body), false in the parent (the child passed).
pub fn in_own_process(test: &str) -> bool {
    const VAR: &str = "EUGATE_SOFTHSM_TEST";
    if std::env::var(VAR).as_deref() == Ok(test) {
        return true;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads", "1"])
        .env(VAR, test)
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{test} failed in its own process:\n{text}"
    );
    assert!(text.contains("1 passed"), "{test} did not run:\n{text}");
    false
}

pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
pub const SO_PIN: &str = "87654321";

/// An initialised token; deleted on drop.
pub struct Token {
    pub label: String,
    pub pin: String,
    pub dir: tempfile::TempDir,
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e} (is softhsm2 / opensc installed?)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Token {
    /// A fresh token labelled `eg-<tag>-<pid>-<n>` (at most 32 bytes) with user PIN `pin`.
    pub fn new(tag: &str) -> Token {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let mut label = format!("eg-{}-{n}-{tag}", std::process::id());
        label.truncate(32);
        let pin = format!("pin-{n}-{}", std::process::id());
        // softhsm2-util fails when another test deletes a token while it scans the slots:
        // try again a few times.
        let init = || {
            Command::new("softhsm2-util")
                .args([
                    "--init-token",
                    "--free",
                    "--label",
                    &label,
                    "--so-pin",
                    SO_PIN,
                    "--pin",
                    &pin,
                ])
                .output()
                .expect("softhsm2-util (is softhsm2 installed?)")
        };
        let mut out = init();
        for _ in 0..10 {
            if out.status.success() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
            out = init();
        }
        assert!(
            out.status.success(),
            "softhsm2-util --init-token {label}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Token {
            label,
            pin,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn tool(&self) -> Command {
        let mut c = Command::new("pkcs11-tool");
        c.args([
            "--module",
            MODULE,
            "--token-label",
            &self.label,
            "--login",
            "--pin",
            &self.pin,
        ]);
        c
    }

    /// Generates a non-extractable AES-256 key with CKA_ENCRYPT and CKA_DECRYPT on the token.
    pub fn keygen(&self, key_label: &str) {
        run(self.tool().args([
            "--keygen",
            "--key-type",
            "AES:32",
            "--label",
            key_label,
            "--usage-decrypt",
            "--sensitive",
        ]));
    }

    /// Deletes the secret key labelled `key_label` (a tenant revoking its key).
    pub fn delete_key(&self, key_label: &str) {
        run(self
            .tool()
            .args(["--delete-object", "--type", "secrkey", "--label", key_label]));
    }

    /// Sets CKA_ENCRYPT and CKA_DECRYPT of the key (false: the owner revoked its use without
    /// deleting it). Done in this process with cryptoki, as pkcs11-tool cannot change them; the
    /// module is shared with the provider under test (initialised once, never finalised).
    pub fn set_usage(&self, key_label: &str, allowed: bool) {
        use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
        use cryptoki::error::{Error, RvError};
        use cryptoki::object::{Attribute, ObjectClass};
        use cryptoki::session::UserType;
        use cryptoki::types::AuthPin;
        let ctx = Pkcs11::new(MODULE).unwrap();
        match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
            Ok(()) | Err(Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => panic!("C_Initialize: {e}"),
        }
        let slot = ctx
            .get_slots_with_token()
            .unwrap()
            .into_iter()
            .find(|s| {
                ctx.get_token_info(*s)
                    .is_ok_and(|i| i.label() == self.label)
            })
            .expect("token slot");
        let session = ctx.open_rw_session(slot).unwrap();
        match session.login(UserType::User, Some(&AuthPin::from(self.pin.as_str()))) {
            Ok(()) | Err(Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(e) => panic!("C_Login: {e}"),
        }
        let keys = session
            .find_objects(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::Label(key_label.as_bytes().to_vec()),
            ])
            .unwrap();
        assert_eq!(keys.len(), 1, "key {key_label}");
        session
            .update_attributes(
                keys[0],
                &[Attribute::Encrypt(allowed), Attribute::Decrypt(allowed)],
            )
            .unwrap();
    }

    /// Writes `pin` to a file with `mode` and returns its path.
    pub fn pin_file_with(&self, name: &str, pin: &str, mode: u32) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, format!("{pin}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    /// Provider settings for `key_label` on this token with a 0600 PIN file.
    pub fn config(&self, key_label: &str) -> ProviderConfig {
        let pin_file = self.pin_file_with("pin", &self.pin.clone(), 0o600);
        config_with(MODULE.as_ref(), &self.label, &pin_file, key_label)
    }
}

pub fn config_with(
    module: &Path,
    token_label: &str,
    pin_file: &Path,
    key_label: &str,
) -> ProviderConfig {
    ProviderConfig {
        name: "hsm".into(),
        timeout: Duration::from_secs(20),
        settings: ProviderSettings::Pkcs11(Pkcs11Config {
            module: module.to_path_buf(),
            token_label: token_label.into(),
            pin_file: pin_file.to_path_buf(),
            key_label: key_label.into(),
        }),
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        // Best effort: a failed delete must not hide the test's own failure.
        let delete = || {
            Command::new("softhsm2-util")
                .args(["--delete-token", "--token", &self.label])
                .output()
        };
        let mut out = delete();
        for _ in 0..5 {
            if matches!(&out, Ok(o) if o.status.success()) {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
            out = delete();
        }
        if !matches!(&out, Ok(o) if o.status.success()) {
            eprintln!("could not delete SoftHSM token {}: {out:?}", self.label);
        }
    }
}
