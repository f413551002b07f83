//! Test harness: a temp dir with host key, keyring, users and config; the real `eugate serve`
//! on a free loopback port; helpers to drive OpenSSH `sftp`/`scp` and the paramiko script.
#![allow(dead_code)] // each test binary uses a different subset

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
    pub idle_timeout_secs: u64,
    /// `[server] shutdown_grace_secs`; `None` leaves the gateway's default.
    pub shutdown_grace_secs: Option<u64>,
    /// `[server] algorithms` ("modern", "compatible"); `None` leaves the gateway's default.
    pub algorithms: Option<&'static str>,
    /// Appended to the generated gateway.toml.
    pub extra_toml: String,
    /// More users with an ed25519 key pair in the test directory (`<name>`, `<name>.pub`).
    pub extra_keys: Vec<&'static str>,
    /// More tenants with keys in the keyring.
    pub extra_tenants: Vec<&'static str>,
    /// Environment of the gateway process (e.g. S3 credentials).
    pub env: Vec<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_sessions_per_user: 32,
            reorder_window: "1MiB",
            max_failures: 50,
            idle_timeout_secs: 600,
            shutdown_grace_secs: None,
            algorithms: None,
            extra_toml: String::new(),
            extra_keys: Vec::new(),
            extra_tenants: Vec::new(),
            env: Vec::new(),
        }
    }
}

/// A running gateway with two tenants: `acme` (users alice [key], bob [password]) and `beta`
/// (user carol [key]). Killed on drop.
pub struct Gateway {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub store: PathBuf,
    pub keyring: PathBuf,
    pub master: PathBuf,
    pub config: PathBuf,
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
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
        let mut passwd = Command::new(bin())
            .arg("passwd")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        passwd
            .stdin
            .take()
            .unwrap()
            .write_all(b"correct horse battery staple\n")
            .unwrap();
        let hash = String::from_utf8(passwd.wait_with_output().unwrap().stdout).unwrap();
        let pubkey = |u: &str| std::fs::read_to_string(d.join(format!("{u}.pub"))).unwrap();
        let port = free_port();
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

[auth]
max_failures = {failures}
base_delay_ms = 10
max_delay_ms = 50
ban_secs = 60

[keys]
keyring = "keyring"
master_key_file = "master.key"

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
            ),
        )
        .unwrap();
        let child = spawn_serve(d, &config, &o.env);
        let mut g = Gateway {
            store: d.join("store"),
            keyring,
            master,
            config,
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

    fn ssh_opts(&self, key: &Path) -> Vec<String> {
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
        let mut child = Command::new("sftp")
            .args(self.ssh_opts(&self.key(user)))
            .arg("-P")
            .arg(self.port.to_string())
            .arg("-b")
            .arg("-")
            .arg(format!("{user}@127.0.0.1"))
            .current_dir(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(commands.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
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
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::null())
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
