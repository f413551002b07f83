//! Fail closed on the data path (issue 12): a refused WRITE spoils its upload, an existing object
//! survives every failed or empty replacement, a name without a Grant never reaches a store, and
//! the records say so. Clients behave as real ones do: after a refused WRITE they send CLOSE.

mod common;
#[path = "garage/mod.rs"]
mod garage;

use common::{Gateway, data};
use serde_json::Value;

/// OPEN flags (draft-ietf-secsh-filexfer-02): WRITE 0x02, CREAT 0x08, TRUNC 0x10.
const WRITE_CREAT_TRUNC: &str = "0x1A";
const WRITE_CREAT: &str = "0x0A";
/// SSH_FX_OK, SSH_FX_FAILURE.
const OK: u64 = 0;

/// The audit events so far (without their chain fields).
fn records(g: &Gateway) -> Vec<Value> {
    g.audit().into_iter().map(|r| r["event"].clone()).collect()
}

/// OPEN `path` with `flags`, write `first` bytes at 0, a refused WRITE at `offset` (none when
/// negative), one more WRITE, then CLOSE; returns every reply.
fn refused_write_close(g: &Gateway, path: &str, flags: &str, first: usize, offset: i64) -> Value {
    let r = g.script(
        "alice",
        &[
            "refused-write-close",
            "--path",
            path,
            "--flags",
            flags,
            "--count",
            &first.to_string(),
            "--offset",
            &offset.to_string(),
        ],
    );
    assert_eq!(r["ok"], true, "{r}\n{}", g.log());
    r
}

fn status(r: &Value, step: &str) -> u64 {
    r[step]["status"]
        .as_u64()
        .unwrap_or_else(|| panic!("no status for {step}: {r}"))
}

fn message(r: &Value, step: &str) -> String {
    r[step]["message"].as_str().unwrap_or_default().to_string()
}

/// Uploads `plain` as /name with OpenSSH's sftp and returns the stored (sealed) bytes.
fn existing(g: &Gateway, name: &str, plain: &[u8]) -> Vec<u8> {
    std::fs::write(g.path(name), plain).unwrap();
    g.sftp_ok("alice", &format!("put {} /{name}", g.path(name).display()));
    std::fs::read(g.store.join("acme").join(name)).unwrap()
}

#[test]
fn a_refused_write_beyond_the_window_fails_the_close_and_publishes_nothing() {
    let g = Gateway::start(); // reorder window 1 MiB
    let r = refused_write_close(&g, "/new.bin", WRITE_CREAT_TRUNC, 1024, 64 << 20);
    assert_eq!(status(&r, "first"), OK, "{r}");
    assert_ne!(status(&r, "refused"), OK, "{r}");
    assert!(message(&r, "refused").contains("reorder window"), "{r}");
    // Every later request on the handle names the first refused write.
    assert_ne!(status(&r, "after"), OK, "{r}");
    assert_ne!(status(&r, "close"), OK, "{r}");
    assert!(
        message(&r, "close").contains("offset 67108864 was refused"),
        "{r}"
    );
    // Answered only once the upload was cleaned up: no object, no temp file.
    assert!(g.stored_files().is_empty(), "{:?}", g.stored_files());
    let aborted: Vec<Value> = records(&g)
        .into_iter()
        .filter(|e| e["type"] == "aborted")
        .collect();
    assert_eq!(aborted.len(), 1, "{aborted:?}");
    let cause = aborted[0]["cause"].as_str().unwrap();
    assert!(
        cause.contains("write at offset 67108864 refused"),
        "{cause}"
    );
    assert!(!records(&g).iter().any(|e| e["type"] == "committed"));
}

#[test]
fn an_overlapping_write_spoils_the_upload_too() {
    let g = Gateway::start();
    // 1 KiB in order, then a rewrite of offset 0: each byte can be written once.
    let r = refused_write_close(&g, "/overlap.bin", WRITE_CREAT_TRUNC, 1024, 0);
    assert!(message(&r, "refused").contains("overlaps"), "{r}");
    assert_ne!(status(&r, "close"), OK, "{r}");
    assert!(g.stored_files().is_empty(), "{:?}", g.stored_files());
}

