//! Keys outside the gateway, in the real binary: the keyring sealed by a SoftHSM key and by an
//! OpenBao Transit key (init, use, rewrap after a rotation, migration from a master key file,
//! refusal to start when the provider is unreachable), and a hold-your-own-key tenant whose
//! uploads decrypt only while its Transit key exists, uploaded and read back with OpenSSH sftp.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::openbao::OpenBao;
use common::softhsm::{MODULE, Token};
use common::{Gateway, Options, bin};

fn eugate(args: &[&str], config: &Path) -> Output {
    Command::new(bin())
        .arg("keys")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(out: Output) -> String {
    assert!(
        !out.status.success(),
        "expected failure, got success: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

fn private(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.to_path_buf()
}

/// A gateway.toml with only what `eugate keys` reads, and `provider` as the master key.
fn keys_config(dir: &Path, provider: &str) -> PathBuf {
    let path = dir.join("gateway.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[server]
listen = ["127.0.0.1:0"]
host_keys = ["host_ed25519"]

[keys]
keyring = "keyring"
master = "master"

[key_providers.master]
{provider}
"#
        ),
    )
    .unwrap();
    path
}

fn list_json(config: &Path) -> serde_json::Value {
    serde_json::from_str(&ok(eugate(&["list", "--json"], config))).unwrap()
}

/// The keyring file is format 2 with the provider's kind byte: no key material on disk.
fn assert_sealed_by(keyring: &Path, kind: u8) {
    let bytes = std::fs::read(keyring).unwrap();
    assert_eq!(&bytes[..10], [b"EUGATEKR".as_slice(), &[2, kind]].concat());
    assert_eq!(
        std::fs::metadata(keyring).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn keyring_sealed_by_a_softhsm_key() {
    // Every PKCS#11 call happens in `eugate` and pkcs11-tool processes, each loading the
    // module afresh, so this test needs no process of its own (common::softhsm::in_own_process).
    let token = Token::new("ring");
    token.keygen("eugate-master");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pin = private(&d.join("hsm.pin"), &format!("{}\n", token.pin));
    let provider = format!(
        "kind = \"pkcs11\"\nmodule = \"{MODULE}\"\ntoken_label = \"{}\"\npin_file = \"{}\"\nkey_label = \"eugate-master\"\n",
        token.label,
        pin.display()
    );
    let config = keys_config(d, &provider);

    // First a keyring under a master key file, then moved into the HSM.
    let keyring = d.join("keyring");
    let master = d.join("master.key");
    let file_keys = |args: &[&str]| {
        Command::new(bin())
            .arg("keys")
            .arg("--keyring")
            .arg(&keyring)
            .arg("--master-key-file")
            .arg(&master)
            .args(args)
            .output()
            .unwrap()
    };
    ok(file_keys(&["init"]));
    ok(file_keys(&["add-tenant", "acme"]));
    let before = ok(file_keys(&["list"]));
    // The configuration names the HSM: the file-sealed keyring is refused with the way out.
    let err = fails(eugate(&["list"], &config));
    assert!(
        err.contains("sealed by a master key file") && err.contains("rewrap"),
        "{err}"
    );
    let out = ok(eugate(
        &["rewrap", "--from-master-key-file", master.to_str().unwrap()],
        &config,
    ));
    assert!(out.contains("re-sealed by pkcs11:"), "{out}");
    assert_sealed_by(&keyring, 0x01);
    // The same tenant keys: the keyring version did not change.
    let version = |text: &str| text.lines().last().unwrap().to_string();
    let after = ok(eugate(&["list"], &config));
    assert_eq!(version(&before), version(&after), "{after}");
    assert!(
        after.contains(&format!(
            "pkcs11:token={};object=eugate-master",
            token.label
        )),
        "{after}"
    );
    // The old master key file no longer opens the re-sealed file.
    let err = fails(file_keys(&["list"]));
    assert!(err.contains("sealed by pkcs11"), "{err}");

    ok(eugate(&["add-tenant", "beta"], &config));
    ok(eugate(&["rotate", "acme"], &config));
    let listed = list_json(&config);
    assert_eq!(listed["sealed_by"]["kind"], "pkcs11");
    assert_eq!(listed["tenants"].as_array().unwrap().len(), 2);
    ok(eugate(&["probe"], &config));

    // A wrong PIN is named; the key deleted on the token makes the keyring unopenable.
    private(&pin, "000000\n");
    let err = fails(eugate(&["list"], &config));
    assert!(err.contains("access denied"), "{err}");
    private(&pin, &format!("{}\n", token.pin));
    token.delete_key("eugate-master");
    let err = fails(eugate(&["list"], &config));
    assert!(err.contains("does not exist or was deleted"), "{err}");
}

#[test]
fn keyring_sealed_by_a_transit_key_follows_its_rotation() {
    let mut bao = OpenBao::start();
    bao.create_key("eugate-master");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let token = private(&d.join("bao.token"), &bao.limited_token("eugate-master"));
    let provider = format!(
        "kind = \"transit\"\naddress = \"{}\"\nkey = \"eugate-master\"\ntoken_file = \"{}\"\ntimeout_secs = 2\n",
        bao.address,
        token.display()
    );
    let config = keys_config(d, &provider);
    let out = ok(eugate(&["init"], &config));
    assert!(
        out.contains("sealed by transit:") && out.contains("no key material on disk"),
        "{out}"
    );
    assert_sealed_by(&d.join("keyring"), 0x02);
    ok(eugate(&["add-tenant", "acme"], &config));
    let first = list_json(&config);
    assert_eq!(first["sealed_by"]["key_version"], 1);

    // Rotating the master key at the server, then rewrapping: key version 2, same tenant keys.
    bao.rotate_key("eugate-master");
    ok(eugate(&["rewrap"], &config));
    let second = list_json(&config);
    assert_eq!(second["sealed_by"]["key_version"], 2);
    assert_eq!(first["version"], second["version"]);
    assert_eq!(first["tenants"], second["tenants"]);

    // The gateway refuses to start when the provider cannot be reached.
    bao.stop();
    let out = Command::new(bin())
        .arg("serve")
        .arg("--config")
        .arg(d.join("gateway.toml"))
        .output()
        .unwrap();
    let err = fails(out);
    assert!(
        err.contains("cannot reach it") && err.contains("keyring"),
        "{err}"
    );
}

/// A gateway whose tenant `hyok` (user `hoyt`) holds its key in OpenBao key `acme`.
fn hyok_gateway(bao: &OpenBao, token: &Path) -> Gateway {
    Gateway::start_with(Options {
        extra_keys: vec!["hoyt"],
        keys_toml: "unwrap_cache_secs = 0".into(),
        extra_toml: format!(
            r#"
[key_providers.acme-bao]
kind = "transit"
address = "{}"
key = "acme"
token_file = "{}"
timeout_secs = 2

[tenants.hyok]
route = {{ destination = "local", prefix = "hyok/" }}
classification = "personal"
key_provider = "acme-bao"

[tenants.hyok.users.hoyt]
authorized_keys_file = "hoyt.pub"
permissions = ["read", "write"]
"#,
            bao.address,
            token.display()
        ),
        ..Default::default()
    })
}

fn decrypt_with_config(g: &Gateway, stored: &Path) -> Output {
    let out = g.dir.path().join("plain.out");
    let _ = std::fs::remove_file(&out);
    Command::new(bin())
        .arg("decrypt")
        .arg("--config")
        .arg(&g.config)
        .arg(stored)
        .arg(&out)
        .output()
        .unwrap()
}

fn aborted_causes(g: &Gateway) -> Vec<String> {
    g.events("aborted")
        .iter()
        .map(|r| r["cause"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn hold_your_own_key_uploads_decrypt_only_while_the_key_exists() {
    let mut bao = OpenBao::start();
    bao.create_key("acme");
    let tokdir = tempfile::tempdir().unwrap();
    // A token that may only encrypt/decrypt with this key: it cannot re-create a deleted one.
    let token = private(
        &tokdir.path().join("acme.token"),
        &bao.limited_token("acme"),
    );
    let g = hyok_gateway(&bao, &token);
    let plain = common::data(300_000, 17);
    std::fs::write(g.dir.path().join("in.bin"), &plain).unwrap();

    g.sftp_ok("hoyt", "put in.bin report.bin\nget report.bin back.bin\n");
    assert_eq!(std::fs::read(g.dir.path().join("back.bin")).unwrap(), plain);
    let stored = g.store.join("hyok/report.bin");
    let sealed = std::fs::read(&stored).unwrap();
    assert_eq!(
        sealed[6], 2,
        "a hold-your-own-key object is format version 2"
    );
    common::assert_no_plaintext(&sealed, &plain);
    // The header names the provider, not a keyring key; decrypt asks the provider.
    let out = decrypt_with_config(&g, &stored);
    ok(out);
    assert_eq!(
        std::fs::read(g.dir.path().join("plain.out")).unwrap(),
        plain
    );
    // Without the configuration, decrypt says where the key is.
    let out = Command::new(bin())
        .arg("decrypt")
        .arg("--keyring")
        .arg(&g.keyring)
        .arg("--master-key-file")
        .arg(&g.master)
        .arg(&stored)
        .arg(g.dir.path().join("x.out"))
        .output()
        .unwrap();
    let err = fails(out);
    assert!(
        err.contains("acme-bao") && err.contains("--config"),
        "{err}"
    );

    // Provider paused (slow): the tenant's upload is refused at OPEN with a timeout; a keyring
    // tenant is not affected. After it answers again, uploads work again.
    bao.pause();
    let out = g.sftp("hoyt", "put in.bin slow.bin\n");
    assert!(!out.status.success());
    g.sftp_ok("alice", "put in.bin alice.bin\n");
    bao.resume();
    let causes = aborted_causes(&g);
    assert!(
        causes.iter().any(|c| c.contains("no answer within")),
        "{causes:?}"
    );
    assert!(!g.store.join("hyok/slow.bin").exists());
    g.sftp_ok("hoyt", "put in.bin again.bin\n");

    // The tenant deletes its key: new uploads fail closed, old objects no longer open (no
    // cache: unwrap_cache_secs = 0), and decrypt names the deleted key.
    bao.delete_key("acme");
    let out = g.sftp("hoyt", "put in.bin after.bin\n");
    assert!(!out.status.success());
    assert!(!g.store.join("hyok/after.bin").exists());
    let causes = aborted_causes(&g);
    assert!(
        causes
            .iter()
            .any(|c| c.contains("does not exist or was deleted") && c.contains("acme-bao")),
        "{causes:?}"
    );
    let out = g.sftp("hoyt", "get report.bin gone.bin\n");
    assert!(!out.status.success());
    assert!(!g.dir.path().join("gone.bin").exists());
    let err = fails(decrypt_with_config(&g, &stored));
    assert!(err.contains("does not exist or was deleted"), "{err}");
    assert!(!g.dir.path().join("plain.out").exists());
    // The keyring tenant still uploads and reads.
    g.sftp_ok("alice", "put in.bin alice2.bin\nget alice2.bin a2.bin\n");
    g.assert_audit_verifies();
}
