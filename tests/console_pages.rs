//! The console's read-only policy pages over real mTLS with curl: the residency matrix, explain
//! (the same answer as `eugate policy explain`), the policies in force (flags follow a reload)
//! and the destinations. The test gateway has two fs destinations: `local` (DE) and `us-disk`
//! (US).

mod common;
mod console_support;

use std::process::Command;
use std::time::{Duration, Instant};

use console_support::Console;

/// The `<td …>` of the matrix cell whose explain link contains `href_part`.
fn cell<'a>(html: &'a str, href_part: &str) -> &'a str {
    let at = html
        .find(href_part)
        .unwrap_or_else(|| panic!("no cell for {href_part}"));
    let td = html[..at].rfind("<td ").expect("a td before the link");
    &html[td..at]
}

#[test]
fn pages_need_a_certificate() {
    let c = Console::start();
    for path in [
        "/console/matrix",
        "/console/explain?tenant=t&destination=aws%3Aeu-central-1",
        "/console/policies",
        "/console/destinations",
    ] {
        let a = c.curl(None, path, &[]);
        assert_eq!(a.code, 403, "{path}: {a:?}");
        assert!(!a.body.contains("id=\"matrix\"") && !a.body.contains("id=\"rules\""));
        let a = c.get("viewer", path);
        assert_eq!(a.code, 200, "{path}: {a:?}");
    }
}

