//! The audit trail a running gateway writes: logins, decisions, commits and aborts, hash-chained
//! so that `eugate audit verify` passes on it and fails on an edited copy.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Gateway, bin, data};

fn records(g: &Gateway) -> Vec<serde_json::Value> {
    std::fs::read_to_string(g.path("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn events<'a>(recs: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    recs.iter()
        .filter(|r| r["event"]["type"] == kind)
        .map(|r| &r["event"])
        .collect()
}

fn wait_for(
    g: &Gateway,
    what: &str,
    ok: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let recs = records(g);
        if ok(&recs) {
            return recs;
        }
        assert!(
            Instant::now() < deadline,
            "no {what} in the audit log: {recs:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn verify(path: &std::path::Path) -> std::process::Output {
    Command::new(bin())
        .args(["audit", "verify"])
        .arg(path)
        .output()
        .unwrap()
}

#[test]
fn gateway_audit_trail_records_every_outcome_and_verifies() {
    let g = Gateway::start();
    let plain = data(300_000, 7);
    std::fs::write(g.path("up.bin"), &plain).unwrap();
    g.sftp_ok("alice", "put up.bin\n");
    // A denied upload (gamma's disk is declared in the US), a wrong password, an abandoned upload.
    let _ = g.script("dave", &["exclusive", "--path", "/x.txt"]);
    let _ = g.script("bob", &["login", "--password", "wrong"]);
    let _ = g.script("alice", &["disconnect-mid-upload", "--path", "/half.bin"]);

    let recs = wait_for(&g, "aborted upload", |r| !events(r, "aborted").is_empty());
    let lifecycle = events(&recs, "lifecycle");
    assert_eq!(lifecycle[0]["action"], "start");

    let auth = events(&recs, "auth");
    assert!(
        auth.iter().any(|a| a["user"] == "alice"
            && a["outcome"] == "accepted"
            && a["method"] == "publickey")
    );
    assert!(
        auth.iter()
            .any(|a| a["user"] == "bob" && a["outcome"] == "rejected")
    );

    let decisions = events(&recs, "decision");
    let allowed = decisions
        .iter()
        .find(|d| d["object"] == "acme/up.bin")
        .expect("decision for up.bin");
    assert_eq!(allowed["allowed"], true);
    assert_eq!(allowed["countries"], serde_json::json!(["DE"]));
    assert_eq!(allowed["evidence"], "attested");
    assert!(allowed["bundle"].as_str().unwrap().starts_with("sha256:"));
    let denied = decisions
        .iter()
        .find(|d| d["tenant"] == "gamma")
        .expect("decision for gamma");
    assert_eq!(denied["allowed"], false);
    assert_eq!(denied["countries"], serde_json::json!(["US"]));
    assert!(!denied["policies"].as_array().unwrap().is_empty());

    let committed = events(&recs, "committed");
    assert_eq!(committed.len(), 1, "{committed:#?}");
    let c = committed[0];
    let stored = std::fs::read(g.store.join("acme/up.bin")).unwrap();
    assert_eq!(c["plaintext_size"], plain.len() as u64);
    assert_eq!(c["ciphertext_size"], stored.len() as u64);
    // The record names exactly the stored bytes (what `b3sum` prints for the object).
    assert_eq!(
        c["ciphertext_blake3"],
        blake3::hash(&stored).to_hex().as_str()
    );
    assert_ne!(
        c["ciphertext_blake3"],
        blake3::hash(&stored[..stored.len() - 1]).to_hex().as_str()
    );

    let aborted = events(&recs, "aborted");
    assert!(
        aborted.iter().any(|a| a["object"] == "acme/half.bin"),
        "{aborted:#?}"
    );

    // Nothing secret or personal beyond names and addresses.
    let text = std::fs::read_to_string(g.path("audit.jsonl")).unwrap();
    assert!(!text.contains("correct horse") && !text.contains("wrong\""));

    let out = verify(&g.path("audit.jsonl"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tampered = g.path("tampered.jsonl");
    std::fs::write(
        &tampered,
        text.replacen("\"allowed\":false", "\"allowed\":true", 1),
    )
    .unwrap();
    let out = verify(&tampered);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("edited"));
}
