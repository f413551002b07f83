//! Drives `eugate policy …` as a compliance officer would: shipped policies pass, broken copies
//! fail with file:line, explain exits 0/3/1 with JSON fields, test shows expected vs actual, diff
//! shows a changed decision.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::copy_policies;

fn eugate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eugate"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run eugate")
}

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")
}

fn edit(dir: &Path, file: &str, from: &str, to: &str) {
    let p = dir.join(file);
    let text = std::fs::read_to_string(&p).expect("read");
    assert!(text.contains(from), "{file} does not contain {from:?}");
    std::fs::write(&p, text.replacen(from, to, 1)).expect("write");
}

fn line_of(dir: &Path, file: &str, needle: &str) -> usize {
    let text = std::fs::read_to_string(dir.join(file)).expect("read");
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .expect("needle present")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn policies_arg(dir: &Path) -> String {
    dir.to_str().expect("utf-8 path").to_string()
}

#[test]
fn check_and_test_pass_on_shipped_policies() {
    let dir = policies_arg(&shipped());
    let o = eugate(&["policy", "check", "--policies", &dir]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("bundle sha256:"));
    let o = eugate(&["policy", "test", "--policies", &dir]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("0 failed"));
}

fn expect_check_error(dir: &Path, file: &str, line: usize, words: &str) {
    let o = eugate(&["policy", "check", "--policies", &policies_arg(dir)]);
    assert_eq!(o.status.code(), Some(1), "stdout {}", stdout(&o));
    let err = stderr(&o);
    let want = format!("{}:{line}:", dir.join(file).display());
    assert!(err.contains(&want), "want {want} in:\n{err}");
    assert!(err.contains(words), "want {words:?} in:\n{err}");
}

#[test]
fn check_reports_unknown_country_in_catalogue() {
    let dir = copy_policies();
    edit(
        dir.path(),
        "regions.toml",
        r#""fsn1" = { country = "DE""#,
        r#""fsn1" = { country = "XX""#,
    );
    let line = line_of(dir.path(), "regions.toml", r#""fsn1""#);
    expect_check_error(dir.path(), "regions.toml", line, "unknown country 'XX'");
}

#[test]
fn check_reports_duplicate_id() {
    let dir = copy_policies();
    edit(
        dir.path(),
        "default.cedar",
        r#"@id("adequacy-full")"#,
        r#"@id("eea")"#,
    );
    let line = line_of(
        dir.path(),
        "default.cedar",
        r#"@legal_basis("GDPR Art. 45: the Commission"#,
    ) - 1;
    expect_check_error(dir.path(), "default.cedar", line, "duplicate @id(\"eea\")");
}

#[test]
fn check_reports_missing_reason() {
    let dir = copy_policies();
    let text = "\n\n@id(\"no-reason\")\npermit (principal, action == Action::\"store\", resource in Zone::\"EEA\");\n";
    std::fs::write(dir.path().join("extra.cedar"), text).expect("write");
    expect_check_error(dir.path(), "extra.cedar", 3, "no @reason");
}

#[test]
fn check_reports_missing_id() {
    let dir = copy_policies();
    let text = "@reason(\"x\")\npermit (principal, action == Action::\"store\", resource in Zone::\"EEA\");\n";
    std::fs::write(dir.path().join("extra.cedar"), text).expect("write");
    expect_check_error(dir.path(), "extra.cedar", 1, "no @id");
}

#[test]
fn check_reports_cedar_syntax_error() {
    let dir = copy_policies();
    let text = "// broken\n@id(\"broken\")\n@reason(\"x\")\npermit (principal, action, resource)\nwhen { context.evidence == };\n";
    std::fs::write(dir.path().join("extra.cedar"), text).expect("write");
    expect_check_error(dir.path(), "extra.cedar", 5, "Cedar syntax error");
}

#[test]
fn check_reports_unknown_zone_in_rule() {
    let dir = copy_policies();
    edit(
        dir.path(),
        "default.cedar",
        r#"resource in Zone::"ADEQUATE_FULL")"#,
        r#"resource in Zone::"ADEQUATE")"#,
    );
    let line = line_of(dir.path(), "default.cedar", r#"Zone::"ADEQUATE")"#);
    expect_check_error(
        dir.path(),
        "default.cedar",
        line,
        "unknown zone Zone::\"ADEQUATE\"",
    );
}

#[test]
fn check_reports_unknown_zone_in_catalogue() {
    let dir = copy_policies();
    edit(
        dir.path(),
        "regions.toml",
        r#""eu"      = { within_zone = "EU""#,
        r#""eu"      = { within_zone = "EUROPE""#,
    );
    let line = line_of(dir.path(), "regions.toml", r#"within_zone = "EUROPE""#);
    expect_check_error(dir.path(), "regions.toml", line, "unknown zone 'EUROPE'");
}

#[test]
fn check_reports_schema_type_error() {
    let dir = copy_policies();
    edit(
        dir.path(),
        "default.cedar",
        r#"when { context.evidence == "unverified" }"#,
        r#"when { context.evidence == 3 }"#,
    );
    let line = line_of(dir.path(), "default.cedar", "context.evidence == 3");
    expect_check_error(
        dir.path(),
        "default.cedar",
        line,
        "does not match the schema",
    );
}

#[test]
fn check_reports_unknown_country_in_zone_and_tenant_rule() {
    let dir = copy_policies();
    edit(
        dir.path(),
        "tenant-acme-health.cedar",
        r#"Country::"FR""#,
        r#"Country::"FX""#,
    );
    let line = line_of(dir.path(), "tenant-acme-health.cedar", r#"Country::"FX""#);
    expect_check_error(
        dir.path(),
        "tenant-acme-health.cedar",
        line,
        "unknown country Country::\"FX\"",
    );
}

fn explain(args: &[&str]) -> Output {
    let dir = policies_arg(&shipped());
    let mut all = vec!["policy", "explain", "--policies", dir.as_str()];
    all.extend_from_slice(args);
    eugate(&all)
}

#[test]
fn explain_exit_codes_and_json() {
    let o = explain(&[
        "--tenant",
        "t",
        "--destination",
        "aws:eu-central-1",
        "--classification",
        "personal",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["decision"], "allow");
    assert_eq!(v["policies"][0], "eea");
    assert_eq!(v["countries"][0], "DE");
    assert!(v["reasons"][0].as_str().is_some_and(|r| r.contains("EEA")));
    assert!(
        v["bundle"]
            .as_str()
            .is_some_and(|b| b.starts_with("sha256:"))
    );

    // Default classification is unset → treated as special-category → GB denied.
    let o = explain(&[
        "--tenant",
        "t",
        "--destination",
        "aws:eu-west-2",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["decision"], "deny");
    assert_eq!(v["policies"][0], "unclassified-as-special-category");

    let o = explain(&[
        "--tenant",
        "t",
        "--destination",
        "aws:eu-west-2",
        "--classification",
        "secret",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("unknown classification"));

    let o = explain(&[
        "--tenant",
        "t",
        "--destination",
        "aws:eu-central-1",
        "--evidence",
        "unverified",
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert!(stdout(&o).contains("unverified-evidence"));
}

#[test]
fn explain_text_lists_every_country() {
    let o = explain(&[
        "--tenant",
        "t",
        "--destination",
        "gcs:eur5",
        "--classification",
        "special-category",
    ]);
    assert_eq!(o.status.code(), Some(3));
    let out = stdout(&o);
    assert!(out.contains("decision: DENY"), "{out}");
    assert!(out.contains("BE") && out.contains("GB"), "{out}");
    assert!(out.contains("special-category-eea-only"), "{out}");
}

#[test]
fn explain_fails_on_missing_directory() {
    let o = eugate(&[
        "policy",
        "explain",
        "--policies",
        "/nonexistent/policies",
        "--tenant",
        "t",
        "--destination",
        "aws:eu-central-1",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("/nonexistent/policies"));
}

#[test]
fn test_shows_expected_vs_actual_on_broken_case() {
    let dir = copy_policies();
    edit(
        dir.path(),
        "tests/default.toml",
        "name = \"personal data to AWS Frankfurt\"\ntenant = \"globex\"\ndestination = \"aws:eu-central-1\"\nclassification = \"personal\"\nexpect = \"allow\"",
        "name = \"personal data to AWS Frankfurt\"\ntenant = \"globex\"\ndestination = \"aws:eu-central-1\"\nclassification = \"personal\"\nexpect = \"deny\"",
    );
    let o = eugate(&["policy", "test", "--policies", &policies_arg(dir.path())]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("FAIL"), "{out}");
    assert!(out.contains("personal data to AWS Frankfurt"), "{out}");
    assert!(out.contains("expected: deny"), "{out}");
    assert!(out.contains("actual:   allow by [eea]"), "{out}");
    assert!(out.contains("1 failed"), "{out}");
}

#[test]
fn diff_shows_changed_decision() {
    let dir = copy_policies();
    // Drop the attestation: acme's personal data to aws:us-east-1 flips to deny.
    edit(
        dir.path(),
        "tenants.toml",
        r#"attested_destinations = ["aws:us-east-1", "#,
        r#"attested_destinations = ["#,
    );
    let o = eugate(&[
        "policy",
        "diff",
        &policies_arg(&shipped()),
        &policies_arg(dir.path()),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let line = out
        .lines()
        .find(|l| l.starts_with("aws:us-east-1") && l.contains("personal") && l.contains("acme "))
        .unwrap_or_else(|| panic!("no aws:us-east-1 personal acme line in:\n{out}"));
    assert!(line.contains("allow -> deny"), "{line}");
    assert!(
        !out.contains("aws:eu-central-1 "),
        "unchanged destinations listed:\n{out}"
    );
}

#[test]
fn diff_of_identical_dirs_is_empty() {
    let d = policies_arg(&shipped());
    let o = eugate(&["policy", "diff", &d, &d]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("0 decision(s) change"));
}

fn json_of(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("json: {e}: {}", stdout(o)))
}

fn jurisdictions(v: &serde_json::Value) -> Vec<(String, String)> {
    v["jurisdictions"]
        .as_array()
        .expect("jurisdictions")
        .iter()
        .map(|j| {
            (
                j["role"].as_str().unwrap_or("").to_string(),
                j["country"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn pair(role: &str, country: &str) -> (String, String) {
    (role.to_string(), country.to_string())
}

/// Issue 19's acceptance commands, as an officer types them.
#[test]
fn explain_names_the_jurisdictions_and_decides_as_of_a_day() {
    let o = explain(&[
        "--tenant",
        "t",
        "--destination",
        "alibaba-oss:oss-eu-central-1",
        "--classification",
        "personal",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let v = json_of(&o);
    assert_eq!(v["policies"], serde_json::json!(["provider-jurisdiction"]));
    assert_eq!(v["countries"], serde_json::json!(["DE"]));
    assert_eq!(
        jurisdictions(&v),
        [pair("provider", "CN"), pair("operator", "CN")]
    );
    assert!(
        v["jurisdictions"][0]["entity"]
            .as_str()
            .unwrap_or("")
            .contains("Alibaba")
    );

    let o = explain(&[
        "--tenant",
        "t",
        "--destination",
        "aws:eu-central-1",
        "--classification",
        "personal",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json_of(&o);
    assert_eq!(
        jurisdictions(&v),
        [pair("provider", "US"), pair("operator", "US")]
    );
    assert_eq!(
        v["jurisdictions"][0]["zones"],
        serde_json::json!(["ADEQUATE_SCOPED"])
    );

    let wasabi = |at: &str| {
        explain(&[
            "--tenant",
            "t",
            "--destination",
            "wasabi:eu-west-1",
            "--classification",
            "personal",
            "--at",
            at,
        ])
    };
    let o = wasabi("2030-01-01");
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("jurisdictions (as of 2030-01-01):"),
        "{}",
        stdout(&o)
    );
    let o = wasabi("2032-01-01");
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    let text = stdout(&o);
    assert!(
        text.contains("GB (in no adequacy zone as of 2032-01-01: GB's adequacy decision (EU) 2021/1772 ended after 2031-12-27 (valid_until))"),
        "{text}"
    );
    assert!(
        text.contains("not counted as of 2032-01-01: GB's adequacy decision"),
        "{text}"
    );
    let o = wasabi("2032-02-30");
    assert_eq!(
        o.status.code(),
        Some(2),
        "clap refuses a day that does not exist"
    );
    assert!(
        stderr(&o).contains("'2032-02-30' is not a date"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn explain_takes_a_self_hosted_operator_country() {
    let store = |operator: Option<&str>| {
        let mut args = vec![
            "--tenant",
            "t",
            "--declared",
            "DE",
            "--classification",
            "personal",
        ];
        if let Some(o) = operator {
            args.extend(["--operator-country", o]);
        }
        args.extend(["--format", "json"]);
        explain(&args)
    };
    let o = store(None);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert_eq!(jurisdictions(&json_of(&o))[1], pair("operator", "DE"));
    let o = store(Some("CN"));
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    assert_eq!(jurisdictions(&json_of(&o))[1], pair("operator", "CN"));
    // --operator-country belongs to a declared store.
    let o = explain(&[
        "--tenant",
        "t",
        "--destination",
        "aws:eu-central-1",
        "--operator-country",
        "CN",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--operator-country is for a self-hosted store given with --declared")
    );
}

#[test]
fn check_warns_before_dated_facts_end_and_test_runs_as_of_a_day() {
    let dir = policies_arg(&shipped());
    let o = eugate(&["policy", "check", "--policies", &dir, "--at", "2031-11-15"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("jurisdictions.toml: GB's adequacy decision (EU) 2021/1772 counts only through 2031-12-27 (valid_until), in 42 days"),
        "{out}"
    );
    let o = eugate(&["policy", "check", "--policies", &dir, "--at", "2027-06-01"]);
    assert!(stdout(&o).contains(
        "tenant acme's attestation counts only through 2027-07-14 (valid_until), in 43 days"
    ));
    let o = eugate(&["policy", "check", "--policies", &dir, "--at", "2027-01-01"]);
    assert!(!stdout(&o).contains("warning:"), "{}", stdout(&o));
    // Every shipped case that depends on a date carries `at`: they hold on any day.
    for at in ["2026-07-14", "2031-12-28", "2040-01-01"] {
        let o = eugate(&["policy", "test", "--policies", &dir, "--at", at]);
        assert!(o.status.success(), "{at}: {}", stdout(&o));
    }
}

#[test]
fn check_reports_a_provider_missing_from_providers_toml() {
    let dir = copy_policies();
    edit(dir.path(), "providers.toml", "[wasabi]", "[wasabi-typo]");
    let line = line_of(dir.path(), "providers.toml", "[wasabi-typo]");
    expect_check_error(
        dir.path(),
        "providers.toml",
        line,
        "provider 'wasabi-typo' has no regions in regions.toml",
    );
    let o = eugate(&["policy", "check", "--policies", &policies_arg(dir.path())]);
    assert!(
        stderr(&o).contains("provider 'wasabi' of regions.toml has no entry here"),
        "{}",
        stderr(&o)
    );
}

/// Moving a dated fact changes nothing today and something on the day it matters: `--at` shows
/// which decisions an officer's edit of an end date turns.
#[test]
fn diff_at_shows_what_an_edited_end_date_turns_on_its_day() {
    let new = copy_policies();
    edit(
        new.path(),
        "jurisdictions.toml",
        r#"valid_until = "2031-12-27""#,
        r#"valid_until = "2029-12-31""#,
    );
    let old = policies_arg(&shipped());
    let new = policies_arg(new.path());
    let o = eugate(&["policy", "diff", &old, &new, "--at", "2027-01-01"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("0 decision(s) change"),
        "{}",
        stdout(&o)
    );
    let o = eugate(&["policy", "diff", &old, &new, "--at", "2030-06-01"]);
    let out = stdout(&o);
    assert!(out.ends_with(", as of 2030-06-01\n"), "{out}");
    let wasabi_london = out
        .lines()
        .find(|l| l.starts_with("wasabi:eu-west-1") && l.contains(" personal "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(wasabi_london.contains("allow -> deny"), "{wasabi_london}");
}
