//! The on-disk proposal store: `proposals_dir/<id>/meta.json` and `proposals_dir/<id>/bundle/…`.
//!
//! Several instances may share the directory, so nothing is kept in memory and every write is
//! atomic: a new proposal is written complete in a hidden temporary directory and renamed into
//! place (readers see all of it or nothing); `meta.json` is replaced by rename. Decisions
//! (approve, reject) are made under an exclusive `flock` on `proposals_dir/.lock`, taken without
//! waiting, so two officers deciding at once on two instances cannot both win.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Decided, Meta, Proposal, ProposalError, State, names};

const META: &str = "meta.json";
const BUNDLE: &str = "bundle";
const LOCK: &str = ".lock";
/// Random bytes in an id: 96 bits, written as 24 lowercase hex digits (url-safe).
const ID_BYTES: usize = 12;

/// What an editor submits.
#[derive(Debug, Clone)]
pub struct NewProposal {
    pub proposer: String,
    pub proposer_certificate: String,
    pub summary: String,
    pub base: String,
    pub files: BTreeMap<String, String>,
    pub now_ms: i64,
}

#[derive(Debug, Clone)]
pub struct ProposalStore {
    dir: PathBuf,
}

/// Held while a decision is checked and written; released on drop.
#[derive(Debug)]
pub struct DecisionLock {
    _file: File,
}

impl ProposalStore {
    pub fn new(dir: impl Into<PathBuf>) -> ProposalStore {
        ProposalStore { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Validates and stores a new open proposal.
    pub fn create(&self, new: NewProposal) -> Result<Proposal, ProposalError> {
        names::check_bundle(&new.files)?;
        check_summary(&new.summary)?;
        fs::create_dir_all(&self.dir)
            .map_err(|e| ProposalError::io("cannot create proposals directory", &self.dir, e))?;
        let id = hex::encode(rand::random::<[u8; ID_BYTES]>());
        let meta = Meta {
            id: id.clone(),
            proposer: new.proposer,
            proposer_certificate: new.proposer_certificate,
            created: crate::audit::time::format_time(new.now_ms),
            created_ms: new.now_ms,
            summary: new.summary,
            base: new.base,
            hash: crate::policy::PolicyBundle::hash_sources(&new.files),
            state: State::Open,
            decided: None,
        };
        let tmp = self.dir.join(format!(".tmp-{id}"));
        let written = write_new(&tmp, &meta, &new.files).and_then(|()| {
            fs::rename(&tmp, self.dir.join(&id))
                .map_err(|e| ProposalError::io("cannot store proposal", &tmp, e))
        });
        if let Err(e) = written {
            // Best effort: a leftover hidden directory is never listed.
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        sync_dir(&self.dir);
        Ok(Proposal {
            meta,
            files: new.files,
        })
    }

    /// The proposal `id`, with its files.
    pub fn get(&self, id: &str) -> Result<Proposal, ProposalError> {
        let meta = self.meta(id)?;
        let files = read_bundle(&self.dir.join(id).join(BUNDLE))?;
        Ok(Proposal { meta, files })
    }

    /// Every proposal's metadata, newest first. Unreadable entries are skipped with a warning.
    pub fn list(&self) -> Result<Vec<Meta>, ProposalError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(ProposalError::io("cannot list", &self.dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if !is_id(&name) {
                continue;
            }
            match self.meta(&name) {
                Ok(m) => out.push(m),
                Err(e) => tracing::warn!(error = %e, "proposal skipped in the list"),
            }
        }
        out.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Deletes a proposal (one whose creation could not be recorded).
    pub fn remove(&self, id: &str) -> Result<(), ProposalError> {
        if !is_id(id) {
            return Err(ProposalError::NotFound(id.chars().take(64).collect()));
        }
        let path = self.dir.join(id);
        fs::remove_dir_all(&path).map_err(|e| ProposalError::io("cannot remove", &path, e))
    }

    /// Takes the decision lock, or says another decision is being written.
    pub fn lock(&self) -> Result<DecisionLock, ProposalError> {
        use rustix::fs::{FlockOperation, flock};
        fs::create_dir_all(&self.dir)
            .map_err(|e| ProposalError::io("cannot create proposals directory", &self.dir, e))?;
        let path = self.dir.join(LOCK);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| ProposalError::io("cannot open lock", &path, e))?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(DecisionLock { _file: file }),
            Err(rustix::io::Errno::WOULDBLOCK) => Err(ProposalError::Conflict(
                "another officer's decision on a proposal is being written right now; try again"
                    .into(),
            )),
            Err(e) => Err(ProposalError::io("cannot lock", &path, e.into())),
        }
    }

    /// Moves an open proposal to `state` (approved or rejected), under the decision lock.
    pub fn decide(
        &self,
        _lock: &DecisionLock,
        id: &str,
        state: State,
        decided: Decided,
    ) -> Result<Meta, ProposalError> {
        let mut meta = self.meta(id)?;
        check_open(&meta)?;
        if state == State::Open {
            return Err(ProposalError::Invalid(
                "a decision approves or rejects".into(),
            ));
        }
        meta.state = state;
        meta.decided = Some(decided);
        write_meta(&self.dir.join(id), &meta)?;
        Ok(meta)
    }

    fn meta(&self, id: &str) -> Result<Meta, ProposalError> {
        if !is_id(id) {
            return Err(ProposalError::NotFound(id.chars().take(64).collect()));
        }
        let path = self.dir.join(id).join(META);
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ProposalError::NotFound(id.to_string()));
            }
            Err(e) => return Err(ProposalError::io("cannot read", &path, e)),
        };
        let meta: Meta = serde_json::from_slice(&text).map_err(|e| ProposalError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if meta.id != id {
            return Err(ProposalError::Corrupt {
                path,
                reason: format!("it says it is proposal {}", meta.id),
            });
        }
        Ok(meta)
    }
}

