//! Production shape on loopback: a 3-node Garage cluster (`replication_factor = 3`), two
//! gateway instances sharing keyring, host keys and users, and HAProxy in front sending PROXY
//! protocol v2 and checking each instance's `/readyz`. After every scenario: the bucket holds
//! exactly the objects that were committed, each decrypts to what the client sent, no multipart
//! upload is left open, and both instances' audit chains verify.

mod common;
#[path = "garage/mod.rs"]
mod garage;
#[path = "haproxy/mod.rs"]
mod haproxy;

use std::path::Path;
use std::process::{Command, Output};

use common::{Gateway, Options, data, eventually, free_port, run_ok, run_with_stdin, ssh_banner};
use garage::{Garage, Paused, Store};
use haproxy::{BALANCER_SOURCE, Backend, Haproxy};

const BUCKET: &str = "eugate-cluster";
const TENANT: &str = "eurobank";
const USER: &str = "erin";
/// The client address the tests connect to the balancer from: what the gateways must see,
/// through the PROXY header, instead of the balancer's 127.0.0.2.
const CLIENT_SOURCE: &str = "127.0.0.3";
/// Seconds an instance keeps its listeners open after SIGTERM with `/readyz` at 503.
const DRAIN_SECS: u64 = 6;

struct Cluster {
    garage: Vec<Garage>,
    store: Store,
    gateways: Vec<Gateway>,
    lb: Haproxy,
    _certs: tempfile::TempDir,
}

/// The instances' names, in the order of `Cluster::gateways`.
const NAMES: [&str; 2] = ["gw-a", "gw-b"];

impl Cluster {
    fn start() -> Cluster {
        let garage = Garage::cluster("eu-central-1", &[BUCKET], 3);
        let store = garage[0].store();
        let certs = tempfile::tempdir().unwrap();
        let ca = certs.path().join("ca");
        run_ok(
            Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("certs/make-demo-ca.sh"))
                .arg(&ca),
        );
        let admin_ports = vec![free_port(), free_port()];
        // Each instance talks to its own Garage node; the third node only stores replicas.
        let a = Gateway::start_with(Options {
            server_toml: format!(
                "instance_id = \"gw-a\"\nproxy_protocol_from = [\"{BALANCER_SOURCE}\"]"
            ),
            extra_toml: format!(
                r#"
[storage]
request_timeout_secs = 10
connect_timeout_secs = 2

[admin]
listen = ["127.0.0.1:{admin}"]
certificate = "{cert}"
private_key = "{key}"
drain_delay_secs = {DRAIN_SECS}
{dest}{tenant}"#,
                admin = admin_ports[0],
                cert = ca.join("server.pem").display(),
                key = ca.join("server.key").display(),
                dest = garage::destination_toml(
                    "eu-s3",
                    &garage[0].endpoint(),
                    BUCKET,
                    "eu-central-1",
                    "DE"
                ),
                tenant = garage::tenant_toml(TENANT, "eu-s3", &[USER]),
            ),
            extra_keys: vec![USER],
            extra_tenants: vec![TENANT],
            env: garage::gateway_env(),
            shutdown_grace_secs: Some(60),
            ..Options::default()
        });
        let b = a.twin(&[
            ("instance_id = \"gw-a\"", "instance_id = \"gw-b\""),
            (
                &format!("127.0.0.1:{}\"]", admin_ports[0]),
                &format!("127.0.0.1:{}\"]", admin_ports[1]),
            ),
            (&garage[0].endpoint(), &garage[1].endpoint()),
        ]);
        let gateways = vec![a, b];
        let backends: Vec<Backend> = gateways
            .iter()
            .zip(NAMES)
            .zip(&admin_ports)
            .map(|((g, name), admin)| Backend {
                name: name.into(),
                ssh_port: g.port,
                admin_port: *admin,
            })
            .collect();
        let lb = Haproxy::start(&backends, &ca.join("ca.pem"));
        Cluster {
            garage,
            store,
            gateways,
            lb,
            _certs: certs,
        }
    }

    fn logs(&self) -> String {
        format!(
            "--- gw-a:\n{}\n--- gw-b:\n{}\n--- haproxy:\n{}",
            self.gateways[0].log(),
            self.gateways[1].log(),
            self.lb.log()
        )
    }

    /// OpenSSH `sftp` through the balancer, from [`CLIENT_SOURCE`].
    fn sftp(&self, commands: &str) -> Output {
        let g = &self.gateways[0];
        run_with_stdin(
            Command::new("sftp")
                .args(g.ssh_opts(&g.key(USER)))
                .args(["-o", &format!("BindAddress={CLIENT_SOURCE}")])
                .args(["-P", &self.lb.port.to_string(), "-b", "-"])
                .arg(format!("{USER}@127.0.0.1")),
            commands.as_bytes(),
        )
    }

    /// Uploads `plain` as `/name` through the balancer; panics with every log if it fails.
    fn put(&self, name: &str, plain: &[u8]) {
        let local = self.gateways[0].path(&format!("{name}.local"));
        std::fs::write(&local, plain).unwrap();
        let out = self.sftp(&format!("put {} /{name}\n", local.display()));
        assert!(
            out.status.success(),
            "upload of {name} through the balancer failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.logs()
        );
    }

    /// The instance whose audit log has a record naming `name` (the one the balancer chose).
    fn serving(&self, name: &str) -> usize {
        let mut found = None;
        assert!(
            eventually(60, || {
                found = self.gateways.iter().position(|g| {
                    g.events("decision")
                        .iter()
                        .any(|r| r.to_string().contains(name))
                });
                found.is_some()
            }),
            "no instance recorded a decision on {name}:\n{}",
            self.logs()
        );
        found.unwrap()
    }

    /// After a scenario: the bucket holds exactly `expected` (name, plaintext), each decrypts
    /// to its plaintext; no multipart upload is open; both audit chains verify and every
    /// record names its instance.
    fn assert_clean(&self, expected: &[(&str, Vec<u8>)]) {
        let mut keys: Vec<String> = self
            .store
            .objects(BUCKET)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        keys.sort();
        let mut want: Vec<String> = expected
            .iter()
            .map(|(n, _)| format!("{TENANT}/{n}"))
            .collect();
        want.sort();
        assert_eq!(keys, want, "objects in the bucket\n{}", self.logs());
        for (name, plain) in expected {
            let sealed = self.store.get(BUCKET, &format!("{TENANT}/{name}"));
            let opened = self.gateways[0].decrypt_bytes(&sealed);
            assert!(opened == *plain, "{name} does not decrypt to what was sent");
        }
        assert_eq!(
            self.store.uploads(BUCKET),
            Vec::<String>::new(),
            "multipart uploads left open\n{}",
            self.logs()
        );
        for (g, id) in self.gateways.iter().zip(NAMES) {
            g.assert_audit_verifies();
            let records = g.audit();
            assert!(
                records.iter().all(|r| r["instance"] == id),
                "{id}: {records:#?}"
            );
        }
    }

    /// How many uploads instance `i` committed.
    fn committed(&self, i: usize) -> usize {
        self.gateways[i].events("committed").len()
    }
}

