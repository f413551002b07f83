//! Issue 16's scenario in a real browser (headless Chromium over WebDriver, each officer with
//! their own client certificate): real audited SFTP uploads of ACME Health's special-category
//! data to Germany; a viewer reads every page but cannot propose; an editor proposes a rule that
//! denies Germany for that data and sees the diff and the replay flip those uploads; the editor
//! cannot approve it (four-eyes); an approver approves; the next upload is denied by the new rule
//! and the transfer register shows the earlier transfers and the denial. Every page visited is
//! saved as a screenshot in the CI output folder.

mod browser;
mod common;
mod console_support;

use browser::Browser;
use common::Options;
use console_support::Console;

const RULE_FILE: &str = "console-test.cedar";
const RULE_ID: &str = "console-test-acme-health-special-category-not-de";
const REASON: &str =
    "Console test: ACME Health's special-category data is no longer stored in Germany.";
const RULE: &str = r#"@id("console-test-acme-health-special-category-not-de")
@reason("Console test: ACME Health's special-category data is no longer stored in Germany.")
forbid (principal == Tenant::"acme-health", action, resource)
when { context.classification == "special-category" && resource in Country::"DE" };
"#;

fn start() -> Console {
    Console::start_with(Options::acme_health(), "")
}

fn upload(c: &Console, user: &str, name: &str) -> std::process::Output {
    std::fs::write(c.g.path(name), format!("data of {name}\n")).unwrap();
    c.g.sftp(user, &format!("put {name} /{name}\n"))
}

/// The bundle's expected decisions with the two cases the new rule changes (Germany is now
/// denied for ACME Health's special-category data), as the editor types them.
fn updated_cases(current: &str) -> String {
    let germany = "destination = \"hetzner:fsn1\"\nclassification = \"special-category\"\nexpect = \"allow\"\npolicies = [\"eea\"]";
    let gcs = "destination = \"gcs:eu\"\nclassification = \"special-category\"\nexpect = \"deny\"\npolicies = [\"acme-health-special-category-de-fr\", \"acme-health-special-category-eea-controlled\"]";
    assert!(
        current.contains(germany) && current.contains(gcs),
        "{current}"
    );
    current
        .replacen(germany, &format!("destination = \"hetzner:fsn1\"\nclassification = \"special-category\"\nexpect = \"deny\"\npolicies = [\"{RULE_ID}\"]"), 1)
        .replacen(gcs, &format!("destination = \"gcs:eu\"\nclassification = \"special-category\"\nexpect = \"deny\"\npolicies = [\"acme-health-special-category-de-fr\", \"acme-health-special-category-eea-controlled\", \"{RULE_ID}\"]"), 1)
}

/// Opens `path`, expects a 200 page with `css`, saves it as `name`.
fn visit(b: &Browser, path: &str, css: &str, name: &str) {
    b.goto(path);
    b.wait_for(css);
    assert_eq!(b.status(), 200, "{path}: {}", b.text("main"));
    b.screenshot(name);
}

/// The rows of table `css` (text of each `tr`).
fn rows(b: &Browser, css: &str) -> Vec<String> {
    b.wait_for(css);
    b.texts(&format!("{css} tr"))
}

/// The refusal page: 403, and a message saying why.
fn refused(b: &Browser, message: &str) {
    assert_eq!(b.status(), 403, "{}", b.text("main"));
    assert_eq!(b.text("h1"), "Forbidden");
    let said = b.text("p.error");
    assert!(
        said.contains(message),
        "refusal says {said:?}, not {message:?}"
    );
}

