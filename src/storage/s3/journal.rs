//! The multipart uploads this instance started and has not yet completed or aborted, kept in a
//! small local file (`[storage] upload_journal`), so that a restart aborts exactly those.
//!
//! S3 lists multipart uploads with their key and start time only (no metadata), so several
//! gateways writing below the same prefixes cannot tell each other's uploads apart in the store;
//! a startup sweep of "everything older than now" killed the uploads running on the other
//! instances. Each instance therefore writes down what it starts:
//!
//! - `begin` (synced before CreateMultipartUpload is sent): destination, key, time;
//! - `created` once the store names the upload id;
//! - `end` once it is completed or aborted.
//!
//! At start the journal is replayed: every entry without `end` is handed to its destination's
//! sweep (a known id is aborted; an entry whose create never answered is matched by key and start
//! time), and the file is rewritten with only those entries. Only `begin` is synced: a lost
//! `created` degrades to the key-and-time match, a lost `end` to a harmless abort of an upload that
//! is already gone. One process per journal (a lock file beside it).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// After this many lines the file is rewritten with the open entries only.
const COMPACT_AFTER_LINES: u64 = if cfg!(test) { 64 } else { 4096 };

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("upload journal {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "upload journal {path} is in use by another gateway process; give each instance its own [storage] upload_journal"
    )]
    Locked { path: PathBuf },
    #[error(
        "upload journal {path}, line {line}: {reason}; move the file aside (its multipart uploads are then left to the bucket's lifecycle rule) and start again"
    )]
    Damaged {
        path: PathBuf,
        line: u64,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum Line {
    Begin {
        n: u64,
        destination: String,
        key: String,
        /// Milliseconds since the Unix epoch.
        at_ms: u64,
    },
    Created {
        n: u64,
        upload_id: String,
    },
    End {
        n: u64,
    },
}

/// A multipart upload an earlier run started and did not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub entry: u64,
    pub destination: String,
    pub key: String,
    /// `None`: the create was sent but its answer never recorded.
    pub upload_id: Option<String>,
    pub began: SystemTime,
}

struct State {
    file: File,
    next: u64,
    open: BTreeMap<u64, Pending>,
    lines: u64,
}

pub struct UploadJournal {
    path: PathBuf,
    state: Mutex<State>,
    /// Held for the process's lifetime: one gateway per journal.
    _lock: File,
}

