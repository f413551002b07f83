//! PROXY protocol v2 (issue 15) against the release binary: a "load balancer" on 127.0.0.2
//! (tests/scripts/proxy_client.py) sends hand-built headers, then paramiko or ftplib speak
//! through it. The header's client address is what logins, bans, certificate
//! `source-address`, audit and logs see; a balancer without a good header, and anyone else
//! sending one, is refused. Direct connections from 127.0.0.1 (not a balancer) work as before
//! (the harness's own readiness check is one).

mod common;
#[path = "ftps_support/mod.rs"]
mod ftps_support;

use std::process::Command;

use common::*;
use serde_json::{Value, json};

const BALANCER: &str = "127.0.0.2";
const CLIENT_A: &str = "203.0.113.7";
const CLIENT_B: &str = "198.51.100.9";

fn behind_balancer(server_toml: &str) -> Options {
    Options {
        server_toml: format!("proxy_protocol_from = [{server_toml}]"),
        ..Options::default()
    }
}

/// Runs the attempts of `plan` in order; one result each.
fn run_plan(g: &Gateway, port: u16, plan: &Value) -> Vec<Value> {
    let out = Command::new("python3")
        .arg(scripts().join("proxy_client.py"))
        .args(["--port", &port.to_string(), "--plan", &plan.to_string()])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "proxy_client.py: {e}\n{}\n{}\n--- gateway log ---\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            g.log()
        )
    });
    v["results"].as_array().unwrap().clone()
}

fn oks(results: &[Value]) -> Vec<bool> {
    results.iter().map(|r| r["ok"] == true).collect()
}

fn bob(src: &str, header: &str, client: &str) -> Value {
    json!({"protocol": "sftp", "src": src, "header": header, "client": client,
           "user": "bob", "password": BOB_PASSWORD})
}

/// Auth records of `user` from `source` with `outcome`.
fn auths(g: &Gateway, user: &str, source: &str, outcome: &str) -> usize {
    g.events("auth")
        .iter()
        .filter(|e| e["user"] == user && e["source"] == source && e["outcome"] == outcome)
        .count()
}

#[test]
fn sftp_through_the_balancer_is_the_header_client_for_login_upload_audit_and_log() {
    let g = Gateway::start_with(behind_balancer("\"127.0.0.2\""));
    let local = g.path("up.bin");
    let plain = data(300 << 10, 15);
    std::fs::write(&local, &plain).unwrap();
    let mut upload = bob(BALANCER, "v4", CLIENT_A);
    upload["put"] = json!([local, "via-balancer.bin"]);
    let plan = json!([
        upload,
        bob(BALANCER, "v6", "2001:db8::7"),
        // HAProxy's health check with check-send-proxy: the balancer's own connection.
        bob(BALANCER, "local", ""),
        // Not a balancer: no header, as before.
        bob("127.0.0.1", "none", ""),
    ]);
    let results = run_plan(&g, g.port, &plan);
    assert_eq!(oks(&results), [true; 4], "{results:?}\n{}", g.log());
    assert_eq!(
        g.decrypt(&g.store.join("acme/via-balancer.bin")),
        plain,
        "the upload through the balancer"
    );
    g.wait_for_audit("the four logins", |recs| {
        audit_events(recs, "auth")
            .iter()
            .filter(|e| e["outcome"] == "accepted")
            .count()
            >= 4
    });
    for source in [CLIENT_A, "2001:db8::7", BALANCER, "127.0.0.1"] {
        assert_eq!(auths(&g, "bob", source, "accepted"), 1, "{source}");
    }
    assert!(
        g.log().contains(&format!("{CLIENT_A}:40000")),
        "the login's log line names the header's client:\n{}",
        g.log()
    );
    g.assert_audit_verifies();
}

