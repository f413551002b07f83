//! Edge cases through a scripted client (paramiko): out-of-order writes, the reorder window,
//! disconnects, password login, exclusive create, append, session limits, ranged reads.

mod common;

use common::{BOB_PASSWORD as PW, Gateway, Options, audit_events, data};

/// A wrong password, distinctive so that a leak cannot hide among other words.
const WRONG: &str = "wrong-Tr0ub4dor-guess";

#[test]
fn out_of_order_writes_inside_the_window_round_trip() {
    let g = Gateway::start();
    let plain = data(600 * 1024 + 5, 3);
    std::fs::write(g.path("ooo.bin"), &plain).unwrap();
    let r = g.script(
        "alice",
        &["ooo-upload", "--path", "/ooo.bin", "--local", "ooo.bin"],
    );
    assert_eq!(r["ok"], true, "{r}\n{}", g.log());
    assert_eq!(g.decrypt(&g.store.join("acme/ooo.bin")), plain);
}

#[test]
fn writes_beyond_the_reorder_window_refused_with_message() {
    let g = Gateway::start(); // window 1MiB
    let r = g.script(
        "alice",
        &[
            "window-overflow",
            "--path",
            "/far.bin",
            "--offset",
            &(4 << 20).to_string(),
        ],
    );
    assert_eq!(r["ok"], false, "{r}");
    assert!(
        r["error"].as_str().unwrap().contains("reorder window"),
        "{r}"
    );
    // The client then sends CLOSE, as real clients do: it fails, naming the refused write, and
    // the 1 KiB that did arrive in order is not published.
    let close = r["close"].as_str().unwrap();
    assert!(close.contains("offset 4194304 was refused"), "{r}");
    assert!(g.stored_files().is_empty(), "{:?}", g.stored_files());
}

#[test]
fn disconnect_mid_upload_publishes_nothing() {
    let g = Gateway::start();
    let r = g.script("alice", &["disconnect-mid-upload", "--path", "/half.bin"]);
    assert_eq!(r["ok"], true, "{r}");
    g.wait_until("nothing stored", || g.stored_files().is_empty());
    // The gateway still serves.
    let r = g.script("alice", &["login"]);
    assert_eq!(r["ok"], true, "{r}");
    assert!(
        !r["listing"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "half.bin")
    );
}

#[test]
fn password_login_and_wrong_password() {
    let g = Gateway::start();
    let r = g.script("bob", &["login", "--password", PW]);
    assert_eq!(r["ok"], true, "{r}\n{}", g.log());
    let r = g.script("bob", &["login", "--password", WRONG]);
    assert_eq!(r["ok"], false, "{r}");
    assert_eq!(r["auth_failed"], true, "{r}");
    // A user without a password cannot use one.
    let r = g.script("alice", &["login", "--password", PW]);
    assert_eq!(r["auth_failed"], true, "{r}");
    // Once both refusals are recorded, no password has reached the log or the audit log,
    // in any form or position.
    g.wait_for_audit("the two refused logins", |r| {
        let auth = audit_events(r, "auth");
        ["bob", "alice"].iter().all(|u| {
            auth.iter()
                .any(|a| a["user"] == *u && a["outcome"] == "rejected")
        })
    });
    g.assert_secret_absent(PW);
    g.assert_secret_absent(WRONG);
}

#[test]
fn brute_force_leads_to_a_ban() {
    let g = Gateway::start_with(Options {
        max_failures: 3,
        ..Options::default()
    });
    for _ in 0..3 {
        let r = g.script("bob", &["login", "--password", "nope"]);
        assert_eq!(r["auth_failed"], true, "{r}");
    }
    // Banned now: even the right password is refused.
    let r = g.script("bob", &["login", "--password", PW]);
    assert_eq!(r["ok"], false, "{r}");
    assert!(g.log().contains("banned"), "{}", g.log());
}

