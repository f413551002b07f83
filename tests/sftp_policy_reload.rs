//! `eugate serve` watches its policy directory: a broken edit is rejected and the previous
//! bundle keeps deciding; a valid edit takes effect for the next upload, without a restart.

mod common;

use common::{Gateway, Options, copy_policies};

#[test]
fn bad_edit_keeps_the_old_bundle_and_a_good_edit_applies_without_restart() {
    let policies = copy_policies();
    let dir = policies.path().to_path_buf();
    let g = Gateway::start_with(Options {
        extra_toml: format!("\n[policy]\ndir = \"{}\"\nwatch = true\n", dir.display()),
        ..Options::default()
    });
    std::fs::write(g.path("a.txt"), b"first").unwrap();
    g.sftp_ok("alice", "put a.txt\n");

    // 1. A syntax error: rejected, logged, the old bundle still allows acme -> DE.
    let rules = dir.join("default.cedar");
    let good_rules = std::fs::read_to_string(&rules).unwrap();
    std::fs::write(
        &rules,
        format!("{good_rules}\nforbid (principal, action,\n"),
    )
    .unwrap();
    g.wait_for_log("policy reload rejected", 1);
    g.sftp_ok("alice", "put a.txt b.txt\n");
    assert!(g.store.join("acme/b.txt").exists());

    // 2. A valid edit that freezes transfers to Germany (and its expected cases): applied.
    std::fs::write(&rules, &good_rules).unwrap();
    std::fs::write(
        dir.join("freeze.cedar"),
        "@id(\"freeze-de\")\n@reason(\"Test freeze: no transfers to Germany.\")\n\
         forbid (principal, action, resource in Country::\"DE\");\n",
    )
    .unwrap();
    // The bundle's own cases expect DE allowed; a reviewer updates them with the rule.
    std::fs::remove_dir_all(dir.join("tests")).unwrap();
    g.wait_for_log("policy bundle activated", 1);
    let out = g.sftp("alice", "put a.txt c.txt\n");
    assert!(!out.status.success(), "upload allowed after the freeze");
    assert!(!g.store.join("acme/c.txt").exists());
    assert!(g.log().contains("freeze-de"), "{}", g.log());

    // Both reloads are evidence: the audit log records the rejection and the new bundle.
    let reloads = g.events("policy_reload");
    assert!(
        reloads
            .iter()
            .any(|e| e["accepted"] == false && e["detail"].as_str().unwrap().contains("rejected")),
        "{reloads:#?}"
    );
    let activated = reloads
        .iter()
        .find(|e| e["accepted"] == true && e["detail"].as_str().unwrap().contains("replaced"))
        .unwrap_or_else(|| panic!("no accepted reload: {reloads:#?}"));
    assert!(activated["bundle"].as_str().unwrap().starts_with("sha256:"));
    g.assert_audit_verifies();
}
