use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;

use super::{AuditEvent, GENESIS, HASH_FIELD, rfc3339_now, sha256_hex};
use crate::audit::verify::parse_line;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit log {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "audit log {path} is in use by another process (it holds the lock); one gateway per audit log"
    )]
    Locked { path: PathBuf },
    #[error(
        "audit log {path}: the last record is damaged ({reason}); run `eugate audit verify {path}`, move the file aside and start a new log"
    )]
    DamagedTail { path: PathBuf, reason: String },
    #[error("audit record cannot be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

struct Head {
    file: File,
    seq: u64,
    prev: String,
}

/// The append-only log. `append` is the only way in; every record is synced before it returns,
/// so a caller that acts on a successful append knows the record is on disk.
pub struct AuditLog {
    path: PathBuf,
    head: Mutex<Head>,
}

#[derive(Serialize)]
struct Body<'a> {
    seq: u64,
    ts: String,
    prev: &'a str,
    event: &'a AuditEvent,
}

impl AuditLog {
    /// Opens (or creates, 0600) the log and continues its chain from the last record.
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        let io = |source| AuditError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(AuditError::Locked {
                    path: path.to_path_buf(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let (seq, prev) = last_record(&mut file, path)?;
        Ok(AuditLog {
            path: path.to_path_buf(),
            head: Mutex::new(Head { file, seq, prev }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record and syncs it; returns the record's hash.
    pub fn append(&self, event: &AuditEvent) -> Result<String, AuditError> {
        // A poisoned lock means a panic mid-append elsewhere; the file itself is still sound
        // (each record is one write), so carry on with the head as it was.
        let mut head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        let seq = head.seq + 1;
        let body = serde_json::to_string(&Body {
            seq,
            ts: rfc3339_now(),
            prev: &head.prev,
            event,
        })?;
        let hash = sha256_hex(body.as_bytes());
        let mut line = String::with_capacity(body.len() + 80);
        line.push_str(&body[..body.len() - 1]);
        line.push_str(HASH_FIELD);
        line.push_str(&hash);
        line.push_str("\"}\n");
        let io = |source| AuditError::Io {
            path: self.path.clone(),
            source,
        };
        head.file.write_all(line.as_bytes()).map_err(io)?;
        head.file.sync_data().map_err(io)?;
        head.seq = seq;
        head.prev.clone_from(&hash);
        Ok(hash)
    }
}

/// Finds the chain head: the last line's seq and hash (GENESIS for an empty log).
fn last_record(file: &mut File, path: &Path) -> Result<(u64, String), AuditError> {
    let io = |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    };
    let len = file.seek(SeekFrom::End(0)).map_err(io)?;
    if len == 0 {
        return Ok((0, GENESIS.to_string()));
    }
    // Records are small; read back far enough to hold the last whole line.
    let mut window = 64 * 1024u64;
    loop {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start)).map_err(io)?;
        let mut tail = Vec::new();
        file.take(len - start).read_to_end(&mut tail).map_err(io)?;
        let damaged = |reason: &str| AuditError::DamagedTail {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        if tail.last() != Some(&b'\n') {
            return Err(damaged("the file does not end with a complete line"));
        }
        let body = &tail[..tail.len() - 1];
        match body.iter().rposition(|&b| b == b'\n') {
            Some(i) => {
                let line = std::str::from_utf8(&body[i + 1..]).map_err(|_| damaged("not UTF-8"))?;
                let rec = parse_line(line).map_err(|e| damaged(&e))?;
                return Ok((rec.seq, rec.hash));
            }
            None if start == 0 => {
                let line = std::str::from_utf8(body).map_err(|_| damaged("not UTF-8"))?;
                let rec = parse_line(line).map_err(|e| damaged(&e))?;
                return Ok((rec.seq, rec.hash));
            }
            None => window *= 4,
        }
    }
}
