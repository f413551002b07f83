//! Test harness: a temp dir with host key, keyring, users and config; the real `eugate serve`
//! on a free loopback port; helpers to drive OpenSSH `sftp`/`scp` and the paramiko script.
#![allow(dead_code)] // each test binary uses a different subset

pub mod openbao;
mod ports;
pub use ports::{free_port, free_ports};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn bin() -> PathBuf {
    std::env::var_os("EUGATE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_eugate")))
}

pub fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts")
}

pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `cmd` with `input` on its stdin; stdout and stderr captured.
pub fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

pub struct User {
    pub name: String,
    pub tenant: String,
    pub key: PathBuf,
    pub password: Option<String>,
}

pub struct Options {
    pub max_sessions_per_user: u32,
    pub reorder_window: &'static str,
    pub max_failures: u32,
    /// `[auth] ban_secs`.
    pub ban_secs: u64,
    /// More `[auth]` lines (e.g. `max_tracked = 8`).
    pub auth_toml: String,
    pub idle_timeout_secs: u64,
    /// `[server] shutdown_grace_secs`; `None` leaves the gateway's default.
    pub shutdown_grace_secs: Option<u64>,
    /// `[server] algorithms` ("modern", "compatible"); `None` leaves the gateway's default.
    pub algorithms: Option<&'static str>,
    /// Appended to the generated gateway.toml.
    pub extra_toml: String,
    /// More `[server]` lines (e.g. `instance_id = "gw-a"`).
    pub server_toml: String,
    /// `[audit] file` (absolute); `None` leaves `audit.jsonl` in the test directory.
    pub audit_file: Option<PathBuf>,
    /// More lines of the `[audit]` section (e.g. `summary_interval_secs = 1`).
    pub audit_toml: String,
    /// More users with an ed25519 key pair in the test directory (`<name>`, `<name>.pub`).
    pub extra_keys: Vec<&'static str>,
    /// More tenants with keys in the keyring.
    pub extra_tenants: Vec<&'static str>,
    /// Environment of the gateway process (e.g. S3 credentials).
    pub env: Vec<(String, String)>,
    /// More `[keys]` lines (e.g. `unwrap_cache_secs = 0`).
    pub keys_toml: String,
}

impl Options {
    /// Defaults plus tenant `acme-health` (special-category data, to the DE `local` store) with
    /// user `hana` (key pair `hana`, read and write): the tenant the shipped
    /// `tenant-acme-health.cedar` is about.
    pub fn acme_health() -> Options {
        Options {
            extra_keys: vec!["hana"],
            extra_tenants: vec!["acme-health"],
            extra_toml: r#"
[tenants.acme-health]
route = { destination = "local", prefix = "acme-health/" }
classification = "special-category"

[tenants.acme-health.users.hana]
authorized_keys_file = "hana.pub"
permissions = ["read", "write"]
"#
            .into(),
            ..Default::default()
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_sessions_per_user: 32,
            reorder_window: "1MiB",
            max_failures: 50,
            ban_secs: 60,
            auth_toml: String::new(),
            idle_timeout_secs: 600,
            shutdown_grace_secs: None,
            algorithms: None,
            extra_toml: String::new(),
            server_toml: String::new(),
            audit_file: None,
            audit_toml: String::new(),
            extra_keys: Vec::new(),
            extra_tenants: Vec::new(),
            env: Vec::new(),
            keys_toml: String::new(),
        }
    }
}

/// bob's password (his `password_hash` in every test gateway).
pub const BOB_PASSWORD: &str = "correct horse battery staple";

/// A running gateway with two tenants: `acme` (users alice [key], bob [password]) and `beta`
/// (user carol [key]). Killed on drop.
pub struct Gateway {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub store: PathBuf,
    pub keyring: PathBuf,
    pub master: PathBuf,
    pub config: PathBuf,
    audit_file: PathBuf,
    child: Child,
    env: Vec<(String, String)>,
}

pub fn keygen(path: &Path, comment: &str) {
    run_ok(
        Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
            .arg(path),
    );
}

impl Gateway {
    pub fn start() -> Gateway {
        Gateway::start_with(Options::default())
    }

