//! The S3 destination against two real Garage servers on loopback: one reporting
//! `eu-central-1` (declared DE), one reporting `us-east-1` (declared US). Uploads go through the
//! real gateway binary with OpenSSH `sftp` and the scripted paramiko client.

mod common;
#[path = "garage/mod.rs"]
mod garage;

use std::process::Command;

use common::{Gateway, Options, assert_no_plaintext, audit_verify, bin, data, eventually};
use garage::{Garage, Paused};

const EU_BUCKET: &str = "eugate-eu";
const US_BUCKET: &str = "eugate-us";
const CLAIMS_BUCKET: &str = "eugate-claims";

struct Setup {
    eu: Garage,
    us: Garage,
    gw: Gateway,
}

fn setup() -> Setup {
    let eu = Garage::start("eu-central-1", &[EU_BUCKET]);
    let us = Garage::start("us-east-1", &[US_BUCKET, CLAIMS_BUCKET]);
    let extra = format!(
        r#"
[storage]
request_timeout_secs = 5
connect_timeout_secs = 2
parts_in_flight = 2

{eu_dest}{us_dest}
# Claims to be in Frankfurt, but the store it points at reports us-east-1.
{claims_dest}
{tenants}"#,
        tenants = [
            garage::tenant_toml("eurobank", "eu-s3", &["erin"]),
            garage::tenant_toml("usco", "us-s3", &["uma"]),
            garage::tenant_toml("claimco", "claims-eu", &["quinn"]),
        ]
        .concat(),
        eu_dest =
            garage::destination_toml("eu-s3", &eu.endpoint(), EU_BUCKET, "eu-central-1", "DE"),
        us_dest = garage::destination_toml("us-s3", &us.endpoint(), US_BUCKET, "us-east-1", "US"),
        claims_dest = garage::destination_toml(
            "claims-eu",
            &us.endpoint(),
            CLAIMS_BUCKET,
            "eu-central-1",
            "DE"
        ),
    );
    let gw = Gateway::start_with(Options {
        extra_toml: extra,
        extra_keys: vec!["erin", "uma", "quinn"],
        extra_tenants: vec!["eurobank", "usco", "claimco"],
        env: garage::gateway_env(),
        ..Options::default()
    });
    Setup { eu, us, gw }
}