#[test]
fn exclusive_create_append_and_read_write_refused() {
    let g = Gateway::start();
    std::fs::write(g.path("e.txt"), b"exists").unwrap();
    g.sftp_ok("alice", "put e.txt\n");
    let r = g.script("alice", &["exclusive", "--path", "/e.txt"]);
    assert_eq!(r["ok"], false, "{r}");
    assert!(
        r["error"].as_str().unwrap().contains("already exists"),
        "{r}"
    );
    let r = g.script("alice", &["exclusive", "--path", "/new.txt"]);
    assert_eq!(r["ok"], true, "exclusive create of a new file works: {r}");
    let r = g.script("alice", &["append", "--path", "/e.txt"]);
    assert_eq!(r["ok"], false, "{r}");
    assert!(
        r["error"].as_str().unwrap().contains("not supported"),
        "{r}"
    );
    let r = g.script("alice", &["readwrite", "--path", "/e.txt"]);
    assert_eq!(r["ok"], false, "{r}");
    let r = g.script("alice", &["symlink"]);
    assert_eq!(r["ok"], false, "{r}");
    g.sftp_ok("alice", "get e.txt e.back\n");
    assert_eq!(std::fs::read(g.path("e.back")).unwrap(), b"exists");
}

#[test]
fn malformed_and_hand_split_packets_get_precise_replies() {
    let g = Gateway::start();
    let r = g.script("alice", &["raw-packets", "--path", "/raw.bin"]);
    assert_eq!(r["ok"], true, "{r}\n{}", g.log());
    // One reply: its request id (if given), status code and a phrase its message must contain.
    let status = |key: &str, id: Option<u32>, code: u32, phrase: &str| {
        let reply = &r[key];
        if let Some(id) = id {
            assert_eq!(reply["id"], id, "{key}: {r}");
        }
        assert_eq!(reply["status"], code, "{key}: {r}");
        let message = reply["message"].as_str().unwrap_or_default();
        assert!(message.contains(phrase), "{key} should say {phrase:?}: {r}");
    };
    // SSH_FX_OP_UNSUPPORTED for an unknown request type, with the request's id.
    status("unknown_type", Some(5), 8, "type 99");
    // SSH_FX_BAD_MESSAGE for a WRITE whose data length disagrees with its packet length.
    status("bad_length", Some(6), 5, "data length does not match");
    status("unknown_handle", Some(7), 4, "unknown handle");
    // WRITEs cut into 997-byte channel packets arrive whole; the file round-trips.
    for k in ["write1", "write2", "close"] {
        assert_eq!(r[k]["status"], 0, "{k}: {r}");
    }
    let expected: Vec<u8> = (0..70000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(g.decrypt(&g.store.join("acme/raw.bin")), expected);
    // A packet length beyond the limit ends the channel instead of being read as data.
    assert!(r["after_oversized"].is_null(), "{r}");
    assert!(g.log().contains("exceeds the limit"), "{}", g.log());
    // The gateway still serves.
    assert_eq!(g.script("alice", &["login"])["ok"], true);
}

#[test]
fn session_limit_per_user() {
    let g = Gateway::start_with(Options {
        max_sessions_per_user: 2,
        ..Options::default()
    });
    let r = g.script("alice", &["sessions", "--count", "3"]);
    let results = r["results"].as_array().unwrap();
    assert_eq!(results[0], true);
    assert_eq!(results[1], true);
    assert_ne!(results[2], true, "{r}");
    // Once those sessions are gone, the user logs in again.
    g.wait_until("alice logs in again", || {
        g.script("alice", &["login"])["ok"] == true
    });
}

#[test]
fn reads_at_any_offset() {
    let (g, plain) = gateway_with_upload("r.bin", 5 * 65536 + 100, 11);
    for (offset, count) in [
        (0usize, 10usize),
        (65530, 20),
        (3 * 65536 + 1, 70000),
        (5 * 65536 + 90, 50),
    ] {
        let out = g.script_raw(
            "alice",
            &[
                "read-at",
                "--path",
                "/r.bin",
                "--offset",
                &offset.to_string(),
                "--count",
                &count.to_string(),
            ],
        );
        let end = (offset + count).min(plain.len());
        assert_eq!(
            out.stdout,
            &plain[offset..end],
            "offset {offset} count {count}"
        );
    }
}

/// Replies are packed into whole channel packets (frontend/sftp/outbox.rs): READs of odd sizes,
/// all in flight at once, on channels whose packets are odd sizes, come back in order and whole,
/// every byte where it belongs.
#[test]
fn pipelined_reads_come_back_whole_whatever_the_packet_size() {
    let (g, plain) = gateway_with_upload("p.bin", 3 * 65536 + 12_345, 23);
    for packet in [4096usize, 20_000, 32_768, 65_536, 1 << 20] {
        let out = g.script_raw(
            "alice",
            &[
                "pipelined-reads",
                "--path",
                "/p.bin",
                "--offset",
                &plain.len().to_string(),
                "--count",
                &packet.to_string(),
            ],
        );
        assert!(
            out.status.success(),
            "packet {packet}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout == plain, "packet {packet}: the data differs");
    }
}

#[test]
fn residency_policy_denial_names_the_rule() {
    let g = Gateway::start();
    // gamma's route points at a disk declared to be in the US: personal data may not go there.
    let r = g.script("dave", &["exclusive", "--path", "/x.txt"]);
    assert_eq!(r["ok"], false, "{r}");
    let msg = r["error"].as_str().unwrap();
    assert!(msg.contains("residency policy denied"), "{msg}");
    assert!(msg.contains("default-deny"), "{msg}");
    let out = g.sftp("dave", "ls\n");
    assert!(out.status.success(), "listing is not a transfer");
    assert!(
        std::fs::read_dir(g.path("store-us/gamma"))
            .unwrap()
            .next()
            .is_none(),
        "no byte reached the denied destination"
    );
    assert!(g.log().contains("allowed=false"), "{}", g.log());
}

#[test]
fn shutdown_aborts_uploads_in_flight() {
    // A short grace period: the held upload is never closed, so it is aborted when it ends.
    let mut g = Gateway::start_with(Options {
        shutdown_grace_secs: Some(1),
        ..Options::default()
    });
    let mut holder = g.spawn_script(
        "alice",
        &["hold-upload", "--path", "/held.bin", "--count", "60"],
    );
    // The temp file exists once the server has the data.
    g.wait_until("the temp file", || !g.stored_files().is_empty());
    let files = g.stored_files();
    assert!(files[0].contains(".eugate-tmp-"), "{files:?}");
    let status = g.terminate();
    assert!(status.success(), "{status}\n{}", g.log());
    assert!(g.stored_files().is_empty(), "{:?}", g.stored_files());
    let _ = holder.kill();
    let _ = holder.wait();
}

#[test]
fn idle_sessions_are_dropped_and_active_ones_kept() {
    let g = Gateway::start_with(Options {
        idle_timeout_secs: 2,
        ..Options::default()
    });
    // Silent for 1 s: still served.
    let r = g.script("alice", &["idle", "--count", "1"]);
    assert_eq!(r["second_ok"], true, "{r}");
    // Silent for 5 s (> 2 s idle timeout): the gateway has closed the connection.
    let r = g.script("alice", &["idle", "--count", "5"]);
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["second_ok"], false, "{r}\n{}", g.log());
}

/// A gateway where alice has put `name`: `len` bytes of seeded data, returned for comparison.
fn gateway_with_upload(name: &str, len: usize, seed: u64) -> (Gateway, Vec<u8>) {
    let g = Gateway::start();
    let plain = data(len, seed);
    std::fs::write(g.path(name), &plain).unwrap();
    g.sftp_ok("alice", &format!("put {name}\n"));
    (g, plain)
}
