use std::io::Write;

use proptest::prelude::*;

use super::*;
use crate::audit::log;

fn event(i: usize) -> AuditEvent {
    AuditEvent::Aborted {
        tenant: "acme".into(),
        user: format!("user{i}"),
        destination: "eu".into(),
        object: format!("in/file-{i}.csv"),
        cause: "client disconnected".into(),
        protocol: Some("sftp".into()),
    }
}

fn write_log(n: usize) -> (tempfile::TempDir, std::path::PathBuf, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path).unwrap();
    for i in 0..n {
        log.append(&event(i)).unwrap();
    }
    drop(log);
    let lines = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    (dir, path, lines)
}

fn verify_lines(lines: &[String]) -> Result<VerifyReport, VerifyError> {
    let mut text = lines.join("\n");
    if !lines.is_empty() {
        text.push('\n');
    }
    verify_reader(text.as_bytes())
}

fn broken_at(r: Result<VerifyReport, VerifyError>) -> u64 {
    match r {
        Err(VerifyError::Broken { line, .. }) => line,
        other => panic!("expected a broken chain, got {other:?}"),
    }
}

#[test]
fn intact_log_verifies_and_reopening_continues_the_chain() {
    let (_d, path, lines) = write_log(5);
    assert_eq!(verify_lines(&lines).unwrap().records, 5);
    let log = AuditLog::open(&path).unwrap();
    let head = log.append(&event(99)).unwrap();
    drop(log);
    let report = verify_file(&path).unwrap();
    assert_eq!((report.records, report.head), (6, head));
    assert!(verify_reader(&b""[..]).unwrap().records == 0);
}

#[test]
fn each_kind_of_tampering_names_its_line() {
    let (_d, _p, lines) = write_log(6);
    // edited
    let mut edited = lines.clone();
    edited[2] = edited[2].replace("user2", "user7");
    assert_eq!(broken_at(verify_lines(&edited)), 3);
    // removed
    let mut removed = lines.clone();
    removed.remove(3);
    assert_eq!(broken_at(verify_lines(&removed)), 4);
    // removed first
    assert_eq!(broken_at(verify_lines(&lines[1..])), 1);
    // reordered
    let mut swapped = lines.clone();
    swapped.swap(1, 4);
    assert_eq!(broken_at(verify_lines(&swapped)), 2);
    // inserted: a duplicate of a valid record
    let mut dup = lines.clone();
    dup.insert(3, lines[2].clone());
    assert_eq!(broken_at(verify_lines(&dup)), 4);
    // garbage line
    let mut junk = lines.clone();
    junk.insert(5, "{\"hello\":1}".into());
    assert_eq!(broken_at(verify_lines(&junk)), 6);
}

#[test]
fn a_forged_record_with_a_recomputed_hash_is_still_out_of_chain() {
    let (_d, _p, lines) = write_log(4);
    // An attacker writes a well-formed record for position 3 but cannot know where it chains
    // from without recomputing every later record: take a record from another log.
    let (_d2, _p2, other) = write_log(4);
    let mut forged = lines.clone();
    forged[2] = other[2].clone();
    assert_eq!(broken_at(verify_lines(&forged)), 3);
}

#[test]
fn torn_tail_is_refused_at_open_and_reported_by_verify() {
    let (_d, path, _lines) = write_log(3);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    f.write_all(b"{\"seq\":4,\"ts\":").unwrap();
    drop(f);
    assert!(matches!(
        AuditLog::open(&path),
        Err(AuditError::DamagedTail { .. })
    ));
    assert_eq!(broken_at(verify_file(&path)), 4);
}

#[test]
fn one_writer_per_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let _first = AuditLog::open(&path).unwrap();
    assert!(matches!(
        AuditLog::open(&path),
        Err(AuditError::Locked { .. })
    ));
}

#[test]
fn log_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let (_d, path, _) = write_log(1);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Any single-byte change anywhere (except removing whole records from the end) is caught.
    #[test]
    fn any_byte_flip_is_detected(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let (_d, _p, lines) = write_log(4);
        let mut text = lines.join("\n").into_bytes();
        text.push(b'\n');
        let i = pos.index(text.len());
        text[i] ^= 1 << bit;
        prop_assert!(verify_reader(&text[..]).is_err());
    }
}

