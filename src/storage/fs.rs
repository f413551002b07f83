//! The `fs` destination: a directory on a local or on-premises disk.
//!
//! Atomic publish: an upload writes `.<name>.eugate-tmp-<random>` in the target directory,
//! and only after the last sealed byte is written and fsynced is it renamed (or, for
//! no-clobber, hard-linked) to its name, then the directory is fsynced. Readers never see a
//! partial object; a crash leaves only a hidden temp file, swept at the next start.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use ring::rand::SecureRandom;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::{
    Destination, Entry, EntryKind, Key, ObjectReader, Publish, StorageError, Upload, check_key,
};
use crate::policy::{Evidence, Grant, Location};

/// Marks in-progress uploads (`.<name>.eugate-tmp-<random>`): hidden from listings, swept at
/// start. Defined here, where the files are made; `transfer::path` reserves it in user names.
pub const TEMP_MARKER: &str = ".eugate-tmp-";

#[derive(Debug)]
pub struct FsDestination {
    name: String,
    root: PathBuf,
    country: String,
}

impl FsDestination {
    /// Creates `root` if needed (0700) and sweeps temp files a crash may have left.
    pub fn open(name: &str, root: &Path, country: &str) -> Result<FsDestination, StorageError> {
        std::fs::create_dir_all(root).map_err(|e| StorageError::io("creating the root", e))?;
        let d = FsDestination {
            name: name.to_string(),
            root: root.to_path_buf(),
            country: country.to_string(),
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

    async fn begin(
        &self,
        grant: Grant,
        key: &Key,
        publish: Publish,
    ) -> Result<Box<dyn Upload>, StorageError> {
        if grant.destination() != self.name {
            return Err(StorageError::WrongGrant {
                granted: grant.destination().to_string(),
                actual: self.name.clone(),
            });
        }
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
        let mut random = [0u8; 8];
        ring::rand::SystemRandom::new()
            .fill(&mut random)
            .map_err(|_| StorageError::Io {
                what: "random temp name",
                source: std::io::Error::other("system random generator failed"),
            })?;
        // Keep the temp name within NAME_MAX even for a 255-byte target name.
        let short: String = name.chars().take(200).collect();
        let temp = dir.join(format!(".{short}{TEMP_MARKER}{}", hex::encode(random)));
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

    async fn rename(&self, from: &Key, to: &Key) -> Result<(), StorageError> {
        let from = self.file_path(from)?;
        let to = self.file_path(to)?;
        tokio::fs::symlink_metadata(&from)
            .await
            .map_err(|e| StorageError::io("rename source", e))?;
        // SFTP v3 rename must not overwrite: fail if the target exists.
        if tokio::fs::symlink_metadata(&to).await.is_ok() {
            return Err(StorageError::AlreadyExists);
        }
        tokio::fs::rename(&from, &to)
            .await
            .map_err(|e| StorageError::io("rename", e))
    }

    async fn mkdir(&self, key: &Key) -> Result<(), StorageError> {
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

    async fn commit(mut self: Box<Self>) -> Result<u64, StorageError> {
        let mut file = self.file.take().ok_or(StorageError::NotFound)?;
        let temp = self.temp.clone().ok_or(StorageError::NotFound)?;
        file.flush()
            .await
            .map_err(|e| StorageError::io("flushing the temp file", e))?;
        file.sync_all()
            .await
            .map_err(|e| StorageError::io("syncing the temp file", e))?;
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
                tokio::fs::remove_file(&temp)
                    .await
                    .map_err(|e| StorageError::io("removing the temp name", e))?;
            }
        }
        self.temp = None;
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all())
            .await
            .map_err(|e| StorageError::io("syncing the directory", std::io::Error::other(e)))?
            .map_err(|e| StorageError::io("syncing the directory", e))?;
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

struct FsReader {
    file: tokio::fs::File,
    len: u64,
}

#[async_trait]
impl ObjectReader for FsReader {
    fn sealed_len(&self) -> u64 {
        self.len
    }

    async fn read_at(&mut self, offset: u64, len: usize) -> Result<Vec<u8>, StorageError> {
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
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Classification, PolicyBundle, Request};

    fn grant(dest: &FsDestination) -> Grant {
        let (location, evidence) = dest.location();
        let req = Request {
            tenant: "acme".into(),
            user: "alice".into(),
            classification: Some(Classification::Personal),
            destination: dest.name().to_string(),
            location,
            evidence,
        };
        let (decision, grant) = PolicyBundle::embedded().decide(&req);
        grant.unwrap_or_else(|| panic!("embedded policy denied DE: {decision:?}"))
    }

    fn files(root: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[tokio::test]
    async fn publish_only_on_commit_and_abort_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let d = FsDestination::open("local", dir.path(), "DE").unwrap();
        let mut up = d.begin(grant(&d), "a.bin", Publish::Replace).await.unwrap();
        up.write(bytes::Bytes::from_static(b"sealed bytes"))
            .await
            .unwrap();
        let visible = d.list("").await.unwrap();
        assert!(visible.is_empty(), "temp file hidden from listings");
        assert!(matches!(d.stat("a.bin").await, Err(StorageError::NotFound)));
        assert_eq!(up.commit().await.unwrap(), 12);
        assert_eq!(files(dir.path()), vec!["a.bin"]);
        assert_eq!(d.stat("a.bin").await.unwrap().sealed_len, 12);

        let mut up = d.begin(grant(&d), "b.bin", Publish::Replace).await.unwrap();
        up.write(bytes::Bytes::from_static(b"partial"))
            .await
            .unwrap();
        up.abort().await;
        let up = d.begin(grant(&d), "c.bin", Publish::Replace).await.unwrap();
        drop(up); // a dropped upload aborts too
        assert_eq!(files(dir.path()), vec!["a.bin"]);
    }

    #[tokio::test]
    async fn replace_and_no_clobber() {
        let dir = tempfile::tempdir().unwrap();
        let d = FsDestination::open("local", dir.path(), "DE").unwrap();
        let mut up = d.begin(grant(&d), "x", Publish::Replace).await.unwrap();
        up.write(bytes::Bytes::from_static(b"one")).await.unwrap();
        up.commit().await.unwrap();
        assert!(matches!(
            d.begin(grant(&d), "x", Publish::NoClobber).await,
            Err(StorageError::AlreadyExists)
        ));
        // A racing writer that published first wins; the no-clobber commit fails, cleanly.
        let mut late = d.begin(grant(&d), "y", Publish::NoClobber).await.unwrap();
        let mut first = d.begin(grant(&d), "y", Publish::Replace).await.unwrap();
        first
            .write(bytes::Bytes::from_static(b"first"))
            .await
            .unwrap();
        first.commit().await.unwrap();
        late.write(bytes::Bytes::from_static(b"late"))
            .await
            .unwrap();
        assert!(late.commit().await.is_err());
        assert_eq!(std::fs::read(dir.path().join("y")).unwrap(), b"first");
        let mut up = d.begin(grant(&d), "x", Publish::Replace).await.unwrap();
        up.write(bytes::Bytes::from_static(b"two")).await.unwrap();
        up.commit().await.unwrap();
        assert_eq!(std::fs::read(dir.path().join("x")).unwrap(), b"two");
        assert_eq!(files(dir.path()), vec!["x", "y"]);
    }

    #[tokio::test]
    async fn keys_cannot_escape_and_rename_does_not_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let d = FsDestination::open("local", dir.path(), "DE").unwrap();
        for bad in ["../x", "/etc/passwd", "a//b", "a/./b", "a\0b"] {
            assert!(
                matches!(d.stat(bad).await, Err(StorageError::InvalidKey(_))),
                "{bad}"
            );
        }
        std::fs::write(dir.path().join("a"), b"a").unwrap();
        std::fs::write(dir.path().join("b"), b"b").unwrap();
        assert!(matches!(
            d.rename("a", "b").await,
            Err(StorageError::AlreadyExists)
        ));
        d.rename("a", "c").await.unwrap();
        assert_eq!(std::fs::read(dir.path().join("c")).unwrap(), b"a");
    }

    #[tokio::test]
    async fn temp_files_swept_at_open() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("t")).unwrap();
        std::fs::write(dir.path().join("t/.f.eugate-tmp-00"), b"x").unwrap();
        std::fs::write(dir.path().join("t/keep"), b"x").unwrap();
        FsDestination::open("local", dir.path(), "DE").unwrap();
        assert_eq!(files(&dir.path().join("t")), vec!["keep"]);
    }

    #[tokio::test]
    async fn grant_for_another_destination_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = FsDestination::open("a", &dir.path().join("a"), "DE").unwrap();
        let b = FsDestination::open("b", &dir.path().join("b"), "DE").unwrap();
        assert!(matches!(
            b.begin(grant(&a), "x", Publish::Replace).await,
            Err(StorageError::WrongGrant { .. })
        ));
    }
}
