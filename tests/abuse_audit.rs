//! Issue 13, "the audit log stays whole": what a client can make the audit log write is bounded,
//! and a full disk never breaks the chain. Each attack runs against the real gateway with real
//! clients (paramiko floods from a loopback address of their own, OpenSSH for the well-behaved
//! user); after each, the gateway's memory and descriptors are bounded, a normal upload
//! succeeds and `eugate audit verify` passes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Gateway, Options, audit_events, scripts};
use serde_json::Value;

/// Resident memory the gateway may use after an attack (it idles at about 20 MiB).
const RSS_BOUND_KIB: u64 = 256 << 10;
/// Descriptors beyond those it held before the attack (listeners, log, store) once the
/// attackers are gone.
const FD_OVERHEAD: usize = 16;
/// No audit line may exceed this, whatever a client sends (a 30,000-byte name was measured).
const LINE_BOUND: usize = 2048;

/// Runs tests/scripts/abuse_audit.py against `g` from `source`; returns its JSON report.
fn flood(g: &Gateway, source: &str, attempts: u32, extra: &[&str]) -> Value {
    let out = Command::new("python3")
        .arg(scripts().join("abuse_audit.py"))
        .args(["--port", &g.port.to_string(), "--source", source])
        .args(["--attempts", &attempts.to_string()])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "abuse_audit.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "abuse_audit.py output ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// What must hold after every attack: bounded memory and descriptors, a normal upload, and a
/// log that verifies.
fn assert_recovered(g: &Gateway, fds_before: usize, name: &str) {
    g.wait_until("the attackers' descriptors are released", || {
        g.open_fds() <= fds_before + FD_OVERHEAD
    });
    let rss = g.rss_kib();
    assert!(
        rss < RSS_BOUND_KIB,
        "gateway RSS {rss} KiB after the attack"
    );
    g.assert_normal_upload(name);
    g.assert_audit_verifies();
}

fn assert_lines_small(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    for (i, line) in text.lines().enumerate() {
        assert!(
            line.len() < LINE_BOUND,
            "audit line {} is {} bytes: {}…",
            i + 1,
            line.len(),
            &line[..200]
        );
    }
}

/// Records about `source`: its own auth records, and the attempts its summaries count.
fn from_source(records: &[Value], source: &str) -> (Vec<Value>, Vec<Value>) {
    let auth = audit_events(records, "auth")
        .into_iter()
        .filter(|e| e["source"] == source)
        .collect();
    let summaries = audit_events(records, "auth_summary")
        .into_iter()
        .filter(|e| e["source"] == source)
        .collect();
    (auth, summaries)
}

fn counted(summaries: &[Value]) -> u64 {
    summaries
        .iter()
        .map(|s| s["attempts"].as_u64().unwrap())
        .sum()
}

#[test]
fn thirty_thousand_character_user_names_make_small_records_that_keep_their_hash() {
    let mut g = Gateway::start();
    let fds = g.open_fds();
    let report = flood(
        &g,
        "127.0.0.3",
        20,
        &["--user-len", "30000", "--concurrency", "4"],
    );
    assert_eq!(report["answered"], 20, "{report}");
    let hash = report["user_sha256"].as_str().unwrap().to_string();
    assert_recovered(&g, fds, "after-long-names");
    assert_lines_small(&g.audit_path());
    let (auth, _) = from_source(&g.audit(), "127.0.0.3");
    assert!(!auth.is_empty(), "the attempts are on record");
    for a in &auth {
        let user = a["user"].as_str().unwrap();
        assert!(user.starts_with(&"A".repeat(256)), "a readable prefix");
        assert!(
            user.ends_with(&format!("…[truncated: 30000 bytes, sha256 {hash}]")),
            "{user}"
        );
    }
    // At shutdown the counted attempts are written too; every name keeps its hash there.
    g.terminate();
    assert_lines_small(&g.audit_path());
    let (auth, summaries) = from_source(&g.audit(), "127.0.0.3");
    for s in &summaries {
        for u in s["users"].as_array().unwrap() {
            assert!(u.as_str().unwrap().contains(&hash), "{s}");
        }
    }
    let recorded = auth.len() as u64 + counted(&summaries);
    assert!(
        recorded >= report["answered"].as_u64().unwrap(),
        "{recorded} attempts on record: {report}"
    );
    common::assert_audit_chain_verifies(&g.audit_path());
}

#[test]
fn a_login_flood_from_one_source_costs_the_log_a_bounded_number_of_records() {
    const ATTEMPTS: u32 = 1000;
    // `[auth] max_failures` as the gateway's default: the source is banned after a few.
    let mut g = Gateway::start_with(Options {
        max_failures: 5,
        ..Options::default()
    });
    let fds = g.open_fds();
    let before = g.audit().len();
    let port = g.port.to_string();
    let attacker = Command::new("python3")
        .arg(scripts().join("abuse_audit.py"))
        .args(["--port", &port, "--source", "127.0.0.2"])
        .args(["--attempts", &ATTEMPTS.to_string(), "--concurrency", "16"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The well-behaved user keeps working during the flood.
    g.wait_for_audit("the flood's first records", |r| {
        !from_source(r, "127.0.0.2").0.is_empty()
    });
    g.assert_normal_upload("during-flood");
    let out = attacker.wait_with_output().unwrap();
    assert!(out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let sent = report["sent"].as_u64().unwrap();
    let answered = report["answered"].as_u64().unwrap();
    assert!(answered >= 900, "the flood was not a flood: {report}");

    assert_recovered(&g, fds, "after-flood");
    g.terminate();
    let records = g.audit();
    let (auth, summaries) = from_source(&records, "127.0.0.2");
    let written = auth.len() + summaries.len();
    assert!(
        written < 100,
        "{written} records for {answered} attempts: {summaries:#?}"
    );
    assert!(
        records.len() - before < 120,
        "{} records in all",
        records.len() - before
    );
    assert!(
        summaries.iter().any(|s| s["attempts"].as_u64() > Some(100)),
        "most attempts are counted, not written one by one: {summaries:#?}"
    );
    // Every attempt is accounted for: written one by one, or counted in a summary.
    let recorded = auth.len() as u64 + counted(&summaries);
    assert!(
        (answered..=sent).contains(&recorded),
        "{recorded} on record; {report}"
    );
    for s in &summaries {
        assert!(s["users"].as_array().unwrap().len() <= 4, "{s}");
        assert!(s["first"].as_str() <= s["last"].as_str(), "{s}");
    }
    common::assert_audit_chain_verifies(&g.audit_path());
}

/// A tmpfs of its own, unmounted on drop: a disk that fills up on demand.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(at: PathBuf) -> SmallDisk {
        std::fs::create_dir_all(&at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
            .arg(&at)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "this test mounts a tmpfs to fill a disk and needs root or CAP_SYS_ADMIN (CI runs as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk(at)
    }

    fn filler(&self) -> PathBuf {
        self.0.join("filler")
    }

    /// Takes every free byte.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.filler()).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        while f.write_all(&block[..1]).is_ok() {}
    }

    fn free(&self) {
        std::fs::remove_file(self.filler()).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// The audit log, read while its disk is full: whole lines only, and a chain that verifies.
fn assert_whole(path: &Path) {
    let text = std::fs::read(path).unwrap();
    assert_eq!(
        text.last(),
        Some(&b'\n'),
        "a torn line at the end of the log"
    );
    let out = common::audit_verify(path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_full_disk_refuses_what_it_cannot_record_and_the_chain_continues_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(dir.path().join("auditdisk"));
    let log = disk.0.join("audit.jsonl");
    let g = Gateway::start_with(Options {
        audit_file: Some(log.clone()),
        ..Options::default()
    });
    let fds = g.open_fds();
    g.assert_normal_upload("before-full");
    disk.fill();
    // Uploads fill what is left of the log's last page until one cannot be recorded.
    let put = |name: &str| {
        let local = g.path(name);
        std::fs::write(&local, common::data(4096, name.len() as u64)).unwrap();
        g.sftp("alice", &format!("put {} /{name}\n", local.display()))
            .status
            .success()
    };
    let mut refused = Vec::new();
    for i in 0..40 {
        let name = format!("fill-{i}.bin");
        if !put(&name) {
            refused.push(name);
            break;
        }
    }
    assert!(
        !refused.is_empty(),
        "the audit log never filled:\n{}",
        g.log()
    );
    // Then logins, until one is refused for want of its record.
    let login = || g.sftp("alice", "ls /\n").status.success();
    assert!(
        (0..40).any(|_| !login()),
        "a login was accepted with no room for its record:\n{}",
        g.log()
    );
    assert_whole(&log);
    // While the disk stays full, nothing gets through unrecorded.
    for i in 0..3 {
        assert!(!login(), "login {i} on a full audit disk");
        let name = format!("refused-{i}.bin");
        assert!(!put(&name), "upload {name} on a full audit disk");
        refused.push(name);
    }
    assert_whole(&log);
    let stored = g.stored_files();
    for name in &refused {
        assert!(
            !stored.contains(&format!("acme/{name}")),
            "{name} is stored but was refused"
        );
    }
    // Whatever is stored is on record.
    let committed: Vec<String> = g
        .events("committed")
        .iter()
        .map(|c| c["object"].as_str().unwrap().to_string())
        .collect();
    for s in &stored {
        assert!(
            committed.contains(s),
            "{s} is stored with no committed record"
        );
    }

    // Space returns: the next records continue the chain.
    disk.free();
    assert_recovered(&g, fds, "after-full");
    assert!(
        g.events("committed")
            .iter()
            .any(|c| c["object"] == "acme/after-full"),
        "the upload after the episode is on record"
    );
    assert!(
        g.log().contains("audit log unavailable"),
        "the refusals were for the audit log"
    );
}