#[test]
fn a_balancer_connection_without_a_good_header_is_refused_with_its_reason() {
    let certs = ftps_support::make_certs("unused");
    let ca = certs.path().join("ca");
    let admin_port = free_port();
    let mut o = behind_balancer("\"127.0.0.2\"");
    o.extra_toml = format!(
        "[limits]\nlogin_grace_secs = 2\n\n[admin]\nlisten = [\"127.0.0.1:{admin_port}\"]\ncertificate = \"{}\"\nprivate_key = \"{}\"\n",
        ca.join("server.pem").display(),
        ca.join("server.key").display()
    );
    let g = Gateway::start_with(o);
    let cases = [
        (
            "none",
            "no PROXY v2 header: the connection starts with an SSH version line",
        ),
        (
            "v1",
            "a PROXY v1 (text) header; only v2 is accepted (HAProxy: send-proxy-v2)",
        ),
        (
            "garbage",
            "no PROXY v2 header: the connection starts with bytes that are not the PROXY v2 signature",
        ),
        (
            "unspec",
            "PROXY v2 header for AF_UNSPEC (no address): only TCP over IPv4 or IPv6 names a client",
        ),
        (
            "udp",
            "PROXY v2 header for UDP: only TCP over IPv4 or IPv6 names a client",
        ),
        ("silent", "no PROXY v2 header within 2 s"),
    ];
    let plan: Vec<Value> = cases
        .iter()
        .map(|(h, _)| bob(BALANCER, h, CLIENT_A))
        .collect();
    let results = run_plan(&g, g.port, &json!(plan));
    assert_eq!(oks(&results), [false; 6], "{results:?}");
    for (r, (header, _)) in results.iter().zip(&cases) {
        // Closed before any login: the connection failed, not an authentication.
        assert!(r["auth_failed"].is_null(), "{header}: {r}");
        assert!(!r["error"].as_str().unwrap().is_empty(), "{header}: {r}");
    }
    for (header, reason) in cases {
        g.wait_for_log(&format!("connection refused: {reason}"), 1);
        assert!(
            g.log().contains(&format!("peer={BALANCER}:")),
            "{header}: the balancer is named"
        );
    }
    assert!(g.events("auth").is_empty(), "{:#?}", g.events("auth"));
    let metrics = run_ok(
        Command::new("curl")
            .args(["-sS", "--max-time", "20", "--cacert"])
            .arg(ca.join("ca.pem"))
            .arg(format!("https://127.0.0.1:{admin_port}/metrics")),
    );
    let metrics = String::from_utf8(metrics.stdout).unwrap();
    for (reason, n) in [
        ("missing", 2),
        ("v1", 1),
        ("unsupported", 2),
        ("timeout", 1),
    ] {
        let line = format!(
            "eugate_proxy_header_refused_total{{protocol=\"sftp\",reason=\"{reason}\"}} {n}\n"
        );
        assert!(metrics.contains(&line), "no {line:?} in:\n{metrics}");
    }
    // The gateway is unharmed: a good header still works.
    let results = run_plan(&g, g.port, &json!([bob(BALANCER, "v4", CLIENT_A)]));
    assert_eq!(oks(&results), [true], "{results:?}\n{}", g.log());
}

#[test]
fn failed_logins_ban_the_header_client_not_the_balancer_or_its_other_clients() {
    let mut o = behind_balancer("\"127.0.0.2\", \"127.0.0.3/32\"");
    o.max_failures = 3;
    let g = Gateway::start_with(o);
    let wrong = |client: &str| {
        json!({"protocol": "sftp", "src": BALANCER, "header": "v4", "client": client,
               "user": "bob", "password": "wrong horse"})
    };
    let plan = json!([
        wrong(CLIENT_A),
        wrong(CLIENT_A),
        wrong(CLIENT_A),
        bob(BALANCER, "v4", CLIENT_A),
        bob(BALANCER, "v4", CLIENT_B),
        // Another listed balancer, the same client.
        bob("127.0.0.3", "v4", CLIENT_A),
        bob("127.0.0.3", "local", ""),
    ]);
    let results = run_plan(&g, g.port, &plan);
    assert_eq!(
        oks(&results),
        [false, false, false, false, true, false, true],
        "{results:?}\n{}",
        g.log()
    );
    g.wait_for_audit("the ban of client A", |recs| {
        audit_events(recs, "auth")
            .iter()
            .any(|e| e["source"] == CLIENT_A && e["outcome"] == "refused: banned")
    });
    assert_eq!(auths(&g, "bob", CLIENT_A, "rejected"), 3);
    assert_eq!(auths(&g, "bob", CLIENT_B, "accepted"), 1);
    assert_eq!(auths(&g, "bob", "127.0.0.3", "accepted"), 1);
    for balancer in [BALANCER, "127.0.0.3"] {
        let from_balancer = g
            .events("auth")
            .iter()
            .filter(|e| e["source"] == balancer && e["outcome"] != "accepted")
            .count();
        assert_eq!(from_balancer, 0, "{balancer} never failed or was banned");
    }
}

