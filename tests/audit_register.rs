//! `eugate audit register` on the audit log of a real gateway: OpenSSH sftp uploads (one with a
//! hostile name) and a denied upload, listed exactly, as CSV and JSON.

mod common;

use std::process::Command;

use common::{Gateway, bin, data};

const HOSTILE: &str = "a,\"b\"<script>=1.bin";

fn register(g: &Gateway, format: &str, extra: &[&str]) -> std::process::Output {
    Command::new(bin())
        .args([
            "audit",
            "register",
            "--from",
            "2000-01-01",
            "--to",
            "2100-01-01",
            "--format",
            format,
        ])
        .args(extra)
        .arg(g.audit_path())
        .output()
        .unwrap()
}

#[test]
fn register_lists_exactly_the_transfers_and_the_denial_a_gateway_made() {
    let g = Gateway::start();
    let small = data(1_234, 1);
    let big = data(300_000, 2);
    std::fs::write(g.path("small.bin"), &small).unwrap();
    std::fs::write(g.path("hostile.bin"), &big).unwrap();
    g.sftp_ok(
        "alice",
        &format!("put small.bin\nput hostile.bin '{HOSTILE}'\n"),
    );
    std::fs::write(g.path("denied.bin"), b"nope").unwrap();
    let denied = g.sftp("dave", "put denied.bin\n");
    assert!(
        !denied.status.success(),
        "dave's upload to the US must be refused"
    );
    g.wait_for_audit("two commits and a denial", |r| {
        common::audit_events(r, "committed").len() == 2
            && common::audit_events(r, "decision")
                .iter()
                .any(|d| d["allowed"] == false)
    });

    // Everyone's register, as CSV.
    let out = register(&g, "csv", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rd = csv::Reader::from_reader(&out.stdout[..]);
    let head: Vec<String> = rd.headers().unwrap().iter().map(String::from).collect();
    let col = |n: &str| head.iter().position(|c| c == n).unwrap();
    let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    let kind = |k: &str| rows.iter().filter(|r| r[0] == *k).collect::<Vec<_>>();
    let transfers = kind("transfer");
    assert_eq!(transfers.len(), 2, "{rows:?}");
    let mut seen: Vec<(String, String)> = transfers
        .iter()
        .map(|r| {
            (
                r[col("object")].to_string(),
                r[col("plaintext_bytes")].to_string(),
            )
        })
        .collect();
    seen.sort();
    let mut want = vec![
        (format!("acme/{HOSTILE}"), big.len().to_string()),
        ("acme/small.bin".to_string(), small.len().to_string()),
    ];
    want.sort();
    assert_eq!(seen, want);
    for t in &transfers {
        assert_eq!(&t[col("tenant")], "acme");
        assert_eq!(&t[col("user")], "alice");
        assert_eq!(&t[col("destination")], "local");
        assert_eq!(&t[col("countries")], "DE");
        assert_eq!(&t[col("policies")], "eea");
        assert!(t[col("reasons")].contains("EEA"), "{t:?}");
        assert_eq!(&t[col("verified")], "true");
        assert!(!t[col("decision_seq")].is_empty());
    }
    let totals = kind("total");
    assert_eq!(totals.len(), 1, "{totals:?}");
    assert_eq!(&totals[0][col("transfers")], "2");
    assert_eq!(
        totals[0][col("plaintext_bytes")],
        (small.len() + big.len()).to_string()
    );
    let denials = kind("denial");
    assert_eq!(denials.len(), 1, "{denials:?}");
    let d = denials[0];
    assert_eq!((&d[col("tenant")], &d[col("user")]), ("gamma", "dave"));
    assert_eq!(&d[col("destination")], "us-disk");
    assert_eq!(&d[col("countries")], "US");
    assert_eq!(&d[col("object")], "gamma/denied.bin");
    assert!(!d[col("policies")].is_empty());
    assert!(d[col("bundle")].starts_with("sha256:"));
    let sources = kind("source");
    assert_eq!(sources.len(), 1);
    assert_eq!(&sources[0][col("verified")], "true");

    // acme's register as JSON to a file: the same transfers, no denial (it was gamma's).
    let json_path = g.path("register.json");
    let out = register(
        &g,
        "json",
        &["--tenant", "acme", "--output", json_path.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(j["format"], "eugate-transfer-register/1");
    let objects: Vec<&str> = j["transfers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["object"].as_str().unwrap())
        .collect();
    assert_eq!(objects.len(), 2);
    assert!(
        objects.contains(&format!("acme/{HOSTILE}").as_str()),
        "{objects:?}"
    );
    assert_eq!(j["totals"][0]["transfers"], 2);
    assert_eq!(j["totals"][0]["countries"], serde_json::json!(["DE"]));
    assert_eq!(j["totals"][0]["rules"][0]["policy"], "eea");
    assert!(j["denials"].as_array().unwrap().is_empty());

    // The text summary names the log as verified.
    let out = register(&g, "text", &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("verified (") && text.contains("Denials (1)"),
        "{text}"
    );
}

#[test]
fn register_refuses_an_edited_log_and_bad_arguments_precisely() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let audit = eugate::audit::AuditLog::open(&log).unwrap();
    for object in ["acme/1", "acme/2"] {
        audit
            .append(&eugate::audit::AuditEvent::Aborted {
                tenant: "acme".into(),
                user: "alice".into(),
                destination: "local".into(),
                object: object.into(),
                cause: "test".into(),
                protocol: None,
            })
            .unwrap();
    }
    drop(audit);
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, text.replacen("acme/2", "acme/3", 1)).unwrap();
    let run = |args: &[&str]| {
        Command::new(bin())
            .args(["audit", "register"])
            .args(args)
            .output()
            .unwrap()
    };
    let p = log.to_str().unwrap();
    let out = run(&["--from", "2026-01-01", "--to", "2100-01-01", p]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("audit.jsonl") && err.contains("line 2") && err.contains("--allow-unverified"),
        "{err}"
    );
    let out = run(&[
        "--from",
        "2026-01-01",
        "--to",
        "2100-01-01",
        "--allow-unverified",
        "--format",
        "csv",
        p,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("broken at line 2"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning"));

    let out = run(&["--from", "2026-13-01", "--to", "2100-01-01", p]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--from") && err.contains("2026-13-01"),
        "{err}"
    );
    let missing = dir.path().join("missing.jsonl");
    let out = run(&[
        "--from",
        "2026-01-01",
        "--to",
        "2100-01-01",
        missing.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("missing.jsonl"),
        "{err}"
    );
}