/// The bytes `sftp_client.py put-pause` writes: `mib` MiB from Python's `random.Random(7)`.
fn paused_plaintext(mib: usize) -> Vec<u8> {
    let out = run_ok(Command::new("python3").args([
        "-c",
        &format!(
            "import random,sys; r=random.Random(7); \
             sys.stdout.buffer.write(b''.join(r.randbytes(1 << 20) for _ in range({mib})))"
        ),
    ]));
    out.stdout
}

/// A paused upload's report, once it was let go.
fn finish(p: Paused) -> serde_json::Value {
    p.go();
    let out = p.child.wait_with_output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        serde_json::json!({
            "ok": false,
            "stdout": String::from_utf8_lossy(&out.stdout),
            "stderr": String::from_utf8_lossy(&out.stderr),
        })
    })
}

/// Uploads through the balancer land on both instances, every one decrypts, and the gateways
/// see the client's address from the PROXY header, not the balancer's. Then one Garage node
/// stops: uploads still succeed on the other two.
#[test]
fn uploads_spread_over_both_instances_and_survive_a_lost_storage_node() {
    let mut c = Cluster::start();
    let mut expected = Vec::new();
    for i in 0..6 {
        let name = format!("spread-{i}.bin");
        let plain = data(300 << 10, i);
        c.put(&name, &plain);
        expected.push((name, plain));
    }
    assert!(
        c.committed(0) > 0 && c.committed(1) > 0,
        "round robin must reach both instances: gw-a {} gw-b {}",
        c.committed(0),
        c.committed(1)
    );
    for g in &c.gateways {
        let sources: Vec<String> = g
            .events("auth")
            .iter()
            .map(|r| r["source"].as_str().unwrap_or_default().to_string())
            .collect();
        assert!(
            !sources.is_empty() && sources.iter().all(|s| s.starts_with(CLIENT_SOURCE)),
            "logins must come from the client's address in the PROXY header: {sources:?}"
        );
    }

    c.garage[2].kill();
    for i in 6..10 {
        let name = format!("spread-{i}.bin");
        let plain = data(300 << 10, i);
        c.put(&name, &plain);
        expected.push((name, plain));
    }
    assert!(c.committed(0) + c.committed(1) == 10);
    let expected: Vec<(&str, Vec<u8>)> = expected
        .iter()
        .map(|(n, p)| (n.as_str(), p.clone()))
        .collect();
    c.assert_clean(&expected);
}

