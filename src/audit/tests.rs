use std::io::Write;

use proptest::prelude::*;

use super::*;

fn event(i: usize) -> AuditEvent {
    AuditEvent::Aborted {
        tenant: "acme".into(),
        user: format!("user{i}"),
        destination: "eu".into(),
        object: format!("in/file-{i}.csv"),
        cause: "client disconnected".into(),
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