/// An OpenSSH CA, and `certified` (a key pair) with a certificate whose `source-address` is
/// 203.0.113.0/24, principal alice.
fn certificate(dir: &std::path::Path) -> (String, std::path::PathBuf, std::path::PathBuf) {
    keygen(&dir.join("ca"), "user CA");
    keygen(&dir.join("certified"), "alice certified");
    run_ok(
        Command::new("ssh-keygen")
            .args(["-q", "-s"])
            .arg(dir.join("ca"))
            .args(["-I", "alice@corp", "-z", "7", "-n", "alice"])
            .args(["-O", "source-address=203.0.113.0/24"])
            .arg(dir.join("certified.pub")),
    );
    let ca = std::fs::read_to_string(dir.join("ca.pub")).unwrap();
    (
        format!("user_ca_keys = [\"{}\"]", ca.trim()),
        dir.join("certified"),
        dir.join("certified-cert.pub"),
    )
}

#[test]
fn a_certificate_source_address_is_checked_against_the_header_client() {
    let pki = tempfile::tempdir().unwrap();
    let (auth_toml, key, cert) = certificate(pki.path());
    let mut o = behind_balancer("\"127.0.0.2\"");
    o.auth_toml = auth_toml;
    let g = Gateway::start_with(o);
    let alice = |src: &str, header: &str, client: &str| {
        json!({"protocol": "sftp", "src": src, "header": header, "client": client,
               "user": "alice", "key": key, "cert": cert})
    };
    let plan = json!([
        alice(BALANCER, "v4", CLIENT_A),
        alice(BALANCER, "v4", CLIENT_B),
        // The balancer itself (LOCAL) and a direct client are outside the range too.
        alice(BALANCER, "local", ""),
        alice("127.0.0.1", "none", ""),
    ]);
    let results = run_plan(&g, g.port, &plan);
    assert_eq!(
        oks(&results),
        [true, false, false, false],
        "{results:?}\n{}",
        g.log()
    );
    assert!(results[1..].iter().all(|r| r["auth_failed"] == true));
    g.wait_for_audit("the refusal of client B", |recs| {
        audit_events(recs, "auth").iter().any(|e| {
            e["source"] == CLIENT_B
                && e["reason"] == "client address not allowed by the certificate's source-address"
        })
    });
    let accepted: Vec<Value> = g
        .events("auth")
        .into_iter()
        .filter(|e| e["outcome"] == "accepted")
        .collect();
    assert_eq!(accepted.len(), 1, "{accepted:#?}");
    assert_eq!(accepted[0]["source"], CLIENT_A);
    assert_eq!(accepted[0]["certificate"]["key_id"], "alice@corp");
}

#[test]
fn a_peer_not_listed_that_sends_a_header_is_refused_and_direct_clients_still_work() {
    // The balancer is elsewhere: 127.0.0.1 is an ordinary client here.
    let g = Gateway::start_with(behind_balancer("\"192.0.2.1\""));
    let plan = json!([
        bob("127.0.0.1", "v4", CLIENT_A),
        bob("127.0.0.1", "none", ""),
    ]);
    let results = run_plan(&g, g.port, &plan);
    assert_eq!(oks(&results), [false, true], "{results:?}\n{}", g.log());
    g.wait_for_log(
        "connection refused: a PROXY v2 header from a peer not in [server] proxy_protocol_from",
        1,
    );
    assert_eq!(auths(&g, "bob", CLIENT_A, "accepted"), 0);
    assert!(
        g.events("auth").iter().all(|e| e["source"] == "127.0.0.1"),
        "{:#?}",
        g.events("auth")
    );
}