/// Refuses a decision on a proposal that was already decided, naming who decided it.
pub fn check_open(meta: &Meta) -> Result<(), ProposalError> {
    match (&meta.state, &meta.decided) {
        (State::Open, _) => Ok(()),
        (s, Some(d)) => Err(ProposalError::Conflict(format!(
            "proposal {} was already {} by {} at {}",
            meta.id,
            s.as_str(),
            d.officer,
            d.at
        ))),
        (s, None) => Err(ProposalError::Conflict(format!(
            "proposal {} was already {}",
            meta.id,
            s.as_str()
        ))),
    }
}

/// A summary is one line of printable text, at most 500 characters.
fn check_summary(summary: &str) -> Result<(), ProposalError> {
    if summary.trim().is_empty() {
        return Err(ProposalError::Invalid(
            "the summary is empty; say what the change does and why".into(),
        ));
    }
    if summary.chars().count() > 500 || summary.chars().any(char::is_control) {
        return Err(ProposalError::Invalid(
            "the summary must be one line of at most 500 characters".into(),
        ));
    }
    Ok(())
}

fn is_id(s: &str) -> bool {
    s.len() == 2 * ID_BYTES && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn write_new(
    dir: &Path,
    meta: &Meta,
    files: &BTreeMap<String, String>,
) -> Result<(), ProposalError> {
    let bundle = dir.join(BUNDLE);
    fs::create_dir_all(bundle.join("tests"))
        .map_err(|e| ProposalError::io("cannot create", &bundle, e))?;
    for (name, text) in files {
        // Names were checked by `names::check_bundle`: `x` or `tests/x`, nothing else.
        write_synced(&bundle.join(name), text.as_bytes())?;
    }
    write_synced(&dir.join(META), &meta_json(meta)?)?;
    sync_dir(&bundle.join("tests"));
    sync_dir(&bundle);
    sync_dir(dir);
    Ok(())
}

fn write_meta(dir: &Path, meta: &Meta) -> Result<(), ProposalError> {
    let tmp = dir.join(format!(
        ".{META}.{}",
        hex::encode(rand::random::<[u8; 6]>())
    ));
    let res = write_synced(&tmp, &meta_json(meta)?).and_then(|()| {
        fs::rename(&tmp, dir.join(META))
            .map_err(|e| ProposalError::io("cannot replace", &dir.join(META), e))
    });
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    sync_dir(dir);
    res
}

fn meta_json(meta: &Meta) -> Result<Vec<u8>, ProposalError> {
    serde_json::to_vec_pretty(meta).map_err(|e| ProposalError::Corrupt {
        path: PathBuf::from(META),
        reason: e.to_string(),
    })
}

pub(super) fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), ProposalError> {
    let mut f = File::create(path).map_err(|e| ProposalError::io("cannot create", path, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| ProposalError::io("cannot write", path, e))
}

/// Makes renames in `dir` durable; a failure only weakens durability, so it is logged.
pub(super) fn sync_dir(dir: &Path) {
    if let Err(e) = File::open(dir).and_then(|d| d.sync_all())
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot sync directory");
    }
}

fn read_bundle(dir: &Path) -> Result<BTreeMap<String, String>, ProposalError> {
    let mut files = BTreeMap::new();
    for sub in [None, Some("tests")] {
        let level = sub.map_or_else(|| dir.to_path_buf(), |s| dir.join(s));
        let entries = match fs::read_dir(&level) {
            Ok(e) => e,
            Err(e) if sub.is_some() && e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(ProposalError::io("cannot read", &level, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| ProposalError::io("cannot read", &level, e))?;
            let Some(file) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let name = sub.map_or_else(|| file.clone(), |s| format!("{s}/{file}"));
            if names::check_name(&name).is_err() || !entry.path().is_file() {
                continue;
            }
            let path = entry.path();
            let text = fs::read_to_string(&path)
                .map_err(|e| ProposalError::io("cannot read", &path, e))?;
            files.insert(name, text);
        }
    }
    Ok(files)
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
