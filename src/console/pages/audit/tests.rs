//! The audit search on in-memory logs (chosen times), its HTML with hostile names, its exports.

use std::path::PathBuf;

use super::export::{self, Format};
use super::search::{self, Filter, PAGE_SIZE, Row};
use super::{Source, render};
use crate::audit::AuditEvent;
use crate::audit::records::{Break, Log, Record};
use crate::audit::time::parse_time;
use crate::console::Params;

const HOSTILE_FILE: &str = "<script>alert(1)</script>.txt";
const HOSTILE_USER: &str = "=cmd|'/C calc'!A0";

fn decision(tenant: &str, user: &str, object: &str, allowed: bool) -> AuditEvent {
    AuditEvent::Decision {
        operation: "upload".into(),
        tenant: tenant.into(),
        user: user.into(),
        destination: "local".into(),
        object: object.into(),
        classification: "personal".into(),
        allowed,
        policies: vec!["eea".into()],
        reasons: vec!["EEA".into()],
        countries: vec!["DE".into()],
        observed_region: None,
        evidence: "attested".into(),
        bundle: "sha256:aa".into(),
        protocol: Some("sftp".into()),
        key_held_by_tenant: false,
        jurisdictions: vec![],
        as_of: None,
        lapsed: vec![],
    }
}

fn login(user: &str) -> AuditEvent {
    AuditEvent::Auth {
        user: user.into(),
        tenant: Some("acme".into()),
        source: "127.0.0.1".into(),
        method: "publickey".into(),
        outcome: "accepted".into(),
        certificate: None,
        tls_certificate: None,
        reason: None,
    }
}

fn log(name: &str, events: &[(&str, AuditEvent)]) -> Log {
    let records = events
        .iter()
        .enumerate()
        .map(|(i, (ts, event))| Record {
            instance: Some("gw-1".into()),
            seq: i as u64 + 1,
            line: i as u64 + 1,
            ts: ts.to_string(),
            at: parse_time(ts).unwrap(),
            event: event.clone(),
            verified: true,
        })
        .collect::<Vec<_>>();
    Log {
        file: PathBuf::from(name),
        lines: records.len() as u64,
        records,
        unreadable: Vec::new(),
        instances: ["gw-1".to_string()].into(),
        head: Some("ab".repeat(32)),
        broken: None,
    }
}

fn sample() -> Vec<Log> {
    vec![log(
        "/var/log/a.jsonl",
        &[
            ("2026-10-01T10:00:00.000Z", login("alice")),
            (
                "2026-10-01T10:00:01.000Z",
                decision("acme", "alice", HOSTILE_FILE, true),
            ),
            (
                "2026-10-02T10:00:00.000Z",
                decision("acme", HOSTILE_USER, "/x.csv", false),
            ),
            (
                "2026-10-03T10:00:00.000Z",
                decision("other", "bob", "/y.csv", true),
            ),
        ],
    )]
}

fn filter(q: &str) -> Filter {
    Filter::parse(&Params::parse(q.as_bytes())).unwrap()
}

fn objects(rows: &[Row]) -> Vec<&str> {
    rows.iter().map(|r| r.object.as_str()).collect()
}

#[test]
fn filters_narrow_and_results_are_newest_first() {
    let logs = sample();
    assert_eq!(
        objects(&search::select(&logs, &filter(""))),
        ["/y.csv", "/x.csv", HOSTILE_FILE, ""]
    );
    let acme = search::select(&logs, &filter("tenant=acme&type=decision"));
    assert_eq!(objects(&acme), ["/x.csv", HOSTILE_FILE]);
    let denied = search::select(&logs, &filter("outcome=denied"));
    assert_eq!(objects(&denied), ["/x.csv"]);
    let alice = search::select(&logs, &filter("user=alice"));
    assert_eq!(alice.len(), 2, "the login and the decision");
    let period = search::select(&logs, &filter("from=2026-10-02&to=2026-10-03T10:00:00Z"));
    assert_eq!(objects(&period), ["/x.csv"], "from included, to excluded");
    assert!(search::select(&logs, &filter("destination=elsewhere")).is_empty());
}

#[test]
fn bad_filters_are_refused_naming_the_field() {
    for (q, field) in [
        ("from=yesterday", "from"),
        ("to=2026-13-01", "to"),
        ("type=nope", "type"),
        ("from=2026-10-02&to=2026-10-01", "from must be before to"),
    ] {
        let e = Filter::parse(&Params::parse(q.as_bytes())).unwrap_err();
        assert!(e.to_string().contains(field), "{q}: {e}");
    }
    for p in ["0", "-1", "x"] {
        let q = Params::parse(format!("page={p}").as_bytes());
        assert!(search::page_number(&q).is_err(), "{p}");
    }
}