impl std::fmt::Debug for UploadJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadJournal")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl UploadJournal {
    /// Opens (creating, 0600) the journal; returns it and what earlier runs left unfinished.
    pub fn open(path: &Path) -> Result<(Arc<UploadJournal>, Vec<Pending>), JournalError> {
        let io = |source| JournalError::Io {
            path: path.to_path_buf(),
            source,
        };
        let lock = open_0600(&lock_path(path), false).map_err(io)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(JournalError::Locked {
                    path: path.to_path_buf(),
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let open = match File::open(path) {
            Ok(f) => replay(path, f)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(io(e)),
        };
        let next = open.keys().next_back().map_or(1, |n| n + 1);
        let file = rewrite(path, open.values()).map_err(io)?;
        let pending = open.values().cloned().collect();
        let journal = UploadJournal {
            path: path.to_path_buf(),
            state: Mutex::new(State {
                file,
                next,
                lines: open.len() as u64,
                open,
            }),
            _lock: lock,
        };
        Ok((Arc::new(journal), pending))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records, durably, that a multipart upload of `key` is about to be created; returns the
    /// entry to pass to [`created`](Self::created) and [`end`](Self::end).
    pub fn begin(&self, destination: &str, key: &str) -> Result<u64, JournalError> {
        let mut s = self.lock();
        let n = s.next;
        let began = SystemTime::now();
        let line = Line::Begin {
            n,
            destination: destination.to_string(),
            key: key.to_string(),
            at_ms: millis(began),
        };
        let io = |source| JournalError::Io {
            path: self.path.clone(),
            source,
        };
        write_line(&mut s.file, &line).map_err(io)?;
        s.file.sync_data().map_err(io)?;
        s.next += 1;
        s.lines += 1;
        s.open.insert(
            n,
            Pending {
                entry: n,
                destination: destination.to_string(),
                key: key.to_string(),
                upload_id: None,
                began,
            },
        );
        Ok(n)
    }

    /// The store named the upload `entry` created.
    pub fn created(&self, entry: u64, upload_id: &str) {
        let mut s = self.lock();
        if let Some(p) = s.open.get_mut(&entry) {
            p.upload_id = Some(upload_id.to_string());
        }
        let line = Line::Created {
            n: entry,
            upload_id: upload_id.to_string(),
        };
        self.append(&mut s, &line);
    }

    /// The upload of `entry` is completed or aborted: nothing is left to clean up.
    pub fn end(&self, entry: u64) {
        let mut s = self.lock();
        if s.open.remove(&entry).is_none() {
            return;
        }
        self.append(&mut s, &Line::End { n: entry });
        if s.lines >= COMPACT_AFTER_LINES {
            match rewrite(&self.path, s.open.values()) {
                Ok(file) => {
                    s.file = file;
                    s.lines = s.open.len() as u64;
                }
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), error = %e, "upload journal could not be compacted")
                }
            }
        }
    }

    /// Entries not yet ended (for tests and metrics).
    pub fn open_entries(&self) -> usize {
        self.lock().open.len()
    }

    /// Appends without a sync: losing this line only makes the next start do more work.
    fn append(&self, s: &mut State, line: &Line) {
        if let Err(e) = write_line(&mut s.file, line) {
            tracing::warn!(path = %self.path.display(), error = %e, "upload journal write failed");
        }
        s.lines += 1;
    }
}

fn lock_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

fn open_0600(path: &Path, truncate: bool) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(!truncate)
        .write(true)
        .truncate(truncate)
        .mode(0o600)
        .open(path)
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn write_line(file: &mut File, line: &Line) -> std::io::Result<()> {
    let mut text = serde_json::to_string(line).map_err(std::io::Error::other)?;
    text.push('\n');
    file.write_all(text.as_bytes())
}

