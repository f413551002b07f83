use std::path::PathBuf;

use super::*;
use crate::audit::{AuditEvent, AuditLog};

const DENY_DE_SPECIAL: &str = r#"
@id("special-category-not-in-de")
@reason("Test: special-category data must not be stored in Germany.")
forbid (principal, action, resource)
when { context.classification == "special-category" && resource in Country::"DE" };
"#;

fn shipped() -> PolicyBundle {
    PolicyBundle::embedded()
}

fn proposed() -> PolicyBundle {
    let mut sources = crate::policy::embedded::sources();
    sources.insert("replay-test.cedar".into(), DENY_DE_SPECIAL.into());
    PolicyBundle::from_sources(sources).expect("proposed bundle")
}

/// What the gateway records for an upload to the fs destination `local` (DE, attested).
fn event(tenant: &str, class: &str) -> AuditEvent {
    let c = class.parse::<Classification>().ok();
    let (d, _) = shipped().decide(&Request {
        tenant: tenant.into(),
        user: "alice".into(),
        classification: c,
        destination: "local".into(),
        location: Location::Declared(vec!["DE".into()]),
        evidence: Evidence::Attested,
        key_held_by_tenant: false,
        operator_country: None,
    });
    AuditEvent::Decision {
        operation: "upload".into(),
        tenant: tenant.into(),
        user: "alice".into(),
        destination: "local".into(),
        object: format!("/{class}.csv"),
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

fn write_log(dir: &tempfile::TempDir, name: &str, events: &[AuditEvent]) -> PathBuf {
    let path = dir.path().join(name);
    let log = AuditLog::open(&path).expect("open").with_instance("gw-1");
    for e in events {
        log.append(e).expect("append");
    }
    path
}

fn run(paths: &[PathBuf], opts: &ReplayOptions) -> Report {
    replay(&proposed(), paths, opts).expect("replay")
}

#[test]
fn deny_de_rule_flips_special_category_only() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(
        &dir,
        "a.jsonl",
        &[
            AuditEvent::Lifecycle {
                action: "start".into(),
                detail: "test".into(),
            },
            event("acme-health", "special-category"),
            event("acme", "personal"),
            event("acme-health", "personal"),
        ],
    );
    let r = run(&[log], &ReplayOptions::default());
    assert_eq!(r.summary.decisions, 3);
    assert_eq!(r.summary.evaluated, 3);
    assert_eq!(r.summary.allow_to_deny, 1, "{r:#?}");
    assert_eq!(r.summary.unchanged, 2);
    assert_eq!(r.summary.deny_to_allow, 0);
    let flipped: Vec<&Replayed> = r.decisions.iter().filter(|d| d.flipped()).collect();
    assert_eq!(flipped.len(), 1);
    let f = flipped[0];
    assert!(f.old.allowed);
    assert_eq!(f.record.classification, "special-category");
    assert_eq!(f.record.instance, "gw-1");
    assert_eq!(f.change, Change::AllowToDeny);
    let new = f.new.as_ref().unwrap();
    assert_eq!(new.policies, vec!["special-category-not-in-de".to_string()]);
    assert!(new.reasons[0].contains("must not be stored in Germany"));
    // Reported per recorded bundle: all were decided by the shipped one.
    assert_eq!(r.by_recorded_bundle.len(), 1);
    assert_eq!(r.by_recorded_bundle[shipped().hash()].allow_to_deny, 1);
    assert_ne!(r.bundle, shipped().hash());
}

#[test]
fn same_bundle_replays_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(
        &dir,
        "a.jsonl",
        &[
            event("acme-health", "special-category"),
            event("gamma", "personal"),
        ],
    );
    let r = replay(&shipped(), &[log], &ReplayOptions::default()).unwrap();
    assert_eq!(r.summary.unchanged, 2, "{r:#?}");
    assert!(r.decisions.iter().all(|d| !d.rules_changed));
}