#[test]
fn an_existing_object_survives_a_refused_resume_and_an_empty_replacement() {
    let g = Gateway::start();
    let plain = data(100_000, 11);
    let before = existing(&g, "keep.bin", &plain);

    // reput-style: open without TRUNCATE, WRITE at offset 5 (refused), CLOSE.
    let r = refused_write_close(&g, "/keep.bin", WRITE_CREAT, 0, 5);
    assert!(
        message(&r, "refused").contains("resuming or appending"),
        "{r}"
    );
    assert_ne!(status(&r, "close"), OK, "{r}");
    assert_eq!(
        std::fs::read(g.store.join("acme/keep.bin")).unwrap(),
        before
    );

    // Open without TRUNCATE and CLOSE with no write: like OpenSSH, the file is unchanged.
    let r = refused_write_close(&g, "/keep.bin", WRITE_CREAT, 0, -1);
    assert_eq!(status(&r, "close"), OK, "{r}");
    assert_eq!(
        std::fs::read(g.store.join("acme/keep.bin")).unwrap(),
        before
    );

    // With TRUNCATE, a refused write still leaves the old object whole.
    let r = refused_write_close(&g, "/keep.bin", WRITE_CREAT_TRUNC, 2048, 64 << 20);
    assert_ne!(status(&r, "close"), OK, "{r}");
    assert_eq!(
        std::fs::read(g.store.join("acme/keep.bin")).unwrap(),
        before
    );
    assert_eq!(g.stored_files(), vec!["acme/keep.bin"]);
    assert_eq!(g.decrypt(&g.store.join("acme/keep.bin")), plain);
}

#[test]
fn a_file_name_ending_in_a_slash_is_refused() {
    let g = Gateway::start();
    for path in ["/dir/", "/dir/.", "/sub/.."] {
        let r = refused_write_close(&g, path, WRITE_CREAT_TRUNC, 0, -1);
        assert_ne!(status(&r, "open"), OK, "{path}: {r}");
        assert!(message(&r, "open").contains("cannot end with"), "{r}");
    }
    assert!(g.stored_files().is_empty(), "{:?}", g.stored_files());
}

#[test]
fn committed_records_carry_the_deciding_rules_and_bundle() {
    let g = Gateway::start();
    existing(&g, "rec.bin", &data(5000, 2));
    let recs = records(&g);
    let decision = recs
        .iter()
        .find(|e| e["type"] == "decision" && e["object"] == "acme/rec.bin")
        .unwrap();
    let committed = recs.iter().find(|e| e["type"] == "committed").unwrap();
    assert_eq!(decision["operation"], "upload");
    assert!(
        !committed["policies"].as_array().unwrap().is_empty(),
        "{committed}"
    );
    assert_eq!(committed["policies"], decision["policies"]);
    assert_eq!(committed["bundle"], decision["bundle"]);
    assert!(committed["bundle"].as_str().unwrap().starts_with("sha256:"));
}

