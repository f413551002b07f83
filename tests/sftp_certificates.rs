//! OpenSSH user certificates (issue 14): real `ssh-keygen -s` certificates and the real
//! OpenSSH `sftp` client against the gateway. A certificate from a CA in `[auth]
//! user_ca_keys` logs its principal in; an expired one, one for another principal, one from
//! an untrusted CA, one with `force-command` and one whose `source-address` excludes the
//! client are refused, audited and counted by the brute-force guard.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use serde_json::Value;

/// A CA, a second (untrusted) CA and alice's certified key pair, made before the gateway
/// starts (its config names the CA).
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        keygen(&dir.path().join("ca"), "corporate user CA");
        keygen(&dir.path().join("rogue-ca"), "someone else's CA");
        // Not in alice's authorized_keys: only a certificate makes it log in.
        keygen(&dir.path().join("alice-cert-key"), "alice certified key");
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `[auth]` lines trusting `ca` only.
    fn auth_toml(&self) -> String {
        let ca = std::fs::read_to_string(self.path("ca.pub")).unwrap();
        format!("user_ca_keys = [\"{}\"]", ca.trim())
    }

    /// `SHA256:…` of a CA's key, as `ssh-keygen -l` prints it.
    fn fingerprint(&self, ca: &str) -> String {
        let out = run_ok(
            Command::new("ssh-keygen")
                .args(["-l", "-E", "sha256", "-f"])
                .arg(self.path(&format!("{ca}.pub"))),
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    }

    /// Signs alice's certified key with `ca`: `ssh-keygen -s CA -I ID -z SERIAL ARGS`; returns
    /// the certificate file (`NAME-cert.pub`).
    fn certify(&self, name: &str, ca: &str, serial: u32, args: &[&str]) -> PathBuf {
        let public = self.path(&format!("{name}.pub"));
        std::fs::copy(self.path("alice-cert-key.pub"), &public).unwrap();
        run_ok(
            Command::new("ssh-keygen")
                .arg("-q")
                .arg("-s")
                .arg(self.path(ca))
                .args(["-I", &format!("{name}@corp"), "-z", &serial.to_string()])
                .args(args)
                .arg(&public),
        );
        self.path(&format!("{name}-cert.pub"))
    }
}

/// `sftp -b -` as `user` with the certified key and `cert` (none: the bare key).
fn sftp_with(g: &Gateway, pki: &Pki, user: &str, cert: Option<&Path>, commands: &str) -> Output {
    let mut cmd = Command::new("sftp");
    cmd.args(g.ssh_opts(&pki.path("alice-cert-key")));
    if let Some(cert) = cert {
        cmd.arg("-o")
            .arg(format!("CertificateFile={}", cert.display()));
    }
    run_with_stdin(
        cmd.arg("-P")
            .arg(g.port.to_string())
            .arg("-b")
            .arg("-")
            .arg(format!("{user}@127.0.0.1"))
            .current_dir(g.dir.path()),
        commands.as_bytes(),
    )
}

fn upload(g: &Gateway, pki: &Pki, cert: &Path, name: &str) -> Output {
    let local = g.path(&format!("{name}.local"));
    std::fs::write(&local, data(64 << 10, name.len() as u64)).unwrap();
    sftp_with(
        g,
        pki,
        "alice",
        Some(cert),
        &format!("put {} /{name}\n", local.display()),
    )
}

fn assert_uploaded(g: &Gateway, out: &Output, name: &str) {
    assert!(
        out.status.success(),
        "{name}: sftp failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        g.log()
    );
    let plain = std::fs::read(g.path(&format!("{name}.local"))).unwrap();
    assert_eq!(g.decrypt(&g.store.join("acme").join(name)), plain);
}

fn assert_refused(g: &Gateway, out: &Output, name: &str) {
    assert!(
        !out.status.success(),
        "{name}: the certificate logged in:\n{}",
        g.log()
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{name}: not an authentication refusal: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !g.store.join("acme").join(name).exists(),
        "{name} was stored"
    );
}

/// Auth records for certificate `key_id` (accepted or refused).
fn cert_records(g: &Gateway, key_id: &str) -> Vec<Value> {
    g.events("auth")
        .into_iter()
        .filter(|e| e["certificate"]["key_id"] == key_id)
        .collect()
}

#[test]
fn a_certificate_from_a_trusted_ca_logs_its_principal_in_and_is_audited() {
    let pki = Pki::new();
    let g = Gateway::start_with(Options {
        auth_toml: pki.auth_toml(),
        ..Options::default()
    });
    let cert = pki.certify("laptop", "ca", 7, &["-n", "alice", "-V", "-5m:+1h"]);
    let out = upload(&g, &pki, &cert, "by-cert.bin");
    assert_uploaded(&g, &out, "by-cert.bin");

    let recs = cert_records(&g, "laptop@corp");
    assert_eq!(recs.len(), 1, "{recs:#?}");
    let r = &recs[0];
    assert_eq!(r["outcome"], "accepted");
    assert_eq!(r["method"], "publickey-certificate");
    assert_eq!(r["tenant"], "acme");
    assert_eq!(r["certificate"]["serial"], 7);
    assert_eq!(r["certificate"]["ca"], pki.fingerprint("ca"));

    // A source-address that includes the client is honoured, not refused.
    let here = pki.certify(
        "here",
        "ca",
        8,
        &[
            "-n",
            "bob,alice",
            "-O",
            "source-address=10.0.0.0/8,127.0.0.1/32",
        ],
    );
    let out = upload(&g, &pki, &here, "from-here.bin");
    assert_uploaded(&g, &out, "from-here.bin");
    assert_eq!(cert_records(&g, "here@corp")[0]["outcome"], "accepted");

    // The bare certified key is not alice's: without its certificate it is refused.
    let bare = sftp_with(&g, &pki, "alice", None, "ls /\n");
    assert!(!bare.status.success(), "{}", g.log());
    let last = g.events("auth").pop().unwrap();
    assert_eq!(
        (&last["method"], &last["outcome"]),
        (&Value::from("publickey"), &Value::from("rejected"))
    );
    // Her own authorized key still works beside the CA.
    g.assert_normal_upload("by-key.bin");
    g.assert_audit_verifies();
}

