//! S3 over TLS with a private CA, as every real provider is HTTPS-only: a throwaway CA and a
//! server certificate for 127.0.0.1 (openssl), stunnel terminating TLS in front of a real Garage,
//! and the gateway trusting the CA through the destination's `ca_bundle`. Without the bundle, or
//! with another CA's, the destination fails closed: quarantined, naming the certificate problem,
//! and no upload reaches it. The machine's own CA variables are removed from every process.

mod common;
#[path = "garage/mod.rs"]
mod garage;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{Gateway, Options, assert_no_plaintext, data, eventually, run_ok};
use garage::Garage;

/// The variables through which this machine points TLS clients at its own CA bundle.
const MACHINE_CA_VARS: [&str; 3] = ["AWS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"];

/// A certificate authority made for one test, and a server certificate it signed.
struct Pki {
    dir: tempfile::TempDir,
}

/// A minimal openssl config, so that the system's openssl.cnf adds no extensions of its own.
const OPENSSL_CNF: &str = "[req]
distinguished_name = dn
prompt = no
[dn]
CN = eugate test CA
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[v3_server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

impl Pki {
    fn new() -> Pki {
        let pki = Pki {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::write(pki.path("openssl.cnf"), OPENSSL_CNF).unwrap();
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn openssl(&self, args: &[&str]) {
        run_ok(
            Command::new("openssl")
                .args(args)
                .current_dir(self.dir.path()),
        );
    }

    /// `openssl req` with a fresh P-256 key in `key`, then `rest`.
    fn req(&self, key: &str, rest: &[&str]) {
        let mut args = vec!["req", "-config", "openssl.cnf", "-newkey", "ec"];
        args.extend([
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            key,
        ]);
        args.extend(rest);
        self.openssl(&args);
    }

    /// `<name>.pem` / `<name>.key`: a self-signed CA.
    fn ca(&self, name: &str) -> PathBuf {
        let (key, pem, subject) = (
            format!("{name}.key"),
            format!("{name}.pem"),
            format!("/CN=eugate test {name}"),
        );
        self.req(
            &key,
            &[
                "-x509",
                "-out",
                &pem,
                "-days",
                "2",
                "-extensions",
                "v3_ca",
                "-subj",
                &subject,
            ],
        );
        self.path(&pem)
    }

    /// `server.pem` / `server.key` for 127.0.0.1, signed by the CA `ca`.
    fn server(&self, ca: &str) {
        self.req(
            "server.key",
            &["-out", "server.csr", "-subj", "/CN=127.0.0.1"],
        );
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "openssl.cnf",
            "-extensions",
            "v3_server",
        ]);
    }
}

/// stunnel on a loopback port: TLS with `server.pem` in front of Garage's plain-HTTP S3 API.
struct Stunnel {
    port: u16,
    child: Child,
}

impl Drop for Stunnel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn stunnel_bin() -> PathBuf {
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        for name in ["stunnel", "stunnel4"] {
            if dir.join(name).is_file() {
                return dir.join(name);
            }
        }
    }
    panic!("stunnel is not installed: run scripts/test (it installs stunnel4 from apt)");
}