#[test]
fn paging_splits_the_selection() {
    let events: Vec<(String, AuditEvent)> = (0..PAGE_SIZE + 5)
        .map(|i| {
            (
                format!("2026-10-01T10:{:02}:{:02}.000Z", i / 60, i % 60),
                decision("acme", "alice", &format!("/{i}"), true),
            )
        })
        .collect();
    let borrowed: Vec<(&str, AuditEvent)> = events
        .iter()
        .map(|(t, e)| (t.as_str(), e.clone()))
        .collect();
    let rows = search::select(&[log("a", &borrowed)], &Filter::default());
    let (first, pages) = search::page(&rows, 1);
    assert_eq!((first.len(), pages), (PAGE_SIZE, 2));
    assert_eq!(
        first[0].object,
        format!("/{}", PAGE_SIZE + 4),
        "newest first"
    );
    let (second, _) = search::page(&rows, 2);
    assert_eq!(objects(second), ["/4", "/3", "/2", "/1", "/0"]);
    assert!(search::page(&rows, 9).0.is_empty());
}

#[test]
fn hostile_names_render_as_text() {
    let mut logs = sample();
    logs[0].file = PathBuf::from("/logs/<b>x</b>.jsonl");
    let rows = search::select(&logs, &Filter::default());
    let sources = vec![Source {
        file: logs[0].file.clone(),
        log: Ok(logs[0].clone()),
    }];
    let f = filter("user=%3Cscript%3E");
    let html = render::page(&sources, &f, &rows, 1).into_string();
    assert!(
        !html.contains("<script>") && !html.contains("<b>"),
        "{html}"
    );
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;.txt"));
    assert!(html.contains("&lt;b&gt;x&lt;/b&gt;.jsonl"));
    assert!(
        html.contains("user=%3Cscript%3E"),
        "links carry the filter encoded"
    );
    assert!(html.contains("verified") && !html.contains("BROKEN"));
}

#[test]
fn broken_and_unreadable_logs_show_as_broken() {
    let mut broken = sample().remove(0);
    broken.broken = Some(Break {
        line: 2,
        reason: "record was edited".into(),
    });
    broken.head = None;
    let sources = vec![
        Source {
            file: broken.file.clone(),
            log: Ok(broken),
        },
        Source {
            file: PathBuf::from("/gone.jsonl"),
            log: Err("cannot read audit log /gone.jsonl".into()),
        },
    ];
    let html = render::page(&sources, &Filter::default(), &[], 1).into_string();
    assert!(
        html.contains("BROKEN at line 2: record was edited"),
        "{html}"
    );
    assert!(html.contains("UNREADABLE: cannot read audit log /gone.jsonl"));
    assert!(html.contains("none (chain not intact)"));
}

#[test]
fn csv_export_defuses_formulas_and_json_keeps_records_whole() {
    let rows = search::select(&sample(), &filter("tenant=acme&type=decision"));
    let csv = export::body(Format::Csv, &rows).unwrap();
    let mut rd = csv::Reader::from_reader(csv.as_slice());
    let users: Vec<String> = rd
        .records()
        .map(|r| r.unwrap().get(3).unwrap().to_string())
        .collect();
    assert_eq!(users, [format!("'{HOSTILE_USER}"), "alice".to_string()]);
    let json: serde_json::Value =
        serde_json::from_slice(&export::body(Format::Json, &rows).unwrap()).unwrap();
    let recs = json["records"].as_array().unwrap();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[1]["event"]["object"], HOSTILE_FILE);
    assert_eq!(
        recs[0]["event"]["user"], HOSTILE_USER,
        "JSON is not defused"
    );
}

#[test]
fn export_act_names_the_selection() {
    let a = export::act(&filter("tenant=acme&outcome=denied"), Format::Csv, 3);
    assert_eq!(a.action, "export");
    assert_eq!(a.target, "audit: tenant=acme; outcome=denied");
    assert_eq!(a.detail, "3 records as csv");
    let all = export::act(&Filter::default(), Format::Json, 0);
    assert_eq!(all.target, "audit: all records");
    assert!(Format::parse(Some("xml")).is_err() && Format::parse(None).is_err());
}

#[tokio::test]
async fn load_reads_real_logs_and_reports_missing_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.jsonl");
    let log = crate::audit::AuditLog::open(&path).unwrap();
    let head = log.append(&login("alice")).unwrap();
    let sources = super::load(vec![path, dir.path().join("missing.jsonl")])
        .await
        .unwrap();
    let first = sources[0].log.as_ref().unwrap();
    assert_eq!(first.head.as_deref(), Some(head.as_str()));
    assert!(
        sources[1]
            .log
            .as_ref()
            .unwrap_err()
            .contains("missing.jsonl")
    );
}
