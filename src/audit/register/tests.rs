//! The register on hand-written audit logs (real chains, chosen timestamps).

use std::path::{Path, PathBuf};

use super::*;
use crate::audit::{AuditEvent, GENESIS, sha256_hex};

const BUNDLE: &str = "sha256:aaaa";
const HOSTILE_OBJECT: &str = "acme/a,\"b\"<script>\n=1.bin";
const HOSTILE_USER: &str = "=HYPERLINK(\"http://x\")";

/// Writes a chained log exactly as `AuditLog` does, with the given timestamps.
fn write_log(path: &Path, instance: Option<&str>, records: &[(&str, AuditEvent)]) {
    let mut prev = GENESIS.to_string();
    let mut text = String::new();
    for (i, (ts, event)) in records.iter().enumerate() {
        let inst = instance.map(|n| format!("\"instance\":{},", serde_json::to_string(n).unwrap()));
        let body = format!(
            "{{{}\"seq\":{},\"ts\":\"{ts}\",\"prev\":\"{prev}\",\"event\":{}}}",
            inst.unwrap_or_default(),
            i + 1,
            serde_json::to_string(event).unwrap()
        );
        let hash = sha256_hex(body.as_bytes());
        text.push_str(&format!(
            "{},\"hash\":\"{hash}\"}}\n",
            &body[..body.len() - 1]
        ));
        prev = hash;
    }
    std::fs::write(path, text).unwrap();
}

fn decision(user: &str, object: &str, dest: &str, allowed: bool, policy: &str) -> AuditEvent {
    AuditEvent::Decision {
        operation: "upload".into(),
        tenant: "acme".into(),
        user: user.into(),
        destination: dest.into(),
        object: object.into(),
        classification: "personal".into(),
        allowed,
        policies: vec![policy.into()],
        reasons: vec![format!("reason of {policy}")],
        countries: vec![if dest == "us" { "US" } else { "DE" }.into()],
        observed_region: None,
        evidence: "attested".into(),
        bundle: BUNDLE.into(),
        protocol: Some("sftp".into()),
        key_held_by_tenant: false,
        jurisdictions: vec![],
        as_of: None,
        lapsed: vec![],
    }
}

fn committed(user: &str, object: &str, size: u64, policies: &[&str]) -> AuditEvent {
    AuditEvent::Committed {
        tenant: "acme".into(),
        user: user.into(),
        destination: "local".into(),
        object: object.into(),
        object_id: "id".into(),
        key_id: "k".into(),
        key_version: 1,
        plaintext_size: size,
        ciphertext_size: size + 100,
        ciphertext_blake3: "00".into(),
        policies: policies.iter().map(|p| p.to_string()).collect(),
        bundle: BUNDLE.into(),
        protocol: Some("sftp".into()),
    }
}

fn query(tenant: Option<&str>, from: &str, to: &str) -> Query {
    Query {
        tenant: tenant.map(str::to_string),
        period: Period {
            from: parse_time(from).unwrap(),
            to: parse_time(to).unwrap(),
        },
        allow_unverified: false,
    }
}

/// Two instances; alice's hostile name on gw-a, bob's on gw-b, a denial on gw-b, and a
/// commit whose decision is in neither file.
fn two_instances(dir: &Path) -> Vec<PathBuf> {
    let a = dir.join("gw-a.jsonl");
    let b = dir.join("gw-b.jsonl");
    write_log(
        &a,
        Some("gw-a"),
        &[
            (
                "2026-10-01T10:00:00.000Z",
                decision("alice", HOSTILE_OBJECT, "local", true, "eea"),
            ),
            (
                "2026-10-01T10:00:01.000Z",
                committed("alice", HOSTILE_OBJECT, 1000, &["eea"]),
            ),
            (
                "2026-10-01T11:00:00.000Z",
                committed("alice", "acme/orphan", 5, &[]),
            ),
        ],
    );
    write_log(
        &b,
        Some("gw-b"),
        &[
            (
                "2026-10-02T09:00:00.000Z",
                decision(HOSTILE_USER, "acme/x", "local", true, "eea"),
            ),
            (
                "2026-10-02T09:00:00.500Z",
                decision("dave", "acme/y", "us", false, "default-deny"),
            ),
            (
                "2026-10-02T09:00:01.000Z",
                committed(HOSTILE_USER, "acme/x", 24, &[]),
            ),
        ],
    );
    vec![a, b]
}