#[test]
fn a_residency_change_from_proposal_to_a_denied_upload() {
    let c = start();
    // Without a client certificate the console is refused.
    let nobody = Browser::open(&c, None, "no-certificate");
    nobody.goto("/console/matrix");
    refused(&nobody, "needs a client certificate");
    assert_eq!(nobody.count("table#matrix"), 0);
    nobody.screenshot("refused");
    drop(nobody);

    // Real audited transfers: two of special-category data to Germany, one personal.
    for (user, name) in [
        ("hana", "patients-1.csv"),
        ("hana", "patients-2.csv"),
        ("alice", "orders.csv"),
    ] {
        let out = upload(&c, user, name);
        assert!(out.status.success(), "{name}: {out:?}\n{}", c.g.log());
    }

    // A viewer reads every page.
    let viewer = Browser::open(&c, Some("viewer"), "viewer");
    visit(&viewer, "/console/matrix", "table#matrix", "matrix");
    assert!(viewer.count("table#matrix td.allow") > 0 && viewer.count("table#matrix td.deny") > 0);
    visit(
        &viewer,
        "/console/explain?tenant=acme-health&destination=local&classification=special-category&evidence=",
        "#decision",
        "explain",
    );
    assert_eq!(
        viewer.count("#decision span.allow"),
        1,
        "{}",
        viewer.text("#decision")
    );
    visit(&viewer, "/console/policies", "table#rules", "policies");
    assert!(!viewer.text("table#rules").contains(RULE_ID));
    visit(
        &viewer,
        "/console/destinations",
        "table#destinations",
        "destinations",
    );
    assert!(viewer.text("table#destinations").contains("local"));
    visit(
        &viewer,
        "/console/audit?tenant=acme-health",
        "table#records",
        "audit",
    );
    assert!(
        viewer.text("#chain").contains("verified"),
        "{}",
        viewer.text("#chain")
    );
    assert!(viewer.text("table#records").contains("patients-1.csv"));

    // The viewer has no way to propose, and is refused when trying anyway.
    visit(
        &viewer,
        "/console/proposals",
        "table#proposals",
        "proposals",
    );
    assert_eq!(viewer.count("a[href^=\"/console/proposals/new\"]"), 0);
    assert_eq!(viewer.count("#new-proposal"), 0);
    viewer.goto("/console/proposals/new");
    refused(&viewer, "editor role");
    assert_eq!(viewer.count("form#propose"), 0);
    viewer.screenshot("propose-refused");
    // A hand-made POST, with the viewer's own valid CSRF token from a page they may read.
    viewer.goto("/console/proposals");
    viewer.post(
        "/console/proposals",
        &[
            ("summary", "x"),
            ("new_file", "x.cedar"),
            ("content", "// x"),
        ],
    );
    refused(&viewer, "editor role");
    viewer.screenshot("propose-post-refused");

    // The editor opens the form from the list, picks the bundle's test cases, types the updated
    // cases and uploads the new rule file.
    let editor = Browser::open(&c, Some("editor"), "editor");
    visit(
        &editor,
        "/console/proposals",
        "table#proposals",
        "proposals",
    );
    editor.click_and_load("a#new-proposal");
    assert_eq!(editor.status(), 200, "{}", editor.text("main"));
    editor.click_and_load("ul#files a[href=\"/console/proposals/new?file=tests/tenants.toml\"]");
    assert_eq!(
        editor
            .attr("select#file option[selected]", "value")
            .as_deref(),
        Some("tests/tenants.toml")
    );
    let current = editor
        .script("return document.getElementById('content').value;")
        .as_str()
        .unwrap_or_default()
        .to_string();
    editor.fill("textarea#content", &updated_cases(&current));
    let rule_file = tempfile::tempdir().unwrap();
    let rule_path = rule_file.path().join(RULE_FILE);
    std::fs::write(&rule_path, RULE).unwrap();
    editor.choose_file("input#bundle_files", &rule_path);
    editor.fill(
        "input#summary",
        "Keep ACME Health's special-category data out of Germany",
    );
    editor.screenshot("new-proposal");
    editor.click_and_load("button#submit-proposal");
    let proposal = editor.path();
    assert!(
        proposal.starts_with("/console/proposals/") && !proposal.ends_with("/new"),
        "{proposal}: {}",
        editor.text("main")
    );

    // The review: check and tests pass, the diff shows Germany denied, the replay flips the
    // two real uploads and not the personal one.
    assert_eq!(editor.text("#status"), "open");
    assert!(
        editor.text("#check").contains("ok"),
        "{}",
        editor.text("#check")
    );
    let tests = editor.text("#tests");
    assert!(
        tests.contains("passed") && !tests.contains("failed"),
        "{tests}"
    );
    let diff = rows(&editor, "table#diff");
    assert!(
        diff.iter().any(|r| r.contains("acme-health")
            && r.contains("special-category")
            && r.contains("hetzner:fsn1")
            && r.contains("allow")
            && r.contains("deny")),
        "{diff:#?}"
    );
    assert!(editor.count("table#diff td.allow") > 0 && editor.count("table#diff td.deny") > 0);
    assert!(diff.iter().all(|r| !r.contains("globex")), "{diff:#?}");
    let replay = rows(&editor, "table#replay");
    for name in ["patients-1.csv", "patients-2.csv"] {
        assert!(
            replay
                .iter()
                .any(|r| r.contains(name) && r.contains(RULE_ID)),
            "{name} does not flip: {replay:#?}"
        );
    }
    assert!(
        replay.iter().all(|r| !r.contains("orders.csv")),
        "{replay:#?}"
    );
    let summary = editor.text("#replay-summary");
    assert!(summary.contains("2 allow→deny"), "{summary}");
    editor.screenshot("proposal");

    // The proposer cannot approve: no form, and a hand-made approval is refused.
    assert_eq!(editor.count("form#approve"), 0);
    editor.post(&format!("{proposal}/approve"), &[("comment", "mine")]);
    refused(&editor, "four-eyes");
    editor.screenshot("approve-refused");
    assert!(!c.policies.path().join(RULE_FILE).exists());

    // The approver approves with a comment.
    let approver = Browser::open(&c, Some("approver"), "approver");
    visit(&approver, &proposal, "form#approve", "proposal");
    approver.fill(
        "form#approve textarea[name=\"comment\"]",
        "checked with legal",
    );
    approver.click_and_load("button#approve-button");
    assert_eq!(approver.path(), proposal);
    assert_eq!(approver.text("#status"), "approved");
    assert_eq!(approver.text("#comment"), "checked with legal");
    assert_eq!(approver.count("form#approve"), 0);
    assert_eq!(
        std::fs::read_to_string(c.policies.path().join(RULE_FILE)).unwrap(),
        RULE
    );
    approver.screenshot("proposal-approved");

    // In force: the policies page lists the new rule (the reload is bounded by the wait).
    viewer.wait_until(&format!("{RULE_ID} on the policies page"), |b| {
        b.goto("/console/policies");
        b.text("table#rules").contains(RULE_ID)
    });
    viewer.screenshot("policies-after");

    // The next upload of special-category data to Germany is denied by the new rule.
    let out = upload(&c, "hana", "patients-3.csv");
    assert!(!out.status.success(), "{out:?}");
    let denied = common::audit_records(&c.g.path("audit.jsonl"))
        .into_iter()
        .rev()
        .find(|r| r["event"]["type"] == "decision")
        .expect("a decision record");
    assert_eq!(denied["event"]["allowed"], false, "{denied}");
    assert!(
        denied["event"]["policies"].to_string().contains(RULE_ID),
        "{denied}"
    );
    assert!(
        denied["event"]["reasons"].to_string().contains(REASON),
        "{denied}"
    );

    // The register shows the earlier transfers and the denial.
    visit(
        &viewer,
        "/console/register?tenant=acme-health",
        "#register",
        "register",
    );
    let transfers = viewer.text("table#register-transfers");
    for name in ["patients-1.csv", "patients-2.csv"] {
        assert!(transfers.contains(name), "{name}: {transfers}");
    }
    assert!(!transfers.contains("patients-3.csv"), "{transfers}");
    let denials = viewer.text("table#register-denials");
    assert!(denials.contains("patients-3.csv"), "{denials}");
    assert!(
        denials.contains(RULE_ID) || denials.contains(REASON),
        "{denials}"
    );
}
