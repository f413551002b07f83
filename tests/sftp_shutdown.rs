//! Graceful shutdown: on SIGTERM the gateway stops accepting connections, lets running uploads
//! finish within `[server] shutdown_grace_secs`, aborts the rest (nothing published, no temp
//! files), records what happened in the audit log and exits 0.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Gateway, Options, bin, data, scripts};

fn records(g: &Gateway) -> Vec<serde_json::Value> {
    std::fs::read_to_string(g.path("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn events(g: &Gateway, kind: &str) -> Vec<serde_json::Value> {
    records(g)
        .into_iter()
        .filter(|r| r["event"]["type"] == kind)
        .map(|r| r["event"].clone())
        .collect()
}

fn assert_audit_verifies(g: &Gateway) {
    let out = Command::new(bin())
        .args(["audit", "verify"])
        .arg(g.path("audit.jsonl"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The one shutdown record, checked against the expected counts.
fn assert_shutdown_record(g: &Gateway, grace: u64, running: u64, finished: u64, aborted: u64) {
    let s = events(g, "shutdown");
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0]["grace_secs"], grace, "{s:?}");
    assert_eq!(s[0]["running_at_signal"], running, "{s:?}");
    assert_eq!(s[0]["finished"], finished, "{s:?}");
    assert_eq!(s[0]["aborted"], aborted, "{s:?}");
    assert_eq!(s[0]["unfinished"], 0, "{s:?}");
    // And the lifecycle stop comes last.
    let recs = records(g);
    let last = &recs.last().unwrap()["event"];
    assert_eq!(last["type"], "lifecycle", "{last}");
    assert_eq!(last["action"], "stop", "{last}");
}

fn wait_until(what: &str, g: &Gateway, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out: {what}\n{}", g.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts the paramiko client in the background with piped stdout.
fn spawn_script(g: &Gateway, args: &[&str]) -> (Child, BufReader<ChildStdout>) {
    let mut child = Command::new("python3")
        .arg(scripts().join("sftp_client.py"))
        .args(args)
        .arg("--port")
        .arg(g.port.to_string())
        .arg("--user")
        .arg("alice")
        .arg("--key")
        .arg(g.key("alice"))
        .current_dir(g.dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    (child, out)
}

fn read_json(out: &mut BufReader<ChildStdout>) -> serde_json::Value {
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
}

fn connection_refused(port: u16) -> bool {
    matches!(
        TcpStream::connect(("127.0.0.1", port)),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

#[test]
fn upload_closed_within_grace_commits_and_new_connections_are_refused() {
    let mut g = Gateway::start_with(Options {
        shutdown_grace_secs: Some(300),
        ..Options::default()
    });
    let plain = data(3 << 20, 41);
    std::fs::write(g.path("slow.bin"), &plain).unwrap();
    let gate = g.path("gate");
    let (mut client, mut out) = spawn_script(
        &g,
        &[
            "gated-upload",
            "--local",
            "slow.bin",
            "--path",
            "/slow.bin",
            "--gate",
            gate.to_str().unwrap(),
        ],
    );
    let first = read_json(&mut out);
    assert_eq!(first["holding"], true, "{first}");

    g.signal("TERM");
    // The listener closes while the upload is still open (the client waits for the gate).
    wait_until("listener closed", &g, || connection_refused(g.port));
    assert!(
        g.stored_files().iter().all(|f| f.contains(".eugate-tmp-")),
        "nothing published yet: {:?}",
        g.stored_files()
    );

    std::fs::write(&gate, b"go").unwrap();
    let done = read_json(&mut out);
    assert_eq!(done["ok"], true, "{done}\n{}", g.log());
    let _ = client.wait();

    let status = g.wait_exit();
    assert!(status.success(), "{status}\n{}", g.log());
    assert_eq!(g.stored_files(), vec!["acme/slow.bin".to_string()]);
    assert_eq!(g.decrypt(&g.store.join("acme/slow.bin")), plain);
    assert_eq!(events(&g, "committed").len(), 1);
    assert!(
        events(&g, "aborted").is_empty(),
        "{:?}",
        events(&g, "aborted")
    );
    assert_shutdown_record(&g, 300, 1, 1, 0);
    assert_audit_verifies(&g);
}

#[test]
fn upload_still_open_at_the_deadline_is_aborted_and_leaves_nothing() {
    let mut g = Gateway::start_with(Options {
        shutdown_grace_secs: Some(1),
        ..Options::default()
    });
    // Holds the file open (never closes it) far longer than the grace period.
    let (mut holder, mut out) = spawn_script(&g, &["hold-upload", "--count", "600"]);
    let first = read_json(&mut out);
    assert_eq!(first["holding"], true, "{first}");
    assert!(
        g.stored_files()[0].contains(".eugate-tmp-"),
        "{:?}",
        g.stored_files()
    );

    g.signal("TERM");
    let status = g.wait_exit();
    assert!(status.success(), "{status}\n{}", g.log());
    assert!(g.stored_files().is_empty(), "{:?}", g.stored_files());
    let aborted = events(&g, "aborted");
    assert_eq!(aborted.len(), 1, "{aborted:?}");
    assert!(
        aborted[0]["cause"]
            .as_str()
            .unwrap()
            .contains("gateway shutdown"),
        "{aborted:?}"
    );
    assert!(events(&g, "committed").is_empty());
    assert_shutdown_record(&g, 1, 1, 0, 1);
    assert_audit_verifies(&g);
    let _ = holder.kill();
    let _ = holder.wait();
}

#[test]
fn grace_zero_aborts_at_once() {
    let mut g = Gateway::start_with(Options {
        shutdown_grace_secs: Some(0),
        ..Options::default()
    });
    let (mut holder, mut out) = spawn_script(&g, &["hold-upload", "--count", "600"]);
    assert_eq!(read_json(&mut out)["holding"], true);
    g.signal("TERM");
    let status = g.wait_exit();
    assert!(status.success(), "{status}\n{}", g.log());
    assert!(g.stored_files().is_empty(), "{:?}", g.stored_files());
    assert_shutdown_record(&g, 0, 1, 0, 1);
    assert_audit_verifies(&g);
    let _ = holder.kill();
    let _ = holder.wait();
}

#[test]
fn idle_gateway_exits_without_waiting_for_the_grace_period() {
    // An hour of grace and a logged-in but idle session: with no upload running the gateway
    // must not wait at all (if it did, this test would hang instead of finishing).
    let mut g = Gateway::start_with(Options {
        shutdown_grace_secs: Some(3600),
        ..Options::default()
    });
    let (mut idler, _out) = spawn_script(&g, &["idle", "--count", "3600"]);
    wait_until("login recorded", &g, || {
        events(&g, "auth")
            .iter()
            .any(|a| a["outcome"] == "accepted")
    });
    g.signal("TERM");
    let status = g.wait_exit();
    assert!(status.success(), "{status}\n{}", g.log());
    assert_shutdown_record(&g, 3600, 0, 0, 0);
    assert_audit_verifies(&g);
    let _ = idler.kill();
    let _ = idler.wait();
}

#[test]
fn sigint_is_a_graceful_shutdown_too() {
    let mut g = Gateway::start();
    g.signal("INT");
    let status = g.wait_exit();
    assert!(status.success(), "{status}\n{}", g.log());
    assert_shutdown_record(&g, 30, 0, 0, 0);
    assert_audit_verifies(&g);
}

#[test]
fn config_check_names_a_bad_grace_value() {
    let g = Gateway::start();
    let text = std::fs::read_to_string(&g.config).unwrap();
    for (value, expect) in [
        ("shutdown_grace_secs = 99999999", "in seconds"),
        ("shutdown_grace_secs = -5", "shutdown_grace_secs"),
        ("shutdown_grace_secs = \"30s\"", "shutdown_grace_secs"),
    ] {
        let bad = g.path("bad.toml");
        std::fs::write(
            &bad,
            text.replacen("[server]", &format!("[server]\n{value}"), 1),
        )
        .unwrap();
        let out = Command::new(bin())
            .args(["config", "check"])
            .arg(&bad)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{value}: {err}");
        assert!(err.contains("shutdown_grace_secs"), "{value}: {err}");
        assert!(err.contains(expect), "{value}: {err}");
    }
}