fn ftps_behind_balancer(proxy_from: &str) -> ftps_support::Ftps {
    let mut gateway = behind_balancer(proxy_from);
    gateway.extra_toml = "[limits]\nlogin_grace_secs = 2\n".into();
    ftps_support::start_with(
        ftps_support::make_certs("demo-client"),
        ftps_support::FtpsOptions {
            implicit: true,
            gateway,
            ..Default::default()
        },
    )
}

fn frank(f: &ftps_support::Ftps, protocol: &str, src: &str, header: &str, client: &str) -> Value {
    json!({"protocol": protocol, "src": src, "header": header, "client": client,
           "user": "frank", "password": BOB_PASSWORD, "cafile": f.ca})
}

#[test]
fn ftps_control_through_the_balancer_logs_in_and_uploads_as_the_header_client() {
    let f = ftps_behind_balancer("\"127.0.0.2\"");
    let local = f.g.path("up.bin");
    let plain = data(200 << 10, 16);
    std::fs::write(&local, &plain).unwrap();
    let mut upload = frank(&f, "ftps", BALANCER, "v4", CLIENT_A);
    // The data connection comes from the balancer too, without a header.
    upload["put"] = json!([local, "ftps-via-balancer.bin"]);
    let explicit = json!([
        upload,
        frank(&f, "ftps", BALANCER, "local", ""),
        frank(&f, "ftps", BALANCER, "v1", CLIENT_A),
        frank(&f, "ftps", BALANCER, "none", CLIENT_A),
    ]);
    let results = run_plan(&f.g, f.port, &explicit);
    assert_eq!(
        oks(&results),
        [true, true, false, false],
        "{results:?}\n{}",
        f.g.log()
    );
    let implicit = json!([
        frank(&f, "ftps-implicit", BALANCER, "v4", CLIENT_B),
        frank(&f, "ftps-implicit", BALANCER, "garbage", CLIENT_B),
    ]);
    let results = run_plan(&f.g, f.implicit_port, &implicit);
    assert_eq!(oks(&results), [true, false], "{results:?}\n{}", f.g.log());
    assert_eq!(f.g.decrypt(&f.stored("ftps-via-balancer.bin")), plain);
    let accepted = |source: &str| {
        f.g.events("auth")
            .iter()
            .filter(|e| {
                e["user"] == "frank"
                    && e["outcome"] == "accepted"
                    && e["source"].as_str().unwrap().starts_with(source)
            })
            .count()
    };
    f.g.wait_for_audit("three FTPS logins", |recs| {
        audit_events(recs, "auth").len() >= 3
    });
    assert_eq!(accepted(&format!("{CLIENT_A}:")), 1);
    assert_eq!(accepted(&format!("{CLIENT_B}:")), 1);
    assert_eq!(accepted(&format!("{BALANCER}:")), 1, "the LOCAL login");
    assert_eq!(f.g.events("auth").len(), 3, "{:#?}", f.g.events("auth"));
    for reason in [
        "a PROXY v1 (text) header",
        "no PROXY v2 header within 2 s",
        "no PROXY v2 header: the connection starts with bytes that are not the PROXY v2 signature",
    ] {
        f.g.wait_for_log(&format!("connection refused: {reason}"), 1);
    }
    f.g.assert_audit_verifies();
}

#[test]
fn ftps_from_a_peer_not_listed_refuses_a_header_explicit_and_implicit() {
    let f = ftps_behind_balancer("\"192.0.2.1\"");
    let explicit = json!([
        frank(&f, "ftps", "127.0.0.1", "v4", CLIENT_A),
        frank(&f, "ftps", "127.0.0.1", "none", ""),
    ]);
    let results = run_plan(&f.g, f.port, &explicit);
    assert_eq!(oks(&results), [false, true], "{results:?}\n{}", f.g.log());
    f.g.wait_for_log(
        "connection refused: a PROXY v2 header from a peer not in [server] proxy_protocol_from",
        1,
    );
    let implicit = json!([
        frank(&f, "ftps-implicit", "127.0.0.1", "v4", CLIENT_A),
        frank(&f, "ftps-implicit", "127.0.0.1", "none", ""),
    ]);
    let results = run_plan(&f.g, f.implicit_port, &implicit);
    assert_eq!(oks(&results), [false, true], "{results:?}\n{}", f.g.log());
    assert!(
        f.g.events("auth")
            .iter()
            .all(|e| e["source"].as_str().unwrap().starts_with("127.0.0.1:")),
        "{:#?}",
        f.g.events("auth")
    );
}

