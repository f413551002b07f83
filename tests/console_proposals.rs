//! Policy change proposals in the console, end to end over mTLS: an editor proposes a rule that
//! keeps ACME Health's special-category data out of Germany (plus the bundle's updated test
//! cases), the proposal page shows check, tests, diff and the replay of real audited SFTP
//! uploads that flip; the proposer cannot approve (four-eyes), a viewer cannot propose, an
//! approver approves and the rule is on disk, in force and audited. Stale and broken proposals
//! are refused.

mod common;
mod console_support;

use common::Options;
use console_support::{Answer, Console};

const RULE_FILE: &str = "acme-health-de.cedar";
const RULE_ID: &str = "acme-health-special-category-not-de";
const RULE: &str = r#"@id("acme-health-special-category-not-de")
@reason("ACME Health's special-category data is no longer stored in Germany.")
forbid (principal == Tenant::"acme-health", action, resource)
when { context.classification == "special-category" && resource in Country::"DE" };
"#;

fn start() -> Console {
    Console::start_with(Options::acme_health(), "")
}

/// tests/tenants.toml with the two cases the new rule changes.
fn updated_tenant_cases(c: &Console) -> String {
    let text = std::fs::read_to_string(c.policies.path().join("tests/tenants.toml")).unwrap();
    let germany = "destination = \"hetzner:fsn1\"\nclassification = \"special-category\"\nexpect = \"allow\"\npolicies = [\"eea\"]";
    assert!(text.contains(germany));
    let gcs = "destination = \"gcs:eu\"\nclassification = \"special-category\"\nexpect = \"deny\"\npolicies = [\"acme-health-special-category-de-fr\", \"acme-health-special-category-eea-controlled\"]";
    assert!(text.contains(gcs));
    text.replacen(
        germany,
        &format!("destination = \"hetzner:fsn1\"\nclassification = \"special-category\"\nexpect = \"deny\"\npolicies = [\"{RULE_ID}\"]"),
        1,
    )
    .replacen(
        gcs,
        &format!("destination = \"gcs:eu\"\nclassification = \"special-category\"\nexpect = \"deny\"\npolicies = [\"acme-health-special-category-de-fr\", \"acme-health-special-category-eea-controlled\", \"{RULE_ID}\"]"),
        1,
    )
}

/// The editor's form as a browser sends it: multipart, the rule typed into the editor as a
/// new file, the updated test cases uploaded.
fn propose_multipart(c: &Console, officer: &str, cases: &str) -> Answer {
    let dir = tempfile::tempdir().unwrap();
    let upload = dir.path().join("tenants.toml");
    std::fs::write(&upload, cases).unwrap();
    let token = c.csrf_token(officer);
    let file_arg = format!(
        "bundle_files=@{};filename=tests/tenants.toml",
        upload.display()
    );
    c.curl(
        Some(officer),
        &format!("/console/proposals?csrf={token}"),
        &[
            "--form-string",
            "summary=Keep ACME Health special-category data out of Germany",
            "--form-string",
            "file=",
            "--form-string",
            &format!("new_file={RULE_FILE}"),
            "--form-string",
            &format!("content={}", RULE.replace('\n', "\r\n")),
            "-F",
            &file_arg,
        ],
    )
}

/// The proposal path a 303 points to.
fn location(a: &Answer) -> String {
    assert_eq!(a.code, 303, "{a:?}");
    a.headers
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("location")
                .then(|| v.trim().to_string())
        })
        .expect("a Location header")
}

/// The text of the element with `id` (its first text up to the next tag).
fn text_of(html: &str, id: &str) -> String {
    let tag = format!("id=\"{id}\"");
    let at = html
        .find(&tag)
        .unwrap_or_else(|| panic!("no #{id} in\n{html}"));
    let start = at + html[at..].find('>').unwrap() + 1;
    let end = start + html[start..].find('<').unwrap();
    html[start..end].to_string()
}

/// From `id="NAME"` to the end of its section (for assertions about one part of the page).
fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}"));
    let end = html[at..].find("</section>").map_or(html.len(), |e| at + e);
    &html[at..end]
}

fn upload(c: &Console, user: &str, name: &str) -> std::process::Output {
    std::fs::write(c.g.path(name), format!("data of {name}\n")).unwrap();
    c.g.sftp(user, &format!("put {name} /{name}\n"))
}

fn records(c: &Console, action: &str) -> Vec<serde_json::Value> {
    c.console_records()
        .into_iter()
        .filter(|r| r["event"]["action"] == action)
        .collect()
}

