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
    #[error(
        "audit log {path}: an earlier append failed and could not be rolled back, and the file still cannot be cut back to its last whole record ({source}); nothing is recorded until it can"
    )]
    Unrepaired {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("audit record cannot be encoded: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The file under the log. A trait so that tests can make writes, syncs and truncation fail
/// the way a full or failing disk does.
pub(crate) trait LogFile: Send {
    /// Appends (the file is opened `O_APPEND`); on error, part of `bytes` may be written.
    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()>;
    fn sync(&mut self) -> std::io::Result<()>;
    /// Cuts the file back to `len` bytes, durably.
    fn truncate(&mut self, len: u64) -> std::io::Result<()>;
}

impl LogFile for File {
    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.write_all(bytes)
    }

    fn sync(&mut self) -> std::io::Result<()> {
        self.sync_data()
    }

    fn truncate(&mut self, len: u64) -> std::io::Result<()> {
        self.set_len(len)?;
        self.sync_data()
    }
}

struct Head {
    file: Box<dyn LogFile>,
    seq: u64,
    prev: String,
    /// Bytes of complete, synced records: where the file is cut back to after a failed append.
    len: u64,
    /// Set when a failed append could not be rolled back: the file may end in a torn line, so
    /// nothing is appended until a truncation to `len` succeeds.
    torn: bool,
}

/// The append-only log. `append` is the only way in; every record is synced before it returns,
/// so a caller that acts on a successful append knows the record is on disk. A failed append
/// leaves the file as it was before it (or, if even that fails, refuses every append until it
/// can make it so): the chain stays whole through a full disk.
pub struct AuditLog {
    path: PathBuf,
    head: Mutex<Head>,
    field_cap: usize,
    /// `[server] instance_id`: each gateway keeps its own chain, and says whose it is.
    instance: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    instance: Option<&'a str>,
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
        let len = file.seek(SeekFrom::End(0)).map_err(io)?;
        Ok(Self::with_file(path, Box::new(file), (seq, prev, len)))
    }

    /// A log over `file`, whose complete records end at `len` with `seq` and hash `prev`.
    pub(crate) fn with_file(
        path: &Path,
        file: Box<dyn LogFile>,
        (seq, prev, len): (u64, String, u64),
    ) -> AuditLog {
        AuditLog {
            path: path.to_path_buf(),
            head: Mutex::new(Head {
                file,
                seq,
                prev,
                len,
                torn: false,
            }),
            field_cap: super::field::DEFAULT_FIELD_CAP,
            instance: None,
        }
    }

    /// Every record names the gateway instance that wrote it.
    pub fn with_instance(mut self, id: &str) -> AuditLog {
        self.instance = Some(id.to_string());
        self
    }

    /// Client-supplied fields longer than `bytes` are written as a prefix and a hash
    /// (`[audit] max_field_bytes`).
    pub fn with_field_cap(mut self, bytes: usize) -> AuditLog {
        self.field_cap = bytes;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record and syncs it; returns the record's hash. On error nothing of the
    /// record stays in the file and the chain head is unchanged, so the next append that
    /// succeeds continues the chain.
    pub fn append(&self, event: &AuditEvent) -> Result<String, AuditError> {
        let mut event = event.clone();
        event.cap_client_fields(self.field_cap);
        // A poisoned lock means a panic mid-append elsewhere; `torn` and `len` still say what
        // state the file is in, so carry on with the head as it was.
        let mut head = self.head.lock().unwrap_or_else(|p| p.into_inner());
        let io = |source| AuditError::Io {
            path: self.path.clone(),
            source,
        };
        if head.torn {
            let len = head.len;
            head.file
                .truncate(len)
                .map_err(|source| AuditError::Unrepaired {
                    path: self.path.clone(),
                    source,
                })?;
            head.torn = false;
            tracing::warn!(path = %self.path.display(), len, "audit log repaired: the torn record of an earlier failed append was cut off");
        }
        let seq = head.seq + 1;
        let body = serde_json::to_string(&Body {
            instance: self.instance.as_deref(),
            seq,
            ts: rfc3339_now(),
            prev: &head.prev,
            event: &event,
        })?;
        let hash = sha256_hex(body.as_bytes());
        let mut line = String::with_capacity(body.len() + 80);
        line.push_str(&body[..body.len() - 1]);
        line.push_str(HASH_FIELD);
        line.push_str(&hash);
        line.push_str("\"}\n");
        let written = head
            .file
            .append(line.as_bytes())
            .and_then(|()| head.file.sync());
        if let Err(e) = written {
            roll_back(&mut head, &self.path);
            return Err(io(e));
        }
        head.seq = seq;
        head.prev.clone_from(&hash);
        head.len += line.len() as u64;
        Ok(hash)
    }
}

/// After a failed write or sync, cuts the file back to its last complete record. If that fails
/// too, the log is marked torn: appends fail until the cut succeeds.
fn roll_back(head: &mut Head, path: &Path) {
    let len = head.len;
    if let Err(e) = head.file.truncate(len) {
        head.torn = true;
        tracing::error!(path = %path.display(), len, error = %e, "audit log: a failed append could not be rolled back; every append (and so every login and transfer) is refused until it can be");
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
