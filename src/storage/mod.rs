//! Destinations: where sealed objects live. Every upload starts with a `policy::Grant`
//! ([`Destination::begin`] takes it by value), so no byte can reach a store the residency policy
//! did not allow. Stores see only ciphertext and object keys.

pub mod fs;
pub mod s3;

use std::time::SystemTime;

use async_trait::async_trait;

use crate::policy::{Evidence, Grant, Location};

/// An object key below the destination root: `/`-separated plain names (validated by
/// [`check_key`]).
pub type Key = str;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
}

/// What a store knows about one entry. Sizes are of the *sealed* object.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub kind: EntryKind,
    pub sealed_len: u64,
    pub modified: SystemTime,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("no such file or directory")]
    NotFound,
    #[error("already exists")]
    AlreadyExists,
    #[error("directory is not empty")]
    NotEmpty,
    #[error("is a directory")]
    IsDir,
    #[error("is not a directory")]
    NotDir,
    #[error("invalid object key `{0}`")]
    InvalidKey(String),
    #[error("the grant is for destination `{granted}`, not `{actual}`")]
    WrongGrant { granted: String, actual: String },
    /// The store refused or failed a request (S3); `detail` is for logs and the audit trail.
    #[error("{op} failed: {detail}")]
    Backend { op: &'static str, detail: String },
    /// The destination's location is not verified: nothing may be sent to it.
    #[error("destination quarantined: {0}")]
    Quarantined(String),
    #[error("the object is too large for this destination: {0}")]
    TooLarge(String),
    #[error("storage I/O on {what}: {source}")]
    Io {
        what: &'static str,
        source: std::io::Error,
    },
}

impl StorageError {
    fn io(what: &'static str, source: std::io::Error) -> StorageError {
        match source.kind() {
            std::io::ErrorKind::NotFound => StorageError::NotFound,
            std::io::ErrorKind::AlreadyExists => StorageError::AlreadyExists,
            std::io::ErrorKind::DirectoryNotEmpty => StorageError::NotEmpty,
            std::io::ErrorKind::IsADirectory => StorageError::IsDir,
            std::io::ErrorKind::NotADirectory => StorageError::NotDir,
            _ => StorageError::Io { what, source },
        }
    }
}

/// How an upload may treat an existing object at commit time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Publish {
    /// Atomically replace whatever is there.
    Replace,
    /// Fail with `AlreadyExists` if the key exists (SFTP `EXCLUDE`).
    NoClobber,
}

/// What the gateway knows about a destination's location right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// The operator declared the location and nothing can be probed (a local disk).
    Declared,
    /// The store reported `observed_region` (via `source`), and it matches the configuration.
    Verified {
        observed_region: String,
        source: String,
    },
    /// Every transfer is denied until a later probe verifies the destination.
    Quarantined {
        reason: String,
        observed_region: Option<String>,
    },
}

#[async_trait]
pub trait Destination: Send + Sync + 'static {
    /// The config name (also in grants and audit records).
    fn name(&self) -> &str;
    /// The location the policy decides on, with the kind of evidence behind it.
    fn location(&self) -> (Location, Evidence);
    /// Whether the location was verified; a quarantined destination gets no data at all.
    fn verification(&self) -> Verification {
        Verification::Declared
    }
    /// Makes the tenant root `prefix` (`a/b`, no trailing `/`) exist. Stores with real
    /// directories create them; S3 only remembers it, so nothing is written to a bucket
    /// before a transfer is allowed.
    async fn ensure_root(&self, prefix: &str) -> Result<(), StorageError> {
        let mut acc = String::new();
        for seg in prefix.split('/').filter(|s| !s.is_empty()) {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(seg);
            match self.mkdir(&acc).await {
                Ok(()) | Err(StorageError::AlreadyExists) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
    /// Starts an upload to `key`; nothing is visible under `key` until [`Upload::commit`].
    async fn begin(
        &self,
        grant: Grant,
        key: &Key,
        publish: Publish,
    ) -> Result<Box<dyn Upload>, StorageError>;
    async fn stat(&self, key: &Key) -> Result<Entry, StorageError>;
    /// Entries directly below `dir` ("" is the destination root); uploads in progress are hidden.
    async fn list(&self, dir: &Key) -> Result<Vec<Entry>, StorageError>;
    async fn open(&self, key: &Key) -> Result<Box<dyn ObjectReader>, StorageError>;
    async fn remove(&self, key: &Key) -> Result<(), StorageError>;
    /// Renames without touching the content (the header keeps its object id).
    async fn rename(&self, from: &Key, to: &Key) -> Result<(), StorageError>;
    async fn mkdir(&self, key: &Key) -> Result<(), StorageError>;
    async fn rmdir(&self, key: &Key) -> Result<(), StorageError>;
}

#[async_trait]
pub trait Upload: Send {
    /// Appends sealed bytes. Owned, so a store that batches them (S3 parts) keeps the buffers
    /// instead of copying them.
    async fn write(&mut self, sealed: bytes::Bytes) -> Result<(), StorageError>;
    /// Makes the object durable and visible; returns its sealed size.
    async fn commit(self: Box<Self>) -> Result<u64, StorageError>;
    /// Discards everything written. Dropping an upload aborts it too.
    async fn abort(self: Box<Self>);
}

#[async_trait]
pub trait ObjectReader: Send {
    fn sealed_len(&self) -> u64;
    /// Reads up to `len` bytes at `offset` (fewer only at the end of the object).
    async fn read_at(&mut self, offset: u64, len: usize) -> Result<Vec<u8>, StorageError>;
}

/// Keys are plain `/`-joined names: no empty, `.`, `..` or NUL segments, no leading `/`.
/// Front ends already normalise paths; this is the store's own line of defence.
pub fn check_key(key: &Key) -> Result<(), StorageError> {
    if key.is_empty() {
        return Ok(());
    }
    let bad = key.starts_with('/')
        || key.contains('\0')
        || key
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..");
    if bad {
        Err(StorageError::InvalidKey(key.chars().take(200).collect()))
    } else {
        Ok(())
    }
}
