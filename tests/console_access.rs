//! Who gets into the compliance console: only officers with a client certificate from the
//! officers' CA that `[console]` lists; health checks still answer without one. Every console
//! answer carries the strict CSP, and a POST needs the officer's CSRF token from the same site.

mod common;
mod console_support;

use console_support::{Console, meta};

#[test]
fn only_listed_officers_from_the_officers_ca_get_pages_and_health_needs_no_certificate() {
    let c = Console::start();

    // Health checks and scrapers present no certificate and still get answers.
    let live = c.curl(None, "/livez", &[]);
    assert_eq!(live.code, 200, "{live:?}");

    // No certificate: refused, with what to do.
    let none = c.curl(None, "/console/whoami", &[]);
    assert_eq!(none.code, 403, "{none:?}");
    assert!(
        none.body.contains("needs a client certificate"),
        "{}",
        none.body
    );
    assert!(!none.body.contains("csrf-token"));
    // Not even the static files.
    assert_eq!(c.curl(None, "/console/static/htmx.min.js", &[]).code, 403);

    // Another CA's certificate with a listed officer's name: the TLS layer refuses it.
    let stranger = c.get("stranger", "/console/whoami");
    assert!(!stranger.ok || stranger.code == 403, "{stranger:?}");
    assert_ne!(stranger.code, 200);

    // The officers' CA, but listed for nobody: refused and recorded.
    let unmapped = c.get("unmapped", "/console/whoami");
    assert_eq!(unmapped.code, 403, "{unmapped:?}");
    assert!(unmapped.body.contains("not listed for any officer"));
    let records = c.console_records();
    let login = records
        .iter()
        .find(|r| r["event"]["action"] == "login")
        .expect("a console login record");
    assert_eq!(login["event"]["outcome"], "refused");
    assert!(
        login["event"]["target"]
            .as_str()
            .unwrap()
            .contains("CN=unmapped")
    );

    // Listed officers: by fingerprint and by subject.
    let viewer = c.get("viewer", "/console/whoami");
    assert_eq!(viewer.code, 200, "{viewer:?}");
    assert!(
        viewer.body.contains("<td id=\"roles\">viewer</td>"),
        "{}",
        viewer.body
    );
    let approver = c.get("approver", "/console/whoami");
    assert_eq!(approver.code, 200);
    assert!(approver.body.contains("<td id=\"roles\">approver</td>"));

    // The vendored htmx is served to officers, as a script.
    let js = c.get("viewer", "/console/static/htmx.min.js");
    assert_eq!(js.code, 200);
    assert!(
        js.headers
            .to_lowercase()
            .contains("content-type: text/javascript")
    );
    assert!(js.body.starts_with("var htmx="));
}

#[test]
fn every_answer_carries_the_strict_csp_and_no_inline_script() {
    let c = Console::start();
    for (who, path) in [
        (Some("viewer"), "/console/whoami"),
        (Some("viewer"), "/console/no-such-page"),
        (None, "/console/whoami"),
    ] {
        let a = c.curl(who, path, &[]);
        let h = a.headers.to_lowercase();
        assert!(
            h.contains(
                "content-security-policy: default-src 'none'; script-src 'self'; style-src 'self';"
            ),
            "{path}: {h}"
        );
        assert!(h.contains("frame-ancestors 'none'"));
        assert!(h.contains("x-content-type-options: nosniff"));
        assert!(h.contains("cache-control: no-store"));
        // Scripts only from files; no inline handlers or styles.
        assert!(!a.body.contains("<script>"), "{path}: {}", a.body);
        assert!(!a.body.contains(" style="));
        assert!(!a.body.contains(" onclick="));
    }
}

#[test]
fn a_post_needs_the_officers_token_from_the_same_site() {
    let c = Console::start();
    let path = "/console/nothing-here";

    let no_token = c.post_raw("editor", path, &[("x", "1")], &[]);
    assert_eq!(no_token.code, 403, "{no_token:?}");
    assert!(no_token.body.contains("no security token"));

    let wrong = c.post_raw("editor", path, &[("csrf", "00ff")], &[]);
    assert_eq!(wrong.code, 403);
    assert!(wrong.body.contains("security token is wrong"));

    // Another officer's token does not work for this one.
    let viewers = c.csrf_token("viewer");
    let borrowed = c.post_raw("editor", path, &[("csrf", &viewers)], &[]);
    assert_eq!(borrowed.code, 403, "{borrowed:?}");

    // The right token from another site is still refused.
    let token = c.csrf_token("editor");
    let cross = c.post_raw(
        "editor",
        path,
        &[("csrf", &token)],
        &["-H", "Origin: https://evil.example"],
    );
    assert_eq!(cross.code, 403);
    assert!(cross.body.contains("another site"));
    let fetch_meta = c.post_raw(
        "editor",
        path,
        &[("csrf", &token)],
        &["-H", "Sec-Fetch-Site: cross-site"],
    );
    assert_eq!(fetch_meta.code, 403);

    // The right token from the console itself passes the check (and finds no page there).
    let ok = c.post_form("editor", path, &[]);
    assert_eq!(ok.code, 404, "{ok:?}");
    let same_origin = c.post_raw(
        "editor",
        path,
        &[("csrf", &token)],
        &["-H", &format!("Origin: https://127.0.0.1:{}", c.port)],
    );
    assert_eq!(same_origin.code, 404, "{same_origin:?}");

    // The token is per officer and stable across pages.
    let page = c.get("editor", "/console/whoami");
    assert_eq!(meta(&page.body, "csrf-token").unwrap(), token);
}