    pub fn start_with(o: Options) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("host_ed25519"), "host");
        for u in ["alice", "carol", "dave", "mallory"]
            .into_iter()
            .chain(o.extra_keys.iter().copied())
        {
            keygen(&d.join(u), u);
        }
        let keyring = d.join("keyring");
        let master = d.join("master.key");
        let keys = |args: &[&str]| {
            run_ok(
                Command::new(bin())
                    .arg("keys")
                    .arg("--keyring")
                    .arg(&keyring)
                    .arg("--master-key-file")
                    .arg(&master)
                    .args(args),
            );
        };
        keys(&["init"]);
        keys(&["add-tenant", "acme"]);
        keys(&["add-tenant", "beta"]);
        keys(&["add-tenant", "gamma"]);
        for t in &o.extra_tenants {
            keys(&["add-tenant", t]);
        }
        let passwd = run_with_stdin(
            Command::new(bin()).arg("passwd"),
            format!("{BOB_PASSWORD}\n").as_bytes(),
        );
        assert!(passwd.status.success(), "eugate passwd: {passwd:?}");
        let hash = String::from_utf8(passwd.stdout).unwrap();
        let pubkey = |u: &str| std::fs::read_to_string(d.join(format!("{u}.pub"))).unwrap();
        let port = free_port();
        let audit_file = o
            .audit_file
            .clone()
            .unwrap_or_else(|| d.join("audit.jsonl"));
        let config = d.join("gateway.toml");
        std::fs::write(
            &config,
            format!(
                r#"
[server]
listen = ["127.0.0.1:{port}"]
host_keys = ["host_ed25519"]
max_sessions_per_user = {sessions}
reorder_window = "{window}"
idle_timeout_secs = {idle}
{grace}
{algorithms}
{server_toml}

[auth]
max_failures = {failures}
base_delay_ms = 10
max_delay_ms = 50
ban_secs = {ban}
{auth_toml}

[keys]
keyring = "keyring"
master_key_file = "master.key"
{keys_toml}

[audit]
file = "{audit_file}"
{audit_toml}

[destinations.local]
kind = "fs"
root = "store"
country = "DE"

[tenants.acme]
route = {{ destination = "local", prefix = "acme/" }}
classification = "personal"

[tenants.acme.users.alice]
authorized_keys = ["{alice}"]
permissions = ["read", "write", "delete"]

[tenants.acme.users.bob]
password_hash = "{hash}"

[tenants.beta]
route = {{ destination = "local", prefix = "beta/" }}
classification = "personal"

[tenants.beta.users.carol]
authorized_keys_file = "carol.pub"
permissions = ["read", "write", "delete"]

[destinations.us-disk]
kind = "fs"
root = "store-us"
country = "US"

[tenants.gamma]
route = {{ destination = "us-disk", prefix = "gamma/" }}
classification = "personal"

[tenants.gamma.users.dave]
authorized_keys_file = "dave.pub"
{extra}
"#,
                sessions = o.max_sessions_per_user,
                window = o.reorder_window,
                failures = o.max_failures,
                ban = o.ban_secs,
                auth_toml = o.auth_toml,
                server_toml = o.server_toml,
                idle = o.idle_timeout_secs,
                grace = o
                    .shutdown_grace_secs
                    .map(|g| format!("shutdown_grace_secs = {g}"))
                    .unwrap_or_default(),
                algorithms = o
                    .algorithms
                    .map(|a| format!("algorithms = \"{a}\""))
                    .unwrap_or_default(),
                alice = pubkey("alice").trim(),
                hash = hash.trim(),
                extra = o.extra_toml,
                audit_file = audit_file.display(),
                audit_toml = o.audit_toml,
                keys_toml = o.keys_toml,
            ),
        )
        .unwrap();
        let child = spawn_serve(d, &config, &o.env);
        let mut g = Gateway {
            store: d.join("store"),
            keyring,
            master,
            config,
            audit_file,
            port,
            child,
            dir,
            env: o.env,
        };
        g.wait_ready();
        g
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("eugate serve exited with {status}:\n{}", self.log());
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                s.set_read_timeout(Some(Duration::from_secs(5))).ok();
                let mut buf = [0u8; 7];
                if s.read_exact(&mut buf).is_ok() && &buf == b"SSH-2.0" {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "gateway not ready:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn key(&self, user: &str) -> PathBuf {
        self.path(user)
    }

    /// OpenSSH client options: no host key prompts, key auth with `key` only, errors only.
    pub fn ssh_opts(&self, key: &Path) -> Vec<String> {
        vec![
            "-o".into(),
            "StrictHostKeyChecking=no".into(),
            "-o".into(),
            "UserKnownHostsFile=/dev/null".into(),
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            "IdentitiesOnly=yes".into(),
            "-o".into(),
            "LogLevel=ERROR".into(),
            "-i".into(),
            key.display().to_string(),
        ]
    }

    /// Runs `sftp -b -` with `commands` as user (key auth); returns the output.
    pub fn sftp(&self, user: &str, commands: &str) -> Output {
        run_with_stdin(
            Command::new("sftp")
                .args(self.ssh_opts(&self.key(user)))
                .arg("-P")
                .arg(self.port.to_string())
                .arg("-b")
                .arg("-")
                .arg(format!("{user}@127.0.0.1"))
                .current_dir(self.dir.path()),
            commands.as_bytes(),
        )
    }

    pub fn sftp_ok(&self, user: &str, commands: &str) -> String {
        let out = self.sftp(user, commands);
        assert!(
            out.status.success(),
            "sftp failed:\n{}\n{}\n--- gateway log ---\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn scp(&self, user: &str, from: &str, to: &str) -> Output {
        Command::new("scp")
            .args(self.ssh_opts(&self.key(user)))
            .arg("-P")
            .arg(self.port.to_string())
            .arg(from)
            .arg(to)
            .current_dir(self.dir.path())
            .output()
            .unwrap()
    }

    /// Runs the paramiko helper; returns its JSON answer.
    pub fn script(&self, user: &str, args: &[&str]) -> serde_json::Value {
        let out = self.script_raw(user, args);
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "script output not JSON ({e}): {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })
    }

    pub fn script_raw(&self, user: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new("python3");
        cmd.arg(scripts().join("sftp_client.py"))
            .arg(args[0])
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--user")
            .arg(user)
            .args(&args[1..]);
        if !args.contains(&"--password") {
            cmd.arg("--key").arg(self.key(user));
        }
        cmd.current_dir(self.dir.path()).output().unwrap()
    }

    /// Decrypts a stored object with the real `eugate decrypt` CLI.
    pub fn decrypt(&self, stored: &Path) -> Vec<u8> {
        let out = tempfile::NamedTempFile::new_in(self.dir.path()).unwrap();
        let out_path = out.path().to_path_buf();
        drop(out);
        run_ok(
            Command::new(bin())
                .arg("decrypt")
                .arg("--keyring")
                .arg(&self.keyring)
                .arg("--master-key-file")
                .arg(&self.master)
                .arg(stored)
                .arg(&out_path),
        );
        let plain = std::fs::read(&out_path).unwrap();
        std::fs::remove_file(&out_path).unwrap();
        plain
    }

    /// The same, through the library API (a cross-check of the CLI).
    pub fn decrypt_lib(&self, stored: &Path) -> Vec<u8> {
        decrypt_with_library(stored, &self.keyring, &self.master)
    }

    /// Every file below the store, relative paths.
    pub fn stored_files(&self) -> Vec<String> {
        fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
            if let Ok(rd) = std::fs::read_dir(dir) {
                for e in rd.flatten() {
                    let p = e.path();
                    if p.is_dir() {
                        walk(base, &p, out);
                    } else {
                        out.push(p.strip_prefix(base).unwrap().display().to_string());
                    }
                }
            }
        }
        let mut v = Vec::new();
        walk(&self.store, &self.store, &mut v);
        v.sort();
        v
    }
}

