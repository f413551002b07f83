//! FTPS client certificates (mutual TLS, `[ftps] client_ca`): a certificate mapped to a user
//! by fingerprint or subject logs that user in without a password (232), one mapped to another
//! user is refused, an unmapped one falls back to the password, and expired certificates or
//! certificates of another CA fail the handshake. Clients: Python ssl/ftplib,
//! curl (`--cert/--key`) and lftp (`ssl:cert-file`).

mod common;
#[path = "ftps_support/mod.rs"]
mod ftps_support;

use std::path::PathBuf;

use common::BOB_PASSWORD;
use ftps_support::{Ftps, FtpsOptions, fingerprint, issue_client, make_certs, start_with};

struct Certs {
    f: Ftps,
    /// carla's, mapped by fingerprint (made by make-demo-ca.sh).
    carla: (PathBuf, PathBuf),
    /// petra's, mapped by subject.
    petra: (PathBuf, PathBuf),
    /// Same CA, mapped to nobody.
    stranger: (PathBuf, PathBuf),
    /// Same CA, expired yesterday.
    expired: (PathBuf, PathBuf),
    /// Another CA's client certificate, and that CA's directory.
    foreign: (PathBuf, PathBuf),
    _foreign_ca: tempfile::TempDir,
    carla_fp: String,
}

fn start() -> Certs {
    let certs = make_certs("carla-client");
    let ca = certs.path().join("ca");
    let pair = |name: &str| {
        (
            ca.join(format!("{name}.pem")),
            ca.join(format!("{name}.key")),
        )
    };
    issue_client(&ca, "petra-client", &ca.join("petra"), false);
    issue_client(&ca, "stranger", &ca.join("stranger"), false);
    issue_client(&ca, "carla-client", &ca.join("expired"), true);
    let foreign_ca = make_certs("carla-client");
    let fca = foreign_ca.path().join("ca");
    let carla_fp = fingerprint(&ca.join("client.pem"));
    let o = FtpsOptions {
        ftps_toml: format!("client_ca = \"{}\"\n", ca.join("ca.pem").display()),
        users_toml: format!(
            r#"
[tenants.acme.users.carla]
ftps_client_certificates = ["{carla_fp}"]

[tenants.acme.users.petra]
password_hash = "{{hash}}"
ftps_client_subjects = ["CN=petra-client, O=eugate demo"]
"#
        ),
        implicit: true,
        ..FtpsOptions::default()
    };
    let (carla, petra, stranger, expired) = (
        pair("client"),
        pair("petra"),
        pair("stranger"),
        pair("expired"),
    );
    let foreign = (fca.join("client.pem"), fca.join("client.key"));
    Certs {
        f: start_with(certs, o),
        carla,
        petra,
        stranger,
        expired,
        foreign,
        _foreign_ca: foreign_ca,
        carla_fp,
    }
}

fn with_cert<'a>(args: &[&'a str], cert: &'a (PathBuf, PathBuf)) -> Vec<&'a str> {
    let mut v = args.to_vec();
    v.extend([
        "--certfile",
        cert.0.to_str().unwrap(),
        "--keyfile",
        cert.1.to_str().unwrap(),
    ]);
    v
}

#[test]
fn a_mapped_certificate_logs_its_user_in_without_a_password_and_is_audited() {
    let c = start();
    let f = &c.f;
    // carla has no password at all: the certificate is her only way in.
    let (v, _) = f.py(
        "carla",
        &with_cert(
            &["cert_login", "--password", "", "--name", "c1.txt"],
            &c.carla,
        ),
    );
    let user = v["user"].as_str().unwrap_or_default();
    assert!(
        user.starts_with("232") && user.contains(&c.carla_fp),
        "{v}\n{}",
        f.g.log()
    );
    assert!(v["stor"].as_str().unwrap().starts_with("226"), "{v}");
    assert_eq!(f.g.decrypt(&f.stored("c1.txt")), b"by certificate");
    // Over implicit FTPS too.
    let port = f.implicit_port.to_string();
    let v = f.py_ok(
        "carla",
        &with_cert(
            &[
                "cert_login",
                "--implicit",
                "--port",
                &port,
                "--password",
                "",
                "--name",
                "c2.txt",
            ],
            &c.carla,
        ),
    );
    assert!(v["user"].as_str().unwrap().starts_with("232"), "{v}");
    // petra's certificate is mapped by its subject, written in another order than it has.
    let v = f.py_ok(
        "petra",
        &with_cert(
            &["cert_login", "--password", "", "--name", "p.txt"],
            &c.petra,
        ),
    );
    assert!(v["user"].as_str().unwrap().starts_with("232"), "{v}");
    assert!(v.get("pass").is_none(), "no PASS was needed: {v}");

    let auth = f.g.events("auth");
    let carla: Vec<_> = auth.iter().filter(|a| a["user"] == "carla").collect();
    assert_eq!(carla.len(), 2, "{auth:?}");
    for a in &carla {
        assert_eq!(a["method"], "ftps certificate", "{a}");
        assert_eq!(a["outcome"], "accepted", "{a}");
        assert_eq!(a["tenant"], "acme", "{a}");
        assert_eq!(a["tls_certificate"]["sha256"], c.carla_fp.as_str(), "{a}");
        assert!(
            a["tls_certificate"]["subject"]
                .as_str()
                .unwrap()
                .contains("CN=carla-client"),
            "{a}"
        );
    }
    f.g.assert_audit_verifies();
}

