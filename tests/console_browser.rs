//! The compliance console in a real browser (headless Chromium over WebDriver), each officer
//! presenting their own client certificate from their browser's certificate store.

mod browser;
mod common;
mod console_support;

use browser::Browser;
use console_support::Console;

/// The refusal page: status, heading and message, as the browser shows them.
fn assert_refused(b: &Browser, status: u16, message: &str) {
    assert_eq!(b.status(), status, "{}", b.text("main"));
    assert_eq!(b.text("h1"), "Forbidden");
    let said = b.text("p.error");
    assert!(
        said.contains(message),
        "refusal says {said:?}, not {message:?}"
    );
    assert_eq!(
        b.count("meta[name=\"csrf-token\"]"),
        0,
        "a token for nobody"
    );
    assert_eq!(b.count("nav"), 0, "navigation for nobody");
}

#[test]
fn each_browser_presents_its_officers_certificate_and_one_without_is_refused() {
    let c = Console::start();

    let nobody = Browser::open(&c, None, "no-certificate");
    nobody.goto("/console/whoami");
    assert_refused(&nobody, 403, "needs a client certificate");
    nobody.screenshot("refused");

    let unmapped = Browser::open(&c, Some("unmapped"), "unmapped");
    unmapped.goto("/console/whoami");
    assert_refused(&unmapped, 403, "not listed for any officer");

    // By fingerprint and by subject: each browser is its own officer, side by side.
    let viewer = Browser::open(&c, Some("viewer"), "viewer");
    let approver = Browser::open(&c, Some("approver"), "approver");
    for (b, name) in [(&viewer, "viewer"), (&approver, "approver")] {
        b.goto("/console/whoami");
        assert_eq!(b.status(), 200);
        assert_eq!(b.text("h1"), format!("Logged in as {name}"));
        assert_eq!(b.text("#roles"), name);
        assert_eq!(b.text("#officer"), format!("{name} ({name})"));
        let fp = console_support::fingerprint(&c.cert(name).0);
        assert!(b.text("main").contains(&fp), "{name}'s fingerprint");
    }
    viewer.screenshot("whoami");

    // The page's stylesheet and script loaded under the CSP (same origin, same certificate).
    let styled = viewer.script(
        "return getComputedStyle(document.querySelector('header.top')).display !== '' \
         && document.styleSheets.length === 1 && typeof htmx === 'object';",
    );
    assert_eq!(styled, serde_json::Value::Bool(true));
}
