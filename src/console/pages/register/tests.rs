//! The register page's form, defaults, file names and HTML with hostile names.

use super::{Form, Meta, render};
use crate::audit::register::{self, Period, Query};
use crate::audit::time::parse_time;
use crate::audit::{AuditEvent, AuditLog};
use crate::console::Params;

fn form(q: &str, now: &str) -> Result<Form, crate::console::ConsoleError> {
    Form::parse(&Params::parse(q.as_bytes()), parse_time(now).unwrap())
}

#[test]
fn default_period_is_the_current_quarter() {
    for (now, from, to) in [
        ("2026-12-03T16:00:00Z", "2026-10-01", "2027-01-01"),
        ("2026-01-01", "2026-01-01", "2026-04-01"),
        ("2026-06-30T23:59:59Z", "2026-04-01", "2026-07-01"),
        ("2026-08-15", "2026-07-01", "2026-10-01"),
    ] {
        let f = form("", now).unwrap();
        assert_eq!((f.from.as_str(), f.to.as_str()), (from, to), "{now}");
        assert_eq!(f.tenant, None);
    }
    let f = form(
        "tenant=acme&from=2026-01-01&to=2026-02-01T00:00:00Z",
        "2026-12-03",
    )
    .unwrap();
    assert_eq!(f.tenant.as_deref(), Some("acme"));
    assert_eq!(f.period.to, parse_time("2026-02-01").unwrap());
    assert_eq!(
        f.query(),
        "tenant=acme&from=2026-01-01&to=2026-02-01T00%3A00%3A00Z"
    );
}

#[test]
fn bad_forms_are_refused_naming_the_field() {
    for (q, want) in [
        ("from=last+week", "from"),
        ("to=2026-02-30", "to"),
        ("from=2026-02-01&to=2026-01-01", "from must be before to"),
    ] {
        let e = form(q, "2026-12-03").unwrap_err();
        assert!(e.to_string().contains(want), "{q}: {e}");
    }
}

#[test]
fn download_names_are_ascii_whatever_the_tenant() {
    let f = form(
        "tenant=%22%3Cx%3E%0D%0A%C3%A9&from=2026-10-01T00:00:00Z",
        "2026-12-03",
    )
    .unwrap();
    let name = f.filename("csv");
    assert_eq!(name, "register-__x____-2026-10-01T00_00_00Z-2027-01-01.csv");
}

const HOSTILE: &str = "<script>alert(1)</script>.txt";

#[test]
fn hostile_names_render_as_text_and_print_has_no_form() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.jsonl");
    let log = AuditLog::open(&path).unwrap().with_instance("gw-<i>");
    log.append(&AuditEvent::Decision {
        operation: "upload".into(),
        tenant: "acme".into(),
        user: "<b>mallory</b>".into(),
        destination: "us".into(),
        object: HOSTILE.into(),
        classification: "personal".into(),
        allowed: false,
        policies: vec!["default-deny".into()],
        reasons: vec!["<i>no rule</i>".into()],
        countries: vec!["US".into()],
        observed_region: None,
        evidence: "attested".into(),
        bundle: "sha256:bb".into(),
        protocol: Some("sftp".into()),
        key_held_by_tenant: false,
        jurisdictions: vec![],
        as_of: None,
        lapsed: vec![],
    })
    .unwrap();
    let reg = register::build(
        &[&path],
        &Query {
            tenant: Some("acme".into()),
            period: Period {
                from: 0,
                to: parse_time("2100-01-01").unwrap(),
            },
            allow_unverified: true,
        },
    )
    .unwrap();
    let f = form("tenant=acme&from=1970-01-01&to=2100-01-01", "2026-12-03").unwrap();
    let meta = Meta {
        generated: "2026-12-03T16:00:00.000Z".into(),
        officer: "<o>".into(),
        certificate: "sha256:AB".into(),
        active_bundle: "sha256:cc".into(),
    };
    let html = render::page(&reg, &f, &meta, false).into_string();
    for raw in ["<script>", "<b>", "<i>", "<o>"] {
        assert!(!html.contains(raw), "{raw} in {html}");
    }
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;.txt"));
    assert!(html.contains("all audit logs verified") && html.contains("sha256:bb"));
    assert!(html.contains("id=\"register-csv\"") && html.contains("<form"));
    let printed = render::page(&reg, &f, &meta, true).into_string();
    assert!(!printed.contains("<form") && !printed.contains("register-csv"));
    assert!(printed.contains("2026-12-03T16:00:00.000Z by &lt;o&gt;"));
}
