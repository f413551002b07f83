//! The audit trail a running gateway writes: logins, decisions, commits and aborts, hash-chained
//! so that `eugate audit verify` passes on it and fails on an edited copy.

mod common;

use common::{BOB_PASSWORD, Gateway, audit_events, audit_verify, data};

/// A wrong password, distinctive so that a leak cannot hide among other words.
const WRONG: &str = "wrong-Tr0ub4dor-guess";

#[test]
fn gateway_audit_trail_records_every_outcome_and_verifies() {
    let g = Gateway::start();
    let plain = data(300_000, 7);
    std::fs::write(g.path("up.bin"), &plain).unwrap();
    g.sftp_ok("alice", "put up.bin\n");
    // A denied upload (gamma's disk is declared in the US), a wrong password, an abandoned upload.
    let _ = g.script("dave", &["exclusive", "--path", "/x.txt"]);
    let _ = g.script("bob", &["login", "--password", WRONG]);
    let _ = g.script("alice", &["disconnect-mid-upload", "--path", "/half.bin"]);

    let recs = g.wait_for_audit("aborted upload", |r| !audit_events(r, "aborted").is_empty());
    let lifecycle = audit_events(&recs, "lifecycle");
    assert_eq!(lifecycle[0]["action"], "start");

    let auth = audit_events(&recs, "auth");
    assert!(
        auth.iter().any(|a| a["user"] == "alice"
            && a["outcome"] == "accepted"
            && a["method"] == "publickey")
    );
    assert!(
        auth.iter()
            .any(|a| a["user"] == "bob" && a["outcome"] == "rejected")
    );

    let decisions = audit_events(&recs, "decision");
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

    let committed = audit_events(&recs, "committed");
    assert_eq!(committed.len(), 1, "{committed:#?}");
    let c = &committed[0];
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

    let aborted = audit_events(&recs, "aborted");
    assert!(
        aborted.iter().any(|a| a["object"] == "acme/half.bin"),
        "{aborted:#?}"
    );

    // Nothing secret or personal beyond names and addresses: neither password, anywhere.
    g.assert_secret_absent(BOB_PASSWORD);
    g.assert_secret_absent(WRONG);

    g.assert_audit_verifies();
    let text = std::fs::read_to_string(g.audit_path()).unwrap();
    let tampered = g.path("tampered.jsonl");
    std::fs::write(
        &tampered,
        text.replacen("\"allowed\":false", "\"allowed\":true", 1),
    )
    .unwrap();
    let out = audit_verify(&tampered);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("edited"));
}
