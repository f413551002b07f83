//! The `fs` destination: a directory on a local or on-premises disk.
//!
//! Atomic publish: an upload writes `.<name>.eugate-tmp-<random>` in the target directory,
//! and only after the last sealed byte is written and fsynced is it renamed (or, for
//! no-clobber, hard-linked) to its name, then the directory is fsynced. Readers never see a
//! partial object; a crash leaves only a hidden temp file, swept at the next start.
//!
//! Rename never replaces: `renameat2(RENAME_NOREPLACE)` makes "fail if the name exists" and
//! the rename one atomic step, so of two clients renaming onto one new name exactly one wins.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use ring::rand::SecureRandom;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::{
    Destination, Entry, EntryKind, Key, ObjectMeta, ObjectReader, Publish, StorageError, Upload,
    check_grant, check_key,
};
use crate::policy::{Evidence, Grant, Location};

/// Marks in-progress uploads (`.<name>.eugate-tmp-<random>`): hidden from listings, swept at
/// start. Defined here, where the files are made; `transfer::path` reserves it in user names.
pub const TEMP_MARKER: &str = ".eugate-tmp-";

/// Longest file name the filesystems we run on accept (NAME_MAX), in bytes.
const NAME_MAX: usize = 255;
/// Random bytes in a temp name (hex-encoded: twice as many characters).
const TEMP_RANDOM: usize = 8;

/// `.<name>.eugate-tmp-<hex>`, with `name` cut to whole characters so that the result never
/// exceeds [`NAME_MAX`] bytes: limits are in bytes, and a 255-byte name of 3-byte characters
/// is legal.
fn temp_name(name: &str, random: &[u8; TEMP_RANDOM]) -> String {
    let room = NAME_MAX - 1 - TEMP_MARKER.len() - 2 * TEMP_RANDOM;
    let mut cut = name.len().min(room);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(".{}{TEMP_MARKER}{}", &name[..cut], hex::encode(random))
}

/// Renames `from` to `to` unless `to` exists, atomically. Filesystems without
/// `RENAME_NOREPLACE` (EINVAL; ENOSYS/EOPNOTSUPP from old kernels or FUSE) fall back to
/// [`rename_by_link`], which only works for files.
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    use rustix::io::Errno;
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
            if std::fs::symlink_metadata(from)?.is_dir() {
                // A directory has no hard links: no atomic "create if absent" is left.
                return Err(std::io::Error::new(
                    std::io::ErrorKind::Unsupported,
                    "this filesystem cannot rename without the risk of replacing an entry \
                     (no RENAME_NOREPLACE); directories cannot be renamed here",
                ));
            }
            rename_by_link(from, to)
        }
        Err(e) => Err(e.into()),
    }
}

/// link(2) fails with EEXIST if `to` exists: an atomic "create if absent"; then the old name
/// goes. What it cannot do: directories (no hard links), filesystems without hard links
/// (FAT, some FUSE), and a crash between the two steps leaves the file under both names
/// (no data lost; the duplicate must be removed by hand).
fn rename_by_link(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::hard_link(from, to)?;
    if let Err(e) = std::fs::remove_file(from) {
        // Undo: `to` is the link made just now, so removing it restores the state before.
        let _ = std::fs::remove_file(to);
        return Err(e);
    }
    Ok(())
}

#[derive(Debug)]
pub struct FsDestination {
    name: String,
    root: PathBuf,
    country: String,
    /// `operator_country` of the configuration; `None` = `country`.
    operator_country: Option<String>,
}

impl FsDestination {
    /// Whose law governs the disk's operator, when not that of the country it is in.
    pub fn with_operator_country(mut self, country: Option<String>) -> FsDestination {
        self.operator_country = country;
        self
    }

    /// Creates `root` if needed (0700) and sweeps temp files a crash may have left.
    pub fn open(name: &str, root: &Path, country: &str) -> Result<FsDestination, StorageError> {
        // Only the gateway's user reads sealed objects and their names (an existing root keeps
        // the mode its operator gave it).
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)
            .map_err(|e| StorageError::io("creating the root", e))?;
        let d = FsDestination {
            name: name.to_string(),
            root: root.to_path_buf(),
            country: country.to_string(),
            operator_country: None,
        };
        let swept = sweep_temp_files(&d.root);
        if swept > 0 {
            tracing::info!(destination = name, swept, "removed unfinished uploads");
        }
        Ok(d)
    }

    fn path(&self, key: &Key) -> Result<PathBuf, StorageError> {
        check_key(key)?;
        Ok(if key.is_empty() {
            self.root.clone()
        } else {
            self.root.join(key)
        })
    }

    fn file_path(&self, key: &Key) -> Result<PathBuf, StorageError> {
        if key.is_empty() {
            return Err(StorageError::IsDir);
        }
        self.path(key)
    }
}

fn sweep_temp_files(dir: &Path) -> usize {
    let mut swept = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    for e in entries.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            swept += sweep_temp_files(&e.path());
        } else if e.file_name().to_string_lossy().contains(TEMP_MARKER)
            && std::fs::remove_file(e.path()).is_ok()
        {
            swept += 1;
        }
    }
    swept
}

