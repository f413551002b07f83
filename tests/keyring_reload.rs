//! Keyring reloads in the real binary: `eugate keys rotate` reaches a running gateway by SIGHUP
//! or by the file change alone; /readyz and /metrics name the keyring version in force (and
//! the policy bundle hash), so instances that drifted apart show; an upload keeps the key it
//! opened with, new uploads take the new key, old objects still open; a corrupt or older
//! keyring file is refused, counted and shown, and the gateway stays ready on the keys it has.
//! Policy reloads are counted and shown the same way.

mod common;

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{Gateway, Options, bin, copy_policies, data, free_port, run_ok};

struct Admin {
    g: Gateway,
    port: u16,
    ca: PathBuf,
    _certs: tempfile::TempDir,
    policies: Option<tempfile::TempDir>,
}

/// A gateway with the admin listener (certificates from `certs/make-demo-ca.sh`), and with a
/// watched copy of the shipped policies if `policies`.
fn start(policies: bool) -> Admin {
    let certs = tempfile::tempdir().unwrap();
    let ca = certs.path().join("ca");
    run_ok(
        Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("certs/make-demo-ca.sh")).arg(&ca),
    );
    let port = free_port();
    let mut extra = format!(
        "\n[admin]\nlisten = [\"127.0.0.1:{port}\"]\ncertificate = \"{}\"\nprivate_key = \"{}\"\n",
        ca.join("server.pem").display(),
        ca.join("server.key").display(),
    );
    let dir = policies.then(copy_policies);
    if let Some(d) = &dir {
        extra.push_str(&format!(
            "\n[policy]\ndir = \"{}\"\nwatch = true\n",
            d.path().display()
        ));
    }
    Admin {
        g: Gateway::start_with(Options {
            extra_toml: extra,
            ..Options::default()
        }),
        port,
        ca,
        _certs: certs,
        policies: dir,
    }
}

