//! The use-case layer: the one room that brings policy, crypto, keys and storage together.
//! Front ends hand it authenticated principals and virtual paths; it routes, decides, seals,
//! stores, and answers with plaintext views (sizes, bytes) — never with storage details.

mod auth_record;
pub use auth_record::{
    CERTIFICATE_METHOD, CLIENT_CERTIFICATE_METHOD, CertificateAttempt, ClientCertificateAttempt,
};
mod buffers;
mod decide;
pub mod download;
mod handles;
mod health;
mod in_flight;
mod listing;
mod namespace;
mod object_keys;
pub mod path;
mod reloads;
mod reorder;
mod startup;
pub mod upload;
mod view;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use ring::rand::SecureRandom;
use russh::keys::{Certificate, PublicKey};
use zeroize::Zeroizing;

use crate::audit::{AuditEvent, AuditLog, AuthThrottle};
use crate::auth::{Account, SessionInfo, SessionLimits, Users};
use crate::budget::MemoryBudget;
use crate::config::{Config, DestinationKind, Permissions};
use crate::crypto::{Header, Sealer};
use crate::keys::KeyringStore;
use crate::policy::{Classification, PolicyStore};
use crate::storage::fs::FsDestination;
use crate::storage::s3::{Hooks, JournalError, Pending, S3Destination, StateChange, UploadJournal};
use crate::storage::{Destination, EntryKind, ObjectMeta, Publish, StorageError};

pub use crate::auth::{
    AuthGuard, CertificateInfo, CertificateRefusal, ClientCertificate, ClientCertificateRefusal,
    Method, SessionLimitReached, SessionSlot, Verdict,
};
use decide::Operation;
pub use download::DownloadHandle;
pub use handles::{HandleLimits, HandlePermit};
pub use health::HealthCheck;
pub use in_flight::InFlightSnapshot;
pub use listing::{DirListing, ListingSizes};
pub use path::{PathError, VirtualPath};
pub use upload::UploadHandle;
pub use view::preview;

/// Bytes read to find an object's header (the format's maximum header is well below this).
const HEADER_PROBE: usize = 4096;
const _: () = assert!(HEADER_PROBE >= crate::crypto::HEADER_MAX_LEN);

/// Who is asking: established by authentication, never by the client's words.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant: String,
    pub user: String,
    /// The front end the session came through, named in every transfer record.
    pub protocol: Protocol,
    permissions: Permissions,
}

impl Principal {
    /// The same login, through another front end than SFTP (the default).
    pub fn over(self, protocol: Protocol) -> Principal {
        Principal { protocol, ..self }
    }
}

impl From<Account> for Principal {
    fn from(a: Account) -> Principal {
        Principal {
            tenant: a.tenant().to_string(),
            user: a.user().to_string(),
            protocol: Protocol::Sftp,
            permissions: a.permissions(),
        }
    }
}

/// A protocol front end, as audit records name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Sftp,
    Ftps,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Sftp => "sftp",
            Protocol::Ftps => "ftps",
        }
    }
}

/// What went wrong, sorted by what a protocol front end should answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransferError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Failure(String),
}

impl From<StorageError> for TransferError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound => TransferError::NotFound("no such file or directory".into()),
            StorageError::InvalidKey(_) => TransferError::PermissionDenied("invalid path".into()),
            StorageError::WrongGrant { .. } => {
                TransferError::PermissionDenied("transfer not granted for this destination".into())
            }
            StorageError::Quarantined(reason) => TransferError::PermissionDenied(format!(
                "the destination is quarantined, so nothing is sent to it: {reason}"
            )),
            // The store's own words (endpoints, request ids) stay in the logs and the audit trail.
            StorageError::Backend { op, .. } => TransferError::Failure(format!(
                "the storage service failed ({op}); nothing was stored, try again later"
            )),
            other => TransferError::Failure(other.to_string()),
        }
    }
}

impl From<PathError> for TransferError {
    fn from(e: PathError) -> Self {
        TransferError::PermissionDenied(e.to_string())
    }
}

/// How an authentication attempt ended, as its audit record says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    Accepted,
    Rejected,
    /// Valid credentials, but the user has all the sessions allowed.
    SessionLimit,
    /// Refused unheard: the source or user is banned after repeated failures.
    Banned,
}

impl AuthOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthOutcome::Accepted => "accepted",
            AuthOutcome::Rejected => "rejected",
            AuthOutcome::SessionLimit => "refused: session limit",
            AuthOutcome::Banned => "refused: banned",
        }
    }
}

/// How a client opens a file for writing (SFTP pflags, protocol-neutral).
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteMode {
    pub create: bool,
    pub truncate: bool,
    pub exclusive: bool,
    pub append: bool,
}