#[test]
fn eu_upload_lands_sealed_us_upload_is_denied_and_a_lying_bucket_is_quarantined() {
    let s = setup();
    let gw = &s.gw;
    let eu = s.eu.store();
    let us = s.us.store();

    // A multipart upload (20 MiB: parts of 8, 8 and 4 MiB) and a single-part one.
    let big = data(20 << 20, 1);
    let small = data(100_000, 2);
    std::fs::write(gw.path("big.bin"), &big).unwrap();
    std::fs::write(gw.path("small.bin"), &small).unwrap();
    let cmds = format!(
        "put {} /big.bin\nput {} /small.bin\nget /big.bin {}\nget /small.bin {}\n",
        gw.path("big.bin").display(),
        gw.path("small.bin").display(),
        gw.path("big.back").display(),
        gw.path("small.back").display(),
    );
    gw.sftp_ok("erin", &cmds);
    assert!(std::fs::read(gw.path("big.back")).unwrap() == big);
    assert!(std::fs::read(gw.path("small.back")).unwrap() == small);

    // What Garage holds is ciphertext that `eugate decrypt` opens to the uploaded bytes.
    let mut objects = eu.objects(EU_BUCKET);
    objects.sort();
    let keys: Vec<&str> = objects.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["eurobank/big.bin", "eurobank/small.bin"]);
    assert!(eu.uploads(EU_BUCKET).is_empty(), "no multipart upload left");
    let sealed = eu.get(EU_BUCKET, "eurobank/big.bin");
    // No 32-byte run of either plaintext anywhere in what the store holds.
    assert_no_plaintext(&sealed, &big);
    assert!(gw.decrypt_bytes(&sealed) == big);
    let sealed_small = eu.get(EU_BUCKET, "eurobank/small.bin");
    assert_no_plaintext(&sealed_small, &small);
    assert!(gw.decrypt_bytes(&sealed_small) == small);
    // What the audit record must name: the BLAKE3 of the stored bytes (multipart and single part).
    let digests = [
        ("big.bin", blake3::hash(&sealed).to_hex().to_string()),
        (
            "small.bin",
            blake3::hash(&sealed_small).to_hex().to_string(),
        ),
    ];
    let meta = eu.metadata(EU_BUCKET, "eurobank/small.bin");
    assert_eq!(
        meta.get("eugate-tenant").map(String::as_str),
        Some("eurobank")
    );
    assert_eq!(
        meta.get("eugate-plaintext-size").map(String::as_str),
        Some("100000")
    );
    assert!(
        eu.metadata(EU_BUCKET, "eurobank/big.bin")
            .contains_key("eugate-object-id")
    );

    // Rename is a server-side copy: the sealed bytes do not change. rm removes.
    gw.sftp_ok(
        "erin",
        "rename /big.bin /moved.bin\nrm /small.bin\nls -l /\n",
    );
    let keys: Vec<String> = eu.objects(EU_BUCKET).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["eurobank/moved.bin"]);
    assert!(eu.get(EU_BUCKET, "eurobank/moved.bin") == sealed);

    // The US store: refused at OPEN, and nothing reaches it. OpenSSH shows only the status
    // code; the scripted client shows the server's message.
    let out = gw.sftp(
        "uma",
        &format!("put {} /small.bin\n", gw.path("small.bin").display()),
    );
    assert!(!out.status.success());
    let said = gw.script("uma", &["exclusive", "--path", "/small.bin"]);
    assert_eq!(said["ok"], false);
    let said = said["error"].as_str().unwrap_or_default().to_string();
    assert!(
        said.contains("residency policy denied"),
        "client message: {said}"
    );
    assert!(
        us.objects(US_BUCKET).is_empty(),
        "the US store holds no object"
    );
    assert!(
        us.uploads(US_BUCKET).is_empty(),
        "the US store holds no multipart upload"
    );

    // A destination whose configured region differs from what its store reports.
    let probe = Command::new(bin())
        .args(["destinations", "--config"])
        .arg(&gw.config)
        .envs(garage::gateway_env())
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&probe.stdout);
    assert_eq!(
        probe.status.code(),
        Some(1),
        "a quarantined destination exits 1:\n{table}"
    );
    assert!(table.contains("claims-eu: quarantined"), "{table}");
    assert!(table.contains("eu-s3: verified"), "{table}");
    assert!(table.contains("us-s3: verified"), "{table}");
    assert!(
        table.contains("configured region eu-central-1 but the store reports us-east-1"),
        "{table}"
    );
    let out = gw.sftp(
        "quinn",
        &format!("put {} /x.bin\n", gw.path("small.bin").display()),
    );
    assert!(!out.status.success());
    let said = gw.script("quinn", &["exclusive", "--path", "/x.bin"]);
    let said = said["error"].as_str().unwrap_or_default().to_string();
    assert!(
        said.contains("eu-central-1") && said.contains("us-east-1"),
        "the refusal names both regions: {said}"
    );
    assert!(us.objects(CLAIMS_BUCKET).is_empty());
    assert!(us.uploads(CLAIMS_BUCKET).is_empty());

    // The audit trail: quarantine, verified decisions with observed regions, commits; it
    // verifies, and a tampered copy does not.
    let records = gw.audit();
    let find = |pred: &dyn Fn(&serde_json::Value) -> bool| records.iter().any(pred);
    assert!(
        find(&|r| r["event"]["type"] == "destination"
            && r["event"]["destination"] == "claims-eu"
            && r["event"]["state"] == "quarantined"),
        "{records:#?}"
    );
    assert!(find(&|r| r["event"]["type"] == "decision"
        && r["event"]["destination"] == "eu-s3"
        && r["event"]["allowed"] == true
        && r["event"]["observed_region"] == "eu-central-1"));
    assert!(find(&|r| r["event"]["type"] == "decision"
        && r["event"]["destination"] == "us-s3"
        && r["event"]["allowed"] == false));
    assert!(find(&|r| r["event"]["type"] == "decision"
        && r["event"]["destination"] == "claims-eu"
        && r["event"]["allowed"] == false));
    for (name, digest) in &digests {
        assert!(
            find(&|r| r["event"]["type"] == "committed"
                && r["event"]["destination"] == "eu-s3"
                && r["event"]["object"]
                    .as_str()
                    .is_some_and(|o| o.ends_with(name))
                && r["event"]["ciphertext_blake3"] == digest.as_str()),
            "committed record for {name} with BLAKE3 {digest}: {records:#?}"
        );
    }
    let log = gw.audit_path();
    gw.assert_audit_verifies();
    let text = std::fs::read_to_string(&log).unwrap();
    let tampered = gw.path("audit-tampered.jsonl");
    std::fs::write(
        &tampered,
        text.replacen("\"allowed\":false", "\"allowed\":true", 1),
    )
    .unwrap();
    assert_eq!(audit_verify(&tampered).status.code(), Some(1));
}