#[test]
fn commits_link_to_their_decisions_across_two_instances() {
    let dir = tempfile::tempdir().unwrap();
    let files = two_instances(dir.path());
    let reg = build(&files, &query(Some("acme"), "2026-10-01", "2027-01-01")).unwrap();
    assert!(reg.sources.iter().all(FileStatus::verified));
    assert_eq!(reg.sources[0].instances, ["gw-a"]);
    assert_eq!(reg.transfers.len(), 3);
    let hostile = reg
        .transfers
        .iter()
        .find(|t| t.object == HOSTILE_OBJECT)
        .unwrap();
    assert_eq!(hostile.countries, ["DE"]);
    assert_eq!(hostile.decision_seq, Some(1));
    assert_eq!(hostile.instance.as_deref(), Some("gw-a"));
    assert_eq!(
        hostile.rules,
        [Rule {
            policy: "eea".into(),
            reason: "reason of eea".into()
        }]
    );
    // Its commit had no policies: the decision's are reported.
    let x = reg.transfers.iter().find(|t| t.object == "acme/x").unwrap();
    assert_eq!(x.rules[0].policy, "eea");
    assert_eq!(x.decision_seq, Some(1));
    let orphan = reg
        .transfers
        .iter()
        .find(|t| t.object == "acme/orphan")
        .unwrap();
    assert_eq!(orphan.decision_seq, None);
    assert!(orphan.countries.is_empty());

    let de = reg.totals.iter().find(|t| t.countries == ["DE"]).unwrap();
    assert_eq!(
        (de.transfers, de.plaintext_bytes, de.unlinked),
        (2, 1024, 0)
    );
    assert_eq!(de.instances, ["gw-a", "gw-b"]);
    assert_eq!(de.classifications, ["personal"]);
    let unknown = reg.totals.iter().find(|t| t.countries.is_empty()).unwrap();
    assert_eq!((unknown.transfers, unknown.unlinked), (1, 1));

    assert_eq!(reg.denials.len(), 1);
    let d = &reg.denials[0];
    assert_eq!(
        (d.user.as_str(), d.object.as_str(), d.instance.as_deref()),
        ("dave", "acme/y", Some("gw-b"))
    );
    assert_eq!(d.countries, ["US"]);
    assert_eq!(d.rules[0].policy, "default-deny");
    assert_eq!(d.bundle, BUNDLE);
}

#[test]
fn a_decision_for_another_user_or_a_denied_one_does_not_explain_a_commit() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.jsonl");
    write_log(
        &f,
        None,
        &[
            (
                "2026-10-01T10:00:00.000Z",
                decision("mallory", "acme/f", "local", true, "eea"),
            ),
            (
                "2026-10-01T10:00:00.100Z",
                decision("alice", "acme/f", "local", true, "first"),
            ),
            (
                "2026-10-01T10:00:00.200Z",
                decision("alice", "acme/f", "local", true, "nearest"),
            ),
            (
                "2026-10-01T10:00:00.300Z",
                decision("alice", "acme/f", "local", false, "no"),
            ),
            (
                "2026-10-01T10:00:01.000Z",
                committed("alice", "acme/f", 7, &[]),
            ),
        ],
    );
    let reg = build(&[&f], &query(None, "2026-10-01", "2026-10-02")).unwrap();
    assert_eq!(reg.transfers[0].decision_seq, Some(3));
    assert_eq!(reg.transfers[0].rules[0].policy, "nearest");
    assert_eq!(reg.denials.len(), 1);
}

#[test]
fn the_period_includes_from_and_excludes_to_and_decisions_before_it_still_link() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.jsonl");
    write_log(
        &f,
        None,
        &[
            (
                "2026-09-30T23:59:59.999Z",
                decision("alice", "acme/in", "local", true, "eea"),
            ),
            (
                "2026-09-30T23:59:59.999Z",
                committed("alice", "acme/before", 1, &[]),
            ),
            (
                "2026-10-01T00:00:00.000Z",
                committed("alice", "acme/in", 2, &["eea"]),
            ),
            (
                "2026-12-31T23:59:59.999Z",
                decision("alice", "acme/last", "us", false, "no"),
            ),
            (
                "2027-01-01T00:00:00.000Z",
                committed("alice", "acme/after", 4, &[]),
            ),
            (
                "2027-01-01T00:00:00.000Z",
                decision("alice", "acme/late", "us", false, "no"),
            ),
        ],
    );
    let reg = build(&[&f], &query(Some("acme"), "2026-10-01", "2027-01-01")).unwrap();
    let objects: Vec<_> = reg.transfers.iter().map(|t| t.object.as_str()).collect();
    assert_eq!(objects, ["acme/in"]);
    assert_eq!(reg.transfers[0].rules[0].reason, "reason of eea");
    assert_eq!(reg.transfers[0].countries, ["DE"]);
    let denied: Vec<_> = reg.denials.iter().map(|d| d.object.as_str()).collect();
    assert_eq!(denied, ["acme/last"]);
    // Another tenant's register is empty.
    let other = build(&[&f], &query(Some("beta"), "2026-10-01", "2027-01-01")).unwrap();
    assert!(other.transfers.is_empty() && other.denials.is_empty());
}