/// A directory entry or stat result, in plaintext terms.
#[derive(Debug, Clone)]
pub struct FileInfo {
    pub name: String,
    pub is_dir: bool,
    /// Plaintext bytes (what the client uploaded), not the sealed size.
    pub size: u64,
    pub modified: SystemTime,
}

struct Route {
    destination: Arc<dyn Destination>,
    prefix: String,
    classification: Option<Classification>,
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("destination `{name}`: {source}")]
    Destination { name: String, source: StorageError },
    #[error("tenant `{tenant}` has no keys in the keyring; run `eugate keys add-tenant {tenant}`")]
    NoKeys { tenant: String },
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyError),
}

/// The gateway: configuration turned into live routes, plus keyring and policy store.
pub struct Gateway {
    routes: HashMap<String, Route>,
    users: Users,
    /// Failed logins, counted across protocols.
    guard: AuthGuard,
    /// Logged-in sessions per user, counted across protocols.
    sessions: Arc<SessionLimits>,
    /// The keyring in force (swapped by reloads; each transfer copies the key it needs).
    keys: Arc<KeyringStore>,
    /// Hold-your-own-key tenants' providers: their objects' keys are wrapped there.
    external: Arc<crate::keys::ExternalKeys>,
    policy: Arc<PolicyStore>,
    /// The last refused policy reload, for `/readyz`.
    policy_reloads: Arc<reloads::PolicyReloads>,
    audit: Arc<AuditLog>,
    /// Keeps refused logins from flooding `audit` (one record per interval per banned source).
    auth_throttle: Arc<AuthThrottle>,
    reorder: reorder::ReorderLimits,
    /// `reorder.budget`, which open directory listings share with held writes.
    held_budget: MemoryBudget,
    /// What SSH channels hold received and not yet consumed (see `frontend::sftp::inflow`).
    inflow_budget: MemoryBudget,
    /// How a listing learns plaintext sizes (`storage.legacy_objects`).
    listing_sizes: ListingSizes,
    handles: HandleLimits,
    uploads: Arc<in_flight::InFlight>,
    buffers: buffers::BufferPool,
    /// Every configured destination (for readiness and the state gauge).
    destinations: Vec<Arc<dyn Destination>>,
    /// The budget for every upload's part buffers (its use is a gauge).
    budget: MemoryBudget,
    metrics: Arc<crate::admin::Metrics>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("tenants", &self.routes.keys().collect::<Vec<_>>())
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// The brute-force guard every front end consults before checking a credential.
    pub fn guard(&self) -> &AuthGuard {
        &self.guard
    }

    /// The share of the memory budget that data received and not yet consumed draws on.
    pub fn inflow_budget(&self) -> &MemoryBudget {
        &self.inflow_budget
    }

    /// Takes one of the user's session slots (whatever the protocol), held until dropped; the
    /// session's start and end are logged with `source`, the client's address.
    pub fn open_session(
        &self,
        who: &Principal,
        source: Option<IpAddr>,
    ) -> Result<SessionSlot, SessionLimitReached> {
        self.sessions.open_as(SessionInfo {
            user: who.user.clone(),
            tenant: who.tenant.clone(),
            protocol: who.protocol.as_str(),
            source,
        })
    }

    /// Whether `user` exists and may log in with this public key.
    pub fn authenticate_key(&self, user: &str, key: &PublicKey) -> Option<Principal> {
        self.users.by_key(user, key).map(Principal::from)
    }

    /// Whether `user` has a password set (so that a client is offered the method).
    pub fn has_password(&self, user: &str) -> bool {
        self.users.has_password(user)
    }

    /// Verifies a password against the user's argon2id hash (constant-time inside argon2).
    /// Unknown users cost the same work, so timing does not reveal which names exist.
    pub async fn authenticate_password(
        &self,
        user: &str,
        password: Zeroizing<String>,
    ) -> Option<Principal> {
        self.users
            .by_password(user, password)
            .await
            .map(Principal::from)
    }

    /// Whether OpenSSH user certificates can log anyone in (`[auth] user_ca_keys` is set).
    pub fn accepts_certificates(&self) -> bool {
        self.users.trusts_certificates()
    }

    /// Checks an OpenSSH user certificate whose key the client has proved it holds, from
    /// `client`. What the certificate says of itself comes back either way, for the audit.
    pub fn authenticate_certificate(
        &self,
        user: &str,
        cert: &Certificate,
        client: Option<IpAddr>,
    ) -> (CertificateInfo, Result<Principal, CertificateRefusal>) {
        let info = CertificateInfo::of(cert);
        let result = self
            .users
            .by_certificate(user, cert, client, SystemTime::now())
            .map(Principal::from);
        (info, result)
    }

