//! Fault injection with real processes: one Garage S3 server and one gateway per test, driven by
//! OpenSSH `sftp` and the paramiko client. After every fault the same three things must hold:
//! each upload the client saw succeed is in Garage and decrypts to the bytes sent; every other
//! upload left no object and no multipart upload; the audit log verifies.
//!
//! Garage SIGKILLed mid-upload and the gateway SIGKILLed mid-upload are covered in
//! `tests/s3_garage.rs`; this file adds a frozen store (SIGSTOP), a killed client, 50 clients at
//! once with 5 killed, SIGTERM with a short and a generous grace period, and 20 clients
//! pipelining into a frozen store at a small memory budget.

mod common;
#[path = "garage/mod.rs"]
mod garage;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Gateway, Options, data, eventually, run_ok};
use garage::{Garage, Paused, Store};

const BUCKET: &str = "eugate-faults";
const TENANT: &str = "faultco";

struct Rig {
    garage: Garage,
    gw: Gateway,
}

/// One Garage, one gateway whose tenant `faultco` (users `erin`, `finn`) stores in it.
fn rig(storage: &str, grace: Option<u64>) -> Rig {
    let garage = Garage::start("eu-central-1", &[BUCKET]);
    let extra = format!(
        r#"
[storage]
{storage}

{dest}
{tenants}"#,
        tenants = garage::tenant_toml(TENANT, "eu-s3", &["erin", "finn"]),
        dest = garage::destination_toml("eu-s3", &garage.endpoint(), BUCKET, "eu-central-1", "DE"),
    );
    let gw = Gateway::start_with(Options {
        extra_toml: extra,
        extra_keys: vec!["erin", "finn"],
        extra_tenants: vec![TENANT],
        shutdown_grace_secs: grace,
        env: garage::gateway_env(),
        ..Options::default()
    });
    Rig { garage, gw }
}

fn key(name: &str) -> String {
    format!("{TENANT}/{name}")
}

/// Fetches the stored object and opens it with the real `eugate decrypt`.
fn stored_plaintext(gw: &Gateway, store: &Store, name: &str) -> Vec<u8> {
    gw.decrypt_bytes(&store.get(BUCKET, &key(name)))
}

/// Every multipart upload gone (aborts may run in the background, so this waits) and exactly
/// `objects` stored.
fn assert_store_holds(store: &Store, gw: &Gateway, objects: &[String]) {
    assert!(
        eventually(60, || store.uploads(BUCKET).is_empty()),
        "multipart uploads left behind: {:?}\n{}",
        store.uploads(BUCKET),
        gw.log()
    );
    let have: BTreeSet<String> = store.objects(BUCKET).into_iter().map(|(k, _)| k).collect();
    let want: BTreeSet<String> = objects.iter().cloned().collect();
    assert_eq!(have, want, "objects in the bucket");
}

fn spawn_paused(gw: &Gateway, user: &str, name: &str, mib: usize) -> Paused {
    Paused::start(gw, user, name, mib, 1)
}

/// Waits until the paused client has written its data and Garage holds its multipart upload.
fn wait_paused_in_garage(p: &Paused, store: &Store, gw: &Gateway) {
    p.wait_in_garage(store, BUCKET, &key(&p.name), gw);
}

/// The bytes `put-pause` sends for `total_mib` MiB (Python's seeded Mersenne Twister).
fn put_pause_bytes(total_mib: usize) -> Vec<u8> {
    let out = run_ok(Command::new("python3").args([
        "-c",
        &format!(
            "import random,sys\nr=random.Random(7)\n\
             sys.stdout.buffer.write(b''.join(r.randbytes(1<<20) for _ in range({total_mib})))"
        ),
    ]));
    assert_eq!(out.stdout.len(), total_mib << 20);
    out.stdout
}

/// Waits for a child with a generous deadline: a client that never gets an answer is the
/// failure this suite looks for, so it must fail the test instead of hanging it.
fn wait_child(mut child: Child, secs: u64, what: &str, gw: &Gateway) -> Output {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: no answer within {secs} s (hung)\n{}", gw.log());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn report(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "client output not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn signal_pid(pid: u32, sig: &str) {
    run_ok(
        Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string()),
    );
}

