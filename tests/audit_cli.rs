//! `eugate audit verify` through the real binary, on a log written by the library.

use std::process::Command;

use eugate::audit::{AuditEvent, AuditLog};

fn verify(path: &std::path::Path) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_eugate"))
        .args(["audit", "verify"])
        .arg(path)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn verify_passes_on_intact_log_and_names_first_bad_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path).unwrap();
    for i in 0..3 {
        log.append(&AuditEvent::Auth {
            user: format!("u{i}"),
            tenant: Some("acme".into()),
            source: "127.0.0.1".into(),
            method: "publickey".into(),
            outcome: "accepted".into(),
            certificate: None,
            tls_certificate: None,
            reason: None,
        })
        .unwrap();
    }
    drop(log);
    let (code, out, _) = verify(&path);
    assert_eq!(code, Some(0));
    assert!(out.contains("ok: 3 records"), "{out}");

    let text = std::fs::read_to_string(&path).unwrap();
    let tampered = dir.path().join("tampered.jsonl");
    std::fs::write(&tampered, text.replacen("\"u1\"", "\"u9\"", 1)).unwrap();
    let (code, _, err) = verify(&tampered);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("tampered.jsonl:2:") && err.contains("edited"),
        "{err}"
    );

    let (code, _, err) = verify(&dir.path().join("missing.jsonl"));
    assert_eq!(code, Some(1));
    assert!(err.contains("missing.jsonl"), "{err}");
}