/// Starts a paused upload of `mib` MiB (plus one more after "go") and waits until Garage holds
/// its multipart upload.
fn paused_upload(s: &Setup, name: &str, mib: usize) -> Paused {
    let p = Paused::start(&s.gw, "erin", name, mib, 1);
    p.wait_in_garage(&s.eu.store(), EU_BUCKET, &format!("eurobank/{name}"), &s.gw);
    p
}

#[test]
fn garage_killed_mid_upload_fails_the_close_and_leaves_nothing_once_back() {
    let mut s = setup();
    let p = paused_upload(&s, "killed.bin", 20);
    s.eu.kill();
    p.go();
    let out = p.child.wait_with_output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["ok"],
        false,
        "CLOSE must fail: {report}\n{}",
        s.gw.log()
    );

    s.eu.restart();
    let eu = s.eu.store();
    assert!(
        eventually(60, || eu.uploads(EU_BUCKET).is_empty()),
        "the multipart upload was not aborted after the store came back:\n{}",
        s.gw.log()
    );
    assert!(eu.objects(EU_BUCKET).is_empty(), "no object may appear");
    let records = s.gw.audit();
    assert!(
        records
            .iter()
            .any(|r| r["event"]["type"] == "aborted"
                && r["event"]["object"] == "eurobank/killed.bin"),
        "{records:#?}"
    );
    // A later upload works again.
    std::fs::write(s.gw.path("after.bin"), data(1000, 3)).unwrap();
    s.gw.sftp_ok(
        "erin",
        &format!("put {} /after.bin\n", s.gw.path("after.bin").display()),
    );
    assert_eq!(eu.objects(EU_BUCKET).len(), 1);
}

#[test]
fn gateway_crash_mid_upload_is_cleaned_up_at_restart() {
    let mut s = setup();
    let p = paused_upload(&s, "crash.bin", 20);
    s.gw.crash_and_restart();
    let eu = s.eu.store();
    // The sweep runs before the restarted gateway accepts connections.
    assert!(
        eu.uploads(EU_BUCKET).is_empty(),
        "the restarted gateway must abort the upload its previous run left:\n{}",
        s.gw.log()
    );
    p.go();
    let out = p.child.wait_with_output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_ne!(
        report["ok"], true,
        "the upload cannot have succeeded: {report}"
    );
    assert!(eu.objects(EU_BUCKET).is_empty());
    s.gw.assert_audit_verifies();
}

#[test]
fn concurrent_uploads_share_a_small_memory_budget_and_all_complete() {
    // 16 MiB cannot hold an 8 MiB part in memory beside one in flight: four 12 MiB uploads (two
    // parts each) spool their parts and share the budget a buffer at a time, and every one must
    // still complete intact.
    let eu = Garage::start("eu-central-1", &[EU_BUCKET]);
    let gw = Gateway::start_with(Options {
        extra_toml: format!(
            r#"
[storage]
memory_budget = "16MiB"
parts_in_flight = 1

{}
{}"#,
            garage::destination_toml("eu-s3", &eu.endpoint(), EU_BUCKET, "eu-central-1", "DE"),
            garage::tenant_toml("eurobank", "eu-s3", &["erin"]),
        ),
        extra_keys: vec!["erin"],
        extra_tenants: vec!["eurobank"],
        env: garage::gateway_env(),
        ..Options::default()
    });
    let files: Vec<Vec<u8>> = (0..4).map(|i| data(12 << 20, 10 + i)).collect();
    for (i, f) in files.iter().enumerate() {
        std::fs::write(gw.path(&format!("c{i}.bin")), f).unwrap();
    }
    std::thread::scope(|scope| {
        for i in 0..4 {
            let gw = &gw;
            scope.spawn(move || {
                gw.sftp_ok(
                    "erin",
                    &format!(
                        "put {} /c{i}.bin\n",
                        gw.path(&format!("c{i}.bin")).display()
                    ),
                );
            });
        }
    });
    let store = eu.store();
    assert!(store.uploads(EU_BUCKET).is_empty());
    for (i, f) in files.iter().enumerate() {
        let sealed = store.get(EU_BUCKET, &format!("eurobank/c{i}.bin"));
        assert!(gw.decrypt_bytes(&sealed) == *f, "upload {i}");
    }
    // Two 8 MiB parts in flight would not fit 16 MiB beside the parts being filled: parts of
    // this size are spooled (sealed, to unnamed temp files) and cost one buffer at a time.
    assert!(
        gw.log().contains("part spooled to a temporary file"),
        "{}",
        gw.log()
    );
}