#[test]
fn an_editor_proposes_another_officer_approves_and_the_rule_is_in_force() {
    let c = start();
    // Real audited decisions for the replay: one that the change flips, one it does not.
    assert!(upload(&c, "hana", "patients.csv").status.success());
    assert!(upload(&c, "alice", "orders.csv").status.success());
    let base = std::fs::read_to_string(c.policies.path().join("default.cedar")).unwrap();

    // A viewer sees no way to propose and is refused when trying.
    let list = c.get("viewer", "/console/proposals");
    assert_eq!(list.code, 200, "{list:?}");
    assert!(list.body.contains("id=\"proposals\""));
    assert!(!list.body.contains("new-proposal"));
    assert_eq!(c.get("viewer", "/console/proposals/new").code, 403);
    let v = c.post_form(
        "viewer",
        "/console/proposals",
        &[
            ("summary", "x"),
            ("new_file", "x.cedar"),
            ("content", "// x"),
        ],
    );
    assert_eq!(v.code, 403, "{v:?}");
    assert!(v.body.contains("editor role"), "{}", v.body);
    let v = propose_multipart(&c, "viewer", "");
    assert_eq!(v.code, 403, "{v:?}");

    // The editor's form, prefilled with the chosen file.
    let form = c.get("editor", "/console/proposals/new?file=tests/tenants.toml");
    assert_eq!(form.code, 200, "{form:?}");
    assert!(form.body.contains("id=\"propose\""));
    assert!(form.body.contains("id=\"submit-proposal\""));
    assert!(
        form.body
            .contains("acme-health: special-category data to Germany")
    );

    let cases = updated_tenant_cases(&c);
    let created = propose_multipart(&c, "editor", &cases);
    let path = location(&created);
    assert!(path.starts_with("/console/proposals/"), "{path}");

    // The proposal page: check ok, every test passes, the diff and the replayed flip.
    let page = c.get("editor", &path);
    assert_eq!(page.code, 200, "{page:?}");
    let html = &page.body;
    assert_eq!(text_of(html, "status"), "open");
    assert!(
        section(html, "check").contains("ok: the proposed bundle loads"),
        "{html}"
    );
    let tests = section(html, "tests");
    assert!(
        tests.contains("passed:") && !tests.contains("failed"),
        "{tests}"
    );
    let diff = section(html, "diff");
    assert!(diff.contains("<table id=\"diff\">"), "{diff}");
    assert!(diff.contains("<td>acme-health</td><td>special-category</td><td>hetzner:fsn1</td><td class=\"allow\">allow</td><td class=\"deny\">deny</td>"), "{diff}");
    assert!(
        !diff.contains("<td>globex</td>"),
        "only ACME Health changes: {diff}"
    );
    let replay = section(html, "replay");
    assert!(
        text_of(html, "replay-summary").contains("2 decision(s)"),
        "{replay}"
    );
    assert!(replay.contains("1 allow→deny"), "{replay}");
    assert!(
        replay.contains("/patients.csv") && replay.contains(RULE_ID),
        "{replay}"
    );
    assert!(replay.contains("<td>hana</td>"), "{replay}");
    assert!(!replay.contains("/orders.csv"), "{replay}");
    // The editor has no approve form (withdrawing is theirs).
    assert!(!html.contains("id=\"approve\""));
    assert!(html.contains("id=\"reject-button\""));
    let hash = text_of(html, "proposal-hash");
    let old_hash = text_of(html, "base");

    // The proposer cannot approve, nor can another editor.
    let own = c.post_form("editor", &format!("{path}/approve"), &[("comment", "mine")]);
    assert_eq!(own.code, 403, "{own:?}");
    assert!(own.body.contains("four-eyes"), "{}", own.body);
    let other = c.post_form("editor2", &format!("{path}/approve"), &[("comment", "")]);
    assert_eq!(other.code, 403, "{other:?}");
    assert!(!c.policies.path().join(RULE_FILE).exists());

    // The approver sees the form and approves.
    let page = c.get("approver", &path);
    assert!(page.body.contains("id=\"approve-button\""), "{}", page.body);
    let ok = c.post_form(
        "approver",
        &format!("{path}/approve"),
        &[("comment", "checked with legal")],
    );
    assert_eq!(location(&ok), path);
    let page = c.get("viewer", &path);
    assert_eq!(text_of(&page.body, "status"), "approved");
    assert!(!page.body.contains("id=\"approve\"") && !page.body.contains("id=\"reject\""));

    // On disk, exactly the proposal: the rule (LF line ends), the updated cases, the rest kept.
    let dir = c.policies.path();
    assert_eq!(std::fs::read_to_string(dir.join(RULE_FILE)).unwrap(), RULE);
    assert_eq!(
        std::fs::read_to_string(dir.join("tests/tenants.toml")).unwrap(),
        cases
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("default.cedar")).unwrap(),
        base
    );
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.contains("incomplete") || n.starts_with('.')),
        "{names:?}"
    );

    // In force: the metrics name the new hash, and the next upload is denied by the new rule.
    let metrics = c.curl(None, "/metrics", &[]);
    assert!(metrics.body.contains(&hash), "{}", metrics.body);
    assert!(!upload(&c, "hana", "patients-2.csv").status.success());
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

    // The audit log: who proposed and who approved, with both hashes.
    let p = records(&c, "propose");
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0]["event"]["officer"], "editor");
    assert_eq!(p[0]["event"]["old_bundle"], old_hash.as_str());
    assert_eq!(p[0]["event"]["new_bundle"], hash.as_str());
    let a = records(&c, "approve");
    assert_eq!(
        a.len(),
        1,
        "only the approver's approval is recorded: {a:?}"
    );
    assert_eq!(a[0]["event"]["officer"], "approver");
    assert_eq!(a[0]["event"]["outcome"], "approved");
    assert_eq!(a[0]["event"]["old_bundle"], old_hash.as_str());
    assert_eq!(a[0]["event"]["new_bundle"], hash.as_str());
    assert_eq!(a[0]["event"]["detail"], "checked with legal");
    common::assert_audit_chain_verifies(&c.g.path("audit.jsonl"));
}