/// SIGKILL the instance running an upload: the client sees the failure, retries through the
/// balancer and lands on the other instance. The killed instance restarts while that retry is
/// uploading: its startup sweep aborts only its own leftover, and the retry completes.
#[test]
fn a_killed_instance_restarts_without_hurting_the_others_upload() {
    let mut c = Cluster::start();
    let (mib, after) = (12, 1);
    let name = "retried.bin";
    let key = format!("{TENANT}/{name}");

    let first = Paused::start_on(&c.gateways[0], c.lb.port, USER, name, mib, after);
    first.wait_in_garage(&c.store, BUCKET, &key, &c.gateways[0]);
    let victim = c.serving(name);
    let other = 1 - victim;
    c.gateways[victim].kill();
    c.lb.wait_status(NAMES[victim], "DOWN");
    let report = finish(first);
    assert_eq!(
        report["ok"], false,
        "the client must see its upload fail: {report}"
    );
    // The killed instance's multipart upload is still open: nobody else may abort it.
    assert_eq!(c.store.uploads(BUCKET), std::slice::from_ref(&key));

    // The same client command again (its pause files are from the first attempt).
    for signal in ["paused", "go"] {
        let _ = std::fs::remove_file(c.gateways[0].path(&format!("{name}.{signal}")));
    }
    let before = c.gateways[other].events("decision").len();
    let retry = Paused::start_on(&c.gateways[0], c.lb.port, USER, name, mib, after);
    assert!(
        eventually(120, || retry.paused()),
        "the retry did not get going:\n{}",
        c.logs()
    );
    assert!(c.gateways[other].events("decision").len() > before);
    assert!(
        eventually(60, || c.store.uploads(BUCKET).len() == 2),
        "the retry's multipart upload did not start: {:?}",
        c.store.uploads(BUCKET)
    );

    c.gateways[victim].restart();
    // The restart swept its own leftover, and only that.
    assert!(
        eventually(60, || c.store.uploads(BUCKET).len() == 1),
        "the restarted instance did not abort its leftover: {:?}\n{}",
        c.store.uploads(BUCKET),
        c.logs()
    );
    let report = finish(retry);
    assert_eq!(report["ok"], true, "{report}\n{}", c.logs());
    c.assert_clean(&[(name, paused_plaintext(mib + after))]);
    assert_eq!(c.committed(other), 1);
    assert_eq!(c.committed(victim), 0);
}

/// SIGTERM: the instance's `/readyz` turns 503, HAProxy takes it out while its listener still
/// answers, new uploads go to the other instance, the upload it was running completes in the
/// grace period, and then it exits.
#[test]
fn sigterm_drains_an_instance_out_of_the_balancer_before_it_closes() {
    let mut c = Cluster::start();
    let (mib, after) = (12, 1);
    let name = "draining.bin";
    let running = Paused::start_on(&c.gateways[0], c.lb.port, USER, name, mib, after);
    running.wait_in_garage(
        &c.store,
        BUCKET,
        &format!("{TENANT}/{name}"),
        &c.gateways[0],
    );
    let draining = c.serving(name);
    let other = 1 - draining;
    let port = c.gateways[draining].port;

    c.gateways[draining].signal("TERM");
    c.lb.wait_status(NAMES[draining], "DOWN");
    assert!(
        ssh_banner(port),
        "the balancer must take the instance out before its listener closes:\n{}",
        c.logs()
    );
    let mut expected = vec![(name.to_string(), paused_plaintext(mib + after))];
    for i in 0..3 {
        let name = format!("after-term-{i}.bin");
        let plain = data(200 << 10, 100 + i);
        c.put(&name, &plain);
        expected.push((name, plain));
    }
    assert_eq!(
        c.committed(other),
        3,
        "new uploads must go to the other one"
    );

    let report = finish(running);
    assert_eq!(report["ok"], true, "{report}\n{}", c.logs());
    let status = c.gateways[draining].wait_exit();
    assert!(status.success(), "{status}\n{}", c.logs());
    assert!(!ssh_banner(port));
    let expected: Vec<(&str, Vec<u8>)> = expected
        .iter()
        .map(|(n, p)| (n.as_str(), p.clone()))
        .collect();
    c.assert_clean(&expected);
}
