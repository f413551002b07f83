//! The admin listener (`[admin]`): HTTPS only, /livez, /readyz (503 from the start of a
//! shutdown), /metrics parsed by the Prometheus client library's parsers, optional client
//! certificates, and a stalled client that blocks nobody. And `--log-format json`.

mod common;

use std::io::{BufRead, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{
    BOB_PASSWORD, Gateway, Options, bin, data, eventually, free_port, free_ports, run_ok,
    ssh_banner,
};

/// Names the clients use in these tests: none may appear in the metrics.
const SECRET_NAMES: [&str; 4] = ["alice", "bob", "patient-4711", "ftps-dossier"];

struct Admin {
    g: Gateway,
    port: u16,
    ftps_port: u16,
    /// The demo CA's directory: ca.pem, server.*, client.*.
    ca: PathBuf,
    _certs: tempfile::TempDir,
}

#[derive(Default)]
struct Setup {
    client_ca: bool,
    drain_delay_secs: u64,
    options: Options,
}

fn demo_ca(dir: &Path) {
    run_ok(
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("certs/make-demo-ca.sh")).arg(dir),
    );
}

/// A gateway with SFTP, FTPS and the admin listener, certificates from `certs/make-demo-ca.sh`.
fn start(s: Setup) -> Admin {
    let certs = tempfile::tempdir().unwrap();
    let ca = certs.path().join("ca");
    demo_ca(&ca);
    let (port, ftps_port) = (free_port(), free_port());
    let passive = free_ports(21);
    let mut o = s.options;
    o.extra_toml.push_str(&format!(
        r#"
[ftps]
listen = ["127.0.0.1:{ftps_port}"]
certificate = "{cert}"
private_key = "{key}"
passive_ports = "{passive}-{end}"

[admin]
listen = ["127.0.0.1:{port}"]
certificate = "{cert}"
private_key = "{key}"
drain_delay_secs = {delay}
{client_ca}
"#,
        cert = ca.join("server.pem").display(),
        key = ca.join("server.key").display(),
        end = passive + 20,
        delay = s.drain_delay_secs,
        client_ca = if s.client_ca {
            format!("client_ca = \"{}\"", ca.join("ca.pem").display())
        } else {
            String::new()
        },
    ));
    Admin {
        g: Gateway::start_with(o),
        port,
        ftps_port,
        ca,
        _certs: certs,
    }
}

/// A curl answer: its exit status, HTTP code and body.
struct Answer {
    ok: bool,
    code: u16,
    body: String,
    stderr: String,
}

impl Admin {
    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// curl trusting the demo CA, plus `extra` arguments.
    fn curl(&self, path: &str, extra: &[&str]) -> Answer {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "20", "--cacert"])
            .arg(self.ca.join("ca.pem"))
            .args(extra)
            .args(["-w", "\n%{http_code}"])
            .arg(self.url(path))
            .output()
            .unwrap();
        answer(out)
    }

    fn get(&self, path: &str) -> Answer {
        self.curl(path, &[])
    }

    fn metrics(&self) -> Vec<serde_json::Value> {
        let a = self.get("/metrics");
        assert_eq!(a.code, 200, "{}", a.body);
        for name in SECRET_NAMES {
            assert!(
                !a.body.contains(name),
                "`{name}` appears in the metrics:\n{}",
                a.body
            );
        }
        parse_metrics(&a.body)
    }
}