impl Admin {
    /// HTTP status and body of an admin GET.
    fn get(&self, path: &str) -> (u16, String) {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "20", "--cacert"])
            .arg(self.ca.join("ca.pem"))
            .args(["-w", "\n%{http_code}"])
            .arg(format!("https://127.0.0.1:{}{path}", self.port))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", ""));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    /// /readyz, which must answer 200.
    fn ready(&self) -> String {
        let (code, body) = self.get("/readyz");
        assert_eq!(code, 200, "{body}\n{}", self.g.log());
        body
    }

    /// The keyring version /readyz names.
    fn ready_version(&self) -> String {
        let body = self.ready();
        let line = body
            .lines()
            .find(|l| l.starts_with("keyring: ok (version sha256:"))
            .unwrap_or_else(|| panic!("no keyring version in\n{body}"));
        let v = &line["keyring: ok (version ".len()..];
        v[..71].to_string()
    }

    /// Every /metrics sample, through the Prometheus client library's parsers.
    fn metrics(&self) -> Vec<serde_json::Value> {
        let (code, text) = self.get("/metrics");
        assert_eq!(code, 200, "{text}");
        let mut child = Command::new("python3")
            .arg(common::scripts().join("prom_parse.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(out.status.success(), "parsers refused: {v}\n{text}");
        v["samples"].as_array().unwrap().clone()
    }

    /// The one label value `label` of metric `name` (an info metric shows exactly one).
    fn info(&self, name: &str, label: &str) -> String {
        let s = self.metrics();
        let found: Vec<&serde_json::Value> = s.iter().filter(|x| x["name"] == name).collect();
        assert_eq!(found.len(), 1, "{name}: {found:?}");
        assert_eq!(found[0]["value"].as_f64(), Some(1.0));
        found[0]["labels"][label].as_str().unwrap().to_string()
    }

    /// `name{outcome=...}`.
    fn reloads(&self, name: &str, outcome: &str) -> f64 {
        self.metrics()
            .iter()
            .find(|x| x["name"] == name && x["labels"]["outcome"] == outcome)
            .unwrap_or_else(|| panic!("no {name} {outcome}"))["value"]
            .as_f64()
            .unwrap()
    }

    /// `eugate keys ARGS` on `keyring` (the gateway's master key).
    fn keys(&self, keyring: &Path, args: &[&str]) -> Output {
        run_ok(
            Command::new(bin())
                .arg("keys")
                .args(args)
                .arg("--keyring")
                .arg(keyring)
                .arg("--master-key-file")
                .arg(&self.g.master),
        )
    }

    /// The version `eugate keys list --json` computes for the file `keyring`.
    fn file_version(&self, keyring: &Path) -> String {
        let out = self.keys(keyring, &["list", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["version"].as_str().unwrap().to_string()
    }

    /// Uploads fresh bytes as alice to /`name`; returns them.
    fn put(&self, name: &str, seed: u64) -> Vec<u8> {
        let plain = data(100_000, seed);
        std::fs::write(self.g.path(name), &plain).unwrap();
        self.g.sftp_ok("alice", &format!("put {name} /{name}\n"));
        plain
    }

    /// Downloads /`name` as alice through the gateway.
    fn get_back(&self, name: &str) -> Vec<u8> {
        let local = format!("{name}.back");
        self.g.sftp_ok("alice", &format!("get /{name} {local}\n"));
        std::fs::read(self.g.path(&local)).unwrap()
    }

    /// The key version the stored object `name` is sealed under, as `eugate decrypt` reports
    /// it (the decryption succeeds with `keyring`, and yields `plain`).
    fn sealed_version(&self, keyring: &Path, name: &str, plain: &[u8]) -> u32 {
        let out_path = self.g.path(&format!("{name}.plain"));
        let out = run_ok(
            Command::new(bin())
                .arg("decrypt")
                .arg("--keyring")
                .arg(keyring)
                .arg("--master-key-file")
                .arg(&self.g.master)
                .arg(self.g.store.join("acme").join(name))
                .arg(&out_path),
        );
        assert_eq!(std::fs::read(&out_path).unwrap(), plain, "{name}");
        let said = String::from_utf8_lossy(&out.stderr);
        let v = said
            .split(" v")
            .nth(1)
            .and_then(|r| r.split(',').next())
            .unwrap_or_else(|| panic!("no key version in {said:?}"));
        v.parse().unwrap()
    }
}

fn keyring_reloads(g: &Gateway) -> Vec<serde_json::Value> {
    g.events("keyring_reload")
}

/// SIGHUP puts a rotated keyring in force. The keyring here is reached through a symlink into a
/// directory the gateway does not watch, so only the signal can be what reloaded it.
#[test]
fn sighup_puts_a_rotated_keyring_in_force_and_running_uploads_keep_their_key() {
    let a = start(true);
    let old = a.put("old.bin", 1);
    let v0 = a.ready_version();
    assert_eq!(a.info("eugate_keyring_info", "version"), v0);
    assert_eq!(a.file_version(&a.g.keyring), v0);
    // /readyz names the policy bundle in force too, as /metrics does.
    let bundle = a.info("eugate_policy_bundle_info", "hash");
    assert!(
        a.ready().contains(&format!("policy: ok (bundle {bundle}")),
        "{}",
        a.ready()
    );
    let loaded_at = |a: &Admin| {
        a.metrics()
            .iter()
            .find(|x| x["name"] == "eugate_keyring_loaded_timestamp_seconds")
            .unwrap()["value"]
            .as_f64()
            .unwrap()
    };
    let loaded0 = loaded_at(&a);
    assert!(loaded0 > 1.7e9, "{loaded0}");

    // The keyring moves behind a symlink (one atomic rename: a reload that finds the same keys).
    let vault = a.g.path("vault");
    std::fs::create_dir(&vault).unwrap();
    let real = vault.join("keyring");
    std::fs::copy(&a.g.keyring, &real).unwrap();
    let link = a.g.path("keyring.link");
    std::os::unix::fs::symlink("vault/keyring", &link).unwrap();
    std::fs::rename(&link, &a.g.keyring).unwrap();
    a.g.wait_until("the symlinked keyring read", || {
        a.reloads("eugate_keyring_reloads_total", "unchanged") >= 1.0
    });
    assert_eq!(a.ready_version(), v0);

    // An upload opened under the old keys.
    let gate = a.g.path("gate");
    let slow = data(2 << 20, 9);
    let (mut client, mut out) = a.g.spawn_gated_upload(&gate);

    let rotated = a.keys(&real, &["rotate", "acme"]);
    assert!(String::from_utf8_lossy(&rotated.stdout).contains("active version 2"));
    let v1 = a.file_version(&real);
    assert_ne!(v1, v0);

    a.g.signal("HUP");
    a.g.wait_until("the rotated keyring in /readyz", || a.ready_version() == v1);
    assert_eq!(a.info("eugate_keyring_info", "version"), v1);
    assert_eq!(a.reloads("eugate_keyring_reloads_total", "changed"), 1.0);
    assert_eq!(a.reloads("eugate_keyring_reloads_total", "failed"), 0.0);
    assert!(loaded_at(&a) >= loaded0);
    // The same signal reloaded the (unchanged) policies, counted as such.
    a.g.wait_until("the policy reload counted", || {
        a.reloads("eugate_policy_reloads_total", "unchanged") >= 1.0
    });
    assert_eq!(a.reloads("eugate_policy_reloads_total", "changed"), 0.0);

    // The running upload finishes under the key it started with.
    std::fs::write(&gate, b"go").unwrap();
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.contains("\"ok\": true"), "{line}\n{}", a.g.log());
    client.wait().unwrap();
    assert_eq!(a.sealed_version(&real, "slow.bin", &slow), 1);
    // New uploads take the new key; the old object still opens through the gateway.
    let new = a.put("new.bin", 2);
    assert_eq!(a.sealed_version(&real, "new.bin", &new), 2);
    assert_eq!(a.sealed_version(&real, "old.bin", &old), 1);
    assert_eq!(a.get_back("old.bin"), old);
    let committed: Vec<(String, u64)> =
        a.g.events("committed")
            .iter()
            .map(|e| {
                (
                    e["object"].as_str().unwrap().to_string(),
                    e["key_version"].as_u64().unwrap(),
                )
            })
            .collect();
    for (object, version) in [("old.bin", 1), ("slow.bin", 1), ("new.bin", 2)] {
        assert!(
            committed
                .iter()
                .any(|(o, v)| o.ends_with(object) && *v == version),
            "{object} v{version}: {committed:?}"
        );
    }

    // The change is evidence: which keys replaced which.
    let reloads = keyring_reloads(&a.g);
    assert_eq!(reloads.len(), 1, "{reloads:#?}");
    assert_eq!(reloads[0]["accepted"], true);
    assert_eq!(reloads[0]["previous"], v0.as_str());
    assert_eq!(reloads[0]["version"], v1.as_str());
    assert!(reloads[0]["detail"].as_str().unwrap().starts_with("SIGHUP"));
    a.g.assert_audit_verifies();
}

/// A corrupt keyring file (noticed by the watcher and again at SIGHUP) is refused: the loaded
/// keys stay in force, the gateway stays ready and keeps serving, the refusals are counted,
/// shown in /readyz and audited; the good file back clears the report.
#[test]
fn a_corrupt_keyring_is_refused_and_the_gateway_stays_ready_on_the_keys_it_has() {
    let a = start(false);
    let v0 = a.ready_version();
    let good = std::fs::read(&a.g.keyring).unwrap();
    // Written in place: the file keeps its 0600 mode.
    std::fs::write(&a.g.keyring, b"EUGATEKR\x01 not a keyring").unwrap();
    a.g.signal("HUP");
    a.g.wait_until("the SIGHUP refusal audited", || {
        keyring_reloads(&a.g)
            .iter()
            .any(|r| r["accepted"] == false && r["detail"].as_str().unwrap().starts_with("SIGHUP"))
    });
    let (code, body) = a.get("/readyz");
    assert_eq!(code, 200, "{body}");
    assert_eq!(a.ready_version(), v0);
    assert!(body.contains("last reload refused at"), "{body}");
    assert!(body.contains("not an eugate keyring"), "{body}");
    assert_eq!(a.info("eugate_keyring_info", "version"), v0);
    let failed = a.reloads("eugate_keyring_reloads_total", "failed");
    assert!(failed >= 1.0, "{failed}");
    assert_eq!(a.reloads("eugate_keyring_reloads_total", "changed"), 0.0);
    assert!(
        a.g.log().contains("keyring reload refused"),
        "{}",
        a.g.log()
    );
    for r in keyring_reloads(&a.g) {
        assert_eq!(r["accepted"], false, "{r}");
        assert_eq!(r["version"], v0.as_str(), "{r}");
    }

    // Uploads and downloads go on with the keys in force.
    let plain = a.put("during.bin", 3);
    assert_eq!(a.get_back("during.bin"), plain);

    // The good file back: accepted (the same keys), and /readyz no longer reports a refusal.
    std::fs::write(&a.g.keyring, &good).unwrap();
    a.g.wait_until("the refusal cleared", || {
        !a.ready().contains("last reload refused")
    });
    assert_eq!(a.ready_version(), v0);
    assert_eq!(a.sealed_version(&a.g.keyring, "during.bin", &plain), 1);
    a.g.assert_audit_verifies();
}

/// Without any signal: `eugate keys rotate` on the configured file is picked up by the watcher.
/// Putting an older copy back (it lacks the new key) is refused, and the new key stays.
#[test]
fn a_rotation_reaches_the_gateway_by_the_file_change_alone_and_an_older_copy_is_refused() {
    let a = start(false);
    let old = a.put("old.bin", 4);
    let v0 = a.ready_version();
    let older = std::fs::read(&a.g.keyring).unwrap();
    a.keys(&a.g.keyring, &["rotate", "acme"]);
    let v1 = a.file_version(&a.g.keyring);
    a.g.wait_until("the rotated keyring in /readyz", || a.ready_version() == v1);
    assert_ne!(v1, v0);
    assert_eq!(a.info("eugate_keyring_info", "version"), v1);
    let new = a.put("new.bin", 5);
    assert_eq!(a.sealed_version(&a.g.keyring, "new.bin", &new), 2);
    assert_eq!(a.get_back("old.bin"), old);
    let reloads = keyring_reloads(&a.g);
    assert!(
        reloads.iter().any(|r| r["accepted"] == true
            && r["version"] == v1.as_str()
            && r["previous"] == v0.as_str()
            && r["detail"].as_str().unwrap().starts_with("file change")),
        "{reloads:#?}"
    );

    // An older copy of the file would make new.bin undecryptable: refused, v1 stays.
    std::fs::write(&a.g.keyring, &older).unwrap();
    a.g.wait_until("the older copy refused", || {
        a.ready().contains("no longer holds key")
    });
    assert_eq!(a.ready_version(), v1);
    assert!(a.reloads("eugate_keyring_reloads_total", "failed") >= 1.0);
    assert_eq!(a.get_back("new.bin"), new);
    let newer = a.put("newer.bin", 6);
    assert_eq!(a.get_back("newer.bin"), newer);
    a.g.assert_audit_verifies();
}

/// Policy reloads show the same way: a broken edit is counted as failed and named on the
/// `policy` line of /readyz (still ready, the old bundle in force); a valid edit changes the
/// bundle hash in both endpoints and its audit record names the bundle it replaced.
#[test]
fn policy_reloads_are_counted_and_shown_beside_the_bundle_hash() {
    let a = start(true);
    let rules = a.policies.as_ref().unwrap().path().join("default.cedar");
    let good = std::fs::read_to_string(&rules).unwrap();
    let h0 = a.info("eugate_policy_bundle_info", "hash");

    std::fs::write(&rules, format!("{good}\nforbid (principal, action,\n")).unwrap();
    a.g.wait_until("the broken bundle refused", || {
        a.reloads("eugate_policy_reloads_total", "failed") >= 1.0
    });
    let body = a.ready();
    assert!(
        body.contains(&format!("policy: ok (bundle {h0}; last reload refused at ")),
        "{body}"
    );
    assert_eq!(a.info("eugate_policy_bundle_info", "hash"), h0);

    // A valid edit (a reviewer's note): another bundle hash, in force, the refusal cleared.
    std::fs::write(&rules, format!("{good}\n// reviewed\n")).unwrap();
    a.g.wait_until("the edited bundle in force", || {
        a.reloads("eugate_policy_reloads_total", "changed") >= 1.0
    });
    let h1 = a.info("eugate_policy_bundle_info", "hash");
    assert_ne!(h1, h0);
    let body = a.ready();
    assert!(
        body.contains(&format!("policy: ok (bundle {h1})")),
        "{body}"
    );
    let changed = a.g.events("policy_reload");
    assert!(
        changed.iter().any(|e| e["accepted"] == true
            && e["bundle"] == h1.as_str()
            && e["previous"] == h0.as_str()),
        "{changed:#?}"
    );
    a.put("after.bin", 7);
    a.g.assert_audit_verifies();
}