/// A name is data too: a tenant routed to a store the policy denies can neither create a
/// directory nor rename onto it, and nothing appears in the bucket.
#[test]
fn mkdir_and_rename_to_a_denied_bucket_are_refused_and_nothing_appears() {
    let s = setup();
    let out = s.gw.sftp(
        "uma",
        "-mkdir /patient-jane-doe\n-rename /a.bin /patient-john-doe\n",
    );
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        text.matches("Permission denied").count(),
        2,
        "{text}\n{}",
        s.gw.log()
    );
    let us = s.us.store();
    assert!(
        us.objects(US_BUCKET).is_empty(),
        "{:?}",
        us.objects(US_BUCKET)
    );
    let records = s.gw.audit();
    for op in ["mkdir", "rename"] {
        assert!(
            records.iter().any(|r| r["event"]["type"] == "decision"
                && r["event"]["operation"] == op
                && r["event"]["tenant"] == "usco"
                && r["event"]["allowed"] == false),
            "{op}: {records:#?}"
        );
    }
}

/// A bucket that starts reporting another region while an upload runs gets none of the
/// upload's remaining parts: the CLOSE fails, no object appears, the multipart upload goes.
#[test]
fn a_bucket_quarantined_mid_upload_fails_the_running_upload() {
    let mut eu = Garage::start("eu-central-1", &[EU_BUCKET]);
    let extra = format!(
        "\n[storage]\nrequest_timeout_secs = 5\nconnect_timeout_secs = 2\n{}verify_interval_secs = 10\n{}",
        garage::destination_toml("eu-s3", &eu.endpoint(), EU_BUCKET, "eu-central-1", "DE"),
        garage::tenant_toml("eurobank", "eu-s3", &["erin"]),
    );
    let gw = Gateway::start_with(Options {
        extra_toml: extra,
        extra_keys: vec!["erin"],
        extra_tenants: vec!["eurobank"],
        env: garage::gateway_env(),
        ..Options::default()
    });
    let store = eu.store();
    let client = Paused::start(&gw, "erin", "moved.bin", 20, 12);
    client.wait_in_garage(&store, EU_BUCKET, "eurobank/moved.bin", &gw);
    // The same store now reports another region: the next probe quarantines it.
    let config = std::fs::read_to_string(&eu.config).unwrap();
    std::fs::write(
        &eu.config,
        config.replace("s3_region = \"eu-central-1\"", "s3_region = \"us-east-1\""),
    )
    .unwrap();
    eu.region = "us-east-1".into();
    eu.restart();
    let store = eu.store();
    assert!(
        eventually(60, || gw.audit().iter().any(|r| r["event"]["type"]
            == "destination"
            && r["event"]["state"] == "quarantined")),
        "not quarantined:\n{}",
        gw.log()
    );
    client.go();
    let out = client.child.wait_with_output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["ok"],
        false,
        "CLOSE must fail: {report}\n{}",
        gw.log()
    );
    assert!(store.objects(EU_BUCKET).is_empty(), "no object may appear");
    // Garage now refuses requests signed for the old region, so the abort waits in the
    // background retry; once the store answers again, the multipart upload goes.
    std::fs::write(&eu.config, &config).unwrap();
    eu.region = "eu-central-1".into();
    eu.restart();
    let store = eu.store();
    assert!(
        eventually(60, || store.uploads(EU_BUCKET).is_empty()),
        "the multipart upload was not aborted:\n{}",
        gw.log()
    );
    assert!(store.objects(EU_BUCKET).is_empty(), "no object may appear");
    let records = gw.audit();
    let aborted = records
        .iter()
        .find(|r| r["event"]["type"] == "aborted")
        .unwrap_or_else(|| panic!("{records:#?}"));
    assert!(
        aborted["event"]["cause"]
            .as_str()
            .unwrap()
            .contains("quarantined"),
        "{aborted}"
    );
}
