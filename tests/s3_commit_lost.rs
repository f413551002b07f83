//! Commits tell the truth when the store's answer is lost: a TCP relay in front of a real Garage
//! passes the CompleteMultipartUpload request on and then cuts the connection instead of
//! relaying the answer. The store did complete the object, so the client must hear OK (the
//! gateway checks with HeadObject), and the object must decrypt to what was sent.

mod common;
#[path = "garage/mod.rs"]
mod garage;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::{Gateway, Options, data};
use garage::Garage;

const BUCKET: &str = "eugate-lost";

/// Relays loopback connections to `upstream`; the first response to a request whose first
/// line is a POST with `uploadId=` (CompleteMultipartUpload) is never relayed: the client's
/// connection is cut once the store has answered.
struct Relay {
    port: u16,
    cut: Arc<AtomicUsize>,
}

impl Relay {
    fn start(upstream: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicUsize::new(0));
        let armed = Arc::new(AtomicBool::new(true));
        let counter = cut.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (armed, counter) = (armed.clone(), counter.clone());
                std::thread::spawn(move || relay(client, server, armed, counter));
            }
        });
        Relay { port, cut }
    }
}

fn relay(client: TcpStream, server: TcpStream, armed: Arc<AtomicBool>, cut: Arc<AtomicUsize>) {
    let dropping = Arc::new(AtomicBool::new(false));
    let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let flag = dropping.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match c_in.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let head = String::from_utf8_lossy(&buf[..n.min(512)]);
            if head.starts_with("POST ")
                && head.lines().next().is_some_and(|l| l.contains("uploadId="))
                && armed.swap(false, Ordering::SeqCst)
            {
                flag.store(true, Ordering::SeqCst);
            }
            if s_out.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = s_out.shutdown(Shutdown::Write);
    });
    let (mut s_in, mut c_out) = (server, client);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match s_in.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if dropping.load(Ordering::SeqCst) {
            // The store answered the commit; the gateway never hears it.
            cut.fetch_add(1, Ordering::SeqCst);
            let _ = c_out.shutdown(Shutdown::Both);
            let _ = s_in.shutdown(Shutdown::Both);
            return;
        }
        if c_out.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = c_out.shutdown(Shutdown::Both);
}

#[test]
fn a_completed_upload_whose_answer_is_lost_is_reported_as_stored() {
    let g = Garage::start("eu-central-1", &[BUCKET]);
    let relay = Relay::start(g.s3_port);
    let extra = format!(
        "\n[storage]\nrequest_timeout_secs = 5\nconnect_timeout_secs = 2\n{}{}",
        garage::destination_toml(
            "eu-s3",
            &format!("http://127.0.0.1:{}", relay.port),
            BUCKET,
            "eu-central-1",
            "DE"
        ),
        garage::tenant_toml("eurobank", "eu-s3", &["erin"]),
    );
    let gw = Gateway::start_with(Options {
        extra_toml: extra,
        extra_keys: vec!["erin"],
        extra_tenants: vec!["eurobank"],
        env: garage::gateway_env(),
        ..Options::default()
    });
    // Over one part (8 MiB), so it is a multipart upload with a CompleteMultipartUpload.
    let plain = data(9 << 20, 41);
    std::fs::write(gw.path("big.bin"), &plain).unwrap();
    gw.sftp_ok(
        "erin",
        &format!("put {} /big.bin\n", gw.path("big.bin").display()),
    );
    assert_eq!(
        relay.cut.load(Ordering::SeqCst),
        1,
        "the commit's answer was not cut:\n{}",
        gw.log()
    );
    assert!(
        gw.log().contains("commit unanswered; checking the store"),
        "{}",
        gw.log()
    );
    let store = g.store();
    let stored = store.get(BUCKET, "eurobank/big.bin");
    assert_eq!(gw.decrypt_bytes(&stored), plain);
    assert!(store.uploads(BUCKET).is_empty());
    let committed = gw.events("committed");
    assert_eq!(committed.len(), 1, "{committed:?}");
    assert!(gw.events("aborted").is_empty());
}
