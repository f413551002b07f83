//! An S3 bucket as a [`Destination`]: its location is probed at startup and every
//! `verify_interval`, and a bucket that does not report the configured region (or cannot be
//! asked) is quarantined: no upload begins, nothing is written. Failed aborts are retried in the
//! background, and multipart uploads an earlier run left behind are aborted at startup
//! (`cleanup`); downloads read through `reader`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

mod cleanup;
mod reader;

use super::location::{Observed, Verdict, assess};
use super::{MemoryBudget, S3Error, S3Reader, S3Writer, Target, ops, probe_region};
use crate::config::{S3Credentials, S3DestinationConfig, SELF_HOSTED, StorageConfig};
use crate::policy::{Evidence, Grant, Location};
use crate::storage::{
    Destination, Entry, EntryKind, Key, ListPage, ObjectMeta, ObjectReader, Publish, StorageError,
    Upload, Verification, VerificationState, check_grant, check_key,
};
use reader::WindowReader;

/// How often failed aborts are retried, and how soon a quarantined bucket is probed again.
const ORPHAN_RETRY: Duration = Duration::from_secs(2);
const QUARANTINE_RETRY: Duration = Duration::from_secs(30);

/// A change of a destination's verified state, for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateChange {
    pub destination: String,
    pub state: VerificationState,
    pub observed_region: Option<String>,
    pub detail: String,
}

/// What the destination needs from the rest of the gateway, without depending on it.
#[derive(Clone)]
pub struct Hooks {
    /// Whether `provider:region` is in the current residency catalogue.
    pub catalogued: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    /// Told about the first probe's outcome and every later change of state.
    pub on_change: Arc<dyn Fn(&StateChange) + Send + Sync>,
}

struct Inner {
    name: String,
    cfg: S3DestinationConfig,
    target: Arc<Target>,
    hooks: Hooks,
    state: RwLock<Verification>,
    /// When `verify` last asked the store.
    probed_at: RwLock<Option<SystemTime>>,
}

pub struct S3Destination {
    inner: Arc<Inner>,
    budget: MemoryBudget,
    /// The share of `budget` downloads' windows may hold ([`super::read_ahead_share_bytes`]).
    read_ahead: MemoryBudget,
    parts_in_flight: usize,
    /// Tenant roots: S3 has no directories, and nothing is written before a transfer is allowed.
    roots: RwLock<HashSet<String>>,
    /// Renames of this gateway, serialised per key (stores that ignore If-None-Match).
    renames: ops::RenameLocks,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Drop for S3Destination {
    fn drop(&mut self) {
        if let Ok(tasks) = self.tasks.lock() {
            for t in tasks.iter() {
                t.abort();
            }
        }
    }
}

impl S3Destination {
    /// Builds the client (a missing credential fails here), probes the bucket's region once, and
    /// starts the background re-verification and orphan-abort tasks.
    pub async fn open(
        name: &str,
        cfg: &S3DestinationConfig,
        storage: &StorageConfig,
        budget: MemoryBudget,
        hooks: Hooks,
        journal: Option<Arc<super::UploadJournal>>,
    ) -> Result<S3Destination, S3Error> {
        let settings = super::S3Settings {
            endpoint: cfg.endpoint.clone(),
            bucket: cfg.bucket.clone(),
            provider: cfg.provider.clone(),
            region: cfg.region.clone(),
            path_style: cfg.path_style,
            credentials: match &cfg.credentials {
                S3Credentials::Env { prefix } => super::CredentialSource::Env {
                    access_key_id_var: format!("{prefix}_ACCESS_KEY_ID"),
                    secret_access_key_var: format!("{prefix}_SECRET_ACCESS_KEY"),
                },
                S3Credentials::File(p) => super::CredentialSource::File(p.clone()),
                S3Credentials::AwsChain => super::CredentialSource::DefaultChain,
            },
            ca_bundle: cfg.ca_bundle.clone(),
            request_timeout: storage.request_timeout,
            connect_timeout: storage.connect_timeout,
        };
        let client = super::build_client(&settings).await?;
        if !cfg.tls() {
            tracing::warn!(
                destination = name,
                "S3 endpoint is plain HTTP: use it only on a trusted network"
            );
        }
        let inner = Arc::new(Inner {
            name: name.to_string(),
            cfg: cfg.clone(),
            target: Arc::new(Target {
                client,
                bucket: cfg.bucket.clone(),
                prefix: String::new(),
                tls: cfg.tls(),
                orphans: Arc::default(),
                active: Arc::default(),
                name: name.to_string(),
                journal,
            }),
            hooks,
            state: RwLock::new(Verification::Quarantined {
                reason: "not probed yet".into(),
                observed_region: None,
            }),
            probed_at: RwLock::new(None),
        });
        inner.verify(true).await;
        let refresh = {
            let inner = inner.clone();
            tokio::spawn(async move {
                loop {
                    let wait = match inner.verification() {
                        Verification::Verified { .. } => inner.cfg.verify_interval,
                        _ => inner.cfg.verify_interval.min(QUARANTINE_RETRY),
                    };
                    tokio::time::sleep(wait).await;
                    inner.verify(false).await;
                }
            })
        };
        let orphans = {
            let inner = inner.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(ORPHAN_RETRY).await;
                    inner.retry_orphans().await;
                }
            })
        };
        Ok(S3Destination {
            inner,
            read_ahead: budget.share(super::read_ahead_share_bytes(budget.total_bytes())),
            budget,
            parts_in_flight: storage.parts_in_flight,
            roots: RwLock::default(),
            renames: ops::RenameLocks::default(),
            tasks: Mutex::new(vec![refresh, orphans]),
        })
    }

    /// Probes now (as the refresh task does); returns the new state.
    pub async fn reverify(&self) -> Verification {
        self.inner.verify(false).await;
        self.inner.verification()
    }

    fn is_root(&self, key: &str) -> bool {
        key.is_empty() || self.roots.read().map(|r| r.contains(key)).unwrap_or(false)
    }

    /// An empty listing is also what a missing prefix or a file's name gives: says which.
    async fn check_listed_dir(&self, dir: &str) -> Result<(), StorageError> {
        if self.is_root(dir) {
            return Ok(());
        }
        match self.stat(dir).await?.kind {
            EntryKind::Dir => Ok(()),
            EntryKind::File => Err(StorageError::NotDir),
        }
    }

    fn require_verified(&self) -> Result<(), StorageError> {
        match self.inner.verification() {
            Verification::Verified { .. } | Verification::Declared => Ok(()),
            Verification::Quarantined { reason, .. } => Err(StorageError::Quarantined(reason)),
        }
    }
}

