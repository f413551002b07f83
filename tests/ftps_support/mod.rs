//! What the FTPS test binaries (tests/ftps*.rs) share: a gateway with `[ftps]` on, its
//! certificates made by certs/make-demo-ca.sh, and the clients (Python ftplib through
//! tests/scripts/ftps_client.py, curl).
#![allow(dead_code)] // each test binary uses its own part

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{
    self, BOB_PASSWORD, Gateway, Options, bin, free_port, free_ports, run_ok, run_with_stdin,
};
use serde_json::Value;

pub struct Ftps {
    pub g: Gateway,
    pub port: u16,
    /// The implicit FTPS port, when [`FtpsOptions::implicit`] asked for one.
    pub implicit_port: u16,
    pub ca: PathBuf,
    /// The demo CA's directory: ca.pem, server.pem, client.pem and their keys.
    pub certs: tempfile::TempDir,
}

/// A throwaway CA with a server certificate for 127.0.0.1 and a client certificate
/// (`CN=<client>, O=eugate demo`), by certs/make-demo-ca.sh.
pub fn make_certs(client: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("certs/make-demo-ca.sh");
    run_ok(
        Command::new(script)
            .args(["--client", client, "--days", "2"])
            .arg(dir.path().join("ca")),
    );
    dir
}

/// Another client certificate of the CA in `ca_dir` (`--expired`: valid until yesterday).
pub fn issue_client(ca_dir: &Path, cn: &str, out: &Path, expired: bool) {
    let mut cmd = Command::new("python3");
    cmd.arg(common::scripts().join("ftps_certs.py"))
        .arg("--ca-dir")
        .arg(ca_dir)
        .args(["--cn", cn, "--out"])
        .arg(out);
    if expired {
        cmd.arg("--expired");
    }
    run_ok(&mut cmd);
}

/// `sha256:AB:CD:…` of a PEM certificate, as openssl prints it.
pub fn fingerprint(cert: &Path) -> String {
    let out = run_ok(
        Command::new("openssl")
            .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
            .arg(cert),
    );
    let text = String::from_utf8(out.stdout).unwrap();
    format!("sha256:{}", text.trim().split_once('=').unwrap().1)
}

#[derive(Default)]
pub struct FtpsOptions {
    /// More lines of the `[ftps]` section.
    pub ftps_toml: String,
    /// More TOML after `[ftps]` (e.g. users).
    pub users_toml: String,
    /// Also listen for implicit FTPS.
    pub implicit: bool,
    pub gateway: Options,
}

pub fn start() -> Ftps {
    start_with(make_certs("demo-client"), FtpsOptions::default())
}

pub fn start_with(certs: tempfile::TempDir, o: FtpsOptions) -> Ftps {
    let ca_dir = certs.path().join("ca");
    let port = free_port();
    let implicit_port = free_port();
    let passive = free_ports(21);
    // frank: bob's password, and allowed to delete.
    let hash = run_with_stdin(
        Command::new(bin()).arg("passwd"),
        format!("{BOB_PASSWORD}\n").as_bytes(),
    );
    let hash = String::from_utf8(hash.stdout).unwrap();
    let implicit = if o.implicit {
        format!("implicit_listen = [\"127.0.0.1:{implicit_port}\"]\n")
    } else {
        String::new()
    };
    let extra = format!(
        r#"
[tenants.acme.users.frank]
password_hash = "{hash}"
permissions = ["read", "write", "delete"]

[tenants.gamma.users.gina]
password_hash = "{hash}"

[ftps]
listen = ["127.0.0.1:{port}"]
certificate = "{cert}"
private_key = "{key}"
passive_ports = "{passive}-{end}"
data_timeout_secs = 10
{implicit}{ftps_toml}
{users_toml}
"#,
        hash = hash.trim(),
        cert = ca_dir.join("server.pem").display(),
        key = ca_dir.join("server.key").display(),
        end = passive + 20,
        ftps_toml = o.ftps_toml,
        users_toml = o.users_toml.replace("{hash}", hash.trim()),
    );
    let mut gateway = o.gateway;
    gateway.extra_toml.push_str(&extra);
    let g = Gateway::start_with(gateway);
    Ftps {
        g,
        port,
        implicit_port,
        ca: ca_dir.join("ca.pem"),
        certs,
    }
}

impl Ftps {
    pub fn ca_dir(&self) -> PathBuf {
        self.certs.path().join("ca")
    }

    /// tests/scripts/ftps_client.py `args[0]` as `user` with bob's password; later `--port`
    /// in `args` wins over the explicit port.
    pub fn py(&self, user: &str, args: &[&str]) -> (Value, Output) {
        let out = Command::new("python3")
            .arg(common::scripts().join("ftps_client.py"))
            .arg(args[0])
            .args(["--port", &self.port.to_string(), "--user", user])
            .args(["--password", BOB_PASSWORD])
            .arg("--cafile")
            .arg(&self.ca)
            .args(&args[1..])
            .current_dir(self.g.dir.path())
            .output()
            .unwrap();
        let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "ftps_client output not JSON ({e}): {}\n{}\n--- gateway log ---\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.g.log()
            )
        });
        (v, out)
    }

    pub fn py_ok(&self, user: &str, args: &[&str]) -> Value {
        let (v, out) = self.py(user, args);
        assert!(
            out.status.success() && v.get("exception").is_none(),
            "ftps_client {args:?}: {v}\n{}\n--- gateway log ---\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.g.log()
        );
        v
    }

    /// curl with the CA trusted and `--ssl-reqd`; `args` add credentials and URLs.
    pub fn curl_raw(&self, args: &[&str]) -> Output {
        Command::new("curl")
            .args(["-sS", "--ssl-reqd", "--max-time", "30", "--cacert"])
            .arg(&self.ca)
            .args(args)
            .current_dir(self.g.dir.path())
            .output()
            .unwrap()
    }

    /// [`Ftps::curl_raw`] as bob with his password.
    pub fn curl(&self, args: &[&str]) -> Output {
        let user = format!("bob:{BOB_PASSWORD}");
        let mut all = vec!["-u", &user];
        all.extend_from_slice(args);
        self.curl_raw(&all)
    }

    pub fn url(&self, name: &str) -> String {
        format!("ftp://127.0.0.1:{}/{name}", self.port)
    }

    pub fn implicit_url(&self, name: &str) -> String {
        format!("ftps://127.0.0.1:{}/{name}", self.implicit_port)
    }

    pub fn stored(&self, name: &str) -> PathBuf {
        self.g.store.join("acme").join(name)
    }
}