/// What the faulty file does next.
#[derive(Default)]
struct Faults {
    /// Write only this many bytes of the next append, then fail (ENOSPC).
    write_only: Option<usize>,
    fail_sync: bool,
    fail_truncate: bool,
}

/// A real file whose appends, syncs and truncations fail on demand, as on a full disk.
struct FaultyFile {
    file: std::fs::File,
    faults: std::sync::Arc<std::sync::Mutex<Faults>>,
}

fn enospc() -> std::io::Error {
    std::io::Error::from_raw_os_error(28)
}

impl log::LogFile for FaultyFile {
    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self.faults.lock().unwrap().write_only {
            Some(n) => {
                self.file.write_all(&bytes[..n.min(bytes.len())])?;
                Err(enospc())
            }
            None => self.file.write_all(bytes),
        }
    }

    fn sync(&mut self) -> std::io::Result<()> {
        if self.faults.lock().unwrap().fail_sync {
            return Err(std::io::Error::from_raw_os_error(5));
        }
        self.file.sync_data()
    }

    fn truncate(&mut self, len: u64) -> std::io::Result<()> {
        if self.faults.lock().unwrap().fail_truncate {
            return Err(std::io::Error::from_raw_os_error(5));
        }
        self.file.set_len(len)
    }
}

type Shared = std::sync::Arc<std::sync::Mutex<Faults>>;

/// A log of `n` records, reopened over a [`FaultyFile`].
fn faulty_log(n: usize) -> (tempfile::TempDir, std::path::PathBuf, AuditLog, Shared) {
    let (dir, path, _) = write_log(n);
    let report = verify_file(&path).unwrap();
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    let len = file.metadata().unwrap().len();
    let faults = Shared::default();
    let log = AuditLog::with_file(
        &path,
        Box::new(FaultyFile {
            file,
            faults: faults.clone(),
        }),
        (report.records, report.head, len),
    );
    (dir, path, log, faults)
}

fn file_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

#[test]
fn a_torn_write_is_rolled_back_and_the_next_record_continues_the_chain() {
    let (_d, path, log, faults) = faulty_log(3);
    let before = file_len(&path);
    faults.lock().unwrap().write_only = Some(40);
    assert!(matches!(log.append(&event(3)), Err(AuditError::Io { .. })));
    assert_eq!(file_len(&path), before, "no torn line left");
    assert_eq!(verify_file(&path).unwrap().records, 3);
    faults.lock().unwrap().write_only = None;
    let head = log.append(&event(4)).unwrap();
    let report = verify_file(&path).unwrap();
    assert_eq!((report.records, report.head), (4, head));
}

#[test]
fn a_failed_sync_takes_the_written_record_back() {
    let (_d, path, log, faults) = faulty_log(2);
    let before = file_len(&path);
    faults.lock().unwrap().fail_sync = true;
    assert!(log.append(&event(2)).is_err());
    assert_eq!(file_len(&path), before);
    faults.lock().unwrap().fail_sync = false;
    log.append(&event(3)).unwrap();
    assert_eq!(verify_file(&path).unwrap().records, 3);
}

#[test]
fn when_the_rollback_fails_appends_fail_until_the_file_is_repaired() {
    let (_d, path, log, faults) = faulty_log(2);
    {
        let mut f = faults.lock().unwrap();
        f.write_only = Some(40);
        f.fail_truncate = true;
    }
    assert!(log.append(&event(2)).is_err());
    // The torn line is still there: verify says so, and appends are refused, not glued to it.
    assert_eq!(broken_at(verify_file(&path)), 3);
    faults.lock().unwrap().write_only = None;
    let torn_len = file_len(&path);
    for i in 0..3 {
        assert!(matches!(
            log.append(&event(10 + i)),
            Err(AuditError::Unrepaired { .. })
        ));
        assert_eq!(file_len(&path), torn_len, "nothing appended to a torn log");
    }
    // Once the file can be cut back, the next append repairs it first and the chain goes on.
    faults.lock().unwrap().fail_truncate = false;
    let head = log.append(&event(20)).unwrap();
    let report = verify_file(&path).unwrap();
    assert_eq!((report.records, report.head), (3, head));
}

