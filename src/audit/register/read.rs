//! Reads one audit log for the register: verifies its chain and parses its records in the same
//! pass over the same bytes, so a line appended or changed between "verify" and "read" cannot
//! slip in unverified.

use std::io::Read;
use std::path::Path;

use serde::Deserialize;

use super::period::{Millis, parse_time};
use super::{FileStatus, RegisterError};
use crate::audit::{AuditEvent, VerifyError, verify_reader};

/// One record the register uses, with where it came from.
#[derive(Debug, Clone)]
pub(super) struct Record {
    pub instance: Option<String>,
    pub seq: u64,
    pub ts: String,
    pub at: Millis,
    pub event: AuditEvent,
    /// Before the first break of its file's chain.
    pub verified: bool,
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

/// The file's records (decisions and commits only) and its chain status.
pub(super) fn read_file(path: &Path) -> Result<(Vec<Record>, FileStatus), RegisterError> {
    let io = |source| RegisterError::Io {
        file: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut tee = Tee {
        inner: file,
        partial: Vec::new(),
        lines: Vec::new(),
    };
    let verdict = verify_reader(&mut tee);
    let mut head = None;
    let broken = match verdict {
        Ok(report) => {
            head = Some(report.head);
            None
        }
        Err(VerifyError::Io(e)) => return Err(io(std::io::Error::other(e))),
        Err(VerifyError::Broken { line, reason }) => {
            // Keep reading: the records after the break are shown (marked) if allowed.
            std::io::copy(&mut tee, &mut std::io::sink()).map_err(io)?;
            Some((line, reason))
        }
    };
    let total = tee.lines.len() as u64 + u64::from(!tee.partial.is_empty());
    let mut records = Vec::new();
    let mut unreadable = 0u64;
    let mut instances = std::collections::BTreeSet::new();
    for (i, raw) in tee.lines.iter().enumerate() {
        let line_no = i as u64 + 1;
        let verified = broken.as_ref().is_none_or(|(at, _)| line_no < *at);
        match parse(raw) {
            Some(mut r) => {
                r.verified = verified;
                if let Some(name) = &r.instance {
                    instances.insert(name.clone());
                }
                if matches!(
                    r.event,
                    AuditEvent::Decision { .. } | AuditEvent::Committed { .. }
                ) {
                    records.push(r);
                }
            }
            None => unreadable += 1,
        }
    }
    unreadable += u64::from(!tee.partial.is_empty());
    let status = FileStatus {
        file: path.display().to_string(),
        instances: instances.into_iter().collect(),
        records: total,
        unreadable,
        head,
        broken_line: broken.as_ref().map(|(l, _)| *l),
        broken_reason: broken.map(|(_, r)| r),
    };
    Ok((records, status))
}

/// A record's fields, without its hash (checked, or not, by the chain walk).
fn parse(raw: &[u8]) -> Option<Record> {
    let line: Line = serde_json::from_slice(raw).ok()?;
    let at = parse_time(&line.ts).ok()?;
    Some(Record {
        instance: line.instance,
        seq: line.seq,
        ts: line.ts,
        at,
        event: line.event,
        verified: false,
    })
}