fn entry_from(name: String, md: &std::fs::Metadata) -> Entry {
    Entry {
        name,
        kind: if md.is_dir() {
            EntryKind::Dir
        } else {
            EntryKind::File
        },
        sealed_len: md.len(),
        modified: md.modified().unwrap_or(std::time::UNIX_EPOCH),
    }
}

#[async_trait]
impl Destination for FsDestination {
    fn name(&self) -> &str {
        &self.name
    }

    fn location(&self) -> (Location, Evidence) {
        // The operator declared where the disk is; nothing can probe it, so: attested.
        (
            Location::Declared(vec![self.country.clone()]),
            Evidence::Attested,
        )
    }

    fn operator_country(&self) -> Option<String> {
        self.operator_country.clone()
    }

    async fn ensure_root(&self, prefix: &str) -> Result<(), StorageError> {
        let path = self.path(prefix)?;
        let mut b = tokio::fs::DirBuilder::new();
        b.recursive(true).mode(0o700);
        b.create(&path)
            .await
            .map_err(|e| StorageError::io("creating the tenant root", e))
    }

    async fn begin(
        &self,
        grant: Grant,
        key: &Key,
        publish: Publish,
        _meta: ObjectMeta,
    ) -> Result<Box<dyn Upload>, StorageError> {
        check_grant(&grant, &self.name)?;
        let target = self.file_path(key)?;
        let (dir, name) = match (target.parent(), target.file_name()) {
            (Some(d), Some(n)) => (d.to_path_buf(), n.to_string_lossy().into_owned()),
            _ => return Err(StorageError::InvalidKey(key.to_string())),
        };
        let md = tokio::fs::metadata(&dir)
            .await
            .map_err(|e| StorageError::io("the target directory", e))?;
        if !md.is_dir() {
            return Err(StorageError::NotDir);
        }
        if let Ok(md) = tokio::fs::metadata(&target).await {
            if md.is_dir() {
                return Err(StorageError::IsDir);
            }
            if publish == Publish::NoClobber {
                return Err(StorageError::AlreadyExists);
            }
        }
        let mut random = [0u8; TEMP_RANDOM];
        ring::rand::SystemRandom::new()
            .fill(&mut random)
            .map_err(|_| StorageError::Io {
                what: "random temp name",
                source: std::io::Error::other("system random generator failed"),
            })?;
        let temp = dir.join(temp_name(&name, &random));
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .await
            .map_err(|e| StorageError::io("creating the temp file", e))?;
        Ok(Box::new(FsUpload {
            file: Some(file),
            temp: Some(temp),
            target,
            dir,
            publish,
            written: 0,
            _grant: grant,
        }))
    }

    async fn stat(&self, key: &Key) -> Result<Entry, StorageError> {
        let path = self.path(key)?;
        let md = tokio::fs::symlink_metadata(&path)
            .await
            .map_err(|e| StorageError::io("stat", e))?;
        if md.file_type().is_symlink() {
            // Nothing in the store is a link; a planted one is not followed.
            return Err(StorageError::NotFound);
        }
        let name = key.rsplit('/').next().unwrap_or_default().to_string();
        Ok(entry_from(name, &md))
    }

    async fn list(&self, dir: &Key) -> Result<Vec<Entry>, StorageError> {
        let path = self.path(dir)?;
        let mut rd = tokio::fs::read_dir(&path)
            .await
            .map_err(|e| StorageError::io("listing", e))?;
        let mut out = Vec::new();
        while let Some(e) = rd
            .next_entry()
            .await
            .map_err(|e| StorageError::io("listing", e))?
        {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.contains(TEMP_MARKER) {
                continue;
            }
            let Ok(md) = tokio::fs::symlink_metadata(e.path()).await else {
                continue;
            };
            if md.file_type().is_symlink() {
                continue;
            }
            out.push(entry_from(name, &md));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn open(&self, key: &Key) -> Result<Box<dyn ObjectReader>, StorageError> {
        let path = self.file_path(key)?;
        let md = tokio::fs::symlink_metadata(&path)
            .await
            .map_err(|e| StorageError::io("open", e))?;
        if md.is_dir() {
            return Err(StorageError::IsDir);
        }
        if !md.is_file() {
            return Err(StorageError::NotFound);
        }
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| StorageError::io("open", e))?;
        Ok(Box::new(FsReader {
            file,
            len: md.len(),
        }))
    }

    async fn remove(&self, key: &Key) -> Result<(), StorageError> {
        let path = self.file_path(key)?;
        let md = tokio::fs::symlink_metadata(&path)
            .await
            .map_err(|e| StorageError::io("remove", e))?;
        if md.is_dir() {
            return Err(StorageError::IsDir);
        }
        tokio::fs::remove_file(&path)
            .await
            .map_err(|e| StorageError::io("remove", e))
    }

    async fn rename(&self, grant: &Grant, from: &Key, to: &Key) -> Result<(), StorageError> {
        check_grant(grant, &self.name)?;
        let from = self.file_path(from)?;
        let to = self.file_path(to)?;
        // SFTP v3 rename must not overwrite; checking first and renaming after lost races.
        tokio::task::spawn_blocking(move || rename_noreplace(&from, &to))
            .await
            .map_err(|e| StorageError::io("rename", std::io::Error::other(e)))?
            .map_err(|e| StorageError::io("rename", e))
    }

    async fn mkdir(&self, grant: &Grant, key: &Key) -> Result<(), StorageError> {
        check_grant(grant, &self.name)?;
        let path = self.file_path(key)?;
        let mut b = tokio::fs::DirBuilder::new();
        b.mode(0o700);
        b.create(&path)
            .await
            .map_err(|e| StorageError::io("mkdir", e))
    }

    async fn rmdir(&self, key: &Key) -> Result<(), StorageError> {
        let path = self.file_path(key)?;
        let md = tokio::fs::symlink_metadata(&path)
            .await
            .map_err(|e| StorageError::io("rmdir", e))?;
        if !md.is_dir() {
            return Err(StorageError::NotDir);
        }
        tokio::fs::remove_dir(&path)
            .await
            .map_err(|e| StorageError::io("rmdir", e))
    }
}

struct FsUpload {
    file: Option<tokio::fs::File>,
    /// `Some` while the temp file exists; `Drop` removes it.
    temp: Option<PathBuf>,
    target: PathBuf,
    dir: PathBuf,
    publish: Publish,
    written: u64,
    /// Held for the upload's life: the proof this transfer was allowed.
    _grant: Grant,
}

#[async_trait]
impl Upload for FsUpload {
    async fn write(&mut self, sealed: bytes::Bytes) -> Result<(), StorageError> {
        let file = self.file.as_mut().ok_or(StorageError::NotFound)?;
        file.write_all(&sealed)
            .await
            .map_err(|e| StorageError::io("writing the temp file", e))?;
        self.written += sealed.len() as u64;
        Ok(())
    }

