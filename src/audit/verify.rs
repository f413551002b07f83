use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use serde::Deserialize;

use super::{AuditEvent, GENESIS, HASH_FIELD, HASH_SUFFIX_LEN, sha256_hex};

/// The first place where the chain is broken, by line number (1-based).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("cannot read the audit log: {0}")]
    Io(String),
    #[error("line {line}: {reason}")]
    Broken { line: u64, reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub records: u64,
    /// Hash of the last record: anchor it elsewhere to detect truncation later.
    pub head: String,
}

pub(crate) struct ParsedLine {
    pub seq: u64,
    pub prev: String,
    pub hash: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // fields are checked by deserializing them, not read afterwards
struct Body {
    /// The gateway instance (absent in records written before instances were named).
    #[serde(default)]
    instance: Option<String>,
    seq: u64,
    ts: String,
    prev: String,
    event: AuditEvent,
}

/// Checks one line's own integrity (its hash covers its bytes) and returns its chain fields.
pub(crate) fn parse_line(line: &str) -> Result<ParsedLine, String> {
    if line.len() < HASH_SUFFIX_LEN || !line.ends_with("\"}") {
        return Err("not an audit record (no hash at the end)".into());
    }
    let cut = line.len() - HASH_SUFFIX_LEN;
    let (head, suffix) = line.split_at(cut);
    let hash = suffix
        .strip_prefix(HASH_FIELD)
        .and_then(|s| s.strip_suffix("\"}"))
        .filter(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .ok_or("not an audit record (malformed hash field)")?;
    let body = format!("{head}}}");
    let computed = sha256_hex(body.as_bytes());
    // Plain comparison: the hash covers public log contents, there is no secret to leak.
    if computed != hash {
        return Err("record was edited (its hash does not match its contents)".into());
    }
    let parsed: Body =
        serde_json::from_str(&body).map_err(|e| format!("record is not valid: {e}"))?;
    Ok(ParsedLine {
        seq: parsed.seq,
        prev: parsed.prev,
        hash: hash.to_string(),
    })
}

pub fn verify_file(path: &Path) -> Result<VerifyReport, VerifyError> {
    let file = std::fs::File::open(path)
        .map_err(|e| VerifyError::Io(format!("{}: {e}", path.display())))?;
    verify_reader(file)
}

/// Walks the whole chain and names the first line where it breaks.
pub fn verify_reader(reader: impl Read) -> Result<VerifyReport, VerifyError> {
    let mut reader = BufReader::new(reader);
    let mut prev = GENESIS.to_string();
    let mut expected_seq = 1u64;
    let mut line_no = 0u64;
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| VerifyError::Io(e.to_string()))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let broken = |reason: String| VerifyError::Broken {
            line: line_no,
            reason,
        };
        if buf.last() != Some(&b'\n') {
            return Err(broken("incomplete last line (torn write)".into()));
        }
        let line =
            std::str::from_utf8(&buf[..buf.len() - 1]).map_err(|_| broken("not UTF-8".into()))?;
        let rec = parse_line(line).map_err(broken)?;
        if rec.prev != prev {
            return Err(broken(if line_no == 1 {
                "the chain does not start at the beginning (records before it were removed)".into()
            } else {
                "does not follow the previous record (a record was removed, inserted or moved here)"
                    .into()
            }));
        }
        if rec.seq != expected_seq {
            return Err(broken(format!(
                "sequence number {} where {} was expected",
                rec.seq, expected_seq
            )));
        }
        prev = rec.hash;
        expected_seq += 1;
    }
    Ok(VerifyReport {
        records: line_no,
        head: prev,
    })
}
