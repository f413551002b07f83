//! `eugate policy replay`: real SFTP uploads are audited, then replayed under a proposed bundle
//! that denies special-category data in Germany — exactly those uploads flip.

mod common;

use std::process::{Command, Output};

use common::{Gateway, Options, bin, copy_policies};

const RULE_ID: &str = "replay-test-no-special-category-in-de";
const RULE: &str = r#"
@id("replay-test-no-special-category-in-de")
@reason("Proposed: special-category data must not be stored in Germany.")
forbid (principal, action, resource)
when { context.classification == "special-category" && resource in Country::"DE" };
"#;

fn gateway() -> Gateway {
    Gateway::start_with(Options::acme_health())
}

fn replay(args: &[&str]) -> Output {
    Command::new(bin())
        .args(["policy", "replay"])
        .args(args)
        .output()
        .expect("run eugate policy replay")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn proposed() -> tempfile::TempDir {
    let dir = copy_policies();
    std::fs::write(dir.path().join("replay-test.cedar"), RULE).unwrap();
    dir
}

fn upload(g: &Gateway, user: &str, names: &[&str]) {
    let mut cmds = String::new();
    for n in names {
        std::fs::write(g.path(n), format!("data of {n}\n")).unwrap();
        cmds.push_str(&format!("put {n} /{n}\n"));
    }
    g.sftp_ok(user, &cmds);
}

#[test]
fn special_category_uploads_to_de_flip_and_personal_ones_do_not() {
    let g = gateway();
    upload(&g, "alice", &["orders-1.csv", "orders-2.csv"]);
    upload(&g, "hana", &["patients-1.csv", "patients-2.csv", "lab.csv"]);
    let audit = g.path("audit.jsonl");
    let bundle = proposed();
    let b = bundle.path().to_str().unwrap();
    let a = audit.to_str().unwrap();

    // Text: a summary and one line per flip.
    let out = replay(&["--bundle", b, "--since", "1h", a]);
    assert!(out.status.success(), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.contains(
            "5 decision(s): 2 unchanged, 3 allow -> deny, 0 deny -> allow, 0 not evaluable"
        ),
        "{text}"
    );
    let flips: Vec<&str> = text.lines().filter(|l| l.starts_with("FLIP ")).collect();
    assert_eq!(flips.len(), 3, "{text}");
    for name in ["patients-1.csv", "patients-2.csv", "lab.csv"] {
        let line = flips
            .iter()
            .find(|l| l.contains(&format!("/{name} ")))
            .unwrap_or_else(|| panic!("{name} did not flip:\n{text}"));
        assert!(line.contains("tenant=acme-health user=hana"), "{line}");
        assert!(line.contains("dest=local class=special-category"), "{line}");
        assert!(
            line.contains(&format!("allow -> deny [{RULE_ID}]")),
            "{line}"
        );
        assert!(line.contains("must not be stored in Germany"), "{line}");
    }
    assert!(
        !text.contains("orders-"),
        "personal uploads must not flip:\n{text}"
    );

    // JSON: the same, per decision.
    let out = replay(&["--bundle", b, "--format", "json", a]);
    assert!(out.status.success(), "{out:?}");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(j["summary"]["decisions"], 5);
    assert_eq!(j["summary"]["allow_to_deny"], 3);
    assert_eq!(j["summary"]["unchanged"], 2);
    let decisions = j["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 5);
    for d in decisions {
        let special = d["tenant"] == "acme-health";
        assert_eq!(d["old"]["allowed"], true, "{d}");
        assert_eq!(d["new"]["allowed"], !special, "{d}");
        let want = if special {
            "allow_to_deny"
        } else {
            "unchanged"
        };
        assert_eq!(d["change"], want, "{d}");
        if special {
            assert_eq!(d["new"]["policies"], serde_json::json!([RULE_ID]), "{d}");
        }
        assert_eq!(d["log"], a);
        assert_eq!(d["verified"], true);
    }
    // The records were decided by the running bundle, which is not the proposed one.
    let by = j["by_recorded_bundle"].as_object().unwrap();
    assert_eq!(by.len(), 1);
    assert_ne!(by.keys().next().unwrap(), j["bundle"].as_str().unwrap());

    // --only-flips lists only the three; --fail-on-flips makes them an exit code for CI.
    let out = replay(&["--bundle", b, "--format", "json", "--only-flips", a]);
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(j["decisions"].as_array().unwrap().len(), 3);
    assert_eq!(j["summary"]["decisions"], 5);
    let out = replay(&["--bundle", b, "--fail-on-flips", a]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");

    // The shipped bundle flips nothing, even with --fail-on-flips.
    let shipped = copy_policies();
    let out = replay(&[
        "--bundle",
        shipped.path().to_str().unwrap(),
        "--fail-on-flips",
        a,
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout(&out).contains("5 decision(s): 5 unchanged"),
        "{out:?}"
    );

    // A window in the past selects nothing.
    let out = replay(&["--bundle", b, "--to", "2020-01-01T00:00:00Z", a]);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains(": 0 decision(s)"), "{out:?}");
}

#[test]
fn broken_chain_is_refused_unless_allowed() {
    let g = gateway();
    upload(&g, "hana", &["a.csv", "b.csv"]);
    let copy = g.dir.path().join("edited.jsonl");
    let text = std::fs::read_to_string(g.path("audit.jsonl")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Drop the second record: the chain breaks at line 2.
    let kept: Vec<&str> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, l)| *l)
        .collect();
    std::fs::write(&copy, kept.join("\n") + "\n").unwrap();
    let bundle = proposed();
    let b = bundle.path().to_str().unwrap();
    let out = replay(&["--bundle", b, copy.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not verify")
            && err.contains("line 2")
            && err.contains("--allow-unverified"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    let out = replay(&["--bundle", b, "--allow-unverified", copy.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout(&out).contains("does not verify"), "{out:?}");
}

#[test]
fn bad_arguments_are_errors() {
    let bundle = proposed();
    let b = bundle.path().to_str().unwrap();
    let log = tempfile::NamedTempFile::new().unwrap();
    let l = log.path().to_str().unwrap();
    let cases: [(&[&str], &str); 5] = [
        (&["--bundle", b, "--since", "30", l], "not a duration"),
        (
            &["--bundle", b, "--from", "yesterday", l],
            "--from: \"yesterday\" is not an RFC 3339 date",
        ),
        (
            &[
                "--bundle",
                b,
                "--from",
                "2026-12-02T00:00:00Z",
                "--to",
                "2026-12-01T00:00:00Z",
                l,
            ],
            "--from must be before --to",
        ),
        (
            &["--bundle", b, "/nonexistent/audit.jsonl"],
            "/nonexistent/audit.jsonl",
        ),
        (
            &["--bundle", "/nonexistent/policies", l],
            "/nonexistent/policies",
        ),
    ];
    for (args, want) in cases {
        let out = replay(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    // No audit file at all: clap refuses.
    let out = replay(&["--bundle", b]);
    assert!(!out.status.success());
}
