//! Abuse suite, brute force (issue 13): the three bypasses of the brute-force defence, run
//! against the real gateway with paramiko (and OpenSSH) from loopback sources in 127.0.0.0/8.
//! After each: RSS and open fds within a fixed bound of the warmed-up gateway's, a normal
//! OpenSSH upload from 127.0.0.1 works, and the audit chain verifies.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

/// Memory the attacks may leave behind beyond the warmed-up gateway's (allocator slack).
const RSS_SLACK_KIB: u64 = 32 << 10;
/// File descriptors beyond the warmed-up gateway's, once the attackers' connections are gone.
const FD_SLACK: usize = 4;

/// One login attempt, on a fresh connection from `src`.
fn password(src: &str, user: &str, pw: &str) -> Value {
    json!({"src": src, "user": user, "password": pw})
}

fn key(g: &Gateway, src: &str, user: &str) -> Value {
    json!({"src": src, "user": user, "key": g.key(user)})
}

/// Runs the attempts in order; whether each logged in.
fn attempts(g: &Gateway, plan: &[Value]) -> Vec<bool> {
    let out = Command::new("python3")
        .arg(scripts().join("abuse_bruteforce.py"))
        .arg("--port")
        .arg(g.port.to_string())
        .arg("--plan")
        .arg(Value::from(plan.to_vec()).to_string())
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "abuse_bruteforce.py output not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            // Anything but a refused login (e.g. a reset connection) is not what is tested here.
            assert!(
                r["ok"] == true || r["auth_failed"] == true,
                "attempt broke: {r}\n{}",
                g.log()
            );
            r["ok"] == true
        })
        .collect()
}

/// The gateway's RSS and fds once it has served a normal upload.
struct Baseline {
    rss_kib: u64,
    fds: usize,
}

fn warm_up(g: &Gateway) -> Baseline {
    g.assert_normal_upload("warm-up.bin");
    Baseline {
        rss_kib: g.rss_kib(),
        fds: g.open_fds(),
    }
}

/// What every attack must leave: bounded RSS and fds, normal uploads, a verifying audit chain.
fn assert_unharmed(g: &Gateway, base: &Baseline, name: &str) {
    g.assert_normal_upload(name);
    let rss = g.rss_kib();
    assert!(
        rss <= base.rss_kib + RSS_SLACK_KIB,
        "RSS {rss} KiB, warmed up {} KiB",
        base.rss_kib
    );
    g.wait_until("the attackers' fds to be closed", || {
        g.open_fds() <= base.fds + FD_SLACK
    });
    g.assert_audit_verifies();
}

/// Whether the audit log holds a refusal of `user` from `src` as banned.
fn refused_as_banned(g: &Gateway, src: &str, user: &str) -> bool {
    g.events("auth").iter().any(|a| {
        a["source"] == src
            && a["user"] == user
            && a["outcome"].as_str().is_some_and(|o| o.contains("banned"))
    })
}

/// Bypass 1: a success reset the source's count, so one source could guess at 16 names by
/// logging in as itself in between.
#[test]
fn guessing_names_between_own_logins_ends_in_a_ban() {
    const ATTACKER: &str = "127.0.0.9";
    let g = Gateway::start_with(Options {
        max_failures: 5, // per source: 10, twice this
        ..Options::default()
    });
    let base = warm_up(&g);
    let plan: Vec<Value> = (0..16)
        .flat_map(|i| {
            [
                password(ATTACKER, &format!("victim{i}"), "guess"),
                password(ATTACKER, "bob", BOB_PASSWORD),
            ]
        })
        .collect();
    let results = attempts(&g, &plan);
    assert!(results.iter().step_by(2).all(|ok| !ok), "a guess succeeded");
    let own: Vec<bool> = results.iter().skip(1).step_by(2).copied().collect();
    // bob's own logins work until the source's 10th failure; from then on it is banned.
    let expected: Vec<bool> = (0..16).map(|i| i < 9).collect();
    assert_eq!(own, expected, "bob's logins after each guess");
    assert!(
        !attempts(&g, &[key(&g, ATTACKER, "alice")])[0],
        "a banned source is refused for keys too"
    );
    g.wait_until("the refusals in the audit log", || {
        refused_as_banned(&g, ATTACKER, "bob") && refused_as_banned(&g, ATTACKER, "alice")
    });
    assert_unharmed(&g, &base, "after-guessing.bin");
}