/// Reads the entries left open. A torn last line (a crash mid-write) is ignored; anything else
/// that does not parse is damage, refused rather than guessed at.
fn replay(path: &Path, file: File) -> Result<BTreeMap<u64, Pending>, JournalError> {
    let mut open = BTreeMap::new();
    let mut lines = BufReader::new(file).lines().peekable();
    let mut number = 0;
    while let Some(line) = lines.next() {
        number += 1;
        let line = line.map_err(|source| JournalError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let last = lines.peek().is_none();
        match serde_json::from_str::<Line>(&line) {
            Ok(l) => apply(&mut open, l),
            Err(_) if last => {
                tracing::warn!(path = %path.display(), line = number, "upload journal ends in a torn line (a crash mid-write); ignored");
            }
            Err(e) => {
                return Err(JournalError::Damaged {
                    path: path.to_path_buf(),
                    line: number,
                    reason: e.to_string(),
                });
            }
        }
    }
    Ok(open)
}

fn apply(open: &mut BTreeMap<u64, Pending>, line: Line) {
    match line {
        Line::Begin {
            n,
            destination,
            key,
            at_ms,
        } => {
            open.insert(
                n,
                Pending {
                    entry: n,
                    destination,
                    key,
                    upload_id: None,
                    began: UNIX_EPOCH + Duration::from_millis(at_ms),
                },
            );
        }
        Line::Created { n, upload_id } => {
            if let Some(p) = open.get_mut(&n) {
                p.upload_id = Some(upload_id);
            }
        }
        Line::End { n } => {
            open.remove(&n);
        }
    }
}

/// Writes `open` to a new file, syncs it and renames it over the journal; returns the new file,
/// open for appending.
fn rewrite<'a>(path: &Path, open: impl Iterator<Item = &'a Pending>) -> std::io::Result<File> {
    let mut tmp = lock_path(path).into_os_string();
    tmp.push(".new");
    let tmp = PathBuf::from(tmp);
    let mut file = open_0600(&tmp, true)?;
    for p in open {
        write_line(
            &mut file,
            &Line::Begin {
                n: p.entry,
                destination: p.destination.clone(),
                key: p.key.clone(),
                at_ms: millis(p.began),
            },
        )?;
        if let Some(id) = &p.upload_id {
            write_line(
                &mut file,
                &Line::Created {
                    n: p.entry,
                    upload_id: id.clone(),
                },
            )?;
        }
    }
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    open_0600(path, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(dir: &Path) -> PathBuf {
        dir.join("uploads.journal")
    }

    #[test]
    fn unfinished_entries_survive_a_restart_and_finished_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = journal(dir.path());
        {
            let (j, pending) = UploadJournal::open(&path).unwrap();
            assert!(pending.is_empty());
            let a = j.begin("eu", "acme/a.bin").unwrap();
            j.created(a, "upload-a");
            let b = j.begin("eu", "acme/b.bin").unwrap();
            j.created(b, "upload-b");
            j.end(b);
            let _c = j.begin("eu", "acme/c.bin").unwrap(); // create never answered
            assert_eq!(j.open_entries(), 2);
        }
        let (j, pending) = UploadJournal::open(&path).unwrap();
        let found: Vec<_> = pending
            .iter()
            .map(|p| (p.key.as_str(), p.upload_id.as_deref()))
            .collect();
        assert_eq!(
            found,
            [("acme/a.bin", Some("upload-a")), ("acme/c.bin", None)]
        );
        // Entry numbers are not reused after a restart.
        let d = j.begin("eu", "acme/d.bin").unwrap();
        assert!(pending.iter().all(|p| p.entry < d));
        for p in &pending {
            j.end(p.entry);
        }
        j.end(d);
        drop(j);
        assert!(UploadJournal::open(&path).unwrap().1.is_empty());
    }

    #[test]
    fn a_second_process_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = journal(dir.path());
        let _first = UploadJournal::open(&path).unwrap();
        assert!(matches!(
            UploadJournal::open(&path),
            Err(JournalError::Locked { .. })
        ));
    }

    #[test]
    fn a_torn_last_line_is_ignored_and_damage_elsewhere_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = journal(dir.path());
        let begin = r#"{"op":"begin","n":1,"destination":"eu","key":"k","at_ms":5}"#;
        std::fs::write(&path, format!("{begin}\n{{\"op\":\"crea")).unwrap();
        let (_, pending) = UploadJournal::open(&path).unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].upload_id, None);
        assert_eq!(pending[0].began, UNIX_EPOCH + Duration::from_millis(5));
        drop(pending);

        let dir = tempfile::tempdir().unwrap();
        let path = journal(dir.path());
        std::fs::write(&path, format!("garbage\n{begin}\n")).unwrap();
        match UploadJournal::open(&path) {
            Err(JournalError::Damaged { line: 1, .. }) => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn compaction_keeps_exactly_the_open_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = journal(dir.path());
        let (j, _) = UploadJournal::open(&path).unwrap();
        let keep = j.begin("eu", "keep").unwrap();
        j.created(keep, "id-keep");
        for i in 0..COMPACT_AFTER_LINES {
            let n = j.begin("eu", &format!("k{i}")).unwrap();
            j.end(n);
        }
        let lines = std::fs::read_to_string(&path).unwrap().lines().count() as u64;
        assert!(lines < COMPACT_AFTER_LINES, "not compacted: {lines} lines");
        drop(j);
        let (_, pending) = UploadJournal::open(&path).unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].upload_id.as_deref(), Some("id-keep"));
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
    }
}
