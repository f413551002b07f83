//! Issue 13's memory and handle attacks against the real gateway, by raw SFTP (paramiko
//! channels, tests/scripts/abuse_memory.py) and OpenSSH: out-of-order writes held by the
//! thousand, held data across many uploads and channels, a handle flood from two sessions, and a
//! 3,000-entry directory. After each: the gateway's RSS and open descriptors (from /proc) stay
//! under the configured bounds plus a fixed overhead, a normal OpenSSH upload works, and the
//! audit log verifies.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::{Gateway, Options, data, scripts};

/// What the gateway may use beyond its memory budget and what it had at start: runtime, SSH
/// sessions and their channel queues, allocator slack. The attacks below would need hundreds of
/// MiB without the caps.
const RSS_OVERHEAD_KIB: u64 = 64 << 10;
/// Descriptors beyond those at start once an attack is over (sockets still closing).
const FD_OVERHEAD: usize = 8;

fn abuse_cmd(g: &Gateway, user: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new("python3");
    cmd.arg(scripts().join("abuse_memory.py"))
        .arg(args[0])
        .arg("--port")
        .arg(g.port.to_string())
        .arg("--user")
        .arg(user)
        .arg("--key")
        .arg(g.key(user))
        .args(&args[1..])
        .current_dir(g.dir.path());
    cmd
}

fn json_line(line: &str) -> serde_json::Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// Runs an attack to its end; returns its JSON result.
fn abuse(g: &Gateway, user: &str, args: &[&str]) -> serde_json::Value {
    let out = abuse_cmd(g, user, args).output().unwrap();
    let v = json_line(String::from_utf8_lossy(&out.stdout).trim());
    assert_eq!(
        v["ok"],
        true,
        "{args:?}: {v}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        g.log()
    );
    v
}

/// An attack that holds what it took until released.
struct Holding {
    child: Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    gate: std::path::PathBuf,
}

impl Holding {
    /// Starts the attack and waits until it holds; returns it and what it reported then.
    fn start(g: &Gateway, user: &str, args: &[&str]) -> (Holding, serde_json::Value) {
        let gate = g.path(&format!("gate-{}", args[0]));
        let mut cmd = abuse_cmd(g, user, args);
        cmd.arg("--gate").arg(&gate).stdout(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = json_line(&lines.next().expect("a first line").unwrap());
        assert!(
            first.get("holding").is_some(),
            "{args:?} did not get to hold: {first}\n{}",
            g.log()
        );
        (Holding { child, lines, gate }, first["holding"].clone())
    }

    /// Lets the attack close everything; returns its final report.
    fn release(mut self) -> serde_json::Value {
        std::fs::write(&self.gate, b"").unwrap();
        let last = json_line(&self.lines.next().expect("a final line").unwrap());
        assert_eq!(last["ok"], true, "{last}");
        last
    }
}

impl Drop for Holding {
    /// A failed test must not leave the attacker behind (it would hold the test run open).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The gateway's bounds, measured once it serves and before any attack.
struct Baseline {
    rss_kib: u64,
    fds: usize,
}

impl Baseline {
    fn of(g: &Gateway) -> Baseline {
        Baseline {
            rss_kib: g.rss_kib(),
            fds: g.open_fds(),
        }
    }

    fn assert_rss_within(&self, g: &Gateway, budget_kib: u64, when: &str) {
        let rss = g.rss_kib();
        let bound = self.rss_kib + budget_kib + RSS_OVERHEAD_KIB;
        assert!(
            rss <= bound,
            "{when}: RSS {rss} KiB over the bound {bound} KiB (start {} + budget {budget_kib} + overhead {RSS_OVERHEAD_KIB})",
            self.rss_kib
        );
    }