fn spawn_serve(dir: &Path, config: &Path, env: &[(String, String)]) -> Child {
    // Appends: a restarted gateway's log follows the first run's.
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("gateway.log"))
        .unwrap();
    Command::new(bin())
        .arg("serve")
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "info,eugate=debug")
        .env("NO_COLOR", "1")
        // This machine points these at its own CA bundle; a test must trust only what it sets up.
        .env_remove("AWS_CA_BUNDLE")
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        // stdout too: a secret printed there would escape a search of the log otherwise.
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

impl Gateway {
    /// SIGKILL (a crash), then the same configuration started again; waits until it serves.
    pub fn crash_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn_serve(self.dir.path(), &self.config, &self.env);
        self.wait_ready();
    }

    /// Sends SIGTERM and waits for the gateway to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        run_ok(
            Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string()),
        );
        self.child.wait().unwrap()
    }
}

impl Gateway {
    /// Sends `signal` (e.g. "TERM") without waiting for the gateway to exit.
    pub fn signal(&self, signal: &str) {
        run_ok(
            Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(self.child.id().to_string()),
        );
    }

    /// The gateway's environment as the kernel sees it (`/proc/PID/environ`).
    pub fn environ(&self) -> Vec<String> {
        std::fs::read(format!("/proc/{}/environ", self.child.id()))
            .unwrap()
            .split(|b| *b == 0)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    /// Waits for the gateway process to exit (after a signal).
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn decrypt_with_library(stored: &Path, keyring: &Path, master: &Path) -> Vec<u8> {
    use eugate::crypto::{Header, Opener};
    let sealed = std::fs::read(stored).unwrap();
    let header = Header::parse(&sealed).unwrap();
    let ctx = header.context();
    let ring = eugate::keys::Keyring::open(keyring, master).unwrap();
    let kek = ring.kek(&ctx.tenant, &ctx.key_id, ctx.key_version).unwrap();
    let key = header.unlock(&kek).unwrap();
    let mut opener = Opener::new(key);
    let mut out = Vec::new();
    opener
        .push(&sealed[header.encoded_len()..], &mut out)
        .unwrap();
    opener.finish(&mut out).unwrap();
    out
}

/// Deterministic pseudo-random bytes (no RNG dependency; distinct per seed).
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Waits (up to `secs`) until `f` holds; returns whether it did. The deadline only guards against
/// a hang: it is not a timing check.
pub fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The records of an audit log (JSON lines); none if the file does not exist yet.
pub fn audit_records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line {l:?}: {e}")))
        .collect()
}

/// The events of `kind` (`committed`, `aborted`, …) among `records`.
pub fn audit_events(records: &[serde_json::Value], kind: &str) -> Vec<serde_json::Value> {
    records
        .iter()
        .filter(|r| r["event"]["type"] == kind)
        .map(|r| r["event"].clone())
        .collect()
}

/// `eugate audit verify FILE`.
pub fn audit_verify(path: &Path) -> Output {
    Command::new(bin())
        .args(["audit", "verify"])
        .arg(path)
        .output()
        .unwrap()
}

/// `eugate audit verify` passes on `path`, and fails naming an edit once one of its records is
/// changed: the chain is checked, not only the file's syntax.
pub fn assert_audit_chain_verifies(path: &Path) {
    let out = audit_verify(path);
    assert!(
        out.status.success(),
        "audit verify {}: {}{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(path).unwrap();
    let tampered = path.with_extension("tampered.jsonl");
    // The last record's time (a field every record has) moved: the end of the chain is read too.
    let at = text.rfind("\"ts\":\"").expect("a record with a time") + "\"ts\":\"".len();
    std::fs::write(&tampered, format!("{}1{}", &text[..at], &text[at..])).unwrap();
    let out = audit_verify(&tampered);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(1) && err.contains("edited"),
        "an edited copy of {} verifies: {err}",
        path.display()
    );
    std::fs::remove_file(&tampered).unwrap();
}

/// Length of the runs of plaintext [`assert_no_plaintext`] looks for.
pub const PLAINTEXT_WINDOW: usize = 32;

/// At most this many plaintext windows are indexed; longer plaintexts are indexed at a stride.
const PLAINTEXT_INDEX_MAX: usize = 1 << 20;

/// Fails if any 32-byte run of `plain` appears anywhere in `stored`. `plain` should be
/// distinctive (e.g. [`data`]) so that a match can only be a leak.
///
/// Every window of `stored` is hashed (rolling) and looked up among the windows of `plain`,
/// which are indexed at every offset up to 1 Mi windows (32 MiB of plaintext at stride 1 would
/// need too much memory) and at a stride beyond; a stride `s` still finds every leaked run of
/// `32 + s - 1` bytes or more, and the message says which guarantee held. Hash hits are
/// compared byte for byte.
pub fn assert_no_plaintext(stored: &[u8], plain: &[u8]) {
    const W: usize = PLAINTEXT_WINDOW;
    if plain.len() < W || stored.len() < W {
        return;
    }
    let windows = plain.len() - W + 1;
    let stride = windows.div_ceil(PLAINTEXT_INDEX_MAX);
    let mut index: std::collections::HashMap<u64, usize> =
        std::collections::HashMap::with_capacity(windows / stride + 1);
    for_each_window_hash(plain, |pos, h| {
        if pos % stride == 0 {
            index.entry(h).or_insert(pos);
        }
    });
    for_each_window_hash(stored, |pos, h| {
        if let Some(&at) = index.get(&h) {
            assert!(
                stored[pos..pos + W] != plain[at..at + W],
                "plaintext bytes {at}..{} appear in the stored bytes at offset {pos} \
                 (searched every {W}-byte window of the plaintext at stride {stride})",
                at + W
            );
        }
    });
}

/// Calls `f(offset, hash)` for every `PLAINTEXT_WINDOW`-byte window of `bytes`, with a
/// polynomial rolling hash (wrapping u64 arithmetic), so each step costs O(1).
fn for_each_window_hash(bytes: &[u8], mut f: impl FnMut(usize, u64)) {
    const W: usize = PLAINTEXT_WINDOW;
    const BASE: u64 = 0x100_0000_01b3; // odd, so that multiplication mixes every byte
    let top = (0..W - 1).fold(1u64, |p, _| p.wrapping_mul(BASE)); // BASE^(W-1)
    let mut h = bytes[..W].iter().fold(0u64, |h, &b| {
        h.wrapping_mul(BASE).wrapping_add(u64::from(b) + 1)
    });
    f(0, h);
    for pos in 1..=bytes.len() - W {
        let out = u64::from(bytes[pos - 1]) + 1;
        let inn = u64::from(bytes[pos + W - 1]) + 1;
        h = h
            .wrapping_sub(out.wrapping_mul(top))
            .wrapping_mul(BASE)
            .wrapping_add(inn);
        f(pos, h);
    }
}

/// A copy of the shipped `policies/` (rules, facts and their `tests/`) in a temp dir, to edit.
pub fn copy_policies() -> tempfile::TempDir {
    fn copy_dir(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            let target = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy_dir(&e.path(), &target);
            } else {
                std::fs::copy(e.path(), target).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"),
        dir.path(),
    );
    dir
}

impl Gateway {
    /// The gateway's audit log.
    pub fn audit_path(&self) -> PathBuf {
        self.audit_file.clone()
    }