#[test]
fn a_user_with_neither_key_nor_password_logs_in_by_certificate() {
    let pki = Pki::new();
    let g = Gateway::start_with(Options {
        auth_toml: pki.auth_toml(),
        // erin has no authorized key and no password: only a certificate can log her in.
        extra_toml: "\n[tenants.acme.users.erin]\n".into(),
        ..Options::default()
    });
    let cert = pki.certify("erin", "ca", 9, &["-n", "erin", "-V", "-5m:+1h"]);
    let local = g.path("erin.bin.local");
    std::fs::write(&local, data(32 << 10, 9)).unwrap();
    let put = format!("put {} /erin.bin\n", local.display());
    let out = sftp_with(&g, &pki, "erin", Some(&cert), &put);
    assert_uploaded(&g, &out, "erin.bin");
    assert_eq!(cert_records(&g, "erin@corp")[0]["outcome"], "accepted");
    // Without the certificate the key is nobody's.
    assert!(!sftp_with(&g, &pki, "erin", None, "ls /\n").status.success());
    g.assert_audit_verifies();
}

#[test]
fn bad_certificates_are_refused_audited_and_counted_as_failures() {
    let pki = Pki::new();
    // Five failures of alice from 127.0.0.1 ban her there: exactly the five bad certificates.
    let g = Gateway::start_with(Options {
        auth_toml: pki.auth_toml(),
        max_failures: 5,
        ..Options::default()
    });
    let valid = pki.certify("valid", "ca", 1, &["-n", "alice", "-V", "-5m:+1h"]);
    assert_uploaded(&g, &upload(&g, &pki, &valid, "before.bin"), "before.bin");

    // (certificate name, CA, ssh-keygen arguments, reason in the audit record)
    let cases: [(&str, &str, &[&str], Option<&str>); 5] = [
        (
            "wrong-principal",
            "ca",
            &["-n", "bob,mallory"],
            Some("user not among the certificate's principals"),
        ),
        (
            "rogue",
            "rogue-ca",
            &["-n", "alice"],
            Some("certificate signed by a CA that is not in [auth] user_ca_keys"),
        ),
        (
            "forced",
            "ca",
            &["-n", "alice", "-O", "force-command=/bin/true"],
            Some("certificate has force-command, which a file gateway cannot honour"),
        ),
        (
            "elsewhere",
            "ca",
            &["-n", "alice", "-O", "source-address=10.0.0.0/8"],
            Some("client address not allowed by the certificate's source-address"),
        ),
        // russh itself refuses a certificate outside its validity window, before eugate
        // sees it; the client's fallback to the bare key is what is refused and audited.
        (
            "expired",
            "ca",
            &["-n", "alice", "-V", "20200101:20200102"],
            None,
        ),
    ];
    for (i, (name, ca, args, reason)) in cases.iter().enumerate() {
        let before = g.events("auth").len();
        let cert = pki.certify(name, ca, 100 + i as u32, args);
        let file = format!("{name}.bin");
        let out = upload(&g, &pki, &cert, &file);
        assert_refused(&g, &out, &file);
        let recs = g.wait_for_audit(&format!("{name}'s refusal"), |recs| {
            audit_events(recs, "auth").len() > before
        });
        let new: Vec<Value> = audit_events(&recs, "auth").split_off(before);
        assert!(
            new.iter()
                .all(|e| e["outcome"] == "rejected" && e["user"] == "alice"),
            "{name}: {new:#?}"
        );
        match reason {
            Some(reason) => {
                let r = cert_records(&g, &format!("{name}@corp"));
                assert_eq!(r.len(), 1, "{name}: {r:#?}");
                assert_eq!(r[0]["reason"], *reason, "{name}");
                assert_eq!(r[0]["certificate"]["serial"], 100 + i as u64);
                assert_eq!(r[0]["certificate"]["ca"], pki.fingerprint(ca));
                assert!(r[0]["tenant"].is_null());
            }
            None => assert!(
                new.iter().any(|e| e["method"] == "publickey"),
                "{name}: {new:#?}"
            ),
        }
    }

    // Each refusal counted once: alice is banned from here now, even with a valid certificate.
    let out = upload(&g, &pki, &valid, "after.bin");
    assert_refused(&g, &out, "after.bin");
    g.wait_for_audit("a banned attempt", |recs| {
        audit_events(recs, "auth")
            .iter()
            .any(|e| e["outcome"] == "refused: banned" && e["user"] == "alice")
    });
    g.assert_audit_verifies();
}