#[test]
fn an_empty_period_is_refused() {
    let e = build::<&Path>(&[], &query(None, "2026-10-02", "2026-10-01")).unwrap_err();
    assert!(matches!(e, RegisterError::EmptyPeriod { .. }), "{e}");
}

#[test]
fn a_broken_chain_is_refused_unless_allowed_and_then_marked() {
    let dir = tempfile::tempdir().unwrap();
    let files = two_instances(dir.path());
    let text = std::fs::read_to_string(&files[1]).unwrap();
    // Edit the denial (line 2): its hash no longer matches.
    std::fs::write(&files[1], text.replacen("\"dave\"", "\"eve\"", 1)).unwrap();
    let mut q = query(None, "2026-10-01", "2027-01-01");
    let e = build(&files, &q).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("gw-b.jsonl") && msg.contains("line 2"),
        "{msg}"
    );

    q.allow_unverified = true;
    let reg = build(&files, &q).unwrap();
    assert!(reg.sources[0].verified());
    assert_eq!(reg.sources[1].broken_line, Some(2));
    assert!(
        reg.sources[1]
            .broken_reason
            .as_deref()
            .unwrap()
            .contains("edited")
    );
    let d = &reg.denials[0];
    assert_eq!((d.user.as_str(), d.verified), ("eve", false));
    let x = reg.transfers.iter().find(|t| t.object == "acme/x").unwrap();
    assert!(!x.verified, "after the break");
    let total = reg.totals.iter().find(|t| t.countries == ["DE"]).unwrap();
    assert!(!total.verified);
    assert!(to_text(&reg).contains("BROKEN at line 2"));
    let csv = String::from_utf8(to_csv(&reg).unwrap()).unwrap();
    assert!(csv.contains("broken at line 2"), "{csv}");
}

#[test]
fn an_unreadable_file_is_named() {
    let e = build(
        &[Path::new("/nonexistent/audit.jsonl")],
        &query(None, "2026-10-01", "2026-10-02"),
    )
    .unwrap_err();
    assert!(e.to_string().contains("/nonexistent/audit.jsonl"), "{e}");
}

#[test]
fn csv_escapes_hostile_values_and_defuses_formulas() {
    let dir = tempfile::tempdir().unwrap();
    let reg = build(
        &two_instances(dir.path()),
        &query(None, "2026-10-01", "2027-01-01"),
    )
    .unwrap();
    let bytes = to_csv(&reg).unwrap();
    let mut rd = csv::Reader::from_reader(&bytes[..]);
    assert_eq!(
        rd.headers().unwrap().iter().collect::<Vec<_>>(),
        render::CSV_COLUMNS
    );
    let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    let col = |name: &str| render::CSV_COLUMNS.iter().position(|c| *c == name).unwrap();
    let transfers: Vec<_> = rows.iter().filter(|r| &r[0] == "transfer").collect();
    assert_eq!(transfers.len(), 3);
    assert!(
        transfers
            .iter()
            .any(|r| r[col("object")] == *HOSTILE_OBJECT)
    );
    assert!(
        transfers
            .iter()
            .any(|r| r[col("user")] == format!("'{HOSTILE_USER}")),
        "formula defused: {transfers:?}"
    );
    assert_eq!(rows.iter().filter(|r| &r[0] == "denial").count(), 1);
    assert_eq!(rows.iter().filter(|r| &r[0] == "source").count(), 2);
    for (cell, want) in [
        ("=1", "'=1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@x", "'@x"),
        ("a=1", "a=1"),
    ] {
        assert_eq!(render::defuse(cell), want);
    }
}

#[test]
fn json_and_text_keep_hostile_values_intact_or_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let reg = build(
        &two_instances(dir.path()),
        &query(None, "2026-10-01", "2027-01-01"),
    )
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&reg.to_json().unwrap()).unwrap();
    assert_eq!(json["format"], JSON_FORMAT);
    assert!(
        json["transfers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["object"] == HOSTILE_OBJECT)
    );
    assert_eq!(json["from"], "2026-10-01T00:00:00.000Z");
    let text = to_text(&reg);
    assert!(
        text.contains("Denials (1)") && text.contains("acme/dave  upload acme/y"),
        "{text}"
    );
    // A newline or terminal escape in a name cannot break the table or drive the terminal.
    assert_eq!(render::clean("a\n\u{1b}[2Jb"), "a\\n\\u{1b}[2Jb");
}
