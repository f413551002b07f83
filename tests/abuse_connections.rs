//! Issue 13, connection-level abuse: a client that stops reading, a flood of channels on one
//! connection, a flood of pre-login connections, and a silent connection. Each attack runs
//! against the real binary with a real client (paramiko, raw sockets:
//! tests/scripts/abuse_conn.py); afterwards the gateway's memory and file descriptors are under
//! the configured bounds plus a fixed overhead, a normal OpenSSH upload succeeds (during the
//! attack too), and the audit log verifies.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};

use common::{Gateway, Options, scripts};

/// What the gateway may use beyond what the configured caps allow: the runtime, the tokio
/// threads, the keyring, the policy engine. An idle test gateway sits at 20-40 MiB.
const RSS_OVERHEAD_KIB: u64 = 128 << 10;
/// Descriptors beyond the connection cap: listeners, the audit log, stdio, epoll, the store.
const FD_OVERHEAD: usize = 64;

struct Attack {
    child: Child,
    lines: BufReader<ChildStdout>,
}

impl Attack {
    fn start(gw: &Gateway, args: &[&str]) -> Attack {
        let mut child = Command::new("python3")
            .arg(scripts().join("abuse_conn.py"))
            .args(args)
            .arg("--port")
            .arg(gw.port.to_string())
            .arg("--key")
            .arg(gw.key("alice"))
            .current_dir(gw.dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap());
        Attack { child, lines }
    }

    /// The next JSON line; panics with the gateway log if the script ended first.
    fn next(&mut self, gw: &Gateway) -> serde_json::Value {
        let mut line = String::new();
        self.lines.read_line(&mut line).unwrap();
        assert!(
            !line.is_empty(),
            "attack script ended early\n--- gateway log ---\n{}",
            gw.log()
        );
        serde_json::from_str(&line).unwrap()
    }

    fn finish(mut self, gw: &Gateway) -> serde_json::Value {
        let end = self.next(gw);
        assert!(self.child.wait().unwrap().success());
        end
    }
}

fn limits(extra: &str) -> Options {
    Options {
        extra_toml: format!("\n[limits]\n{extra}\n"),
        ..Options::default()
    }
}

fn assert_bounded(gw: &Gateway, rss_budget_kib: u64, fd_cap: usize) {
    let rss = gw.rss_kib();
    // The figures the closing note quotes (`-- --nocapture`).
    eprintln!("gateway RSS {rss} KiB, {} fds", gw.open_fds());
    assert!(
        rss <= rss_budget_kib + RSS_OVERHEAD_KIB,
        "RSS {rss} KiB over {rss_budget_kib} KiB + overhead"
    );
    let fds = gw.open_fds();
    assert!(fds <= fd_cap + FD_OVERHEAD, "{fds} fds open, cap {fd_cap}");
}

#[test]
fn a_client_that_stops_reading_is_cut_off_and_its_slot_memory_and_upload_released() {
    let mut o = limits("reply_timeout_secs = 2\nchannel_buffer = \"1MiB\"");
    o.max_sessions_per_user = 3;
    let gw = Gateway::start_with(o);
    // Twice two stalled uploads: if a stalled connection kept its session slot, the second
    // round could not log in (3 slots per user).
    for round in 0..2 {
        let mut attacks: Vec<Attack> = (0..2)
            .map(|i| {
                let path = format!("/stalled-{round}-{i}.bin");
                Attack::start(&gw, &["stall", "--path", &path, "--wait", "60"])
            })
            .collect();
        for a in &mut attacks {
            assert_eq!(a.next(&gw)["phase"], "stalling");
        }
        // The third slot is free for a well-behaved client, while the two are stuck.
        gw.assert_normal_upload(&format!("during-{round}.bin"));
        for a in attacks {
            let end = a.finish(&gw);
            assert_eq!(end["disconnected"], true, "{end}\n{}", gw.log());
            assert!(end["sent"].as_u64().unwrap() > 0, "{end}");
        }
    }
    gw.wait_for_log("client has not taken a reply", 4);
    // Every stalled upload aborted: an `aborted` record each, nothing stored.
    gw.wait_until("four aborted uploads", || {
        gw.events("aborted")
            .iter()
            .filter(|r| r["object"].as_str().unwrap_or("").contains("stalled"))
            .count()
            == 4
    });
    let stored = gw.stored_files();
    assert!(
        !stored.iter().any(|f| f.contains("stalled")),
        "a stalled upload left an object: {stored:?}"
    );
    gw.assert_normal_upload("after.bin");
    // 4 channel buffers of 1 MiB plus the reorder windows, long released.
    assert_bounded(&gw, 8 << 10, 16);
    gw.assert_audit_verifies();
}

