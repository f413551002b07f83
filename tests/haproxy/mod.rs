//! A real HAProxy (the Debian package; `scripts/test` installs it) in front of gateway
//! instances on loopback: TCP mode, PROXY protocol v2 to the gateways, health checks on each
//! gateway's admin `/readyz` over HTTPS, and a stats page to read what it thinks of each server.
//!
//! HAProxy connects to the gateways from 127.0.0.2, the one address the gateways take PROXY
//! headers from; the tests' own direct connections come from 127.0.0.1 and stay plain.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::common::{eventually, free_port};

/// The address HAProxy connects to the gateways from (`[server] proxy_protocol_from`).
pub const BALANCER_SOURCE: &str = "127.0.0.2";

/// One gateway behind the balancer.
pub struct Backend {
    pub name: String,
    pub ssh_port: u16,
    pub admin_port: u16,
}

pub struct Haproxy {
    pub dir: tempfile::TempDir,
    /// Where clients connect for SFTP.
    pub port: u16,
    stats_port: u16,
    child: Child,
}

fn haproxy_bin() -> &'static str {
    assert!(
        Command::new("haproxy").arg("-v").output().is_ok(),
        "haproxy is not installed: run scripts/test (it installs the Debian package)"
    );
    "haproxy"
}

impl Haproxy {
    /// Starts HAProxy with `backends`, balancing round robin (every test client comes from
    /// loopback, so `balance source`, what deploy/ uses, would pin them all to one instance).
    /// `ca` is the PEM the gateways' admin certificates chain to. Waits until every backend is
    /// UP.
    pub fn start(backends: &[Backend], ca: &Path) -> Haproxy {
        let dir = tempfile::tempdir().unwrap();
        let (port, stats_port) = (free_port(), free_port());
        let mut servers = String::new();
        for b in backends {
            servers.push_str(&format!(
                "    server {name} 127.0.0.1:{ssh} source {BALANCER_SOURCE} send-proxy-v2 check port {admin}\n",
                name = b.name,
                ssh = b.ssh_port,
                admin = b.admin_port,
            ));
        }
        let config = dir.path().join("haproxy.cfg");
        std::fs::write(
            &config,
            format!(
                r#"global
    maxconn 1024

defaults
    mode tcp
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    timeout tunnel 1h
    retries 3
    option redispatch

frontend sftp
    bind 127.0.0.1:{port}
    default_backend gateways

backend gateways
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    # Checks every 200 ms and one failure takes a server out: well inside the gateways'
    # drain delay, so no new connection reaches a draining instance.
    default-server inter 200ms downinter 200ms fall 1 rise 2 check-ssl verify required ca-file {ca}
{servers}
frontend stats
    mode http
    bind 127.0.0.1:{stats_port}
    stats enable
    stats uri /stats
"#,
                ca = ca.display(),
            ),
        )
        .unwrap();
        let check = Command::new(haproxy_bin())
            .args(["-c", "-q", "-f"])
            .arg(&config)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "haproxy -c rejects the test config: {}",
            String::from_utf8_lossy(&check.stderr)
        );
        let log = std::fs::File::create(dir.path().join("haproxy.log")).unwrap();
        let child = Command::new(haproxy_bin())
            .args(["-db", "-f"])
            .arg(&config)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start haproxy");
        let h = Haproxy {
            dir,
            port,
            stats_port,
            child,
        };
        for b in backends {
            h.wait_status(&b.name, "UP");
        }
        h
    }

    /// What HAProxy reports for server `name` of the gateways backend: "UP", "DOWN",
    /// "UP 1/2" (rising), "DOWN 1/2"…; empty if the stats page does not answer.
    pub fn status(&self, name: &str) -> String {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "5"])
            .arg(format!("http://127.0.0.1:{}/stats;csv", self.stats_port))
            .output()
            .unwrap();
        let csv = String::from_utf8_lossy(&out.stdout);
        let mut lines = csv.lines();
        let header: Vec<&str> = lines
            .next()
            .unwrap_or_default()
            .trim_start_matches("# ")
            .split(',')
            .collect();
        let col = |n: &str| header.iter().position(|h| *h == n);
        let (Some(px), Some(sv), Some(st)) = (col("pxname"), col("svname"), col("status")) else {
            return String::new();
        };
        lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .find(|f| f.get(px) == Some(&"gateways") && f.get(sv) == Some(&name))
            .and_then(|f| f.get(st).map(|s| s.to_string()))
            .unwrap_or_default()
    }

    /// Waits until HAProxy reports `status` for server `name`.
    pub fn wait_status(&self, name: &str, status: &str) {
        let mut last = String::new();
        assert!(
            eventually(60, || {
                last = self.status(name);
                last == status
            }),
            "haproxy never reported {name} {status} (last: {last:?}):\n{}",
            self.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("haproxy.log")).unwrap_or_default()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