#[test]
fn unreadable_inputs_are_not_evaluable_with_reason() {
    let mut unknown_class = event("acme", "personal");
    if let AuditEvent::Decision { classification, .. } = &mut unknown_class {
        *classification = "top-secret".into();
    }
    let mut quarantined = event("acme", "personal");
    if let AuditEvent::Decision {
        allowed, policies, ..
    } = &mut quarantined
    {
        *allowed = false;
        *policies = vec![QUARANTINED.into()];
    }
    let mut unknown_region = event("acme", "personal");
    if let AuditEvent::Decision {
        observed_region,
        evidence,
        ..
    } = &mut unknown_region
    {
        *observed_region = Some("mars-north-1".into());
        *evidence = "probed".into();
    }
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(
        &dir,
        "a.jsonl",
        &[unknown_class, quarantined, unknown_region],
    );
    let r = run(&[log], &ReplayOptions::default());
    assert_eq!(r.summary.not_evaluable, 3, "{r:#?}");
    assert_eq!(r.summary.evaluated, 0);
    let why: Vec<&str> = r
        .summary
        .not_evaluable_reasons
        .keys()
        .map(String::as_str)
        .collect();
    assert!(why.iter().any(|w| w.contains("top-secret")), "{why:?}");
    assert!(why.iter().any(|w| w.contains("quarantined")), "{why:?}");
    assert!(why.iter().any(|w| w.contains("mars-north-1")), "{why:?}");
    assert!(r.decisions.iter().all(|d| d.new.is_none()));
}

#[test]
fn unlisted_tenant_is_decided_by_the_default_rules_like_the_gateway() {
    // A tenant absent from tenants.toml is still decided by the defaults (tenants.toml says
    // so); replay must do the same, or real transfers of such tenants would be hidden.
    let r = replay_one(&proposed(), record(event("beta", "special-category")));
    assert_eq!(r.change, Change::AllowToDeny, "{r:#?}");
}

#[test]
fn probed_region_is_found_in_the_catalogue() {
    let (d, _) = shipped().decide(&Request {
        tenant: "acme".into(),
        user: "alice".into(),
        classification: Some(Classification::SpecialCategory),
        destination: "s3-fra".into(),
        location: Location::Region("aws:eu-central-1".into()),
        evidence: Evidence::Probed,
        key_held_by_tenant: false,
        operator_country: None,
    });
    assert!(d.allowed, "{d:#?}");
    let mut e = event("acme", "special-category");
    if let AuditEvent::Decision {
        observed_region,
        evidence,
        destination,
        policies,
        countries,
        ..
    } = &mut e
    {
        *observed_region = Some("eu-central-1".into());
        *evidence = "probed".into();
        *destination = "s3-fra".into();
        *policies = d.policies.clone();
        *countries = d.countries.clone();
    }
    let r = replay_one(&proposed(), record(e));
    assert_eq!(r.change, Change::AllowToDeny, "{r:#?}");
    assert_eq!(
        r.new.unwrap().policies,
        vec!["special-category-not-in-de".to_string()]
    );
}

fn record(e: AuditEvent) -> RecordedDecision {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(&dir, "one.jsonl", &[e]);
    let (mut v, _) = read::decisions(&log, true).unwrap();
    v.remove(0)
}

#[test]
fn window_bounds_from_inclusive_to_exclusive() {
    let w = Window::between(
        Some("2026-12-01T00:00:00Z"),
        Some("2026-12-02T00:00:00+01:00"),
    )
    .unwrap();
    let from = parse_rfc3339_ms("2026-12-01T00:00:00.000Z").unwrap();
    let to = parse_rfc3339_ms("2026-12-01T23:00:00Z").unwrap();
    assert_eq!(w.to_ms, Some(to));
    assert!(w.contains(from));
    assert!(!w.contains(from - 1));
    assert!(w.contains(to - 1));
    assert!(!w.contains(to));
    assert_eq!(
        parse_rfc3339_ms("1970-01-01T00:00:01.5Z").unwrap(),
        1500,
        "fractions are milliseconds"
    );
    let s = Window::since("30d", 100 * 86_400_000).unwrap();
    assert_eq!(s.from_ms, Some(70 * 86_400_000));
    assert!(s.contains(70 * 86_400_000) && !s.contains(70 * 86_400_000 - 1));
}