/// Bypass 2: filling the table from many sources evicted an active ban. With a table of 4, a
/// ban survives 12 fresh sources; once full of bans, an unknown source is refused (fail closed)
/// until the bans end.
#[test]
fn a_flood_of_sources_never_evicts_an_active_ban() {
    const BANNED: &str = "127.0.1.1";
    const BAN_SECS: u64 = 20;
    let g = Gateway::start_with(Options {
        max_failures: 2,
        ban_secs: BAN_SECS,
        auth_toml: "max_failures_per_source = 2\nmax_tracked = 4".into(),
        ..Options::default()
    });
    let base = warm_up(&g);
    let mut plan = vec![
        password(BANNED, "bob", "guess"),
        password(BANNED, "bob", "guess"),
    ];
    plan.extend((1..=12).map(|i| password(&format!("127.0.2.{i}"), &format!("u{i}"), "guess")));
    plan.push(key(&g, BANNED, "alice"));
    // A source dropped for room was not banned: it is heard again.
    plan.push(key(&g, "127.0.2.1", "alice"));
    let results = attempts(&g, &plan);
    assert!(!results[..14].iter().any(|&ok| ok));
    assert!(
        !results[14],
        "the ban on {BANNED} was evicted by 12 new sources"
    );
    assert!(results[15], "a source that was only counted is heard");
    g.wait_until("the refusal in the audit log", || {
        refused_as_banned(&g, BANNED, "alice")
    });
    g.assert_normal_upload("during-flood.bin");

    // Now fill the table with bans: sources it does not know are refused, valid key or not.
    let mut plan: Vec<Value> = (1..=4)
        .flat_map(|i| {
            let src = format!("127.0.3.{i}");
            [
                password(&src, "bob", "guess"),
                password(&src, "bob", "guess"),
            ]
        })
        .collect();
    plan.push(key(&g, "127.0.4.1", "alice"));
    let results = attempts(&g, &plan);
    assert!(
        !results.iter().any(|&ok| ok),
        "a stranger logged in while the table was full of bans"
    );
    g.wait_for_log("full of active bans", 1);
    g.wait_until("the stranger's refusal in the audit log", || {
        refused_as_banned(&g, "127.0.4.1", "alice")
    });
    // The bans end; everyone is heard again.
    std::thread::sleep(Duration::from_secs(BAN_SECS));
    g.wait_until("the bans to end", || {
        attempts(&g, &[key(&g, "127.0.4.1", "alice")])[0]
    });
    assert_unharmed(&g, &base, "after-flood.bin");
}

/// Bypass 3: five wrong passwords for a name from anywhere locked that user out everywhere,
/// even their valid key from another source.
#[test]
fn wrong_passwords_for_a_name_do_not_lock_out_its_key_elsewhere() {
    const ATTACKER: &str = "127.0.0.3";
    const HOME: &str = "127.0.0.2";
    let g = Gateway::start_with(Options {
        max_failures: 5,
        ..Options::default()
    });
    let base = warm_up(&g);
    let mut plan: Vec<Value> = ["alice", "bob"]
        .iter()
        .flat_map(|u| (0..5).map(move |_| password(ATTACKER, u, "guess")))
        .collect();
    plan.push(key(&g, ATTACKER, "alice"));
    plan.push(key(&g, HOME, "alice"));
    plan.push(password(HOME, "bob", BOB_PASSWORD));
    let results = attempts(&g, &plan);
    assert!(!results[..10].iter().any(|&ok| ok));
    assert!(!results[10], "the attacker's source is banned for keys too");
    assert!(results[11], "alice's key from {HOME} was locked out");
    assert!(results[12], "bob's password from {HOME} was locked out");
    g.wait_for_log("password attempts for this user are throttled", 1);

    // A real OpenSSH client from HOME uploads with alice's key.
    let local = g.path("home.local");
    std::fs::write(&local, data(64 << 10, 3)).unwrap();
    let out = run_with_stdin(
        Command::new("sftp")
            .args(g.ssh_opts(&g.key("alice")))
            .args(["-o", &format!("BindAddress={HOME}"), "-P"])
            .arg(g.port.to_string())
            .args(["-b", "-", "alice@127.0.0.1"]),
        format!("put {} /home.bin\n", local.display()).as_bytes(),
    );
    assert!(
        out.status.success(),
        "OpenSSH from {HOME}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        g.log()
    );
    assert!(
        g.events("auth")
            .iter()
            .any(|a| a["source"] == HOME && a["user"] == "alice" && a["outcome"] == "accepted")
    );
    assert_unharmed(&g, &base, "after-lockout.bin");
}