impl Inner {
    fn verification(&self) -> Verification {
        self.state
            .read()
            .map(|s| s.clone())
            .unwrap_or(Verification::Quarantined {
                reason: "internal state lock poisoned".into(),
                observed_region: None,
            })
    }

    async fn verify(&self, first: bool) {
        let probed = probe_region(&self.target.client, &self.target.bucket).await;
        if let Ok(mut at) = self.probed_at.write() {
            *at = Some(SystemTime::now());
        }
        let (observed, probe_error) = match probed {
            Ok(o) => (Some(o), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let next = self.judge(observed.as_ref(), probe_error);
        let changed = {
            let Ok(mut state) = self.state.write() else {
                return;
            };
            let changed = *state != next;
            *state = next.clone();
            changed
        };
        if first || changed {
            let (observed_region, detail) = match &next {
                Verification::Verified {
                    observed_region,
                    source,
                } => (
                    Some(observed_region.clone()),
                    format!(
                        "bucket {} reports {observed_region} via {source}",
                        self.cfg.bucket
                    ),
                ),
                Verification::Quarantined {
                    reason,
                    observed_region,
                } => (observed_region.clone(), reason.clone()),
                Verification::Declared => (None, String::new()),
            };
            let state = next.state();
            if state == VerificationState::Quarantined {
                tracing::error!(destination = %self.name, reason = %detail, "destination quarantined");
            } else {
                tracing::info!(destination = %self.name, %detail, "destination location verified");
            }
            (self.hooks.on_change)(&StateChange {
                destination: self.name.clone(),
                state,
                observed_region,
                detail,
            });
        }
    }

    fn judge(&self, observed: Option<&Observed>, probe_error: Option<String>) -> Verification {
        let cfg = &self.cfg;
        let self_hosted = cfg.provider == SELF_HOSTED;
        let known = self_hosted
            || observed.is_some_and(|o| {
                (self.hooks.catalogued)(&format!("{}:{}", cfg.provider, o.region))
            });
        let host = cfg.endpoint_host();
        match assess(&cfg.provider, &cfg.region, observed, host.as_deref(), known) {
            Verdict::Verified { region } => Verification::Verified {
                observed_region: region,
                source: observed.map(|o| o.source.to_string()).unwrap_or_default(),
            },
            Verdict::Quarantined { reason } => Verification::Quarantined {
                reason: match probe_error {
                    Some(e) => format!(
                        "the bucket's region could not be read ({e}); expected {}",
                        cfg.region
                    ),
                    None => reason,
                },
                observed_region: observed.map(|o| o.region.clone()),
            },
        }
    }
}

impl From<S3Error> for StorageError {
    fn from(e: S3Error) -> Self {
        match e {
            S3Error::NotFound { .. } => StorageError::NotFound,
            S3Error::AlreadyExists => StorageError::AlreadyExists,
            S3Error::NotEmpty => StorageError::NotEmpty,
            S3Error::TooLarge => {
                StorageError::TooLarge("more than 10,000 parts; S3 objects end at 5 TiB".into())
            }
            S3Error::Request { op, detail } => StorageError::Backend { op, detail },
            S3Error::Config(detail) => StorageError::Backend {
                op: "configuration",
                detail,
            },
            S3Error::Internal(detail) => StorageError::Backend {
                op: "internal",
                detail,
            },
            S3Error::Unanswered { op, detail } => StorageError::Backend { op, detail },
            S3Error::CommitUnknown(detail) => StorageError::CommitUnknown(detail),
            S3Error::Journal(e) => StorageError::Backend {
                op: "upload journal",
                detail: e.to_string(),
            },
        }
    }
}

fn entry(e: ops::S3Entry) -> Entry {
    Entry {
        name: e.name,
        kind: if e.is_dir {
            EntryKind::Dir
        } else {
            EntryKind::File
        },
        sealed_len: e.size,
        modified: e.modified.unwrap_or(SystemTime::UNIX_EPOCH),
    }
}

fn dir_entry(key: &str) -> Entry {
    Entry {
        name: key.rsplit('/').next().unwrap_or(key).to_string(),
        kind: EntryKind::Dir,
        sealed_len: 0,
        modified: SystemTime::UNIX_EPOCH,
    }
}

#[async_trait]
impl Destination for S3Destination {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn location(&self) -> (Location, Evidence) {
        let cfg = &self.inner.cfg;
        match self.inner.verification() {
            Verification::Quarantined { .. } => (Location::Unknown, Evidence::Unverified),
            _ if cfg.provider == SELF_HOSTED => (
                Location::Declared(cfg.country.iter().cloned().collect()),
                Evidence::Attested,
            ),
            _ => (
                Location::Region(format!("{}:{}", cfg.provider, cfg.region)),
                Evidence::Probed,
            ),
        }
    }

    fn verification(&self) -> Verification {
        self.inner.verification()
    }

    fn operator_country(&self) -> Option<String> {
        self.inner.cfg.operator_country.clone()
    }

    fn configured_location(&self) -> Location {
        let cfg = &self.inner.cfg;
        if cfg.provider == SELF_HOSTED {
            Location::Declared(cfg.country.iter().cloned().collect())
        } else {
            Location::Region(format!("{}:{}", cfg.provider, cfg.region))
        }
    }

    fn last_probe(&self) -> Option<SystemTime> {
        self.inner.probed_at.read().ok().and_then(|t| *t)
    }

    async fn ensure_root(&self, prefix: &str) -> Result<(), StorageError> {
        check_key(prefix)?;
        if let Ok(mut roots) = self.roots.write() {
            // Every ancestor too, so that `cd ..` inside a nested root does not fail.
            let mut acc = String::new();
            for seg in prefix.split('/').filter(|s| !s.is_empty()) {
                if !acc.is_empty() {
                    acc.push('/');
                }
                acc.push_str(seg);
                roots.insert(acc.clone());
            }
        }
        Ok(())
    }

    async fn begin(
        &self,
        grant: Grant,
        key: &Key,
        publish: Publish,
        meta: ObjectMeta,
    ) -> Result<Box<dyn Upload>, StorageError> {
        check_grant(&grant, &self.inner.name)?;
        check_key(key)?;
        if key.is_empty() || self.is_root(key) {
            return Err(StorageError::IsDir);
        }
        self.require_verified()?;
        Ok(Box::new(S3Upload {
            writer: S3Writer::new(
                self.inner.target.clone(),
                key.to_string(),
                publish == Publish::NoClobber,
                self.budget.clone(),
                self.parts_in_flight,
                meta,
            ),
            destination: self.inner.clone(),
        }))
    }

    async fn stat(&self, key: &Key) -> Result<Entry, StorageError> {
        check_key(key)?;
        if self.is_root(key) {
            return Ok(dir_entry(key));
        }
        match ops::stat(&self.inner.target, key).await {
            Ok(e) => Ok(entry(e)),
            Err(S3Error::NotFound { .. }) => {
                if ops::dir_exists(&self.inner.target, key).await? {
                    Ok(dir_entry(key))
                } else {
                    Err(StorageError::NotFound)
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn list(&self, dir: &Key) -> Result<Vec<Entry>, StorageError> {
        check_key(dir)?;
        let entries = ops::list(&self.inner.target, dir).await?;
        if entries.is_empty() {
            self.check_listed_dir(dir).await?;
        }
        Ok(entries.into_iter().map(entry).collect())
    }

    async fn list_page(&self, dir: &Key, from: Option<String>) -> Result<ListPage, StorageError> {
        check_key(dir)?;
        let first = from.is_none();
        let (entries, next) = ops::list_page(&self.inner.target, dir, from).await?;
        if first && entries.is_empty() && next.is_none() {
            self.check_listed_dir(dir).await?;
        }
        Ok(ListPage {
            entries: entries.into_iter().map(entry).collect(),
            next,
        })
    }

    async fn open(&self, key: &Key) -> Result<Box<dyn ObjectReader>, StorageError> {
        check_key(key)?;
        let reader = S3Reader::open(&self.inner.target, key).await?;
        Ok(Box::new(WindowReader::new(reader, self.read_ahead.clone())))
    }

    async fn remove(&self, key: &Key) -> Result<(), StorageError> {
        check_key(key)?;
        if self.is_root(key) {
            return Err(StorageError::IsDir);
        }
        Ok(ops::remove(&self.inner.target, key).await?)
    }

    async fn rename(&self, grant: &Grant, from: &Key, to: &Key) -> Result<(), StorageError> {
        check_grant(grant, &self.inner.name)?;
        check_key(from)?;
        check_key(to)?;
        // A new key is a new name in the bucket: only for a verified bucket.
        self.require_verified()?;
        if self.is_root(from) || self.is_root(to) {
            return Err(StorageError::IsDir);
        }
        // Held until the source is deleted: no other rename of this gateway checks `to` between.
        let _locks = self.renames.lock(from, to).await;
        match ops::stat(&self.inner.target, from).await {
            Ok(_) => {}
            Err(S3Error::NotFound { .. }) if ops::dir_exists(&self.inner.target, from).await? => {
                return Err(StorageError::IsDir);
            }
            Err(e) => return Err(e.into()),
        }
        Ok(ops::rename(&self.inner.target, from, to).await?)
    }

    async fn mkdir(&self, grant: &Grant, key: &Key) -> Result<(), StorageError> {
        check_grant(grant, &self.inner.name)?;
        check_key(key)?;
        // A directory name can itself be personal data: it goes only to a verified bucket.
        self.require_verified()?;
        if self.is_root(key) {
            return Err(StorageError::AlreadyExists);
        }
        match self.stat(key).await {
            Ok(_) => return Err(StorageError::AlreadyExists),
            Err(StorageError::NotFound) => {}
            Err(e) => return Err(e),
        }
        if let Some((parent, _)) = key.rsplit_once('/')
            && self.stat(parent).await?.kind != EntryKind::Dir
        {
            return Err(StorageError::NotDir);
        }
        Ok(ops::mkdir(&self.inner.target, key).await?)
    }

    async fn rmdir(&self, key: &Key) -> Result<(), StorageError> {
        check_key(key)?;
        if self.is_root(key) {
            return Err(StorageError::NotEmpty);
        }
        Ok(ops::rmdir(&self.inner.target, key).await?)
    }
}

struct S3Upload {
    writer: S3Writer,
    destination: Arc<Inner>,
}

impl S3Upload {
    /// A bucket quarantined while an upload runs gets none of its remaining parts.
    fn require_verified(&self) -> Result<(), StorageError> {
        match self.destination.verification() {
            Verification::Verified { .. } | Verification::Declared => Ok(()),
            Verification::Quarantined { reason, .. } => Err(StorageError::Quarantined(reason)),
        }
    }
}

#[async_trait]
impl Upload for S3Upload {
    async fn write(&mut self, sealed: bytes::Bytes) -> Result<(), StorageError> {
        self.require_verified()?;
        Ok(self.writer.write(sealed).await?)
    }

    async fn commit(self: Box<Self>, plaintext_size: u64) -> Result<u64, StorageError> {
        if let Err(e) = self.require_verified() {
            self.writer.abort().await;
            return Err(e);
        }
        let done = self.writer.commit(plaintext_size).await?;
        tracing::debug!(parts = done.parts, checksum = %done.checksum, "S3 object committed");
        Ok(done.sealed_len)
    }

    async fn abort(self: Box<Self>) {
        self.writer.abort().await
    }
}