#[test]
fn bad_windows_are_errors() {
    for bad in ["30", "d", "0d", "-3d", "30y", "1.5h", ""] {
        assert!(Window::since(bad, 0).is_err(), "{bad}");
    }
    for bad in [
        "2026-13-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-12-1",
        "2026-12-01T00:00:00",
        "2026-12-01T25:00:00Z",
        "2026-12-01T00:00:00+1:00",
    ] {
        assert!(parse_rfc3339_ms(bad).is_err(), "{bad}");
    }
    assert!(Window::between(Some("2026-12-02T00:00:00Z"), Some("2026-12-01T00:00:00Z")).is_err());
}

#[test]
fn window_selects_records_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(&dir, "a.jsonl", &[event("acme-health", "special-category")]);
    let past = ReplayOptions {
        window: Window::between(None, Some("2020-01-01T00:00:00Z")).unwrap(),
        ..Default::default()
    };
    assert_eq!(run(std::slice::from_ref(&log), &past).summary.decisions, 0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let recent = ReplayOptions {
        window: Window::since("1h", now + 60_000).unwrap(),
        ..Default::default()
    };
    assert_eq!(run(&[log], &recent).summary.decisions, 1);
}

#[test]
fn broken_chain_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_log(
        &dir,
        "a.jsonl",
        &[
            event("acme-health", "special-category"),
            event("acme-health", "special-category"),
            event("acme", "personal"),
        ],
    );
    // Remove the middle record: the chain breaks at line 2.
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&log, format!("{}\n{}\n", lines[0], lines[2])).unwrap();
    let err = replay(
        &proposed(),
        std::slice::from_ref(&log),
        &ReplayOptions::default(),
    )
    .expect_err("broken chain");
    let msg = err.to_string();
    assert!(matches!(err, ReplayError::Unverified { .. }), "{msg}");
    assert!(
        msg.contains("--allow-unverified") && msg.contains("line 2"),
        "{msg}"
    );
    let r = run(
        &[log],
        &ReplayOptions {
            allow_unverified: true,
            ..Default::default()
        },
    );
    assert_eq!(r.summary.decisions, 2);
    assert!(!r.logs[0].verified && r.logs[0].problem.is_some());
    assert!(r.decisions.iter().all(|d| !d.record.verified));
}

#[test]
fn missing_log_is_an_io_error() {
    let err = replay(
        &proposed(),
        &[PathBuf::from("/nonexistent/audit.jsonl")],
        &ReplayOptions::default(),
    )
    .expect_err("missing");
    assert!(matches!(err, ReplayError::Io { .. }), "{err}");
    assert!(
        err.to_string().contains("/nonexistent/audit.jsonl"),
        "{err}"
    );
}

#[test]
fn replay_asks_with_the_recorded_own_key_fact() {
    // A proposal requiring the tenant's own key for special-category data: a recorded upload of
    // a tenant that held its key stays allowed; the same upload under a keyring key flips.
    let mut sources = crate::policy::embedded::sources();
    sources.insert(
        "own-key.cedar".into(),
        "@id(\"needs-own-key\")\n@reason(\"test\")\nforbid (principal, action, resource)\nwhen { context.classification == \"special-category\" }\nunless { context.key_held_by_tenant };\n".into(),
    );
    let own_key = PolicyBundle::from_sources(sources).expect("proposed bundle");
    let mut held = event("acme", "special-category");
    if let AuditEvent::Decision {
        key_held_by_tenant, ..
    } = &mut held
    {
        *key_held_by_tenant = true;
    }
    let r = replay_one(&own_key, record(held));
    assert_eq!(r.change, Change::Unchanged, "{r:#?}");
    let r = replay_one(&own_key, record(event("acme", "special-category")));
    assert_eq!(r.change, Change::AllowToDeny, "{r:#?}");
}
