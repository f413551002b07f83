//! Writing an approved bundle into the policy directory so that no reloader, of this instance
//! or of another one watching the same directory, ever takes a half-written bundle as good.
//!
//! The reloader loads whatever set of files it finds and keeps the old bundle when that set
//! does not load. Renaming files one by one cannot be made atomic as a whole (rename(2) cannot
//! replace a non-empty directory, and swapping the directory would leave watchers watching the
//! old one), so the intermediate sets are made *invalid* instead:
//! 1. every file is written and synced in a staging directory on the same filesystem (beside
//!    the policy directory when that is the same device, else hidden inside it);
//! 2. a marker, `00-incomplete-console-write.cedar`, which is not valid Cedar, is renamed into
//!    the policy directory: from now on every load of the directory fails;
//! 3. each file is renamed into place and files the proposal removed are deleted;
//! 4. the marker is deleted (one atomic unlink): the next load sees exactly the new bundle.
//!
//! A reload during steps 2–3 fails and the old bundle stays in force. If the write stops
//! half-way (disk error, crash) the marker stays, so the partial set never loads, at reload or
//! at start, until someone restores the directory and removes the marker (its text says so).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::names::INCOMPLETE_MARKER;
use super::store::{sync_dir, write_synced};
use crate::policy::PolicyBundle;

/// The marker's text: an explanation, then a line Cedar cannot parse.
const MARKER_TEXT: &str = "\
// The eugate console is writing an approved proposal into this directory. While this file is
// here the bundle is incomplete and does not load (the previous bundle stays in force).
// If it stays, the write was interrupted: restore this directory (from the proposal's bundle/
// under [console] proposals_dir, or from your copy) and then delete this file.
incomplete console write in progress
";

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Nothing in the policy directory was changed.
    #[error("the bundle could not be prepared, the policy directory is unchanged: {0}")]
    Staging(String),
    /// The marker is in place: the directory does not load until it is repaired.
    #[error(
        "writing the bundle into {dir} failed half-way ({reason}); the previous bundle stays in force and the directory does not load until it is restored and {INCOMPLETE_MARKER} is removed"
    )]
    Incomplete { dir: PathBuf, reason: String },
}

/// Makes `dir` hold exactly `files` as its bundle files (other files are left alone).
pub fn write_bundle(dir: &Path, files: &BTreeMap<String, String>) -> Result<(), ApplyError> {
    let staging = staging_dir(dir).map_err(ApplyError::Staging)?;
    let result = stage(&staging, files)
        .map_err(ApplyError::Staging)
        .and_then(|()| swap_in(dir, &staging, files));
    // Whatever happened, the staging copy is no longer needed.
    let _ = fs::remove_dir_all(&staging);
    result
}

/// A fresh directory on the policy directory's filesystem, so renames from it are atomic.
fn staging_dir(dir: &Path) -> Result<PathBuf, String> {
    let dev = |p: &Path| fs::metadata(p).map(|m| m.dev());
    let dir_dev = dev(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let name = format!(
        ".eugate-proposal-{}",
        hex::encode(rand::random::<[u8; 8]>())
    );
    // Beside the directory, so staging does not wake its watchers; inside it (hidden, and a
    // directory, so never read as a bundle file) when the parent is another filesystem.
    let base = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() && dev(p).is_ok_and(|d| d == dir_dev) => {
            p.to_path_buf()
        }
        _ => dir.to_path_buf(),
    };
    let staging = base.join(name);
    fs::create_dir(&staging).map_err(|e| format!("{}: {e}", staging.display()))?;
    Ok(staging)
}

fn stage(staging: &Path, files: &BTreeMap<String, String>) -> Result<(), String> {
    fs::create_dir_all(staging.join("tests")).map_err(|e| e.to_string())?;
    for (name, text) in files {
        write_synced(&staging.join(name), text.as_bytes()).map_err(|e| e.to_string())?;
    }
    write_synced(&staging.join(INCOMPLETE_MARKER), MARKER_TEXT.as_bytes())
        .map_err(|e| e.to_string())?;
    sync_dir(&staging.join("tests"));
    sync_dir(staging);
    Ok(())
}

fn swap_in(dir: &Path, staging: &Path, files: &BTreeMap<String, String>) -> Result<(), ApplyError> {
    let marker = dir.join(INCOMPLETE_MARKER);
    fs::rename(staging.join(INCOMPLETE_MARKER), &marker)
        .map_err(|e| ApplyError::Staging(format!("{}: {e}", marker.display())))?;
    sync_dir(dir);
    let incomplete = |reason: String| ApplyError::Incomplete {
        dir: dir.to_path_buf(),
        reason,
    };
    let old = PolicyBundle::read_sources(dir).map_err(|e| incomplete(e.to_string()))?;
    if files.keys().any(|n| n.starts_with("tests/")) {
        fs::create_dir_all(dir.join("tests")).map_err(|e| incomplete(e.to_string()))?;
    }
    for name in files.keys() {
        let to = dir.join(name);
        fs::rename(staging.join(name), &to)
            .map_err(|e| incomplete(format!("{}: {e}", to.display())))?;
    }
    for name in old.keys() {
        if name != INCOMPLETE_MARKER && !files.contains_key(name) {
            let path = dir.join(name);
            fs::remove_file(&path).map_err(|e| incomplete(format!("{}: {e}", path.display())))?;
        }
    }
    sync_dir(&dir.join("tests"));
    sync_dir(dir);
    fs::remove_file(&marker).map_err(|e| incomplete(format!("{}: {e}", marker.display())))?;
    sync_dir(dir);
    Ok(())
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