fn propose_form(c: &Console, file: &str, content: &str) -> String {
    let a = c.post_form(
        "editor",
        "/console/proposals",
        &[
            ("summary", "a change"),
            ("file", ""),
            ("new_file", file),
            ("content", content),
        ],
    );
    location(&a)
}

#[test]
fn a_stale_proposal_is_refused() {
    let c = Console::start();
    let first = propose_form(&c, "note-a.cedar", "// first note\n");
    let second = propose_form(&c, "note-b.cedar", "// second note\n");
    let ok = c.post_form("approver", &format!("{first}/approve"), &[("comment", "")]);
    assert_eq!(location(&ok), first);
    assert!(c.policies.path().join("note-a.cedar").is_file());

    // The second was made against the bundle before the first: stale.
    let page = c.get("approver", &second);
    assert_eq!(text_of(&page.body, "status"), "stale");
    assert!(!page.body.contains("id=\"approve\""));
    let refused = c.post_form("approver", &format!("{second}/approve"), &[("comment", "")]);
    assert_eq!(refused.code, 409, "{refused:?}");
    assert!(refused.body.contains("stale"), "{}", refused.body);
    assert!(!c.policies.path().join("note-b.cedar").exists());
    assert_eq!(records(&c, "approve").len(), 1);
    // It can still be rejected, and then nobody can approve it.
    let r = c.post_form(
        "approver",
        &format!("{second}/reject"),
        &[("comment", "superseded")],
    );
    assert_eq!(location(&r), second);
    assert_eq!(
        text_of(&c.get("viewer", &second).body, "status"),
        "rejected"
    );
    let rej = records(&c, "reject");
    assert_eq!(rej.len(), 1);
    assert_eq!(rej[0]["event"]["detail"], "superseded");
}

#[test]
fn a_broken_rule_shows_its_problems_and_cannot_be_approved() {
    let c = Console::start();
    let before = c.curl(None, "/metrics", &[]).body;
    let path = propose_form(
        &c,
        "broken.cedar",
        "forbid (principal, action, resource) when {\n",
    );
    let page = c.get("approver", &path);
    assert_eq!(page.code, 200, "{page:?}");
    let check = section(&page.body, "check");
    assert!(
        check.contains("does not load") && check.contains("broken.cedar"),
        "{check}"
    );
    assert!(section(&page.body, "tests").contains("not run"));
    let refused = c.post_form("approver", &format!("{path}/approve"), &[("comment", "")]);
    assert_eq!(refused.code, 409, "{refused:?}");
    assert!(
        refused.body.contains("does not pass check"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("broken.cedar"), "{}", refused.body);
    assert!(!c.policies.path().join("broken.cedar").exists());
    assert!(records(&c, "approve").is_empty());
    assert_eq!(text_of(&c.get("viewer", &path).body, "status"), "open");
    // Hostile names never reach the disk.
    for name in ["../escape.cedar", ".hidden.cedar", "x.txt"] {
        let a = c.post_form(
            "editor",
            "/console/proposals",
            &[("summary", "s"), ("new_file", name), ("content", "// x")],
        );
        assert_eq!(a.code, 400, "{name}: {a:?}");
    }
    assert!(
        !c.policies
            .path()
            .parent()
            .unwrap()
            .join("escape.cedar")
            .exists()
    );
    let _ = before;
}
