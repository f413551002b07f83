//! One auth layer for both front ends: failed logins, sessions per user and the connections
//! still logging in are counted across SFTP and FTPS, so a second protocol is not a second
//! allowance. And every transfer record names the protocol it came through.

mod common;
#[path = "ftps_support/mod.rs"]
mod ftps_support;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{BOB_PASSWORD, Options, data, eventually, run_ok};
use ftps_support::{Ftps, FtpsOptions, make_certs, start_with};

/// A gateway serving SFTP and FTPS (`tests/ftps_support`).
fn start(o: Options) -> Ftps {
    start_with(
        make_certs("demo-client"),
        FtpsOptions {
            gateway: o,
            ..FtpsOptions::default()
        },
    )
}

/// A login held open until the child's stdin is closed (dropped).
struct Held {
    child: Child,
    first: serde_json::Value,
}

impl Held {
    fn ok(&self) -> bool {
        self.first["ok"] == true
    }

    fn end(mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Held {
    /// Runs a login-and-hold script; waits for its first JSON line.
    fn spawn(script: &str, args: &[&str]) -> Held {
        let mut child = Command::new("python3")
            .arg(common::scripts().join(script))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let first =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
        Held { child, first }
    }
}

impl Ftps {
    /// bob logs in over FTPS (Python ftplib) and stays logged in.
    fn hold_ftps(&self, password: &str) -> Held {
        let port = self.port.to_string();
        let ca = self.ca.to_str().unwrap();
        let args = [
            "--port",
            &port,
            "--user",
            "bob",
            "--password",
            password,
            "--cafile",
            ca,
        ];
        Held::spawn("hold_ftps_login.py", &args)
    }

    /// bob logs in over SFTP (paramiko, password) and stays logged in.
    fn hold_sftp(&self) -> Held {
        let port = self.g.port.to_string();
        let args = [
            "hold",
            "--port",
            &port,
            "--user",
            "bob",
            "--password",
            BOB_PASSWORD,
        ];
        Held::spawn("sftp_client.py", &args)
    }

    fn sftp_password_login(&self) -> serde_json::Value {
        self.g.script("bob", &["login", "--password", BOB_PASSWORD])
    }

    fn auth_records(&self, outcome: &str) -> Vec<serde_json::Value> {
        self.g
            .events("auth")
            .into_iter()
            .filter(|r| r["outcome"] == outcome)
            .collect()
    }
}

#[test]
fn a_users_sessions_are_counted_across_sftp_and_ftps() {
    let b = start(Options {
        max_sessions_per_user: 1,
        ..Options::default()
    });
    // FTPS holds bob's only session: SFTP is refused, and the refusal is on record.
    let ftps = b.hold_ftps(BOB_PASSWORD);
    assert!(ftps.ok(), "{}", ftps.first);
    assert_ne!(b.sftp_password_login()["ok"], true);
    let refused = b.auth_records("refused: session limit");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["method"], "password");
    ftps.end();
    assert!(
        eventually(20, || b.sftp_password_login()["ok"] == true),
        "bob's slot did not come back after FTPS logged out:\n{}",
        b.g.log()
    );

    // And the other way round: an SFTP session holds it, FTPS is told why.
    let sftp = b.hold_sftp();
    assert!(sftp.ok(), "{}", sftp.first);
    let second = b.hold_ftps(BOB_PASSWORD);
    assert!(!second.ok(), "{}", second.first);
    let why = second.first["error"].as_str().unwrap();
    assert!(
        why.starts_with("530") && why.contains("max_sessions_per_user"),
        "{why}"
    );
    second.end();
    let refused = b.auth_records("refused: session limit");
    assert_eq!(refused.last().unwrap()["method"], "ftps password");
    sftp.end();
    assert!(
        eventually(20, || {
            let h = b.hold_ftps(BOB_PASSWORD);
            let ok = h.ok();
            h.end();
            ok
        }),
        "bob's slot did not come back after SFTP logged out"
    );
    b.g.assert_audit_verifies();
}

#[test]
fn failed_ftps_logins_ban_the_source_for_sftp_too() {
    let b = start(Options {
        max_failures: 3,
        ..Options::default()
    });
    // Before: bob logs in over SFTP.
    assert_eq!(b.sftp_password_login()["ok"], true);
    // Three wrong passwords over FTPS (the connection closes after the third).
    for _ in 0..3 {
        let h = b.hold_ftps("wrong password");
        assert!(!h.ok(), "{}", h.first);
        h.end();
    }
    assert_eq!(b.auth_records("rejected").len(), 3);
    // The right password over SFTP is now refused unheard: the ban covers both protocols.
    assert_ne!(b.sftp_password_login()["ok"], true);
    let banned = b.auth_records("refused: banned");
    assert!(!banned.is_empty(), "{}", b.g.log());
    // alice, another user from the same source, is unaffected (the pair is banned, not the
    // source, below max_failures_per_source).
    b.g.sftp_ok("alice", "ls\n");
    b.g.assert_audit_verifies();
}

/// Opens a TCP connection and reads what the server says first (empty if it closes at once).
fn greeting(port: u16) -> (TcpStream, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).unwrap_or(0);
    (s, String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// A connection that got `prefix` as its greeting. A slot freed by an earlier client (the
/// harness's readiness probe, a greeting just dropped) is released asynchronously after the
/// close, so this retries until one is free again rather than racing that release.
fn held(port: u16, prefix: &str) -> TcpStream {
    let mut got = None;
    let ok = eventually(20, || {
        let (s, said) = greeting(port);
        let ok = said.starts_with(prefix);
        got = ok.then_some(s);
        ok
    });
    assert!(ok, "no {prefix:?} greeting on port {port}");
    got.unwrap()
}

#[test]
fn connections_still_logging_in_are_counted_across_protocols() {
    let b = start(Options {
        extra_toml: "\n[limits]\nmax_unauthenticated_per_source = 2\n".into(),
        ..Options::default()
    });
    // Two FTPS connections that never log in use up this address's pre-login slots...
    let f1 = held(b.port, "220");
    let f2 = held(b.port, "220");
    // ...so an SSH connection from it is closed before the version exchange.
    let (_s, said) = greeting(b.g.port);
    assert_eq!(said, "", "SSH connection taken beyond the shared cap");
    drop((f1, f2));
    assert!(
        eventually(20, || greeting(b.g.port).1.starts_with("SSH-2.0-")),
        "the slots did not come back"
    );

    // The other way round.
    let s1 = held(b.g.port, "SSH-2.0-");
    let s2 = held(b.g.port, "SSH-2.0-");
    let (_f, said) = greeting(b.port);
    assert_eq!(said, "", "FTPS connection taken beyond the shared cap");
    drop((s1, s2));
    assert!(
        eventually(20, || greeting(b.port).1.starts_with("220")),
        "the slots did not come back"
    );
    // Logged-in users are not affected by the pre-login cap.
    b.g.assert_normal_upload("after.bin");
}

#[test]
fn transfer_records_name_the_protocol() {
    let b = start(Options::default());
    let plain = data(100_000, 3);
    std::fs::write(b.g.path("f.bin"), &plain).unwrap();
    let mut curl = Command::new("curl");
    curl.args(["-sS", "--ssl-reqd", "--max-time", "30", "--cacert"])
        .arg(&b.ca)
        .args(["-u", &format!("bob:{BOB_PASSWORD}"), "-T", "f.bin"])
        .arg(format!("ftp://127.0.0.1:{}/via-ftps.bin", b.port))
        .current_dir(b.g.dir.path());
    run_ok(&mut curl);
    b.g.sftp_ok("alice", "put f.bin via-sftp.bin\n");
    let protocol_of = |kind: &str, object: &str| {
        let records = b.g.events(kind);
        let r = records
            .iter()
            .find(|r| r["object"].as_str().unwrap_or("").ends_with(object))
            .unwrap_or_else(|| panic!("no {kind} record for {object}: {records:?}"));
        r["protocol"].as_str().unwrap_or("absent").to_string()
    };
    for kind in ["decision", "committed"] {
        assert_eq!(protocol_of(kind, "via-ftps.bin"), "ftps", "{kind}");
        assert_eq!(protocol_of(kind, "via-sftp.bin"), "sftp", "{kind}");
    }
    b.g.sftp_ok("alice", "mkdir made-over-sftp\n");
    assert_eq!(protocol_of("namespace", "made-over-sftp"), "sftp");
    b.g.assert_audit_verifies();
}