    /// Every record of the gateway's audit log so far.
    pub fn audit(&self) -> Vec<serde_json::Value> {
        audit_records(&self.audit_path())
    }

    /// The audit events of `kind` so far.
    pub fn events(&self, kind: &str) -> Vec<serde_json::Value> {
        audit_events(&self.audit(), kind)
    }

    /// The gateway's audit chain verifies (and an edited copy does not).
    pub fn assert_audit_verifies(&self) {
        assert_audit_chain_verifies(&self.audit_path());
    }

    /// Polls until `f` holds; fails with `what` and the gateway log if it never does.
    pub fn wait_until(&self, what: &str, f: impl FnMut() -> bool) {
        assert!(eventually(60, f), "timed out: {what}\n{}", self.log());
    }

    /// Polls the audit log until `ok` holds for its records; returns them.
    pub fn wait_for_audit(
        &self,
        what: &str,
        ok: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        let mut recs = Vec::new();
        let found = eventually(60, || {
            recs = self.audit();
            ok(&recs)
        });
        assert!(found, "no {what} in the audit log: {recs:#?}");
        recs
    }

    /// Polls the gateway log until `needle` occurs `count` times.
    pub fn wait_for_log(&self, needle: &str, count: usize) {
        self.wait_until(&format!("{count}x {needle:?} in the log"), || {
            self.log().matches(needle).count() >= count
        });
    }