    /// Maps an FTPS client certificate (verified by TLS against `[ftps] client_ca`) to `user`.
    pub fn authenticate_client_certificate(
        &self,
        user: &str,
        cert: &ClientCertificate,
    ) -> Result<Principal, ClientCertificateRefusal> {
        self.users
            .by_client_certificate(user, cert)
            .map(Principal::from)
    }

    /// Uploads not yet committed or aborted (for graceful shutdown).
    pub fn uploads_in_flight(&self) -> usize {
        self.uploads.count()
    }

    /// Waits until every upload has committed or aborted.
    pub async fn wait_uploads_idle(&self) {
        self.uploads.wait_idle().await;
    }

    /// Starts a graceful shutdown: from now on new uploads are refused. Returns the counts at
    /// this instant, to compare with [`Gateway::upload_counts`] when the shutdown ends.
    pub fn begin_drain(&self) -> InFlightSnapshot {
        self.uploads.start_draining();
        self.uploads.snapshot()
    }

    /// Uploads running now, and committed / aborted since the gateway started.
    pub fn upload_counts(&self) -> InFlightSnapshot {
        self.uploads.snapshot()
    }

    fn route(&self, who: &Principal) -> Result<&Route, TransferError> {
        self.routes
            .get(&who.tenant)
            .ok_or_else(|| TransferError::PermissionDenied("tenant has no route".into()))
    }

    fn key_of(route: &Route, path: &VirtualPath) -> String {
        let rel = path.relative();
        let prefix = route.prefix.trim_end_matches('/');
        match (prefix.is_empty(), rel.is_empty()) {
            (true, _) => rel,
            (false, true) => prefix.to_string(),
            (false, false) => format!("{prefix}/{rel}"),
        }
    }

    fn need(who: &Principal, ok: bool, what: &str) -> Result<(), TransferError> {
        if ok {
            Ok(())
        } else {
            Err(TransferError::PermissionDenied(format!(
                "user `{}` may not {what}",
                who.user
            )))
        }
    }

