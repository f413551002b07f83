//! Loopback ports for the servers the tests start (gateways, Garage, OpenBao, HAProxy).
//!
//! A port that `bind(0)` found free stays free only until something else binds it. The kernel
//! picks that port at random, so two calls in one test can return the same port (CI saw a
//! gateway's admin listener get its SSH port), and so can two test processes running side by
//! side; either way one server fails with "Address already in use". Every port handed out is
//! therefore reserved with a file in a directory all test processes share, created only if
//! absent, so no test of this run gets it a second time. Reservations older than
//! [`STALE_AFTER`] are removed: no test holds a port that long, and a run's files must not use
//! up the range for the next one.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Once;
use std::time::{Duration, SystemTime};

/// Longer than any one test process lives (nextest's slowest tests take a few minutes).
const STALE_AFTER: Duration = Duration::from_secs(20 * 60);

/// A loopback port no other caller of this function in any test process got in the last
/// [`STALE_AFTER`], free when this returns.
pub fn free_port() -> u16 {
    for _ in 0..1000 {
        let port = ephemeral_port();
        if reserve(port) {
            return port;
        }
    }
    panic!(
        "no unreserved loopback port after 1000 tries; see {}",
        dir().display()
    )
}

/// The first of `len` consecutive ports, all reserved and free when this returns (OpenBao's
/// dev mode puts its cluster listener on the port after its API; an FTPS passive range).
pub fn free_ports(len: u16) -> u16 {
    assert!(len > 0, "free_ports(0): ask for at least one port");
    'next: for _ in 0..1000 {
        let first = ephemeral_port();
        let Some(end) = first.checked_add(len - 1) else {
            continue;
        };
        for (i, p) in (first..=end).enumerate() {
            let free = p == first || TcpListener::bind(("127.0.0.1", p)).is_ok();
            if !free || !reserve(p) {
                // Ours to drop: no other caller got these.
                for q in first..first + i as u16 {
                    let _ = std::fs::remove_file(dir().join(q.to_string()));
                }
                continue 'next;
            }
        }
        return first;
    }
    panic!(
        "no {len} unreserved consecutive loopback ports after 1000 tries; see {}",
        dir().display()
    )
}

fn ephemeral_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn dir() -> PathBuf {
    std::env::temp_dir().join("eugate-test-ports")
}

/// True if this call created the port's reservation file.
fn reserve(port: u16) -> bool {
    // Once per process: the directory, once made, stays (nothing removes it).
    static PREPARE: Once = Once::new();
    let dir = dir();
    PREPARE.call_once(|| {
        std::fs::create_dir_all(&dir).unwrap();
        remove_stale(&dir);
    });
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dir.join(port.to_string()))
    {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(e) => panic!("reserving port {port} in {}: {e}", dir.display()),
    }
}

/// Removes reservations older than [`STALE_AFTER`]; another process removing the same file at
/// once is harmless.
fn remove_stale(dir: &std::path::Path) {
    let now = SystemTime::now();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > STALE_AFTER);
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
