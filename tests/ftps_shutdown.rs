//! SIGTERM while an FTPS upload runs: the upload either completes within
//! `[server] shutdown_grace_secs` (published, the client gets its 226) or is aborted at the
//! deadline with nothing published and nothing left in the store; the gateway exits 0 and the
//! shutdown record counts it (as tests/sftp_shutdown.rs does for SFTP).

mod common;
#[path = "ftps_support/mod.rs"]
mod ftps_support;
#[path = "garage/mod.rs"]
mod garage;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, ChildStdout, Command, Stdio};

use common::{BOB_PASSWORD, Options, data};
use ftps_support::{Ftps, FtpsOptions, make_certs, start_with};

fn start(grace: u64) -> Ftps {
    start_with(
        make_certs("demo-client"),
        FtpsOptions {
            gateway: Options {
                shutdown_grace_secs: Some(grace),
                ..Options::default()
            },
            ..FtpsOptions::default()
        },
    )
}

/// tests/scripts/ftps_client.py gated_stor in the background; its JSON lines from the reader.
fn spawn_stor(f: &Ftps, args: &[&str]) -> (Child, BufReader<ChildStdout>) {
    spawn_stor_as(f, "bob", args)
}

fn spawn_stor_as(f: &Ftps, user: &str, args: &[&str]) -> (Child, BufReader<ChildStdout>) {
    let mut child = Command::new("python3")
        .arg(common::scripts().join("ftps_client.py"))
        .arg("gated_stor")
        .args(["--port", &f.port.to_string(), "--user", user])
        .args(["--password", BOB_PASSWORD])
        .arg("--cafile")
        .arg(&f.ca)
        .args(args)
        .current_dir(f.g.dir.path())
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

fn shutdown_record(f: &Ftps) -> serde_json::Value {
    let s = f.g.events("shutdown");
    assert_eq!(s.len(), 1, "{s:?}");
    s[0].clone()
}

#[test]
fn upload_finished_within_grace_is_published_and_acknowledged() {
    let mut f = start(300);
    let plain = data(3 << 20, 51);
    std::fs::write(f.g.path("slow.bin"), &plain).unwrap();
    let gate = f.g.path("gate");
    let (mut client, mut out) = spawn_stor(
        &f,
        &[
            "--local",
            "slow.bin",
            "--name",
            "slow.bin",
            "--gate",
            gate.to_str().unwrap(),
        ],
    );
    assert_eq!(read_json(&mut out)["holding"], true);

    f.g.signal("TERM");
    // The FTPS listener closes while the upload is still open.
    f.g.wait_until("FTPS listener closed", || {
        matches!(TcpStream::connect(("127.0.0.1", f.port)),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused)
    });
    assert!(
        f.g.stored_files()
            .iter()
            .all(|n| n.contains(".eugate-tmp-")),
        "nothing published yet: {:?}",
        f.g.stored_files()
    );
    std::fs::write(&gate, b"go").unwrap();
    let done = read_json(&mut out);
    assert_eq!(done["ok"], true, "{done}\n{}", f.g.log());
    assert!(done["reply"].as_str().unwrap().starts_with("226"), "{done}");
    let _ = client.wait();

    let status = f.g.wait_exit();
    assert!(status.success(), "{status}\n{}", f.g.log());
    assert_eq!(f.g.stored_files(), vec!["acme/slow.bin".to_string()]);
    assert_eq!(f.g.decrypt(&f.stored("slow.bin")), plain);
    let s = shutdown_record(&f);
    assert_eq!(
        (
            s["running_at_signal"].as_u64(),
            s["finished"].as_u64(),
            s["aborted"].as_u64()
        ),
        (Some(1), Some(1), Some(0)),
        "{s}"
    );
    f.g.assert_audit_verifies();
}

#[test]
fn upload_still_open_at_the_deadline_is_aborted_and_leaves_nothing() {
    let mut f = start(1);
    std::fs::write(f.g.path("held.bin"), data(2 << 20, 52)).unwrap();
    let (mut client, mut out) = spawn_stor(
        &f,
        &["--local", "held.bin", "--name", "held.bin", "--hold", "600"],
    );
    assert_eq!(read_json(&mut out)["holding"], true);
    assert!(
        f.g.stored_files()
            .iter()
            .any(|n| n.contains(".eugate-tmp-")),
        "{:?}",
        f.g.stored_files()
    );
    f.g.signal("TERM");
    let status = f.g.wait_exit();
    assert!(status.success(), "{status}\n{}", f.g.log());
    assert!(f.g.stored_files().is_empty(), "{:?}", f.g.stored_files());
    let aborted = f.g.events("aborted");
    assert_eq!(aborted.len(), 1, "{aborted:?}");
    assert!(f.g.events("committed").is_empty());
    let s = shutdown_record(&f);
    assert_eq!(
        (
            s["running_at_signal"].as_u64(),
            s["finished"].as_u64(),
            s["aborted"].as_u64(),
            s["unfinished"].as_u64()
        ),
        (Some(1), Some(0), Some(1), Some(0)),
        "{s}"
    );
    f.g.assert_audit_verifies();
    let _ = client.kill();
    let _ = client.wait();
}

/// The same on an S3 store (Garage): the upload held open at the deadline is a multipart
/// upload in the bucket, and the gateway exits only after aborting it there.
#[test]
fn s3_multipart_upload_open_at_the_deadline_is_aborted_in_the_store_before_exit() {
    const BUCKET: &str = "eugate-ftps-shutdown";
    let g = garage::Garage::start("eu-central-1", &[BUCKET]);
    let store = g.store();
    let mut f = start_with(
        make_certs("demo-client"),
        FtpsOptions {
            users_toml: "[tenants.s3co.users.fay]\npassword_hash = \"{hash}\"\n".into(),
            gateway: Options {
                shutdown_grace_secs: Some(1),
                extra_toml: format!(
                    "{}{}",
                    garage::destination_toml("eu-s3", &g.endpoint(), BUCKET, "eu-central-1", "DE"),
                    garage::tenant_toml("s3co", "eu-s3", &[]),
                ),
                extra_tenants: vec!["s3co"],
                env: garage::gateway_env(),
                ..Options::default()
            },
            ..FtpsOptions::default()
        },
    );
    std::fs::write(f.g.path("big.bin"), data(48 << 20, 53)).unwrap();
    let (mut client, mut out) = spawn_stor_as(
        &f,
        "fay",
        &["--local", "big.bin", "--name", "big.bin", "--hold", "600"],
    );
    assert_eq!(read_json(&mut out)["holding"], true);
    f.g.wait_until("the multipart upload is open in Garage", || {
        store.uploads(BUCKET).iter().any(|k| k == "s3co/big.bin")
    });
    f.g.signal("TERM");
    let status = f.g.wait_exit();
    assert!(status.success(), "{status}\n{}", f.g.log());
    // No waiting: the exit itself comes after the abort.
    assert!(
        store.uploads(BUCKET).is_empty(),
        "exited with a multipart upload open: {:?}\n{}",
        store.uploads(BUCKET),
        f.g.log()
    );
    assert!(
        store.objects(BUCKET).is_empty(),
        "{:?}",
        store.objects(BUCKET)
    );
    assert_eq!(
        f.g.events("aborted").len(),
        1,
        "{:?}",
        f.g.events("aborted")
    );
    let s = shutdown_record(&f);
    assert_eq!(
        (s["aborted"].as_u64(), s["unfinished"].as_u64()),
        (Some(1), Some(0)),
        "{s}"
    );
    f.g.assert_audit_verifies();
    let _ = client.kill();
    let _ = client.wait();
}
