//! Reads an audit log into typed records, for every reader of the log (`register`,
//! `policy::replay`, the console's audit page). The chain is verified and the records parsed in
//! the same pass over the same bytes, so a line appended or changed between "verify" and "read"
//! cannot slip in unverified.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::time::{Millis, parse_time};
use super::{AuditEvent, VerifyError, verify_reader};

#[derive(Debug, thiserror::Error)]
#[error("cannot read audit log {}", file.display())]
pub struct ReadError {
    pub file: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// One record, with where it is in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The gateway instance that wrote it (absent in records written before instances were
    /// named).
    pub instance: Option<String>,
    pub seq: u64,
    /// Its line in the file (1-based).
    pub line: u64,
    pub ts: String,
    pub at: Millis,
    pub event: AuditEvent,
    /// Before the first break of its file's chain.
    pub verified: bool,
}

/// A line that is not a readable record (only possible in a file whose chain is broken, or
/// with a timestamp the gateway never writes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub line: u64,
    pub reason: String,
}

/// Where the chain first breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    pub line: u64,
    pub reason: String,
}

impl Break {
    /// The break as `VerifyError` words it ("line N: reason").
    pub fn to_verify_error(&self) -> VerifyError {
        VerifyError::Broken {
            line: self.line,
            reason: self.reason.clone(),
        }
    }
}

/// One audit log, read and verified.
#[derive(Debug, Clone)]
pub struct Log {
    pub file: PathBuf,
    /// Every readable record, in file order.
    pub records: Vec<Record>,
    /// Lines in the file (a torn last line counts).
    pub lines: u64,
    pub unreadable: Vec<Unreadable>,
    /// Instances named by its records.
    pub instances: BTreeSet<String>,
    /// Hash of the last record of an intact chain (anchor it elsewhere).
    pub head: Option<String>,
    /// `None`: the whole chain verified.
    pub broken: Option<Break>,
}

impl Log {
    pub fn verified(&self) -> bool {
        self.broken.is_none()
    }
}

#[derive(Deserialize)]
struct Line {
    #[serde(default)]
    instance: Option<String>,
    seq: u64,
    ts: String,
    event: AuditEvent,
}

/// Feeds every byte `verify_reader` reads to a line splitter too: the records parsed are
/// exactly the bytes verified.
struct Tee<R> {
    inner: R,
    partial: Vec<u8>,
    lines: Vec<Vec<u8>>,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            if b == b'\n' {
                self.lines.push(std::mem::take(&mut self.partial));
            } else {
                self.partial.push(b);
            }
        }
        Ok(n)
    }
}

/// Reads and verifies `path`. A broken chain is not an error: the records after the break are
/// returned marked `verified: false`, and the caller decides whether to use them.
pub fn read_log(path: &Path) -> Result<Log, ReadError> {
    let io = |source| ReadError {
        file: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut tee = Tee {
        inner: file,
        partial: Vec::new(),
        lines: Vec::new(),
    };
    let (head, broken) = match verify_reader(&mut tee) {
        Ok(report) => (Some(report.head), None),
        Err(VerifyError::Io(e)) => return Err(io(std::io::Error::other(e))),
        Err(VerifyError::Broken { line, reason }) => {
            // Keep reading: the caller may show the records after the break (marked).
            std::io::copy(&mut tee, &mut std::io::sink()).map_err(io)?;
            (None, Some(Break { line, reason }))
        }
    };
    let mut log = Log {
        file: path.to_path_buf(),
        records: Vec::new(),
        lines: tee.lines.len() as u64 + u64::from(!tee.partial.is_empty()),
        unreadable: Vec::new(),
        instances: BTreeSet::new(),
        head,
        broken,
    };
    for (i, raw) in tee.lines.iter().enumerate() {
        let line = i as u64 + 1;
        match parse(raw, line) {
            Ok(mut r) => {
                r.verified = log.broken.as_ref().is_none_or(|b| line < b.line);
                log.instances.extend(r.instance.clone());
                log.records.push(r);
            }
            Err(reason) => log.unreadable.push(Unreadable { line, reason }),
        }
    }
    if !tee.partial.is_empty() {
        log.unreadable.push(Unreadable {
            line: log.lines,
            reason: "incomplete last line (torn write)".into(),
        });
    }
    Ok(log)
}

/// A record's fields, without its hash (checked, or not, by the chain walk).
fn parse(raw: &[u8], line: u64) -> Result<Record, String> {
    let l: Line = serde_json::from_slice(raw).map_err(|e| format!("not an audit record: {e}"))?;
    let at = parse_time(&l.ts).map_err(|e| e.to_string())?;
    Ok(Record {
        instance: l.instance,
        seq: l.seq,
        line,
        ts: l.ts,
        at,
        event: l.event,
        verified: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditLog;

    fn event(action: &str) -> AuditEvent {
        AuditEvent::Lifecycle {
            action: action.into(),
            detail: String::new(),
        }
    }

    #[test]
    fn intact_log_reads_every_record_verified_with_its_head() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let log = AuditLog::open(&path).unwrap().with_instance("gw-1");
        log.append(&event("start")).unwrap();
        let head = log.append(&event("stop")).unwrap();
        let read = read_log(&path).unwrap();
        assert_eq!(read.head.as_deref(), Some(head.as_str()));
        assert!(read.verified() && read.unreadable.is_empty());
        assert_eq!(read.lines, 2);
        assert_eq!(read.instances.iter().collect::<Vec<_>>(), ["gw-1"]);
        let seqs: Vec<(u64, u64, bool)> = read
            .records
            .iter()
            .map(|r| (r.seq, r.line, r.verified))
            .collect();
        assert_eq!(seqs, [(1, 1, true), (2, 2, true)]);
    }

    #[test]
    fn broken_log_marks_records_from_the_break_and_counts_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let log = AuditLog::open(&path).unwrap();
        for a in ["one", "two", "three"] {
            log.append(&event(a)).unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        std::fs::write(
            &path,
            format!("{}\nnot json\n{}\n{{\"torn", lines[0], lines[2]),
        )
        .unwrap();
        let read = read_log(&path).unwrap();
        let b = read.broken.clone().unwrap();
        assert_eq!(b.line, 2);
        assert!(read.head.is_none());
        assert_eq!(read.lines, 4);
        let lines_read: Vec<(u64, bool)> =
            read.records.iter().map(|r| (r.line, r.verified)).collect();
        assert_eq!(lines_read, [(1, true), (3, false)]);
        let bad: Vec<u64> = read.unreadable.iter().map(|u| u.line).collect();
        assert_eq!(bad, [2, 4]);
        assert!(b.to_verify_error().to_string().starts_with("line 2: "));
    }

    #[test]
    fn missing_file_names_it() {
        let e = read_log(Path::new("/nonexistent/audit.jsonl")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/audit.jsonl"), "{e}");
    }
}