    /// After an attack, descriptors come back down (sockets may take a moment to close).
    fn assert_fds_back(&self, g: &Gateway) {
        let bound = self.fds + FD_OVERHEAD;
        let mut now = g.open_fds();
        let back = common::eventually(20, || {
            now = g.open_fds();
            now <= bound
        });
        assert!(back, "{now} descriptors open, start {}", self.fds);
    }
}

/// After any attack: the bounds hold, the well-behaved client works, the log verifies.
fn assert_recovered(g: &Gateway, base: &Baseline, budget_kib: u64, name: &str) {
    base.assert_rss_within(g, budget_kib, "after the attack");
    base.assert_fds_back(g);
    g.assert_normal_upload(name);
    g.assert_audit_verifies();
}

fn with_limits(extra: &str) -> Options {
    Options {
        extra_toml: extra.to_string(),
        ..Options::default()
    }
}

#[test]
fn one_byte_writes_at_every_other_offset_are_refused_at_the_count_cap() {
    // The default cap (1,024 held writes) inside the default test window (1 MiB).
    let g = Gateway::start();
    let base = Baseline::of(&g);
    let r = abuse(
        &g,
        "alice",
        &["one-byte-gaps", "--path", "/gaps.bin", "--count", "1100"],
    );
    assert_eq!(r["accepted"], 1024, "{r}");
    let refusal = r["first_refusal"].as_str().unwrap();
    assert!(
        refusal.contains("at most 1024 out-of-order writes")
            && refusal.contains("limits.max_held_writes"),
        "{refusal}"
    );
    // The refused write spoiled the upload: CLOSE fails naming it, nothing is published.
    let close = &r["close"];
    assert_ne!(close["status"], 0, "{close}");
    assert!(
        close["message"]
            .as_str()
            .unwrap()
            .contains("nothing was stored"),
        "{close}"
    );
    let recs = g.wait_for_audit("the spoiled upload's abort", |recs| {
        common::audit_events(recs, "aborted").iter().any(|e| {
            e["cause"]
                .as_str()
                .unwrap_or("")
                .contains("max_held_writes")
        })
    });
    assert!(common::audit_events(&recs, "committed").is_empty());
    g.wait_until("the aborted upload's temp file is gone", || {
        g.stored_files().iter().all(|f| !f.contains("gaps"))
    });
    assert_recovered(&g, &base, 0, "after-gaps.bin");
}

#[test]
fn held_data_across_many_uploads_and_channels_stays_within_the_memory_budget() {
    // 3 channels x 24 uploads, each trying to hold 4 MiB past a gap: 288 MiB without the
    // budget. Out-of-order writes may hold at most half of the 32 MiB budget, all uploads
    // together.
    let g = Gateway::start_with(Options {
        reorder_window: "4MiB",
        ..with_limits("[storage]\nmemory_budget = \"32MiB\"\n")
    });
    let base = Baseline::of(&g);
    let budget_kib = 32 << 10;
    let (attack, held) = Holding::start(
        &g,
        "alice",
        &[
            "held-flood",
            "--channels",
            "3",
            "--uploads",
            "24",
            "--count",
            "127",
            "--size",
            "32768",
        ],
    );
    // While the attacker holds everything it could: memory within bounds, refusals say why.
    base.assert_rss_within(&g, budget_kib, "while held");
    let refusals = held["refusals"].as_object().unwrap();
    let accepted = held["ok"].as_u64().unwrap();
    assert!(
        accepted * 32 <= 16 << 10,
        "{accepted} writes of 32 KiB held: more than half the budget: {held}"
    );
    assert!(
        refusals.keys().any(|m| m.contains("storage.memory_budget")),
        "no refusal names the budget: {held}"
    );
    // The well-behaved client uploads meanwhile.
    g.assert_normal_upload("during-held.bin");
    let done = attack.release();
    // Every attacked upload had a gap: none is published.
    assert_eq!(done["closes"]["ok"], 0, "{done}");
    assert!(g.stored_files().iter().all(|f| !f.contains("held-")));
    assert_recovered(&g, &base, budget_kib, "after-held.bin");
}

#[test]
fn a_handle_flood_from_two_sessions_stops_at_the_per_user_cap() {
    let g = Gateway::start_with(with_limits("[limits]\nmax_handles_per_user = 24\n"));
    let base = Baseline::of(&g);
    // Two sessions of alice, 20 OPENs each (the per-session cap is 64).
    let (attack, opens) = Holding::start(
        &g,
        "alice",
        &["handle-flood", "--sessions", "2", "--count", "40"],
    );
    assert_eq!(opens["ok"], 24, "{opens}");
    let refusals = opens["refusals"].as_object().unwrap();
    assert_eq!(refusals.len(), 1, "{opens}");
    let (message, n) = refusals.iter().next().unwrap();
    assert_eq!(n, 16);
    assert!(
        message.contains("`alice` has 24 open across all sessions")
            && message.contains("limits.max_handles_per_user"),
        "{message}"
    );
    // Another user is not affected while alice holds her cap.
    let local = g.path("carol.local");
    let plain = data(100_000, 3);
    std::fs::write(&local, &plain).unwrap();
    g.sftp_ok("carol", &format!("put {} /carol.bin\n", local.display()));
    assert_eq!(g.decrypt(&g.store.join("beta/carol.bin")), plain);
    // Descriptors: the 24 open uploads (a temp file each) and the sessions, nothing more.
    let during = g.open_fds();
    assert!(
        during <= base.fds + 24 + 16,
        "{during} fds, start {}",
        base.fds
    );
    // The flooding sessions disconnect without CLOSE: the gateway gives their slots back, and
    // alice can open files again.
    attack.release();
    g.wait_for_audit("the 24 abandoned uploads aborted", |recs| {
        common::audit_events(recs, "aborted").len() >= 24
    });
    assert_recovered(&g, &base, 0, "after-flood.bin");
}

#[test]
fn a_3000_entry_directory_lists_in_pages_openssh_accepts() {
    let g = Gateway::start();
    let base = Baseline::of(&g);
    // One real upload, then 2,999 copies of its sealed file under other names, straight in the
    // store (a rename keeps an object readable, so a copy under another name is one too).
    let local = g.path("entry.local");
    std::fs::write(&local, data(1000, 9)).unwrap();
    g.sftp_ok(
        "alice",
        &format!("mkdir /big\nput {} /big/f0000\n", local.display()),
    );
    let dir = g.store.join("acme/big");
    for i in 1..3000 {
        std::fs::copy(dir.join("f0000"), dir.join(format!("f{i:04}"))).unwrap();
    }
    // OpenSSH's sftp refuses any reply over 256 KiB ("message too long").
    let out = g.sftp_ok("alice", "ls -1 /big\n");
    let names: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("sftp>") && !l.is_empty())
        .collect();
    assert_eq!(names.len(), 3000, "{}", &out[..out.len().min(2000)]);
    assert!(names.iter().all(|n| n.starts_with("/big/f")), "{names:?}");
    // paramiko gets every name too.
    let listed = abuse(&g, "alice", &["listdir", "--path", "/big"]);
    assert_eq!(listed["names"], 3000, "{listed}");
    // Replies are pages: at most 100 entries and far below the client's limit each.
    let r = abuse(&g, "alice", &["readdir-pages", "--path", "/big"]);
    let pages = r["pages"].as_array().unwrap();
    let total: u64 = pages.iter().map(|p| p["entries"].as_u64().unwrap()).sum();
    assert_eq!(total, 3000, "{r}");
    assert!(
        pages
            .iter()
            .all(|p| p["entries"].as_u64().unwrap() <= 100
                && p["bytes"].as_u64().unwrap() < 128 << 10),
        "{r}"
    );
    assert_eq!(r["end"]["status"], 1, "ends with EOF: {r}");
    assert_recovered(&g, &base, 0, "after-listing.bin");
}