#[test]
fn matrix_shows_configured_and_catalogue_decisions_with_filters() {
    let c = Console::start();
    let a = c.get(
        "viewer",
        "/console/matrix?classification=personal&tenant=globex",
    );
    assert_eq!(a.code, 200, "{a:?}");
    let html = &a.body;
    assert!(html.contains(r#"<table id="matrix">"#), "{html}");
    // Configured destinations, decided on their (declared) location.
    let local = cell(html, "destination=local&amp;");
    assert!(
        local.starts_with(r#"<td class="allow" title="eea: "#),
        "{local}"
    );
    let us_disk = cell(html, "destination=us-disk&amp;");
    assert!(
        us_disk.starts_with(r#"<td class="deny" title="default-deny: "#),
        "{us_disk}"
    );
    // Catalogue regions under the shipped policy.
    let eu = cell(html, "destination=aws%3Aeu-central-1&amp;");
    assert!(eu.starts_with(r#"<td class="allow""#), "{eu}");
    let cn = cell(html, "destination=aws%3Acn-north-1&amp;");
    assert!(
        cn.starts_with(r#"<td class="deny" title="provider-jurisdiction: "#),
        "{cn}"
    );
    let us = cell(html, "destination=aws%3Aus-east-1&amp;");
    assert!(us.starts_with(r#"<td class="deny""#), "{us}");
    assert_eq!(html.matches("<tbody").count(), 1, "one classification");
    assert!(html.contains(
        r#"href="/console/explain?tenant=globex&amp;destination=aws%3Aeu-central-1&amp;classification=personal""#
    ));

    // The explain link answers the cell's question the same way.
    let e = c.get(
        "viewer",
        "/console/explain?tenant=globex&destination=us-disk&classification=personal",
    );
    assert_eq!(e.code, 200, "{e:?}");
    assert!(
        e.body.contains(r#"<span class="deny">DENY</span>"#),
        "{}",
        e.body
    );

    // No filter: every classification, the shipped tenants and any other.
    let all = c.get("viewer", "/console/matrix");
    assert_eq!(all.code, 200);
    assert_eq!(all.body.matches("<tbody").count(), 5);
    assert_eq!(all.body.matches(r#"<th class="tenant">"#).count(), 3);

    let bad = c.get("viewer", "/console/matrix?classification=secret");
    assert_eq!(bad.code, 400, "{bad:?}");
    assert!(
        bad.body.contains("unknown classification &#39;secret&#39;")
            || bad.body.contains("unknown classification 'secret'"),
        "{}",
        bad.body
    );
}

/// `eugate policy explain --format json` on the console's policy directory.
fn cli_explain(c: &Console, args: &[&str]) -> serde_json::Value {
    let out = Command::new(common::bin())
        .args(["policy", "explain", "--policies"])
        .arg(c.policies.path())
        .args(args)
        .args(["--format", "json"])
        .output()
        .expect("run eugate");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

/// The rule ids in the page's `#rules` table, sorted (Cedar reports them in no fixed order).
fn page_rules(html: &str) -> Vec<String> {
    let start = html.find(r#"<table id="rules">"#).expect("#rules");
    let table = &html[start..start + html[start..].find("</table>").expect("end")];
    let mut ids: Vec<String> = table
        .split("<td><code>")
        .skip(1)
        .filter_map(|s| s.split_once("</code>").map(|(id, _)| id.to_string()))
        .collect();
    ids.sort();
    ids
}

#[test]
fn explain_answers_as_policy_explain_does_and_refuses_bad_input() {
    let c = Console::start();
    let cases: [(&str, &[&str]); 4] = [
        (
            "tenant=acme&destination=aws%3Aus-east-1&classification=personal",
            &[
                "--tenant",
                "acme",
                "--destination",
                "aws:us-east-1",
                "--classification",
                "personal",
            ],
        ),
        (
            "tenant=acme-health&destination=gcs%3Aeur5&classification=special-category",
            &[
                "--tenant",
                "acme-health",
                "--destination",
                "gcs:eur5",
                "--classification",
                "special-category",
            ],
        ),
        (
            "tenant=t&countries=DE%2CUS&classification=public",
            &[
                "--tenant",
                "t",
                "--declared",
                "DE,US",
                "--classification",
                "public",
            ],
        ),
        (
            "tenant=t&destination=aws%3Aeu-central-1&evidence=unverified",
            &[
                "--tenant",
                "t",
                "--destination",
                "aws:eu-central-1",
                "--evidence",
                "unverified",
            ],
        ),
    ];
    for (query, args) in cases {
        let page = c.get("viewer", &format!("/console/explain?{query}"));
        assert_eq!(page.code, 200, "{query}: {page:?}");
        let cli = cli_explain(&c, args);
        let verdict = cli["decision"].as_str().expect("decision");
        assert!(
            page.body.contains(&format!(
                r#"<span class="{verdict}">{}</span>"#,
                verdict.to_uppercase()
            )),
            "{query}: {}",
            page.body
        );
        let mut want: Vec<String> = cli["policies"]
            .as_array()
            .expect("policies")
            .iter()
            .map(|p| p.as_str().unwrap_or("").to_string())
            .collect();
        want.sort();
        assert_eq!(page_rules(&page.body), want, "{query}");
        let bundle = cli["bundle"].as_str().expect("bundle");
        assert!(
            page.body.contains(&format!(
                r#"<p id="bundle">Policy bundle <code>{bundle}</code>"#
            )),
            "{query}"
        );
        let countries: Vec<&str> = cli["countries"]
            .as_array()
            .expect("countries")
            .iter()
            .filter_map(|c| c.as_str())
            .collect();
        if !countries.is_empty() {
            assert!(
                page.body.contains(&format!(
                    r#"<td id="countries">{}</td>"#,
                    countries.join(", ")
                )),
                "{query}"
            );
        }
    }

    for (query, message) in [
        (
            "tenant=t&destination=aws%3Aeu-central-1&classification=secret",
            "classification: unknown classification",
        ),
        (
            "tenant=t&destination=aws%3Amars-1",
            "destination: region &#39;aws:mars-1&#39; is not in the catalogue",
        ),
        (
            "tenant=t&countries=DE%2CXX",
            "countries: country &#39;XX&#39; is not an ISO 3166-1 alpha-2 code",
        ),
        (
            "tenant=%3Cscript%3E&destination=frankfurt",
            "must be PROVIDER:REGION",
        ),
    ] {
        let a = c.get("viewer", &format!("/console/explain?{query}"));
        assert_eq!(a.code, 400, "{query}: {a:?}");
        assert!(
            a.body.contains(r#"<form class="inline" id="explain""#),
            "the form again: {}",
            a.body
        );
        let message = if a.body.contains("&#39;") {
            message.to_string()
        } else {
            message.replace("&#39;", "'")
        };
        assert!(a.body.contains(&message), "{query}: {}", a.body);
        assert!(!a.body.contains("<script>"), "escaped");
    }
}

#[test]
fn policies_show_the_bundle_and_flag_a_review_date_after_reload() {
    let c = Console::start();
    let check = Command::new(common::bin())
        .args(["policy", "check", "--policies"])
        .arg(c.policies.path())
        .output()
        .expect("run eugate");
    let hash = String::from_utf8_lossy(&check.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("bundle ").map(str::to_string))
        .expect("bundle hash");
    let a = c.get("viewer", "/console/policies");
    assert_eq!(a.code, 200, "{a:?}");
    assert!(
        a.body
            .contains(&format!(r#"<code id="bundle-hash">{hash}</code>"#))
    );
    for id in [
        "eea",
        "adequacy-full",
        "special-category-eea-only",
        "acme-health-special-category-de-fr",
    ] {
        assert!(a.body.contains(&format!(r#"<tr id="rule-{id}">"#)), "{id}");
    }
    assert!(a.body.contains(r#"<table id="adequacy">"#));
    assert!(a.body.contains("(EU) 2021/1772"));
    assert!(
        !a.body.contains(r#"<td class="flag">"#),
        "GB is valid until 2031"
    );
    assert!(a.body.contains("<summary><code>jurisdictions.toml</code>"));
    assert!(a.body.contains(r#"<tr id="provider-tencent-cos">"#));

    // An officer records that Switzerland's decision ends within 60 days: after the reload it
    // is flagged (no case depends on a later day, so the bundle's own tests still pass).
    let end = eugate::policy::Day::today_utc().plus_days(45);
    let file = c.policies.path().join("jurisdictions.toml");
    let text = std::fs::read_to_string(&file).expect("read");
    let ch = r#"CH = { decision = "2000/518/EC", adopted = "2000-07-26" }"#;
    assert!(text.contains(ch));
    std::fs::write(
        &file,
        text.replace(
            ch,
            &format!(r#"CH = {{ decision = "2000/518/EC", adopted = "2000-07-26", valid_until = "{end}" }}"#),
        ),
    )
    .expect("write");
    let deadline = Instant::now() + Duration::from_secs(30);
    let page = loop {
        let p = c.get("viewer", "/console/policies");
        if p.body.contains(r#"<td class="flag">"#) || Instant::now() > deadline {
            break p;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        page.body.contains(&format!(
            r#"<td class="flag">{end} – valid_until {end}: within 60 days</td>"#
        )),
        "{}",
        page.body
    );
    assert!(
        !page
            .body
            .contains(&format!(r#"<code id="bundle-hash">{hash}</code>"#))
    );
}

#[test]
fn destinations_show_location_evidence_and_state() {
    let c = Console::start();
    let a = c.get("viewer", "/console/destinations");
    assert_eq!(a.code, 200, "{a:?}");
    assert!(a.body.contains(r#"<table id="destinations">"#));
    for (name, country) in [("local", "DE"), ("us-disk", "US")] {
        let start = a
            .body
            .find(&format!(r#"<tr data-destination="{name}">"#))
            .unwrap_or_else(|| panic!("no row for {name}: {}", a.body));
        let row = &a.body[start..start + a.body[start..].find("</tr>").expect("end")];
        assert!(
            row.contains(&format!("<td>declared [{country}]</td>")),
            "{row}"
        );
        assert!(row.contains("<td>attested</td>"), "{row}");
        assert!(
            row.contains(r#"<td class="state ok">declared</td>"#),
            "{row}"
        );
    }
}