    /// Fails if `secret` occurs anywhere in the gateway's output (stdout and stderr, both in its
    /// log) or in its audit log.
    pub fn assert_secret_absent(&self, secret: &str) {
        assert!(!secret.is_empty());
        let log = self.log();
        assert!(
            !log.contains(secret),
            "{secret:?} in the gateway log:\n{log}"
        );
        let audit = std::fs::read_to_string(self.audit_path()).unwrap_or_default();
        assert!(
            !audit.contains(secret),
            "{secret:?} in the audit log:\n{audit}"
        );
    }

    /// Opens sealed bytes (e.g. fetched from S3) with the real `eugate decrypt`.
    pub fn decrypt_bytes(&self, sealed: &[u8]) -> Vec<u8> {
        let file = tempfile::NamedTempFile::new_in(self.dir.path()).unwrap();
        std::fs::write(file.path(), sealed).unwrap();
        self.decrypt(file.path())
    }

    /// The paramiko helper in the background as `user` (key auth), stdout piped (its JSON
    /// lines), stderr inherited.
    pub fn spawn_script(&self, user: &str, args: &[&str]) -> Child {
        Command::new("python3")
            .arg(scripts().join("sftp_client.py"))
            .arg(args[0])
            .arg("--port")
            .arg(self.port.to_string())
            .arg("--user")
            .arg(user)
            .arg("--key")
            .arg(self.key(user))
            .args(&args[1..])
            .current_dir(self.dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

/// What the kernel says the gateway process holds (the abuse suite's bounds).
impl Gateway {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory, in KiB (`VmRSS` of /proc/PID/status).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS in /proc status:\n{status}"))
    }

    /// Open file descriptors (entries of /proc/PID/fd).
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .unwrap()
            .count()
    }

    /// A normal OpenSSH upload by alice of a fresh 256 KiB file named `name` succeeds and is
    /// stored whole (the well-behaved client that must keep working during an attack).
    pub fn assert_normal_upload(&self, name: &str) {
        let plain = data(256 << 10, name.len() as u64 ^ 0x5eed);
        let local = self.path(&format!("{name}.local"));
        std::fs::write(&local, &plain).unwrap();
        let out = self.sftp("alice", &format!("put {} /{name}\n", local.display()));
        assert!(
            out.status.success(),
            "normal upload {name} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        let stored = self.store.join("acme").join(name);
        assert_eq!(self.decrypt(&stored), plain, "{name} stored whole");
    }
}

impl Gateway {
    /// A second instance of this gateway, as an operator runs one behind a balancer: the same
    /// keyring, master key, host keys, users and destinations (files copied into a fresh
    /// directory), its own SSH port, audit log and upload journal. `edits` are `(from, to)`
    /// replacements applied to the copied `gateway.toml` (e.g. the instance id, the admin port).
    pub fn twin(&self, edits: &[(&str, &str)]) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            // Per-instance state stays behind: the audit chain, the upload journal, logs.
            let own =
                name.starts_with("audit") || name.contains("journal") || name.ends_with(".log");
            if entry.file_type().unwrap().is_file() && !own {
                std::fs::copy(entry.path(), dir.path().join(&name)).unwrap();
            }
        }
        let port = free_port();
        let config = dir.path().join("gateway.toml");
        let mut text = std::fs::read_to_string(&config)
            .unwrap()
            .replace(
                &format!("listen = [\"127.0.0.1:{}\"]", self.port),
                &format!("listen = [\"127.0.0.1:{port}\"]"),
            )
            .replace(
                &self.audit_file.display().to_string(),
                &dir.path().join("audit.jsonl").display().to_string(),
            );
        for (from, to) in edits {
            assert!(
                text.contains(from),
                "{from:?} is not in the config:\n{text}"
            );
            text = text.replace(from, to);
        }
        std::fs::write(&config, text).unwrap();
        let child = spawn_serve(dir.path(), &config, &self.env);
        let mut g = Gateway {
            store: dir.path().join("store"),
            keyring: dir.path().join("keyring"),
            master: dir.path().join("master.key"),
            audit_file: dir.path().join("audit.jsonl"),
            config,
            port,
            child,
            dir,
            env: self.env.clone(),
        };
        g.wait_ready();
        g
    }

