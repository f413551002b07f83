//! Several gateway instances writing to one bucket: a restart of one must not touch the
//! multipart uploads the others are running (it aborts only what its own upload journal says
//! it left), and each instance's audit records name it.

mod common;
#[path = "garage/mod.rs"]
mod garage;

use common::{Gateway, Options};
use garage::{Garage, Paused};

const BUCKET: &str = "eugate-shared";

fn instance(eu: &Garage, id: &str) -> Gateway {
    Gateway::start_with(Options {
        server_toml: format!("instance_id = \"{id}\""),
        extra_toml: format!(
            "\n[storage]\nrequest_timeout_secs = 5\nconnect_timeout_secs = 2\n\n{}{}",
            garage::destination_toml("eu-s3", &eu.endpoint(), BUCKET, "eu-central-1", "DE"),
            garage::tenant_toml("eurobank", "eu-s3", &["erin"]),
        ),
        extra_keys: vec!["erin"],
        extra_tenants: vec!["eurobank"],
        env: garage::gateway_env(),
        ..Options::default()
    })
}

#[test]
fn restarting_one_instance_leaves_the_others_uploads_alone() {
    let eu = Garage::start("eu-central-1", &[BUCKET]);
    let store = eu.store();
    let a = instance(&eu, "gw-a");
    let mut b = instance(&eu, "gw-b");

    // A runs an upload (its multipart upload is open in the bucket); B crashes with one of its
    // own open, and restarts.
    let on_a = Paused::start(&a, "erin", "on-a.bin", 20, 1);
    on_a.wait_in_garage(&store, BUCKET, "eurobank/on-a.bin", &a);
    let on_b = Paused::start(&b, "erin", "on-b.bin", 20, 1);
    on_b.wait_in_garage(&store, BUCKET, "eurobank/on-b.bin", &b);
    b.crash_and_restart();

    // B's restart aborted its own leftover, and only that.
    let open = store.uploads(BUCKET);
    assert_eq!(open, ["eurobank/on-a.bin"], "{}", b.log());
    // A's upload finishes and is stored whole.
    on_a.go();
    let out = on_a.child.wait_with_output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(
        report["ok"],
        true,
        "A's upload must survive B's restart: {report}\n{}",
        a.log()
    );
    let objects = store.objects(BUCKET);
    assert_eq!(objects.len(), 1, "{objects:?}");
    assert_eq!(objects[0].0, "eurobank/on-a.bin");
    assert!(store.uploads(BUCKET).is_empty());
    on_b.go();
    let _ = on_b.child.wait_with_output();

    // Each chain verifies on its own, and every record names its instance.
    for (gw, id) in [(&a, "gw-a"), (&b, "gw-b")] {
        gw.assert_audit_verifies();
        let records = gw.audit();
        assert!(!records.is_empty());
        assert!(
            records.iter().all(|r| r["instance"] == id),
            "{id}: {records:#?}"
        );
    }
}

#[test]
fn an_upload_journal_in_use_is_refused_with_a_precise_error() {
    let eu = Garage::start("eu-central-1", &[BUCKET]);
    let a = instance(&eu, "gw-a");
    // A second process with its own audit log and port, but the same upload journal, must not
    // start: it would abort A's uploads as its own leftovers.
    let text = std::fs::read_to_string(&a.config).unwrap();
    let text = text.replace("audit.jsonl", "audit-second.jsonl").replace(
        &format!("127.0.0.1:{}", a.port),
        &format!("127.0.0.1:{}", common::free_port()),
    );
    let second = a.path("second.toml");
    std::fs::write(&second, text).unwrap();
    let out = std::process::Command::new(common::bin())
        .args(["serve", "--config"])
        .arg(&second)
        .envs(garage::gateway_env())
        .current_dir(a.dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("upload journal") && err.contains("in use by another gateway process"),
        "{err}"
    );
}