fn start_stunnel(pki: &Pki, backend: u16) -> Stunnel {
    let port = common::free_port();
    let conf = pki.path("stunnel.conf");
    std::fs::write(
        &conf,
        format!(
            "foreground = yes\npid =\ndebug = notice\n\n[garage-s3]\naccept = 127.0.0.1:{port}\n\
             connect = 127.0.0.1:{backend}\ncert = {cert}\nkey = {key}\n",
            cert = pki.path("server.pem").display(),
            key = pki.path("server.key").display(),
        ),
    )
    .unwrap();
    let log = std::fs::File::create(pki.path("stunnel.log")).unwrap();
    let mut child = Command::new(stunnel_bin())
        .arg(&conf)
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let listening = eventually(30, || {
        assert!(
            child.try_wait().unwrap().is_none(),
            "stunnel exited: {}",
            std::fs::read_to_string(pki.path("stunnel.log")).unwrap_or_default()
        );
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(listening, "stunnel does not listen on {port}");
    Stunnel { port, child }
}

const BUCKETS: [&str; 3] = ["tls-trusted", "tls-no-ca", "tls-wrong-ca"];

/// The gateway: tenant `trusted` on a destination with the right CA bundle, `noca` without a
/// bundle, `wrongca` with another CA's; all three reach Garage through the same stunnel.
fn gateway(endpoint: &str, right_ca: &Path, wrong_ca: &Path) -> Gateway {
    let dest = |name: &str, bucket: &str, ca: Option<&Path>| {
        let mut block = garage::destination_toml(name, endpoint, bucket, "eu-central-1", "DE");
        if let Some(ca) = ca {
            block.push_str(&format!("ca_bundle = \"{}\"\n", ca.display()));
        }
        block
    };
    let extra = [
        "\n[storage]\nrequest_timeout_secs = 10\nconnect_timeout_secs = 5\n".to_string(),
        dest("s3-trusted", BUCKETS[0], Some(right_ca)),
        dest("s3-no-ca", BUCKETS[1], None),
        dest("s3-wrong-ca", BUCKETS[2], Some(wrong_ca)),
        garage::tenant_toml("trusted", "s3-trusted", &["tess"]),
        garage::tenant_toml("noca", "s3-no-ca", &["nora"]),
        garage::tenant_toml("wrongca", "s3-wrong-ca", &["walt"]),
    ]
    .concat();
    Gateway::start_with(Options {
        extra_toml: extra,
        extra_keys: vec!["tess", "nora", "walt"],
        extra_tenants: vec!["trusted", "noca", "wrongca"],
        env: garage::gateway_env(),
        ..Options::default()
    })
}

#[test]
fn s3_over_tls_with_a_private_ca_and_fail_closed_without_it() {
    // The test itself must not trust the machine's CA either (the gateway's env drops them in
    // the harness; `eugate destinations` below drops them here).
    let pki = Pki::new();
    let right = pki.ca("ca");
    let wrong = pki.ca("other-ca");
    pki.server("ca");
    let eu = Garage::start("eu-central-1", &BUCKETS);
    let tls = start_stunnel(&pki, eu.s3_port);
    let endpoint = format!("https://127.0.0.1:{}", tls.port);
    let gw = gateway(&endpoint, &right, &wrong);
    let store = eu.store(); // plain HTTP straight to Garage: what really landed

    // Through TLS: a multipart upload (9 MiB: parts of 8 and 1 MiB) and a small one, both read
    // back through the gateway.
    let big = data(9 << 20, 21);
    let small = data(70_000, 22);
    std::fs::write(gw.path("big.bin"), &big).unwrap();
    std::fs::write(gw.path("small.bin"), &small).unwrap();
    gw.sftp_ok(
        "tess",
        "put big.bin /big.bin\nput small.bin /small.bin\nget /big.bin big.back\nget /small.bin small.back\n",
    );
    assert!(std::fs::read(gw.path("big.back")).unwrap() == big);
    assert!(std::fs::read(gw.path("small.back")).unwrap() == small);
    let mut keys: Vec<String> = store
        .objects(BUCKETS[0])
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    keys.sort();
    assert_eq!(keys, ["trusted/big.bin", "trusted/small.bin"]);
    assert!(store.uploads(BUCKETS[0]).is_empty());
    for (name, plain) in [("big.bin", &big), ("small.bin", &small)] {
        let sealed = store.get(BUCKETS[0], &format!("trusted/{name}"));
        assert_no_plaintext(&sealed, plain);
        assert!(gw.decrypt_bytes(&sealed) == *plain, "{name}");
    }

    // Without the CA, and with the wrong one: quarantined, and the reason is the certificate.
    let destinations = gw.wait_for_audit("three destination states", |r| {
        common::audit_events(r, "destination").len() >= 3
    });
    let states = common::audit_events(&destinations, "destination");
    let state = |name: &str| {
        states
            .iter()
            .find(|s| s["destination"] == name)
            .unwrap_or_else(|| panic!("no state for {name}: {states:#?}"))
            .clone()
    };
    assert_eq!(state("s3-trusted")["state"], "verified", "{states:#?}");
    for name in ["s3-no-ca", "s3-wrong-ca"] {
        let s = state(name);
        assert_eq!(s["state"], "quarantined", "{s}");
        let detail = s["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("invalid peer certificate"),
            "{name}: the reason must name the certificate problem: {s}"
        );
    }

    // The client hears the same reason, and nothing reaches either bucket.
    for (user, bucket) in [("nora", BUCKETS[1]), ("walt", BUCKETS[2])] {
        let said = gw.script(user, &["exclusive", "--path", "/x.bin"]);
        assert_eq!(said["ok"], false, "{user}: {said}");
        let msg = said["error"].as_str().unwrap_or_default();
        assert!(
            msg.contains("quarantined") && msg.contains("invalid peer certificate"),
            "{user}: {msg}"
        );
        let out = gw.sftp(user, "put small.bin /small.bin\n");
        assert!(
            !out.status.success(),
            "{user} uploaded to an untrusted store"
        );
        assert!(store.objects(bucket).is_empty(), "{bucket}");
        assert!(store.uploads(bucket).is_empty(), "{bucket}");
    }

    // `eugate destinations` (same environment rules) reports the same and exits 1.
    let mut probe = Command::new(common::bin());
    probe
        .args(["destinations", "--config"])
        .arg(&gw.config)
        .envs(garage::gateway_env());
    for var in MACHINE_CA_VARS {
        probe.env_remove(var);
    }
    let out = probe.output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{table}");
    assert!(table.contains("s3-trusted: verified"), "{table}");
    for name in ["s3-no-ca", "s3-wrong-ca"] {
        // The destination's block: its header line and the indented lines under it.
        let mut lines = table
            .lines()
            .skip_while(|l| !l.starts_with(&format!("{name}: quarantined")));
        assert!(lines.next().is_some(), "{name} not quarantined:\n{table}");
        let block: Vec<&str> = lines.take_while(|l| l.starts_with(' ')).collect();
        assert!(
            block.iter().any(|l| l.contains("invalid peer certificate")),
            "{name}:\n{table}"
        );
    }
    gw.assert_audit_verifies();
}