    /// SIGKILL, as a crash would; [`Gateway::restart`] starts it again.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the same configuration again (after [`Gateway::kill`] or an exit); waits until
    /// it serves.
    pub fn restart(&mut self) {
        self.child = spawn_serve(self.dir.path(), &self.config, &self.env);
        self.wait_ready();
    }
}

/// Whether an SSH server on loopback `port` sends its version line (a direct connection).
pub fn ssh_banner(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"SSH-2.0"
}

impl Gateway {
    /// alice uploads `slow.bin` (2 MiB) as `/slow.bin` with the `gated-upload` client, which
    /// holds the file open until `gate` exists; returns once the client says it holds it.
    pub fn spawn_gated_upload(
        &self,
        gate: &Path,
    ) -> (Child, std::io::BufReader<std::process::ChildStdout>) {
        use std::io::BufRead;
        std::fs::write(self.path("slow.bin"), data(2 << 20, 9)).unwrap();
        let mut child = self.spawn_script(
            "alice",
            &[
                "gated-upload",
                "--local",
                "slow.bin",
                "--path",
                "/slow.bin",
                "--gate",
                gate.to_str().unwrap(),
            ],
        );
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert!(line.contains("\"holding\": true"), "{line}");
        (child, out)
    }
}
pub mod softhsm;