/// OpenSSH `sftp -b FILE` in the background.
fn spawn_openssh_put(gw: &Gateway, user: &str, local: &Path, remote: &str) -> Child {
    let batch = gw.path(&format!("{remote}.batch").replace('/', "_"));
    std::fs::write(&batch, format!("put {} {remote}\n", local.display())).unwrap();
    Command::new("sftp")
        .args(gw.ssh_opts(&gw.key(user)))
        .arg("-P")
        .arg(gw.port.to_string())
        .arg("-b")
        .arg(&batch)
        .arg(format!("{user}@127.0.0.1"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The paramiko `put` command in the background.
fn spawn_paramiko_put(gw: &Gateway, user: &str, local: &Path, remote: &str) -> Child {
    gw.spawn_script(
        user,
        &["put", "--path", remote, "--local", local.to_str().unwrap()],
    )
}

/// Garage frozen longer than the gateway's S3 timeout during an upload: the CLOSE gets an
/// error answer (no hang); once Garage runs again the background abort retry removes the
/// multipart upload, and the gateway serves new uploads.
#[test]
fn frozen_store_fails_the_close_and_leaves_nothing_once_thawed() {
    let r = rig(
        "request_timeout_secs = 2\nconnect_timeout_secs = 1\nparts_in_flight = 2",
        None,
    );
    let (gw, store) = (&r.gw, r.garage.store());
    let p = spawn_paused(gw, "erin", "frozen.bin", 20);
    wait_paused_in_garage(&p, &store, gw);

    let pid = r.garage.pid().expect("garage runs");
    signal_pid(pid, "STOP");
    p.go();
    // The rest of the file and CLOSE reach the gateway; its S3 requests time out.
    let out = wait_child(p.child, 300, "CLOSE against a frozen store", gw);
    signal_pid(pid, "CONT");
    let said = report(&out);
    assert_eq!(said["ok"], false, "CLOSE must fail: {said}\n{}", gw.log());

    assert_store_holds(&store, gw, &[]);
    let aborted = gw.events("aborted");
    assert!(
        aborted.iter().any(|a| a["object"] == key("frozen.bin")),
        "{aborted:?}"
    );
    assert!(gw.events("committed").is_empty());

    // The gateway was not wedged by the freeze: the next upload lands and decrypts.
    let after = data(3 << 20, 11);
    std::fs::write(gw.path("after.bin"), &after).unwrap();
    gw.sftp_ok(
        "erin",
        &format!("put {} /after.bin\n", gw.path("after.bin").display()),
    );
    assert_store_holds(&store, gw, &[key("after.bin")]);
    assert!(stored_plaintext(gw, &store, "after.bin") == after);
    gw.assert_audit_verifies();
}

/// Garage stops reading for longer than the AWS SDK's stalled-stream grace (5 s) but well
/// inside the request timeout. The SDK used to give up on such a part upload and send the part
/// again while the first attempt was still alive at the store; when the first attempt then
/// failed under a later stamp, Garage refused the commit with InvalidPart (docs/benchmarks.md).
/// Each part must be sent once, and the upload must land.
#[test]
fn a_store_stalled_for_seconds_gets_each_part_once_and_the_upload_lands() {
    let r = rig("parts_in_flight = 2", None);
    let (gw, store) = (&r.gw, r.garage.store());
    // 9 MiB first, so that the multipart upload exists; then 20 MiB into the stalled store: two
    // full 8 MiB parts, more than the kernel's socket buffers take from a peer that does not read.
    let p = Paused::start(gw, "erin", "stalled.bin", 9, 20);
    wait_paused_in_garage(&p, &store, gw);

    let pid = r.garage.pid().expect("garage runs");
    signal_pid(pid, "STOP");
    p.go();
    std::thread::sleep(Duration::from_secs(9));
    signal_pid(pid, "CONT");
    let out = wait_child(p.child, 300, "CLOSE after the store stalled", gw);
    let said = report(&out);
    assert_eq!(said["ok"], true, "CLOSE must succeed: {said}\n{}", gw.log());
    assert_store_holds(&store, gw, &[key("stalled.bin")]);
    assert!(stored_plaintext(gw, &store, "stalled.bin") == put_pause_bytes(29));
    // An attempt abandoned mid-body shows in Garage's log when it reads the rest of it.
    let log = r.garage.log();
    assert!(
        !log.contains("error reading a body"),
        "a part upload was abandoned mid-body and sent again:\n{log}"
    );
    gw.assert_audit_verifies();
}

/// What the gateway may hold beyond its memory budget while 20 uploads wait on a frozen store:
/// each upload's buffer being filled and sealed, each session's SSH state and free allowance,
/// runtime and allocator slack: 11 MiB measured. Each channel queueing what its client had in
/// flight instead (the gateway before the inflow charge) peaked 49 MiB over the budget.
const FROZEN_FLOOD_OVERHEAD_KIB: u64 = 24 << 10;

/// 20 clients pipeline 10 MiB each into a frozen store at a 32 MiB budget. Uploads that cannot
/// get a part buffer stop consuming, and what their SSH channels received beyond a small
/// allowance is charged to the budget: the gateway reads no further and the clients wait
/// through TCP, so its RSS stays within the budget plus a fixed overhead. Thawed, every upload
/// lands.
#[test]
fn pipelined_uploads_into_a_frozen_store_hold_no_more_than_the_budget() {
    let r = rig("memory_budget = \"32MiB\"\nparts_in_flight = 1", None);
    let (gw, store) = (&r.gw, r.garage.store());
    let users = ["erin", "finn"];
    // Each opens its file and writes nothing yet, so the store has seen nothing before it freezes.
    let clients: Vec<Paused> = (0..20)
        .map(|i| Paused::start(gw, users[i % 2], &format!("flood-{i:02}.bin"), 0, 10))
        .collect();
    for c in &clients {
        assert!(
            eventually(120, || c.paused()),
            "{} did not open:\n{}",
            c.name,
            gw.log()
        );
    }
    let base = gw.rss_kib();
    let pid = r.garage.pid().expect("garage runs");
    signal_pid(pid, "STOP");
    for c in &clients {
        c.go();
    }
    let mut peak = 0;
    for _ in 0..40 {
        peak = peak.max(gw.rss_kib());
        std::thread::sleep(Duration::from_millis(200));
    }
    signal_pid(pid, "CONT");
    let bound = base + (32 << 10) + FROZEN_FLOOD_OVERHEAD_KIB;
    let mut names = Vec::new();
    for c in clients {
        let out = wait_child(c.child, 300, &c.name, gw);
        let said = report(&out);
        assert_eq!(said["ok"], true, "{}: {said}\n{}", c.name, gw.log());
        names.push(c.name);
    }
    assert!(
        peak <= bound,
        "RSS peaked at {peak} KiB while the store was frozen: over {bound} KiB (start {base} + \
         budget 32 MiB + overhead {FROZEN_FLOOD_OVERHEAD_KIB} KiB)"
    );
    let expected: Vec<String> = names.iter().map(|n| key(n)).collect();
    assert_store_holds(&store, gw, &expected);
    let sent = put_pause_bytes(10);
    for n in &names {
        assert!(
            stored_plaintext(gw, &store, n) == sent,
            "{n} does not decrypt to what was sent"
        );
    }
    gw.assert_audit_verifies();
}

/// The store freezes exactly when the multipart upload is to be created: the request times out,
/// so the gateway never learns an upload id, yet the store creates the upload(s) once thawed.
/// The gateway must find and abort them.
#[test]
fn store_frozen_during_create_multipart_upload_leaves_nothing_once_thawed() {
    let r = rig("request_timeout_secs = 2\nconnect_timeout_secs = 1", None);
    let (gw, store) = (&r.gw, r.garage.store());
    // 4 MiB fit in the first part, so no request has reached the store before the freeze.
    let p = Paused::start(gw, "erin", "lost.bin", 4, 12);
    assert!(eventually(120, || p.paused()), "no pause:\n{}", gw.log());
    assert!(store.uploads(BUCKET).is_empty());
    let pid = r.garage.pid().expect("garage runs");
    signal_pid(pid, "STOP");
    p.go();
    let out = wait_child(p.child, 300, "CLOSE against a frozen store", gw);
    signal_pid(pid, "CONT");
    let said = report(&out);
    assert_eq!(said["ok"], false, "CLOSE must fail: {said}\n{}", gw.log());
    assert!(
        gw.log().contains("CreateMultipartUpload"),
        "the failure must be the create: {}",
        gw.log()
    );
    // A store may still carry out a create it held while frozen (Garage 2.5 drops it, others
    // need not): play that part with a real CreateMultipartUpload for the same key. The
    // gateway never learned this upload's id, yet must find and abort it.
    store.create_upload(BUCKET, &key("lost.bin"));
    assert_eq!(store.uploads(BUCKET), [key("lost.bin")]);
    assert_store_holds(&store, gw, &[]);
    assert!(
        gw.log()
            .contains("aborted a multipart upload whose creation had timed out"),
        "{}",
        gw.log()
    );
    assert!(gw.events("committed").is_empty());
    gw.assert_audit_verifies();
}

/// The client SIGKILLed after its data reached the gateway and Garage holds the multipart
/// upload: the gateway aborts it, nothing is stored, the abort is audited.
#[test]
fn client_killed_mid_upload_leaves_no_object_and_no_multipart_upload() {
    let r = rig("parts_in_flight = 2", None);
    let (gw, store) = (&r.gw, r.garage.store());
    let mut p = spawn_paused(gw, "erin", "victim.bin", 20);
    wait_paused_in_garage(&p, &store, gw);
    p.child.kill().unwrap();
    p.child.wait().unwrap();

    assert_store_holds(&store, gw, &[]);
    assert!(
        eventually(60, || gw
            .events("aborted")
            .iter()
            .any(|a| a["object"] == key("victim.bin"))),
        "{:?}",
        gw.events("aborted")
    );
    assert!(gw.events("committed").is_empty());
    gw.assert_audit_verifies();
}

/// 50 clients at once (OpenSSH and paramiko, two users, single-part and multipart sizes),
/// 5 of them SIGKILLed while their multipart uploads are open: the other 45 are stored and
/// decrypt byte-identically; the 5 left nothing.
#[test]
fn fifty_clients_at_once_with_five_killed() {
    let r = rig("parts_in_flight = 2", None);
    let (gw, store) = (&r.gw, r.garage.store());
    let users = ["erin", "finn"];

    // The five victims start first so that they are mid-upload while the others run.
    let victims: Vec<Paused> = (0..5)
        .map(|i| spawn_paused(gw, users[i % 2], &format!("killed-{i}.bin"), 10))
        .collect();

    let mut files = Vec::new();
    let mut clients = Vec::new();
    for i in 0..45usize {
        // Every fourth file is over one 8 MiB part, so it goes up as a multipart upload.
        let len = if i % 4 == 0 {
            (9 << 20) + i * 1000
        } else {
            (1 << 20) + i * 37_000
        };
        let name = format!("ok-{i:02}.bin");
        let local = gw.path(&name);
        let bytes = data(len, 100 + i as u64);
        std::fs::write(&local, &bytes).unwrap();
        let user = users[i % 2];
        let remote = format!("/{name}");
        let child = if i % 3 == 0 {
            spawn_paramiko_put(gw, user, &local, &remote)
        } else {
            spawn_openssh_put(gw, user, &local, &remote)
        };
        clients.push((name.clone(), i % 3 == 0, child));
        files.push((name, bytes));
    }

    for v in &victims {
        wait_paused_in_garage(v, &store, gw);
    }
    for mut v in victims {
        v.child.kill().unwrap();
        v.child.wait().unwrap();
    }

    for (name, paramiko, child) in clients {
        let out = wait_child(child, 600, &name, gw);
        if paramiko {
            let said = report(&out);
            assert_eq!(said["ok"], true, "{name}: {said}\n{}", gw.log());
        } else {
            assert!(
                out.status.success(),
                "{name}: sftp failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    let expected: Vec<String> = files.iter().map(|(n, _)| key(n)).collect();
    assert_store_holds(&store, gw, &expected);
    for (name, bytes) in &files {
        assert!(
            stored_plaintext(gw, &store, name) == *bytes,
            "{name} does not decrypt to the uploaded bytes"
        );
    }
    assert!(
        eventually(60, || gw.events("aborted").len() == 5),
        "{:?}",
        gw.events("aborted")
    );
    let aborted: BTreeSet<String> = gw
        .events("aborted")
        .iter()
        .map(|a| a["object"].as_str().unwrap_or_default().to_string())
        .collect();
    let killed: BTreeSet<String> = (0..5).map(|i| key(&format!("killed-{i}.bin"))).collect();
    assert_eq!(aborted, killed);
    assert_eq!(gw.events("committed").len(), 45);
    gw.assert_audit_verifies();
}

/// SIGTERM with a 1 s grace while a multipart upload is open: the gateway aborts it and the
/// abort has completed in Garage by the time the process exits (0); the audit log records it.
#[test]
fn sigterm_with_short_grace_aborts_the_multipart_upload_before_exiting() {
    let mut r = rig("parts_in_flight = 2", Some(1));
    let store = r.garage.store();
    let mut p = spawn_paused(&r.gw, "erin", "cut.bin", 20);
    wait_paused_in_garage(&p, &store, &r.gw);

    r.gw.signal("TERM");
    let status = r.gw.wait_exit();
    assert!(status.success(), "{status}\n{}", r.gw.log());
    // No waiting here: the exit itself must come after the abort.
    assert!(
        store.uploads(BUCKET).is_empty(),
        "the gateway exited with a multipart upload still open: {:?}\n{}",
        store.uploads(BUCKET),
        r.gw.log()
    );
    assert!(store.objects(BUCKET).is_empty());

    let gw = &r.gw;
    let aborted = gw.events("aborted");
    assert_eq!(aborted.len(), 1, "{aborted:?}");
    assert_eq!(aborted[0]["object"], key("cut.bin"));
    assert!(
        aborted[0]["cause"]
            .as_str()
            .unwrap_or_default()
            .contains("gateway shutdown"),
        "{aborted:?}"
    );
    let shutdown = gw.events("shutdown");
    assert_eq!(shutdown.len(), 1, "{shutdown:?}");
    assert_eq!(shutdown[0]["aborted"], 1, "{shutdown:?}");
    assert_eq!(shutdown[0]["unfinished"], 0, "{shutdown:?}");
    gw.assert_audit_verifies();
    let _ = p.child.kill();
    let _ = p.child.wait();
}

/// SIGTERM with a generous grace while a multipart upload is open: the client finishes it,
/// the object is stored and decrypts, and the gateway then exits 0.
#[test]
fn sigterm_with_generous_grace_lets_the_s3_upload_finish() {
    let mut r = rig("parts_in_flight = 2", Some(300));
    let store = r.garage.store();
    let p = spawn_paused(&r.gw, "erin", "finish.bin", 20);
    wait_paused_in_garage(&p, &store, &r.gw);

    r.gw.signal("TERM");
    // New connections are refused once the drain has begun; the open upload goes on.
    assert!(
        eventually(60, || matches!(
            std::net::TcpStream::connect(("127.0.0.1", r.gw.port)),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
        )),
        "the listener stayed open after SIGTERM"
    );
    p.go();
    let out = wait_child(p.child, 300, "upload during the grace period", &r.gw);
    let said = report(&out);
    assert_eq!(said["ok"], true, "{said}\n{}", r.gw.log());
    let status = r.gw.wait_exit();
    assert!(status.success(), "{status}\n{}", r.gw.log());

    let gw = &r.gw;
    assert_store_holds(&store, gw, &[key("finish.bin")]);
    assert!(stored_plaintext(gw, &store, "finish.bin") == put_pause_bytes(21));
    assert_eq!(gw.events("committed").len(), 1);
    assert!(gw.events("aborted").is_empty());
    let shutdown = gw.events("shutdown");
    assert_eq!(shutdown.len(), 1, "{shutdown:?}");
    assert_eq!(shutdown[0]["finished"], 1, "{shutdown:?}");
    assert_eq!(shutdown[0]["aborted"], 0, "{shutdown:?}");
    gw.assert_audit_verifies();
}