/// HAProxy (Debian's package) on loopback, in TCP mode with `send-proxy-v2`, connecting to the
/// gateway from 127.0.0.2; killed on drop.
struct Haproxy {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Listens on `front` for each `(front, backend port, health checks)`.
fn haproxy(routes: &[(u16, u16, bool)]) -> Haproxy {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = String::from(
        "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n",
    );
    for (i, (front, back, check)) in routes.iter().enumerate() {
        // With send-proxy-v2, HAProxy's health checks on the same port send a LOCAL header.
        let check = if *check { " check inter 200ms" } else { "" };
        cfg.push_str(&format!(
            "frontend f{i}\n  bind 127.0.0.1:{front}\n  default_backend b{i}\n\
             backend b{i}\n  source {BALANCER}\n  server gw 127.0.0.1:{back} send-proxy-v2{check}\n"
        ));
    }
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(&path, cfg).unwrap();
    let child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("haproxy (Debian package `haproxy`; scripts/test installs it)");
    let h = Haproxy { child, _dir: dir };
    for (front, _, _) in routes {
        assert!(
            eventually(30, || std::net::TcpStream::connect(("127.0.0.1", *front))
                .is_ok()),
            "haproxy does not listen on {front}"
        );
    }
    h
}

#[test]
fn through_a_real_haproxy_the_gateway_sees_the_client_and_health_checks_pass() {
    let f = ftps_behind_balancer("\"127.0.0.2\"");
    let (sftp_front, ftps_front) = (free_port(), free_port());
    let _h = haproxy(&[(sftp_front, f.g.port, true), (ftps_front, f.port, false)]);
    // HAProxy's health checks (LOCAL) arrive and are taken as the balancer's own connections.
    f.g.wait_for_log("PROXY LOCAL (health check)", 3);
    const CLIENT: &str = "127.0.0.5";
    let local = f.g.path("up.bin");
    let plain = data(200 << 10, 17);
    std::fs::write(&local, &plain).unwrap();
    let mut sftp = bob(CLIENT, "none", "");
    sftp["put"] = json!([local, "sftp-haproxy.bin"]);
    let results = run_plan(&f.g, sftp_front, &json!([sftp]));
    assert_eq!(oks(&results), [true], "{results:?}\n{}", f.g.log());
    // FTPS: the control connection through HAProxy, the passive data connection straight from
    // the client to the gateway (the address the header named).
    let mut ftps = frank(&f, "ftps", CLIENT, "none", "");
    ftps["put"] = json!([local, "ftps-haproxy.bin"]);
    let results = run_plan(&f.g, ftps_front, &json!([ftps]));
    assert_eq!(oks(&results), [true], "{results:?}\n{}", f.g.log());
    assert_eq!(f.g.decrypt(&f.stored("sftp-haproxy.bin")), plain);
    assert_eq!(f.g.decrypt(&f.stored("ftps-haproxy.bin")), plain);
    f.g.wait_for_audit("both logins", |recs| audit_events(recs, "auth").len() >= 2);
    let sources: Vec<String> =
        f.g.events("auth")
            .iter()
            .map(|e| e["source"].as_str().unwrap().to_string())
            .collect();
    assert_eq!(sources.len(), 2, "{sources:?}");
    assert!(
        sources
            .iter()
            .all(|s| s == CLIENT || s.starts_with("127.0.0.5:")),
        "{sources:?}"
    );
    assert!(!f.g.log().contains("connection refused:"), "{}", f.g.log());
}
