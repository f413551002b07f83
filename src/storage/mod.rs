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
    /// The store did not answer whether a commit took effect, and checking afterwards did
    /// not tell either: the object may or may not be visible.
    #[error("the store did not confirm the commit, and checking did not tell: {0}")]
    CommitUnknown(String),
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

/// What a store records beside a sealed object (S3 object metadata), so that an operator can
/// tell whose it is without the keys. Given by the caller: storage never parses the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    pub format_version: u8,
    pub tenant: String,
    pub key_id: String,
    pub key_version: u32,
    /// Hex; also in the sealed header, so that a commit whose answer was lost can be checked.
    pub object_id: String,
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

/// The name of a [`Verification`]'s state, as logs, audit records and `eugate destinations` show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerificationState {
    Declared,
    Verified,
    Quarantined,
}

impl VerificationState {
    pub fn as_str(self) -> &'static str {
        match self {
            VerificationState::Declared => "declared",
            VerificationState::Verified => "verified",
            VerificationState::Quarantined => "quarantined",
        }
    }
}

impl Verification {
    pub fn state(&self) -> VerificationState {
        match self {
            Verification::Declared => VerificationState::Declared,
            Verification::Verified { .. } => VerificationState::Verified,
            Verification::Quarantined { .. } => VerificationState::Quarantined,
        }
    }
}

/// One page of a directory listing, and where the next one starts.
#[derive(Debug, Default)]
pub struct ListPage {
    pub entries: Vec<Entry>,
    /// Where the next page starts, opaque to callers; `None` after the last page.
    pub next: Option<String>,
}

#[async_trait]
pub trait Destination: Send + Sync + 'static {
    /// The config name (also in grants and audit records).
    fn name(&self) -> &str;
    /// The location the policy decides on, with the kind of evidence behind it.
    fn location(&self) -> (Location, Evidence);
    /// A self-hosted store's operator country, when configured apart from its country: the
    /// jurisdiction the policy decides on (`None`: the declared country, or providers.toml).
    fn operator_country(&self) -> Option<String> {
        None
    }
    /// Whether the location was verified; a quarantined destination gets no data at all.
    fn verification(&self) -> Verification {
        Verification::Declared
    }
    /// Where the configuration says the destination is (what a probe is checked against),
    /// whatever its verification.
    fn configured_location(&self) -> Location {
        self.location().0
    }
    /// When the location was last probed; `None` for a store nobody can probe.
    fn last_probe(&self) -> Option<SystemTime> {
        None
    }
    /// Makes the tenant root `prefix` (`a/b`, no trailing `/`) exist. The operator chose it
    /// in the config, not a client. Stores with real directories create it; S3 only
    /// remembers it, so nothing is written to a bucket before a transfer is allowed.
    async fn ensure_root(&self, prefix: &str) -> Result<(), StorageError>;
    /// Starts an upload to `key`; nothing is visible under `key` until [`Upload::commit`].
    async fn begin(
        &self,
        grant: Grant,
        key: &Key,
        publish: Publish,
        meta: ObjectMeta,
    ) -> Result<Box<dyn Upload>, StorageError>;
    async fn stat(&self, key: &Key) -> Result<Entry, StorageError>;
    /// Entries directly below `dir` ("" is the destination root); uploads in progress are hidden.
    async fn list(&self, dir: &Key) -> Result<Vec<Entry>, StorageError>;
    /// One page of `dir`'s entries, from where the previous page's `next` says (`None`: the
    /// start), so that a listing holds one page at a time. A store that reads a directory in
    /// one go hands it out as one page.
    async fn list_page(&self, dir: &Key, from: Option<String>) -> Result<ListPage, StorageError> {
        if from.is_some() {
            return Ok(ListPage::default());
        }
        Ok(ListPage {
            entries: self.list(dir).await?,
            next: None,
        })
    }
    async fn open(&self, key: &Key) -> Result<Box<dyn ObjectReader>, StorageError>;
    async fn remove(&self, key: &Key) -> Result<(), StorageError>;
    /// Renames without touching the content (the header keeps its object id); never
    /// replaces an existing `to`. A new name is data too: only with a [`Grant`] for this store.
    async fn rename(&self, grant: &Grant, from: &Key, to: &Key) -> Result<(), StorageError>;
    /// A directory name can be personal data: only with a [`Grant`] for this store.
    async fn mkdir(&self, grant: &Grant, key: &Key) -> Result<(), StorageError>;
    async fn rmdir(&self, key: &Key) -> Result<(), StorageError>;
}

#[async_trait]
pub trait Upload: Send {
    /// Appends sealed bytes. Owned, so a store that batches them (S3 parts) keeps the buffers
    /// instead of copying them.
    async fn write(&mut self, sealed: bytes::Bytes) -> Result<(), StorageError>;
    /// Makes the object durable and visible; returns its sealed size. `plaintext_size` is
    /// recorded where the store keeps metadata at commit time. `Ok` means stored, an error
    /// means not stored, except [`StorageError::CommitUnknown`]: a store whose answer is
    /// lost checks what happened before it returns.
    async fn commit(self: Box<Self>, plaintext_size: u64) -> Result<u64, StorageError>;
    /// Discards everything written. Dropping an upload aborts it too.
    async fn abort(self: Box<Self>);
}

#[async_trait]
pub trait ObjectReader: Send {
    fn sealed_len(&self) -> u64;
    /// Reads up to `len` bytes at `offset` (fewer only at the end of the object). The bytes
    /// may be a slice of a larger buffer the reader holds: no copy.
    async fn read_at(&mut self, offset: u64, len: usize) -> Result<bytes::Bytes, StorageError>;
}

/// Refuses a grant issued for another destination.
pub(crate) fn check_grant(grant: &Grant, destination: &str) -> Result<(), StorageError> {
    if grant.destination() == destination {
        Ok(())
    } else {
        Err(StorageError::WrongGrant {
            granted: grant.destination().to_string(),
            actual: destination.to_string(),
        })
    }
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
