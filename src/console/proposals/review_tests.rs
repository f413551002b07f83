use std::sync::Arc;

use super::*;
use crate::audit::{AuditEvent, AuditLog};
use crate::console::proposals::test_support::{DE_RULE_FILE, with_de_rule};
use crate::policy::{Classification, Evidence, Location, Request};

/// What the gateway records for an ACME upload of `class` to a store in `country`.
fn event(class: &str, country: &str) -> AuditEvent {
    let (d, _) = PolicyBundle::embedded().decide(&Request {
        tenant: "acme".into(),
        user: "alice".into(),
        classification: class.parse::<Classification>().ok(),
        destination: "local".into(),
        location: Location::Declared(vec![country.into()]),
        evidence: Evidence::Attested,
        key_held_by_tenant: false,
        operator_country: None,
    });
    AuditEvent::Decision {
        operation: "upload".into(),
        tenant: "acme".into(),
        user: "alice".into(),
        destination: "local".into(),
        object: format!("/{class}-{country}.csv"),
        classification: class.into(),
        allowed: d.allowed,
        policies: d.policies,
        reasons: d.reasons,
        countries: d.countries,
        observed_region: None,
        evidence: "attested".into(),
        bundle: d.bundle_hash,
        protocol: Some("sftp".into()),
        key_held_by_tenant: false,
        jurisdictions: vec![],
        as_of: None,
        lapsed: vec![],
    }
}

fn inputs(files: BTreeMap<String, String>, logs: Vec<PathBuf>) -> Inputs {
    Inputs {
        files,
        in_force: Arc::new(PolicyBundle::embedded()),
        audit_files: logs,
        replay_days: 30,
        now_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
    }
}

#[test]
fn a_good_proposal_passes_and_shows_its_diff_and_flips() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("audit.jsonl");
    let audit = AuditLog::open(&log).unwrap().with_instance("gw-1");
    for (class, country) in [
        ("special-category", "DE"),
        ("personal", "DE"),
        ("special-category", "FR"),
    ] {
        audit.append(&event(class, country)).unwrap();
    }
    let missing = tmp.path().join("other-instance.jsonl");
    let r = review(&inputs(with_de_rule(), vec![log, missing]));
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert!(r.passes(), "{:?}", r.refusal());
    let diff = r.diff.unwrap();
    assert!(!diff.is_empty());
    assert!(diff.iter().all(|c| {
        c.tenant == "acme"
            && c.classification == Some(Classification::SpecialCategory)
            && c.old == "allow"
            && c.new == "deny"
            && c.new_policies
                .contains(&"acme-special-category-not-in-de".to_string())
    }));
    assert!(diff.iter().any(|c| c.destination == "aws:eu-central-1"));
    let replay = r.replay.unwrap();
    assert_eq!(replay.decisions, 3);
    assert_eq!((replay.allow_to_deny, replay.deny_to_allow), (1, 0));
    assert_eq!(replay.flips.len(), 1);
    assert_eq!(replay.flips[0].record.object, "/special-category-DE.csv");
    // The missing log of another instance is named, and does not hide the flips of this one.
    assert_eq!(replay.problems.len(), 1);
    assert!(
        replay.problems[0].contains("other-instance.jsonl"),
        "{:?}",
        replay.problems
    );
}

#[test]
fn a_broken_rule_is_located_and_not_approvable() {
    let mut files = with_de_rule();
    files.insert(
        DE_RULE_FILE.into(),
        "forbid (principal, action, resource) when {".into(),
    );
    let r = review(&inputs(files.clone(), Vec::new()));
    assert!(!r.passes());
    assert!(
        r.problems.iter().any(|p| p.file == DE_RULE_FILE),
        "{:?}",
        r.problems
    );
    assert!(r.tests.is_none() && r.diff.is_none() && r.replay.is_none());
    assert!(r.refusal().unwrap().contains(DE_RULE_FILE));
    assert!(approvable(&files).unwrap_err().contains(DE_RULE_FILE));
}

#[test]
fn a_proposal_failing_its_tests_is_not_approvable() {
    let mut files = with_de_rule();
    files.insert(
        DE_RULE_FILE.into(),
        "@id(\"no-de\")\n@reason(\"x\")\nforbid (principal, action, resource) when { resource in Country::\"DE\" };\n".into(),
    );
    let r = review(&inputs(files.clone(), Vec::new()));
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert!(!r.passes());
    assert!(r.refusal().unwrap().contains("fails"));
    assert!(approvable(&files).unwrap_err().contains("test case"));
}