    async fn commit(mut self: Box<Self>, _plaintext_size: u64) -> Result<u64, StorageError> {
        let mut file = self.file.take().ok_or(StorageError::NotFound)?;
        let temp = self.temp.clone().ok_or(StorageError::NotFound)?;
        file.flush()
            .await
            .map_err(|e| StorageError::io("flushing the temp file", e))?;
        file.sync_all()
            .await
            .map_err(|e| StorageError::io("syncing the temp file", e))?;
        // The inode identifies our object after it has its name, whatever else happens.
        let ours = file
            .metadata()
            .await
            .map_err(|e| StorageError::io("stat of the temp file", e))?
            .ino();
        drop(file);
        match self.publish {
            Publish::Replace => tokio::fs::rename(&temp, &self.target)
                .await
                .map_err(|e| StorageError::io("publishing (rename)", e))?,
            Publish::NoClobber => {
                // link(2) fails if the name exists: an atomic "create if absent".
                tokio::fs::hard_link(&temp, &self.target)
                    .await
                    .map_err(|e| StorageError::io("publishing (link)", e))?;
                if let Err(e) = tokio::fs::remove_file(&temp).await {
                    // Published; the leftover temp name is swept at the next start.
                    tracing::warn!(error = %e, "removing the temp name after publishing");
                }
            }
        }
        self.temp = None;
        if let Err(e) = sync_dir(&self.dir).await {
            // The object has its name; whether it is durable is what the sync would have
            // said. Try once more, then answer from what the disk shows, never a guess.
            tracing::warn!(error = %e, "syncing the directory after publishing");
            if let Err(e) = sync_dir(&self.dir).await {
                return match tokio::fs::symlink_metadata(&self.target).await {
                    Ok(md) if md.ino() == ours => Err(StorageError::CommitUnknown(format!(
                        "the object is in place but the directory could not be synced ({e})"
                    ))),
                    _ => Err(StorageError::io("syncing the directory", e)),
                };
            }
        }
        Ok(self.written)
    }

    async fn abort(mut self: Box<Self>) {
        self.file = None;
        if let Some(temp) = self.temp.take() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
    }
}

impl Drop for FsUpload {
    fn drop(&mut self) {
        if let Some(temp) = self.temp.take() {
            let _ = std::fs::remove_file(temp);
        }
    }
}

async fn sync_dir(dir: &Path) -> std::io::Result<()> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all())
        .await
        .map_err(std::io::Error::other)?
}

struct FsReader {
    file: tokio::fs::File,
    len: u64,
}

#[async_trait]
impl ObjectReader for FsReader {
    fn sealed_len(&self) -> u64 {
        self.len
    }

    async fn read_at(&mut self, offset: u64, len: usize) -> Result<bytes::Bytes, StorageError> {
        let len = len.min(self.len.saturating_sub(offset) as usize);
        let mut buf = vec![0u8; len];
        self.file
            .seek(std::io::SeekFrom::Start(offset))
            .await
            .map_err(|e| StorageError::io("seek", e))?;
        self.file
            .read_exact(&mut buf)
            .await
            .map_err(|e| StorageError::io("read", e))?;
        Ok(buf.into())
    }
}

#[cfg(test)]
#[path = "fs_tests.rs"]
mod tests;