fn answer(out: Output) -> Answer {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
    Answer {
        ok: out.status.success(),
        code: code.trim().parse().unwrap_or(0),
        body: body.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Every sample, through the Python Prometheus client's text and OpenMetrics parsers.
fn parse_metrics(text: &str) -> Vec<serde_json::Value> {
    let mut child = Command::new("python3")
        .arg(common::scripts().join("prom_parse.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        out.status.success(),
        "parsers refused the text: {v}\n{text}"
    );
    assert!(v["openmetrics_samples"].as_u64().unwrap() > 0, "{v}");
    v["samples"].as_array().unwrap().clone()
}

/// The value of the sample `name` whose labels include all of `labels`; 0 if there is none.
fn value(samples: &[serde_json::Value], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<f64> = samples
        .iter()
        .filter(|s| s["name"] == name)
        .filter(|s| labels.iter().all(|(k, v)| s["labels"][*k] == *v))
        .map(|s| s["value"].as_f64().unwrap())
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?} matches {found:?}");
    found.first().copied().unwrap_or(0.0)
}

fn ftps_put(a: &Admin, local: &str, name: &str) -> serde_json::Value {
    ftps_put_as(a, BOB_PASSWORD, local, name)
}

fn ftps_put_as(a: &Admin, password: &str, local: &str, name: &str) -> serde_json::Value {
    let out = Command::new("python3")
        .arg(common::scripts().join("ftps_client.py"))
        .arg("put")
        .args(["--port", &a.ftps_port.to_string()])
        .args(["--user", "bob"])
        .arg(format!("--password={password}"))
        .arg("--cafile")
        .arg(a.ca.join("ca.pem"))
        .args(["--local", local, "--name", name])
        .current_dir(a.g.dir.path())
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn livez_readyz_and_metrics_count_known_uploads_without_client_names() {
    let a = start(Setup::default());
    let live = a.get("/livez");
    assert_eq!(
        (live.code, live.body.as_str()),
        (200, "ok\n"),
        "{}",
        live.stderr
    );
    let ready = a.get("/readyz");
    assert_eq!(ready.code, 200, "{}", ready.body);
    for line in [
        "draining: no",
        "keyring: ok",
        "policy: ok",
        "audit: ok",
        "destination local: ok",
    ] {
        assert!(ready.body.contains(line), "`{line}` in\n{}", ready.body);
    }
    assert_eq!(a.get("/nope").code, 404);

    let committed = |s: &[serde_json::Value], protocol: &str| {
        value(
            s,
            "eugate_uploads_ended_total",
            &[
                ("protocol", protocol),
                ("tenant", "acme"),
                ("outcome", "committed"),
            ],
        )
    };
    let before = a.metrics();
    assert_eq!(committed(&before, "sftp"), 0.0);
    assert_eq!(committed(&before, "ftps"), 0.0);

    let plain = data(300_000, 7);
    std::fs::write(a.g.path("patient-4711.bin"), &plain).unwrap();
    a.g.sftp_ok(
        "alice",
        "put patient-4711.bin /patient-4711.bin\nget /patient-4711.bin patient-4711.back\n",
    );
    let put = ftps_put(&a, "patient-4711.bin", "ftps-dossier.bin");
    assert!(
        put["stor"].as_str().unwrap_or("").starts_with("226"),
        "{put}"
    );

    let s = a.metrics();
    assert_eq!(committed(&s, "sftp"), 1.0);
    assert_eq!(committed(&s, "ftps"), 1.0);
    let acme_sftp = [("protocol", "sftp"), ("tenant", "acme")];
    assert_eq!(value(&s, "eugate_uploads_started_total", &acme_sftp), 1.0);
    assert_eq!(
        value(
            &s,
            "eugate_transfer_bytes_total",
            &[
                ("protocol", "sftp"),
                ("tenant", "acme"),
                ("direction", "in")
            ]
        ),
        plain.len() as f64
    );
    assert_eq!(value(&s, "eugate_downloads_started_total", &acme_sftp), 1.0);
    assert_eq!(
        value(
            &s,
            "eugate_transfer_bytes_total",
            &[
                ("protocol", "sftp"),
                ("tenant", "acme"),
                ("direction", "out")
            ]
        ),
        plain.len() as f64
    );
    assert_eq!(
        value(&s, "eugate_upload_duration_seconds_count", &acme_sftp),
        1.0
    );
    assert!(
        value(
            &s,
            "eugate_policy_decisions_total",
            &[("operation", "upload"), ("outcome", "allow")]
        ) >= 2.0
    );
    assert!(
        value(
            &s,
            "eugate_auth_attempts_total",
            &[
                ("protocol", "sftp"),
                ("method", "publickey"),
                ("outcome", "accepted")
            ]
        ) >= 1.0
    );
    assert_eq!(
        value(
            &s,
            "eugate_auth_attempts_total",
            &[
                ("protocol", "ftps"),
                ("method", "password"),
                ("outcome", "accepted")
            ]
        ),
        1.0
    );
    assert_eq!(
        value(
            &s,
            "eugate_destination_state",
            &[("destination", "local"), ("state", "declared")]
        ),
        1.0
    );
    assert!(value(&s, "eugate_memory_budget_limit_bytes", &[]) > 0.0);
    let bundle: Vec<_> = s
        .iter()
        .filter(|x| x["name"] == "eugate_policy_bundle_info")
        .collect();
    assert_eq!(bundle.len(), 1, "{bundle:?}");
    assert!(
        a.g.log()
            .contains(bundle[0]["labels"]["hash"].as_str().unwrap()),
        "the bundle hash the gateway logged at start"
    );
    assert_eq!(
        value(
            &s,
            "eugate_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
}

/// Wrong passwords are counted by outcome, and the ban they cause shows as a gauge, without
/// the user name they were tried for.
#[test]
fn refused_logins_and_the_ban_they_cause_are_counted() {
    let a = start(Setup {
        options: Options {
            max_failures: 3,
            ..Options::default()
        },
        ..Setup::default()
    });
    std::fs::write(a.g.path("f.bin"), b"x").unwrap();
    let bans = |s: &[serde_json::Value]| {
        value(s, "eugate_auth_active_bans", &[("scope", "user_at_source")])
    };
    assert_eq!(bans(&a.metrics()), 0.0);
    for _ in 0..3 {
        let r = ftps_put_as(&a, "wrong-password-for-bob", "f.bin", "f.bin");
        assert!(r["exception"].is_string(), "{r}");
    }
    let s = a.metrics();
    let ftps_pw = |outcome| {
        value(
            &s,
            "eugate_auth_attempts_total",
            &[
                ("protocol", "ftps"),
                ("method", "password"),
                ("outcome", outcome),
            ],
        )
    };
    assert_eq!(ftps_pw("rejected"), 3.0);
    assert_eq!(ftps_pw("accepted"), 0.0);
    assert_eq!(bans(&s), 1.0);
    // Banned now: even the right password is refused unheard, and counted so.
    let r = ftps_put(&a, "f.bin", "f.bin");
    assert!(r["exception"].is_string(), "{r}");
    let s = a.metrics();
    assert_eq!(
        value(
            &s,
            "eugate_auth_attempts_total",
            &[("protocol", "ftps"), ("outcome", "banned")]
        ),
        1.0
    );
}

/// SIGTERM: /readyz answers 503 at once, while the SFTP listener still takes connections
/// (the drain delay, so a balancer notices first) and while an upload runs in the grace period;
/// /livez stays 200; the upload still commits.
#[test]
fn sigterm_turns_readyz_503_before_the_listeners_close_and_during_the_grace_period() {
    let mut a = start(Setup {
        drain_delay_secs: 8,
        options: Options {
            shutdown_grace_secs: Some(120),
            ..Options::default()
        },
        ..Setup::default()
    });
    let gate = a.g.path("gate");
    let (mut client, mut out) = a.g.spawn_gated_upload(&gate);
    assert_eq!(a.get("/readyz").code, 200);

    a.g.signal("TERM");
    assert!(
        eventually(30, || a.get("/readyz").code == 503),
        "{}",
        a.g.log()
    );
    let ready = a.get("/readyz");
    assert!(ready.body.contains("draining: yes"), "{}", ready.body);
    // Readiness went first: the SSH listener is still open for the drain delay.
    assert!(ssh_banner(a.g.port), "{}", a.g.log());
    assert_eq!(a.get("/livez").code, 200);

    // Then the listener closes, the upload still runs, and readiness stays 503.
    assert!(
        eventually(60, || TcpStream::connect(("127.0.0.1", a.g.port)).is_err()),
        "{}",
        a.g.log()
    );
    assert!(
        client.try_wait().unwrap().is_none(),
        "the upload is still open"
    );
    assert_eq!(a.get("/readyz").code, 503);

    std::fs::write(&gate, b"go").unwrap();
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.contains("\"ok\": true"), "{line}\n{}", a.g.log());
    client.wait().unwrap();
    assert!(a.g.wait_exit().success());
    assert_eq!(a.g.events("committed").len(), 1);
}

#[test]
fn plain_http_to_the_admin_port_gets_no_answer() {
    let a = start(Setup::default());
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "20", "-w", "\n%{http_code}"])
        .arg(format!("http://127.0.0.1:{}/livez", a.port))
        .output()
        .unwrap();
    let plain = answer(out);
    assert!(!plain.ok, "plain HTTP was answered: {}", plain.body);
    assert_ne!(plain.code, 200);
    // And raw: whatever comes back is no HTTP response.
    let mut s = TcpStream::connect(("127.0.0.1", a.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert!(!got.starts_with(b"HTTP/"), "{got:?}");
    // The listener is still fine afterwards.
    assert_eq!(a.get("/livez").code, 200);
}

#[test]
fn with_client_ca_only_clients_with_a_certificate_from_that_ca_are_answered() {
    let a = start(Setup {
        client_ca: true,
        ..Setup::default()
    });
    let none = a.get("/livez");
    assert!(
        !none.ok && none.code != 200,
        "answered without a client certificate"
    );
    let cert = a.ca.join("client.pem");
    let key = a.ca.join("client.key");
    let with = a.curl(
        "/readyz",
        &[
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    );
    assert_eq!(with.code, 200, "{} {}", with.body, with.stderr);
    // A client certificate from another CA is refused.
    let other = tempfile::tempdir().unwrap();
    let other_ca = other.path().join("ca");
    demo_ca(&other_ca);
    let (cert, key) = (other_ca.join("client.pem"), other_ca.join("client.key"));
    let foreign = a.curl(
        "/livez",
        &[
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ],
    );
    assert!(
        !foreign.ok && foreign.code != 200,
        "answered a certificate from another CA"
    );
}

/// Clients that connect and send nothing (or half a handshake) hold their own tasks only.
#[test]
fn stalled_tls_clients_do_not_block_another_clients_livez() {
    let a = start(Setup::default());
    let mut stalled = Vec::new();
    for i in 0..5 {
        let mut s = TcpStream::connect(("127.0.0.1", a.port)).unwrap();
        if i % 2 == 1 {
            // The start of a TLS record header: a ClientHello that never completes.
            s.write_all(&[0x16, 0x03, 0x01, 0x02]).unwrap();
        }
        stalled.push(s);
    }
    let live = a.get("/livez");
    assert_eq!(live.code, 200, "{}", live.stderr);
    assert_eq!(a.get("/metrics").code, 200);
    drop(stalled);
}

/// The admin key is held to the same rule as FTPS's: readable by others, the gateway refuses
/// to start and says how to fix it.
#[test]
fn an_admin_key_others_can_read_stops_the_start() {
    use std::os::unix::fs::PermissionsExt;
    let mut a = start(Setup::default());
    assert!(a.g.terminate().success());
    // FTPS shares the key in this setup: give the admin listener its own copy.
    let key = a.ca.join("admin.key");
    std::fs::copy(a.ca.join("server.key"), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let text = std::fs::read_to_string(&a.g.config).unwrap();
    let admin_at = text.find("[admin]").unwrap();
    let (head, tail) = text.split_at(admin_at);
    let tail = tail.replace(
        &a.ca.join("server.key").display().to_string(),
        &key.display().to_string(),
    );
    std::fs::write(&a.g.config, format!("{head}{tail}")).unwrap();
    let out = Command::new(bin())
        .args(["serve", "--config"])
        .arg(&a.g.config)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("admin") && err.contains("0644") && err.contains("chmod 600"),
        "{err}"
    );
}

/// `--log-format json`: every line on stderr is one JSON object, and the login and transfer
/// events carry their fields at the top level under stable names.
#[test]
fn json_log_lines_parse_and_name_their_fields() {
    let mut a = start(Setup::default());
    assert!(a.g.terminate().success());
    let log = a.g.path("json.log");
    let mut child = Command::new(bin())
        .args(["serve", "--log-format", "json", "--config"])
        .arg(&a.g.config)
        .env("RUST_LOG", "info")
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    assert!(eventually(60, || ssh_banner(a.g.port)), "not serving");
    std::fs::write(a.g.path("patient-4711.bin"), data(10_000, 3)).unwrap();
    a.g.sftp_ok("alice", "put patient-4711.bin /p.bin\n");
    run_ok(
        Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string()),
    );
    assert!(child.wait().unwrap().success());

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() > 3, "{text}");
    for l in &lines {
        assert!(l["timestamp"].is_string() && l["level"].is_string(), "{l}");
    }
    let auth = lines
        .iter()
        .find(|l| l["event"] == "auth" && l["outcome"] == "accepted")
        .unwrap_or_else(|| panic!("no auth event:\n{text}"));
    assert_eq!(auth["user"], "alice", "{auth}");
    assert_eq!(auth["tenant"], "acme", "{auth}");
    assert_eq!(auth["method"], "publickey", "{auth}");
    let committed = lines
        .iter()
        .find(|l| l["event"] == "upload" && l["outcome"] == "committed")
        .unwrap_or_else(|| panic!("no upload event:\n{text}"));
    for field in ["protocol", "tenant", "user", "destination", "object_id"] {
        assert!(committed[field].is_string(), "{field} in {committed}");
    }
    assert_eq!(committed["protocol"], "sftp");
    assert_eq!(committed["plaintext_bytes"], 10_000);
    // One event when the session starts and one when it ends, same stable fields.
    for outcome in ["started", "ended"] {
        let session = lines
            .iter()
            .find(|l| l["event"] == "session" && l["outcome"] == outcome)
            .unwrap_or_else(|| panic!("no session {outcome} event:\n{text}"));
        assert_eq!(session["protocol"], "sftp", "{session}");
        assert_eq!(session["tenant"], "acme", "{session}");
        assert_eq!(session["user"], "alice", "{session}");
        assert_eq!(session["source"], "127.0.0.1", "{session}");
    }
    let ended = lines
        .iter()
        .find(|l| l["event"] == "session" && l["outcome"] == "ended")
        .unwrap();
    assert!(ended["duration_ms"].is_u64(), "{ended}");
}