/// Tenant `gamma` (user dave) is routed to `us-disk`, declared in the US: the default policy
/// denies personal data there. No name may reach that store either.
#[test]
fn mkdir_and_rename_to_a_denied_store_are_refused_and_create_nothing() {
    let g = Gateway::start();
    let us = g.dir.path().join("store-us");
    // A file the operator put there, so that a rename has a source.
    std::fs::write(us.join("gamma/planted.bin"), b"x").unwrap();
    let before = listing(&us);
    let out = g.sftp(
        "dave",
        "-mkdir /patient-jane-doe\n-rename /planted.bin /patient-john-doe\n",
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Permission denied"), "{text}");
    assert_eq!(
        listing(&us),
        before,
        "nothing appeared or moved in the store"
    );
    // Both were decided, denied and put on record.
    let recs = records(&g);
    for op in ["mkdir", "rename"] {
        let d = recs
            .iter()
            .find(|e| e["type"] == "decision" && e["operation"] == op)
            .unwrap_or_else(|| panic!("no {op} decision: {recs:?}"));
        assert_eq!(d["allowed"], false, "{d}");
        assert_eq!(d["tenant"], "gamma");
    }
    assert!(!recs.iter().any(|e| e["type"] == "namespace"), "{recs:?}");
    assert!(!g.log().contains("patient-"), "names stay out of the log");
}

#[test]
fn allowed_mkdir_rename_and_remove_are_recorded() {
    let g = Gateway::start();
    existing(&g, "a.bin", &data(100, 1));
    g.sftp_ok(
        "alice",
        "mkdir /reports\nrename /a.bin /reports/b.bin\nrm /reports/b.bin\nrmdir /reports\n",
    );
    let ops: Vec<(String, String)> = records(&g)
        .into_iter()
        .filter(|e| e["type"] == "namespace")
        .map(|e| {
            (
                e["operation"].as_str().unwrap().to_string(),
                e["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let done = |op: &str| (op.to_string(), "done".to_string());
    assert_eq!(
        ops,
        vec![done("mkdir"), done("rename"), done("remove"), done("rmdir")]
    );
}

fn listing(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = walkdir(dir);
    v.sort();
    v
}

fn walkdir(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        out.push(p.display().to_string());
        if p.is_dir() {
            out.extend(walkdir(&p));
        }
    }
    out
}

/// `serve` holds a bundle to the same bar as a reload: one whose own tests fail never starts.
#[test]
fn serve_refuses_a_policy_bundle_whose_own_tests_fail() {
    let g = Gateway::start();
    let pol = g.dir.path().join("pol");
    std::fs::create_dir_all(pol.join("tests")).unwrap();
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    for e in std::fs::read_dir(&shipped).unwrap().flatten() {
        if e.path().is_file() {
            std::fs::copy(e.path(), pol.join(e.file_name())).unwrap();
        }
    }
    std::fs::write(
        pol.join("tests/wrong.toml"),
        "[[case]]\nname = \"US is not EEA\"\ntenant = \"t\"\ndestination = \"aws:us-east-1\"\nclassification = \"personal\"\nexpect = \"allow\"\n",
    )
    .unwrap();
    let config = g.dir.path().join("with-policy.toml");
    let base = std::fs::read_to_string(&g.config).unwrap();
    std::fs::write(&config, format!("[policy]\ndir = \"pol\"\n{base}")).unwrap();
    let out = std::process::Command::new(common::bin())
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("fails its own tests"), "{err}");
    assert!(err.contains("US is not EEA"), "{err}");
}

/// A tmpfs of its own, unmounted on drop: a disk that fills up on demand.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(at: std::path::PathBuf) -> SmallDisk {
        std::fs::create_dir_all(&at).unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
            .arg(&at)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "this test mounts a tmpfs and needs root (CI runs as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        SmallDisk(at)
    }

    /// Fills every free byte with a filler file.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.0.join("filler")).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        while f.write_all(&block[..1]).is_ok() {}
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// A commit the audit log cannot record is not a commit: the object is taken back and the
/// client hears "not stored". Here the audit log's disk fills up while an upload runs.
#[test]
fn an_upload_whose_commit_cannot_be_audited_is_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let disk = SmallDisk::mount(dir.path().join("auditdisk"));
    let audit = disk.0.join("audit.jsonl");
    let g = Gateway::start_with(common::Options {
        audit_file: Some(audit.clone()),
        ..common::Options::default()
    });
    let client = garage::Paused::start(&g, "alice", "late.bin", 1, 1);
    assert!(
        common::eventually(60, || client.paused()),
        "client did not pause:\n{}",
        g.log()
    );
    // The decision is on record; now the disk is full. Logins fill what is left of the
    // log's last page until one is refused for want of an audit record.
    disk.fill();
    let mut refused = false;
    for _ in 0..40 {
        if !g.sftp("alice", "ls /\n").status.success() {
            refused = true;
            break;
        }
    }
    assert!(refused, "the audit log never filled up:\n{}", g.log());
    client.go();
    let out = client.child.wait_with_output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["ok"],
        false,
        "CLOSE must fail: {report}\n{}",
        g.log()
    );
    assert!(
        report["error"]
            .as_str()
            .unwrap_or_default()
            .contains("audit log could not record"),
        "{report}"
    );
    assert!(g.stored_files().is_empty(), "{:?}", g.stored_files());
    let text = std::fs::read_to_string(&audit).unwrap();
    assert!(!text.contains("\"committed\""), "{text}");
}
