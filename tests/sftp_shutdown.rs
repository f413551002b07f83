//! Graceful shutdown: on SIGTERM the gateway stops accepting connections, lets running uploads
//! finish within `[server] shutdown_grace_secs`, aborts the rest (nothing published, no temp
//! files), records what happened in the audit log and exits 0.

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, ChildStdout, Command};

use common::{Gateway, Options, bin, data};

/// The one shutdown record, checked against the expected counts.
fn assert_shutdown_record(g: &Gateway, grace: u64, running: u64, finished: u64, aborted: u64) {
    let s = g.events("shutdown");
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0]["grace_secs"], grace, "{s:?}");
    assert_eq!(s[0]["running_at_signal"], running, "{s:?}");
    assert_eq!(s[0]["finished"], finished, "{s:?}");
    assert_eq!(s[0]["aborted"], aborted, "{s:?}");
    assert_eq!(s[0]["unfinished"], 0, "{s:?}");
    // And the lifecycle stop comes last.
    let recs = g.audit();
    let last = &recs.last().unwrap()["event"];
    assert_eq!(last["type"], "lifecycle", "{last}");
    assert_eq!(last["action"], "stop", "{last}");
}

/// Starts the paramiko client as alice in the background; its JSON lines come from the reader.
fn spawn_script(g: &Gateway, args: &[&str]) -> (Child, BufReader<ChildStdout>) {
    let mut child = g.spawn_script("alice", args);
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
    g.wait_until("listener closed", || connection_refused(g.port));
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
    assert_eq!(g.events("committed").len(), 1);
    assert!(g.events("aborted").is_empty(), "{:?}", g.events("aborted"));
    assert_shutdown_record(&g, 300, 1, 1, 0);
    g.assert_audit_verifies();
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
    let aborted = g.events("aborted");
    assert_eq!(aborted.len(), 1, "{aborted:?}");
    assert!(
        aborted[0]["cause"]
            .as_str()
            .unwrap()
            .contains("gateway shutdown"),
        "{aborted:?}"
    );
    assert!(g.events("committed").is_empty());
    assert_shutdown_record(&g, 1, 1, 0, 1);
    g.assert_audit_verifies();
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
    g.assert_audit_verifies();
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
    g.wait_until("login recorded", || {
        g.events("auth").iter().any(|a| a["outcome"] == "accepted")
    });
    g.signal("TERM");
    let status = g.wait_exit();
    assert!(status.success(), "{status}\n{}", g.log());
    assert_shutdown_record(&g, 3600, 0, 0, 0);
    g.assert_audit_verifies();
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
    g.assert_audit_verifies();
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
