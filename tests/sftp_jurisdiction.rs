//! Whose law reaches a self-hosted store (`operator_country` in its configuration) decides a
//! real upload: a German disk run from China refuses personal data with a message naming the
//! rule, OpenSSH's client sees the refusal, nothing is stored, and the audit record names the
//! jurisdictions and the day the decision was taken as of. The same disk run from Germany
//! takes the same file.

mod common;

use common::{Gateway, Options, audit_events, data};

fn options() -> Options {
    Options {
        extra_keys: vec!["erin", "finn"],
        extra_tenants: vec!["delta", "epsilon"],
        extra_toml: r#"
[destinations.de-run-from-cn]
kind = "fs"
root = "store-cn"
country = "DE"
operator_country = "CN"

[destinations.de-run-from-de]
kind = "fs"
root = "store-de"
country = "DE"
operator_country = "DE"

[tenants.delta]
route = { destination = "de-run-from-cn", prefix = "delta/" }
classification = "personal"

[tenants.delta.users.erin]
authorized_keys_file = "erin.pub"
permissions = ["read", "write"]

[tenants.epsilon]
route = { destination = "de-run-from-de", prefix = "epsilon/" }
classification = "personal"

[tenants.epsilon.users.finn]
authorized_keys_file = "finn.pub"
permissions = ["read", "write"]
"#
        .into(),
        ..Default::default()
    }
}

fn files_under(dir: &std::path::Path) -> Vec<String> {
    walk(dir)
        .into_iter()
        .map(|p| p.strip_prefix(dir).unwrap().display().to_string())
        .collect()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut out = vec![];
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn the_operators_jurisdiction_decides_a_real_upload() {
    let g = Gateway::start_with(options());
    let plain = data(200_000, 19);
    std::fs::write(g.path("records.csv"), &plain).unwrap();

    // OpenSSH's client: refused (it shows only the status code).
    let out = g.sftp(
        "erin",
        &format!("put {} /records.csv\n", g.path("records.csv").display()),
    );
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // A scripted client hears why, and closes the handle it was refused as a client would.
    let said = g.script("erin", &["exclusive", "--path", "/records.csv"]);
    assert_eq!(said["ok"], false, "{said}");
    let msg = said["error"].as_str().unwrap_or_default();
    assert!(
        msg.contains("residency policy denied: provider-jurisdiction"),
        "{msg}"
    );
    assert!(msg.contains("National Intelligence Law"), "{msg}");
    let dir = g.dir.path();
    assert_eq!(
        files_under(&dir.join("store-cn")),
        Vec::<String>::new(),
        "nothing stored"
    );

    // The same disk run from Germany takes it.
    g.sftp_ok(
        "finn",
        &format!("put {} /records.csv\n", g.path("records.csv").display()),
    );
    let stored = files_under(&dir.join("store-de"));
    assert_eq!(stored, ["epsilon/records.csv"]);

    let decisions = g.events("decision");
    let refused = decisions
        .iter()
        .find(|d| d["tenant"] == "delta")
        .expect("delta's decision");
    assert_eq!(refused["allowed"], false);
    assert_eq!(
        refused["policies"],
        serde_json::json!(["provider-jurisdiction"])
    );
    assert_eq!(refused["countries"], serde_json::json!(["DE"]));
    assert_eq!(
        refused["jurisdictions"],
        serde_json::json!(["provider:CN", "operator:CN"])
    );
    let as_of = refused["as_of"].as_str().expect("as_of");
    assert!(as_of.len() == 10 && as_of.as_bytes()[4] == b'-', "{as_of}");
    let allowed = decisions
        .iter()
        .find(|d| d["tenant"] == "epsilon")
        .expect("epsilon's decision");
    assert_eq!(allowed["allowed"], true);
    assert_eq!(
        allowed["jurisdictions"],
        serde_json::json!(["provider:DE", "operator:DE"])
    );
    assert!(
        audit_events(&g.audit(), "committed")
            .iter()
            .any(|c| c["tenant"] == "epsilon")
    );
    g.assert_audit_verifies();
}

#[test]
fn config_check_names_a_bad_operator_country() {
    let g = Gateway::start_with(options());
    let text = std::fs::read_to_string(&g.config).unwrap();
    let bad = text.replacen(
        r#"operator_country = "CN""#,
        r#"operator_country = "China""#,
        1,
    );
    let path = g.path("bad.toml");
    std::fs::write(&path, bad).unwrap();
    let out = std::process::Command::new(common::bin())
        .args(["config", "check"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("destinations.de-run-from-cn.operator_country")
            && err.contains("`China` is not an ISO 3166-1 alpha-2 code"),
        "{err}"
    );
}