#[test]
fn long_client_fields_are_capped_with_their_hash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path).unwrap();
    let name = "A".repeat(30_000);
    for _ in 0..10 {
        log.append(&AuditEvent::Auth {
            user: name.clone(),
            tenant: None,
            source: "192.0.2.1".into(),
            method: "password".into(),
            outcome: "rejected".into(),
            certificate: None,
            tls_certificate: None,
            reason: None,
        })
        .unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.lines().all(|l| l.len() < 1024), "lines stay small");
    assert_eq!(text.matches(&sha256_hex(name.as_bytes())).count(), 10);
    assert_eq!(verify_file(&path).unwrap().records, 10);
    // A smaller cap is honoured.
    drop(log);
    let log = AuditLog::open(&path).unwrap().with_field_cap(64);
    log.append(&event(0)).unwrap();
    log.append(&AuditEvent::Aborted {
        tenant: "acme".into(),
        user: "alice".into(),
        destination: "eu".into(),
        object: "x".repeat(100),
        cause: "client disconnected".into(),
        protocol: Some("sftp".into()),
    })
    .unwrap();
    let last = std::fs::read_to_string(&path).unwrap();
    let last = last.lines().last().unwrap();
    assert!(last.contains(&format!("{}…[truncated: 100 bytes", "x".repeat(64))));
}

#[test]
fn auth_records_name_certificates_and_old_records_still_verify() {
    use super::CertificateRecord;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path).unwrap();
    // A record as written before certificates existed: no `certificate`, no `reason`.
    let old = AuditEvent::Auth {
        user: "alice".into(),
        tenant: Some("acme".into()),
        source: "127.0.0.1".into(),
        method: "publickey".into(),
        outcome: "accepted".into(),
        certificate: None,
        tls_certificate: None,
        reason: None,
    };
    log.append(&old).unwrap();
    log.append(&AuditEvent::Auth {
        user: "alice".into(),
        tenant: None,
        source: "127.0.0.1".into(),
        method: "publickey-certificate".into(),
        outcome: "rejected".into(),
        certificate: Some(CertificateRecord {
            key_id: "k".repeat(5000),
            serial: 42,
            ca: "SHA256:abc".into(),
        }),
        tls_certificate: None,
        reason: Some("certificate expired".into()),
    })
    .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(!lines[0].contains("certificate") && !lines[0].contains("reason"));
    assert!(lines[1].contains(r#""serial":42"#) && lines[1].contains("certificate expired"));
    assert!(lines[1].len() < 1024, "a long key id is capped");
    assert_eq!(verify_file(&path).unwrap().records, 2);
    // The exact shape of a record from an older gateway still parses.
    let parsed: AuditEvent = serde_json::from_str(
        r#"{"type":"auth","user":"bob","tenant":null,"source":"10.0.0.1","method":"password","outcome":"rejected"}"#,
    )
    .unwrap();
    assert!(matches!(
        parsed,
        AuditEvent::Auth {
            certificate: None,
            tls_certificate: None,
            reason: None,
            ..
        }
    ));
}

#[test]
fn reload_records_name_what_they_replaced_and_old_policy_records_still_parse() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let log = AuditLog::open(&path).unwrap();
    log.append(&AuditEvent::PolicyReload {
        accepted: true,
        bundle: "sha256:new".into(),
        detail: "SIGHUP: replaced sha256:old".into(),
        previous: Some("sha256:old".into()),
    })
    .unwrap();
    log.append(&AuditEvent::KeyringReload {
        accepted: false,
        version: "sha256:kept".into(),
        previous: None,
        detail: "SIGHUP: refused".into(),
    })
    .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].contains(r#""previous":"sha256:old""#),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains(r#""type":"keyring_reload""#),
        "{}",
        lines[1]
    );
    assert!(!lines[1].contains("previous"), "{}", lines[1]);
    assert_eq!(verify_file(&path).unwrap().records, 2);
    // A policy reload record from an older gateway (no `previous`) still parses.
    let parsed: AuditEvent = serde_json::from_str(
        r#"{"type":"policy_reload","accepted":true,"bundle":"sha256:b","detail":"file change: replaced sha256:a"}"#,
    )
    .unwrap();
    assert!(matches!(
        parsed,
        AuditEvent::PolicyReload { previous: None, .. }
    ));
}