    /// Starts an upload. Only a policy allow yields a `Grant`, and only a `Grant` opens storage.
    pub async fn open_upload(
        &self,
        who: &Principal,
        path: &VirtualPath,
        mode: WriteMode,
    ) -> Result<UploadHandle, TransferError> {
        Self::need(who, who.permissions.write, "write")?;
        if path.is_root() {
            return Err(TransferError::Failure("cannot write to a directory".into()));
        }
        if mode.append {
            return Err(TransferError::Unsupported(
                "append is not supported: objects are sealed once; upload the whole file again"
                    .into(),
            ));
        }
        if self.uploads.draining() {
            return Err(TransferError::Failure(
                "the gateway is shutting down and accepts no new uploads; try again in a minute"
                    .into(),
            ));
        }
        let route = self.route(who)?;
        let key = Self::key_of(route, path);
        let dest = &route.destination;
        let grant = self.decide(who, route, &key, Operation::Upload)?;

        let mut replaces_from_zero = false;
        match dest.stat(&key).await {
            Ok(e) if e.kind == EntryKind::Dir => {
                return Err(TransferError::Failure(format!("{path} is a directory")));
            }
            Ok(_) if mode.exclusive => {
                return Err(TransferError::Failure(format!("{path} already exists")));
            }
            // Opening an existing file without TRUNCATE is how both `reput` (resume) and scp
            // (in-place overwrite from offset 0) start; the first write tells them apart.
            Ok(_) if !mode.truncate => replaces_from_zero = true,
            Ok(_) => {}
            Err(StorageError::NotFound) if !mode.create => {
                return Err(TransferError::NotFound(format!("{path} does not exist")));
            }
            Err(StorageError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }

        let mut object_id = [0u8; 16];
        ring::rand::SystemRandom::new()
            .fill(&mut object_id)
            .map_err(|_| TransferError::Failure("random generator failed".into()))?;
        let (ctx, kek) = match self.upload_key(&who.tenant, object_id).await {
            Ok(k) => k,
            Err(e) => {
                self.audit_refused_open(who, dest.name(), &key, &e);
                return Err(e);
            }
        };
        let sealer = Sealer::new(&kek, &ctx).map_err(|e| {
            tracing::error!(error = %e, "sealer");
            TransferError::Failure("encryption setup failed".into())
        })?;
        drop(kek);
        let publish = if mode.exclusive {
            Publish::NoClobber
        } else {
            Publish::Replace
        };
        let meta = ObjectMeta {
            format_version: sealer.version(),
            tenant: who.tenant.clone(),
            key_id: ctx.key_id.clone(),
            key_version: ctx.key_version,
            object_id: hex::encode(object_id),
        };
        let record = upload::UploadRecord {
            log: self.audit.clone(),
            store: dest.clone(),
            tenant: who.tenant.clone(),
            user: who.user.clone(),
            protocol: who.protocol,
            destination: dest.name().to_string(),
            object: key.to_string(),
            object_id: hex::encode(object_id),
            key_id: ctx.key_id.clone(),
            key_version: ctx.key_version,
            policies: grant.policies().to_vec(),
            bundle: grant.bundle_hash().to_string(),
            metrics: self.metrics.clone(),
            opened: std::time::Instant::now(),
        };
        let upload = dest.begin(grant, &key, publish, meta).await?;
        self.metrics
            .upload_started(who.protocol, &who.tenant, dest.name());
        tracing::info!(
            event = "upload",
            outcome = "started",
            protocol = who.protocol.as_str(),
            tenant = %who.tenant,
            user = %who.user,
            destination = %dest.name(),
            object_id = %hex::encode(object_id),
            "upload started"
        );
        Ok(UploadHandle::start(
            sealer,
            self.buffers.clone(),
            upload,
            record,
            self.reorder.clone(),
            path.to_string(),
            self.uploads.clone(),
            replaces_from_zero,
        ))
    }

    /// Opens a stored object for reading; only the segments a read needs are decrypted.
    pub async fn open_download(
        &self,
        who: &Principal,
        path: &VirtualPath,
    ) -> Result<DownloadHandle, TransferError> {
        Self::need(who, who.permissions.read, "read")?;
        let route = self.route(who)?;
        let key = Self::key_of(route, path);
        let mut reader = route.destination.open(&key).await?;
        let header = read_header(reader.as_mut()).await?;
        let ctx = header.context();
        if ctx.tenant != who.tenant {
            // Belongs to another tenant: never decrypt it for this one.
            tracing::warn!(tenant = %who.tenant, "object sealed for another tenant");
            return Err(TransferError::PermissionDenied(
                "object belongs to another tenant".into(),
            ));
        }
        let kek = self.download_key(ctx).await?;
        let key = header
            .unlock(&kek)
            .map_err(|e| TransferError::Failure(format!("object failed verification: {e}")))?;
        let bytes_out =
            self.metrics
                .download_started(who.protocol, &who.tenant, route.destination.name());
        DownloadHandle::new(reader, header.encoded_len() as u64, key, bytes_out)
    }

    pub async fn stat(
        &self,
        who: &Principal,
        path: &VirtualPath,
    ) -> Result<FileInfo, TransferError> {
        let route = self.route(who)?;
        let key = Self::key_of(route, path);
        let e = route.destination.stat(&key).await?;
        let name = path.file_name().unwrap_or("/").to_string();
        entry_info(route.destination.as_ref(), &key, name, e).await
    }

    /// Opens a directory for listing, page by page. The entries are read now and held
    /// compactly (charged to the memory budget) until the listing is dropped.
    pub async fn open_dir(
        &self,
        who: &Principal,
        path: &VirtualPath,
    ) -> Result<DirListing, TransferError> {
        Self::need(who, who.permissions.read, "list directories")?;
        let route = self.route(who)?;
        let dir = Self::key_of(route, path);
        DirListing::open(
            route.destination.clone(),
            dir,
            &self.held_budget,
            self.listing_sizes,
        )
        .await
    }

    /// A slot for one more open file or directory of `who`: counted per user across all of
    /// their sessions and process-wide, and given back when the permit drops.
    pub fn open_handle(&self, who: &Principal) -> Result<HandlePermit, TransferError> {
        self.handles.acquire(&who.user)
    }
}

/// What a listing or stat shows of a store entry: plaintext size (from the object's header).
async fn entry_info(
    destination: &dyn Destination,
    key: &str,
    name: String,
    e: crate::storage::Entry,
) -> Result<FileInfo, TransferError> {
    let size = match e.kind {
        EntryKind::Dir => 0,
        EntryKind::File => {
            let mut reader = destination.open(key).await?;
            let header = read_header(reader.as_mut()).await?;
            crate::crypto::plaintext_len(header.encoded_len() as u64, e.sealed_len)
                .map_err(|e| TransferError::Failure(format!("damaged object: {e}")))?
        }
    };
    Ok(FileInfo {
        name,
        is_dir: e.kind == EntryKind::Dir,
        size,
        modified: e.modified,
    })
}

async fn read_header(
    reader: &mut dyn crate::storage::ObjectReader,
) -> Result<Header, TransferError> {
    let probe = reader.read_at(0, HEADER_PROBE).await?;
    Header::parse(&probe).map_err(|e| TransferError::Failure(format!("not an eugate object: {e}")))
}