#[test]
fn shutdown_aborts_an_upload_whose_client_stopped_reading() {
    let mut o = limits("reply_timeout_secs = 600");
    o.shutdown_grace_secs = Some(1);
    let mut gw = Gateway::start_with(o);
    let mut attack = Attack::start(
        &gw,
        &["stall", "--path", "/at-shutdown.bin", "--wait", "60"],
    );
    assert_eq!(attack.next(&gw)["phase"], "stalling");
    gw.wait_for_audit("the upload's decision", |r| {
        common::audit_events(r, "decision")
            .iter()
            .any(|d| d["object"].as_str().unwrap_or("").contains("at-shutdown"))
    });
    gw.signal("TERM");
    let status = gw.wait_exit();
    assert!(status.success(), "{status:?}\n{}", gw.log());
    let end = attack.finish(&gw);
    assert_eq!(end["disconnected"], true, "{end}");
    let aborted = gw.events("aborted");
    assert_eq!(aborted.len(), 1, "{aborted:?}\n{}", gw.log());
    assert!(gw.events("committed").is_empty());
    assert!(!gw.stored_files().iter().any(|f| f.contains("at-shutdown")));
    assert!(!gw.log().contains("uploads still aborting"), "{}", gw.log());
    gw.assert_audit_verifies();
}

#[test]
fn session_channels_past_the_cap_are_refused_and_the_rest_keep_working() {
    let gw = Gateway::start_with(limits("max_channels_per_connection = 10"));
    let fds_before = gw.open_fds();
    let mut attack = Attack::start(&gw, &["channels", "--count", "300", "--reclose", "4"]);
    let opened = attack.next(&gw);
    assert_eq!(opened["accepted"], 10, "{opened}\n{}", gw.log());
    assert_eq!(opened["refused"], 290, "{opened}");
    assert_eq!(opened["working"], 10, "{opened}");
    assert_eq!(opened["alive"], true, "{opened}");
    // A closed channel gives its place back.
    let end = attack.finish(&gw);
    assert_eq!(end["reopened"], 4, "{end}\n{}", gw.log());
    gw.assert_normal_upload("after-channels.bin");
    assert_bounded(&gw, 16 << 10, fds_before);
    gw.assert_audit_verifies();
}

#[test]
fn a_channel_packet_over_the_advertised_maximum_ends_the_connection() {
    let gw = Gateway::start();
    let end = Attack::start(&gw, &["bigpacket", "--count", "250000", "--wait", "30"]).finish(&gw);
    assert_eq!(end["advertised"], 32768, "{end}");
    assert_eq!(end["sent"], 250_000, "{end}");
    assert_eq!(end["disconnected"], true, "{end}\n{}", gw.log());
    gw.wait_for_log("channel packet over the advertised maximum", 1);
    gw.assert_normal_upload("after-bigpacket.bin");
}

#[test]
fn twenty_thousand_idle_connections_do_not_stop_a_normal_login() {
    let gw = Gateway::start_with(limits(
        "max_connections = 256\nmax_unauthenticated = 64\nmax_unauthenticated_per_source = 8\nlogin_grace_secs = 3",
    ));
    let mut flood = Attack::start(
        &gw,
        &[
            "flood",
            "--count",
            "20000",
            "--sources",
            "40",
            "--wait",
            "8",
        ],
    );
    let ready = flood.next(&gw);
    assert!(ready["opened"].as_u64().unwrap() >= 19_000, "{ready}");
    // While they are held: at most the connection cap in descriptors, and a normal login
    // (from 127.0.0.1, which holds no slot) gets through.
    assert_bounded(&gw, 16 << 10, 256);
    gw.assert_normal_upload("during-flood.bin");
    flood.finish(&gw);
    // The flood's connections are gone (closed by the client, or by the login grace time).
    let base = FD_OVERHEAD;
    assert!(
        common::eventually(20, || gw.open_fds() <= base),
        "{} fds still open",
        gw.open_fds()
    );
    gw.assert_normal_upload("after-flood.bin");
    gw.assert_audit_verifies();
}

#[test]
fn a_silent_connection_is_closed_at_the_login_grace_time() {
    let gw = Gateway::start_with(limits("login_grace_secs = 2"));
    let end = Attack::start(&gw, &["silent", "--wait", "30"]).finish(&gw);
    assert_eq!(end["closed"], true, "{end}\n{}", gw.log());
    assert!(
        end["banner"]
            .as_str()
            .unwrap()
            .starts_with("SSH-2.0-eugate"),
        "{end}"
    );
    gw.wait_for_log("login_grace_secs", 1);
    gw.assert_normal_upload("after-silent.bin");
}
