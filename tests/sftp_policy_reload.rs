//! `eugate serve` watches its policy directory: a broken edit is rejected and the previous
//! bundle keeps deciding; a valid edit takes effect for the next upload, without a restart.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Gateway, Options};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn wait_for_log(g: &Gateway, needle: &str, occurrences: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while g.log().matches(needle).count() < occurrences {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the log:\n{}",
            g.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn bad_edit_keeps_the_old_bundle_and_a_good_edit_applies_without_restart() {
    let policies = tempfile::tempdir().unwrap();
    let dir = policies.path().join("policies");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"),
        &dir,
    );
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
    wait_for_log(&g, "policy reload rejected", 1);
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
    wait_for_log(&g, "policy bundle activated", 1);
    let out = g.sftp("alice", "put a.txt c.txt\n");
    assert!(!out.status.success(), "upload allowed after the freeze");
    assert!(!g.store.join("acme/c.txt").exists());
    assert!(g.log().contains("freeze-de"), "{}", g.log());

    // Both reloads are evidence: the audit log records the rejection and the new bundle.
    let reloads: Vec<serde_json::Value> = std::fs::read_to_string(g.path("audit.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["event"]["type"] == "policy_reload")
        .map(|r| r["event"].clone())
        .collect();
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
    let verify = std::process::Command::new(common::bin())
        .args(["audit", "verify"])
        .arg(g.path("audit.jsonl"))
        .output()
        .unwrap();
    assert!(verify.status.success());
}