#[test]
fn curl_logs_in_with_cert_and_key() {
    let c = start();
    let f = &c.f;
    std::fs::write(f.g.path("curl.txt"), b"curl with a client certificate").unwrap();
    let cert = [
        "--cert",
        c.carla.0.to_str().unwrap(),
        "--key",
        c.carla.1.to_str().unwrap(),
    ];
    let mut args = vec!["-u", "carla:"];
    args.extend(cert);
    let up_url = f.url("curl.txt");
    let mut up = args.clone();
    up.extend(["-T", "curl.txt", &up_url]);
    let out = f.curl_raw(&up);
    assert!(out.status.success(), "{out:?}\n{}", f.g.log());
    assert_eq!(
        f.g.decrypt(&f.stored("curl.txt")),
        b"curl with a client certificate"
    );
    // And over implicit FTPS (ftps://).
    let down_url = f.implicit_url("curl.txt");
    let mut down = args.clone();
    down.push(&down_url);
    let out = f.curl_raw(&down);
    assert!(out.status.success(), "{out:?}\n{}", f.g.log());
    assert_eq!(out.stdout, b"curl with a client certificate");
    // Without the certificate curl has no password for carla: refused.
    let out = f.curl_raw(&["-u", "carla:", &down_url]);
    assert!(!out.status.success(), "{out:?}");
}

#[test]
fn certificates_of_other_users_other_cas_or_expired_are_refused_and_unmapped_fall_back() {
    let c = start();
    let f = &c.f;
    // carla's certificate does not make anyone else carla, nor bob carla.
    let (v, _) = f.py(
        "bob",
        &with_cert(&["cert_login", "--name", "x.txt"], &c.carla),
    );
    let user = v["user"].as_str().unwrap_or_default();
    assert!(
        user.starts_with("530") && user.contains("mapped to another user"),
        "{v}"
    );
    assert!(v.get("pass").is_none(), "no password fallback: {v}");
    let rejected: Vec<_> =
        f.g.events("auth")
            .into_iter()
            .filter(|a| a["user"] == "bob" && a["method"] == "ftps certificate")
            .collect();
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0]["outcome"], "rejected");
    assert_eq!(
        rejected[0]["tls_certificate"]["sha256"],
        c.carla_fp.as_str()
    );

    // A certificate of the trusted CA mapped to nobody: bob's password still works.
    let v = f.py_ok(
        "bob",
        &with_cert(&["cert_login", "--name", "s.txt"], &c.stranger),
    );
    assert!(v["user"].as_str().unwrap().starts_with("331"), "{v}");
    assert!(v["pass"].as_str().unwrap().starts_with("230"), "{v}");
    // ... and a wrong password with it is refused.
    let (v, _) = f.py(
        "bob",
        &with_cert(
            &["cert_login", "--password", "wrong", "--name", "s2.txt"],
            &c.stranger,
        ),
    );
    assert!(
        v["pass"].as_str().unwrap_or_default().starts_with("530"),
        "{v}"
    );

    // Expired, or from a CA the gateway does not trust: the handshake fails, nobody logs in.
    for (alert, cert) in [
        ("certificate expired", &c.expired),
        ("unknown ca", &c.foreign),
    ] {
        let v = f.py_ok("carla", &with_cert(&["handshake"], cert));
        let h = v["handshake"].as_str().unwrap();
        assert!(h.contains(alert), "{alert}: {v}");
    }
    assert!(
        f.g.log()
            .contains("TLS handshake on the control connection failed")
    );
    assert!(
        f.g.events("auth").iter().all(|a| a["user"] != "carla"),
        "carla never logged in"
    );
    // Without any certificate, the password login is untouched.
    let v = f.py_ok(
        "bob",
        &["cert_login", "--password", BOB_PASSWORD, "--name", "n.txt"],
    );
    assert!(v["pass"].as_str().unwrap().starts_with("230"), "{v}");
}

#[test]
fn lftp_logs_in_with_ssl_cert_and_key_files() {
    let c = start();
    let f = &c.f;
    std::fs::write(f.g.path("l.txt"), b"lftp with a client certificate").unwrap();
    let script = format!(
        "set ftp:ssl-force true; set ftp:ssl-protect-data true; set ssl:ca-file {ca}; \
         set ssl:cert-file {cert}; set ssl:key-file {key}; \
         set net:max-retries 1; set net:timeout 20; \
         open -u carla,x ftp://127.0.0.1:{port}; put l.txt -o l.txt; cls -1; bye",
        ca = f.ca.display(),
        cert = c.carla.0.display(),
        key = c.carla.1.display(),
        port = f.port,
    );
    let out = std::process::Command::new("lftp")
        .args(["-c", &script])
        .current_dir(f.g.dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}\n{}", f.g.log());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("l.txt"),
        "{out:?}"
    );
    assert_eq!(
        f.g.decrypt(&f.stored("l.txt")),
        b"lftp with a client certificate"
    );
    assert!(
        f.g.events("auth")
            .iter()
            .any(|a| a["user"] == "carla" && a["method"] == "ftps certificate"),
        "{:?}",
        f.g.events("auth")
    );
}
