//! S3-compatible destinations (aws-sdk-s3): client setup, verified bucket location, streaming
//! multipart upload in bounded memory, ranged reads, and the small set of object operations an
//! SFTP front end needs.

mod body;
mod client;
mod destination;
mod journal;
pub mod location;
mod ops;
pub mod parts;
mod probe;
mod spool;
mod writer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub use crate::budget::MemoryBudget;
pub use client::{CredentialSource, S3Settings, build_client};
pub(crate) use client::{chain_credentials, static_credentials};
pub use destination::{Hooks, S3Destination, StateChange};
pub use journal::{JournalError, Pending, UploadJournal};
pub use ops::{S3Entry, S3Reader};
pub use probe::probe_region;
pub use writer::{Committed, S3Writer};

/// The budget one upload needs to move at all: its first part's buffer. Whatever else draws on
/// the shared memory budget must leave at least this much to uploads.
pub const MIN_PART_BUDGET: usize = parts::MIN_PART_SIZE + parts::PART_SLACK;

/// What clients merely hold (writes held ahead of a gap, open directory listings) may use of
/// a memory budget of `total` bytes: half, and never an S3 upload's first part, nor the one
/// unit each of the two other shares holds at least (a share is never empty).
pub fn held_share_bytes(total: usize) -> usize {
    (total / 2).min(
        total
            .saturating_sub(MIN_PART_BUDGET)
            .saturating_sub(2 * crate::budget::UNIT),
    )
}

/// What downloads' windows (the one being read and those fetched ahead) may use of a memory
/// budget of `total` bytes: a quarter, and never what the held share and an upload's first part
/// need (nor the unit the inflow share holds at least), so that uploads always move.
pub fn read_ahead_share_bytes(total: usize) -> usize {
    (total / 4).min(
        total
            .saturating_sub(MIN_PART_BUDGET)
            .saturating_sub(held_share_bytes(total))
            .saturating_sub(crate::budget::UNIT),
    )
}

/// What SSH channels may hold received and not yet consumed, beyond each channel's small
/// allowance, of a memory budget of `total` bytes: a quarter, and never what an upload's first
/// part, the held share and the read-ahead share need, so that uploads always move.
pub fn inflow_share_bytes(total: usize) -> usize {
    (total / 4).min(
        total
            .saturating_sub(MIN_PART_BUDGET)
            .saturating_sub(held_share_bytes(total))
            .saturating_sub(read_ahead_share_bytes(total)),
    )
}

/// Errors from S3 destinations. Messages carry the operation and the store's own words.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("S3 destination configuration: {0}")]
    Config(String),
    #[error("{op} failed: {detail}")]
    Request { op: &'static str, detail: String },
    #[error("{op}: no such object")]
    NotFound { op: &'static str },
    #[error("the object already exists")]
    AlreadyExists,
    #[error("directory is not empty")]
    NotEmpty,
    #[error("the object exceeds the 10,000-part limit of multipart uploads")]
    TooLarge,
    #[error("internal error: {0}")]
    Internal(String),
    /// A commit request got no definite answer (no response, or a server error); the writer
    /// checks the store before it reports anything.
    #[error("{op}: no definite answer: {detail}")]
    Unanswered { op: &'static str, detail: String },
    /// Checking after an unanswered commit did not tell either.
    #[error("commit outcome unknown: {0}")]
    CommitUnknown(String),
    /// The upload could not be written down before it started, so a crash could leave it
    /// behind unnoticed: refused.
    #[error(transparent)]
    Journal(#[from] JournalError),
}

impl S3Error {
    pub(crate) fn request<E>(
        op: &'static str,
        err: aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
    ) -> S3Error
    where
        E: std::error::Error + aws_sdk_s3::error::ProvideErrorMetadata + Send + Sync + 'static,
    {
        if let Some(raw) = err.raw_response()
            && raw.status().as_u16() == 404
        {
            return S3Error::NotFound { op };
        }
        S3Error::Request {
            op,
            detail: describe(&err),
        }
    }
}

impl S3Error {
    /// Like [`S3Error::request`], for a request that publishes an object: without a response,
    /// or with a server error, it may have taken effect, so it is [`S3Error::Unanswered`].
    pub(crate) fn commit<E>(
        op: &'static str,
        err: aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
    ) -> S3Error
    where
        E: std::error::Error + aws_sdk_s3::error::ProvideErrorMetadata + Send + Sync + 'static,
    {
        // A retried CompleteMultipartUpload whose first attempt completed finds no upload:
        // that 404 says nothing about the object, so it is checked like a lost answer.
        let definite = err.raw_response().is_some_and(|r| {
            r.status().is_client_error()
                && !(op == "CompleteMultipartUpload" && r.status().as_u16() == 404)
        });
        if definite {
            S3Error::request(op, err)
        } else {
            S3Error::Unanswered {
                op,
                detail: describe(&err),
            }
        }
    }
}

/// A short account of a failed request: HTTP status, S3 error code and message, or the
/// innermost cause of a connection failure. The SDK's own rendering runs to kilobytes.
pub(crate) fn describe<E>(
    err: &aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> String
where
    E: std::error::Error + aws_sdk_s3::error::ProvideErrorMetadata + Send + Sync + 'static,
{
    use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
    let text = match err {
        SdkError::ServiceError(_) | SdkError::ResponseError(_) => {
            let status = err.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
            match (err.code(), err.message()) {
                (Some(c), Some(m)) => format!("HTTP {status} {c}: {m}"),
                (Some(c), None) => format!("HTTP {status} {c}"),
                _ => format!("HTTP {status}"),
            }
        }
        SdkError::TimeoutError(_) => "no answer within the request timeout".to_string(),
        other => {
            // Walk to the innermost cause ("tcp connect error: Connection refused").
            let mut parts: Vec<String> = Vec::new();
            let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(other);
            while let Some(e) = cur {
                let s = e.to_string();
                if !parts.iter().any(|p| p.contains(&s)) {
                    parts.push(s);
                }
                cur = e.source();
            }
            let tail: Vec<String> = parts.into_iter().rev().take(2).collect();
            tail.into_iter().rev().collect::<Vec<_>>().join(": ")
        }
    };
    text.chars().take(300).collect()
}

/// The `<Region>` element S3 stores put into error bodies (a request signed for the wrong
/// region is answered with the right one).
pub(crate) fn region_in_error_body(
    raw: Option<&aws_smithy_runtime_api::http::Response>,
) -> Option<String> {
    let body = std::str::from_utf8(raw?.body().bytes()?).ok()?;
    let start = body.find("<Region>")? + "<Region>".len();
    let len = body[start..].find("</Region>")?;
    let region = body[start..start + len].trim();
    let ok = !region.is_empty()
        && region.len() <= 64
        && region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| region.to_ascii_lowercase())
}

/// One bucket, as every request needs it.
#[derive(Debug, Clone)]
pub struct Target {
    pub client: aws_sdk_s3::Client,
    pub bucket: String,
    /// Object keys of this destination start with this prefix (may be empty).
    pub prefix: String,
    /// Over TLS, payload signing is skipped (the TLS channel and per-part CRC32C protect the
    /// body, and hashing every byte twice would cost CPU); over plain HTTP it stays on.
    pub tls: bool,
    /// Multipart uploads whose abort failed (store unreachable): retried in the background
    /// until the store confirms, so a failed upload never leaves parts behind.
    pub orphans: Arc<Mutex<Vec<Orphan>>>,
    /// Multipart uploads of this process that are still being written: never swept.
    pub active: Arc<Mutex<std::collections::HashSet<String>>>,
    /// The destination's name, as the upload journal records it.
    pub name: String,
    /// Where this instance writes down the multipart uploads it starts (`None` in tests of
    /// this module that need no restart).
    pub journal: Option<Arc<UploadJournal>>,
}

impl Target {
    /// The journal entry of an upload is closed: it was completed or aborted.
    pub(crate) fn journal_end(&self, entry: Option<u64>) {
        if let (Some(j), Some(n)) = (&self.journal, entry) {
            j.end(n);
        }
    }
}

/// A multipart upload that must be aborted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    pub key: String,
    pub upload: OrphanId,
    /// Its upload journal entry, ended once the abort is confirmed.
    pub entry: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrphanId {
    /// Known: abort it until the store confirms.
    Known(String),
    /// CreateMultipartUpload failed without an answer (timeout): the store may still create the
    /// upload once it recovers. Uploads of `key` started after `since` that this process does
    /// not know are aborted; the entry is dropped after `confirmations` clean listings.
    Lost {
        since: std::time::SystemTime,
        confirmations: u8,
    },
}

/// What every stored object carries as user metadata: enough to find its key and tenant
/// without reading it, nothing about its contents or people. The plaintext size only where it
/// is known when the metadata is sent (single-part objects).
pub(crate) fn metadata(
    meta: &crate::storage::ObjectMeta,
    plaintext_size: Option<u64>,
) -> HashMap<String, String> {
    let mut m = HashMap::new();
    m.insert("eugate-format".into(), meta.format_version.to_string());
    m.insert("eugate-tenant".into(), meta.tenant.clone());
    m.insert("eugate-key-id".into(), meta.key_id.clone());
    m.insert("eugate-key-version".into(), meta.key_version.to_string());
    m.insert(OBJECT_ID_KEY.into(), meta.object_id.clone());
    if let Some(n) = plaintext_size {
        m.insert("eugate-plaintext-size".into(), n.to_string());
    }
    m
}

/// The metadata key that identifies one upload's object, whatever its name.
pub(crate) const OBJECT_ID_KEY: &str = "eugate-object-id";

/// How a request body is signed: over TLS the payload is not signed (TLS and the per-part
/// CRC32C protect it); over plain HTTP it is, with a SHA-256 computed here by ring (SHA-NI)
/// rather than by the SDK's own hasher, which profiled 1.6× slower on the same bytes (and could
/// not read a body made of several buffers).
#[derive(Debug)]
pub(crate) enum PayloadHash {
    Unsigned,
    Sha256Hex(String),
}

impl PayloadHash {
    fn of(tls: bool, body: &body::PartBody) -> PayloadHash {
        if tls {
            PayloadHash::Unsigned
        } else {
            PayloadHash::Sha256Hex(body.sha256_hex())
        }
    }
}

/// `customize().signing(payload)` applies a [`PayloadHash`].
pub(crate) trait PayloadSigning {
    fn signing(self, payload: PayloadHash) -> Self;
}

#[derive(Debug)]
struct PrecomputedPayloadHash(String);

impl aws_smithy_runtime_api::client::interceptors::Intercept for PrecomputedPayloadHash {
    fn name(&self) -> &'static str {
        "eugate-precomputed-payload-hash"
    }

    fn modify_before_signing(
        &self,
        _context: &mut aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextMut<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        cfg.interceptor_state()
            .store_put(aws_runtime::auth::PayloadSigningOverride::Precomputed(
                self.0.clone(),
            ));
        Ok(())
    }
}

macro_rules! payload_signing {
    ($($out:ty),*) => {$(
        impl<E, B> PayloadSigning for aws_sdk_s3::client::customize::CustomizableOperation<$out, E, B> {
            fn signing(self, payload: PayloadHash) -> Self {
                match payload {
                    PayloadHash::Unsigned => self.disable_payload_signing(),
                    PayloadHash::Sha256Hex(hash) => self.interceptor(PrecomputedPayloadHash(hash)),
                }
            }
        }
    )*};
}
payload_signing!(
    aws_sdk_s3::operation::put_object::PutObjectOutput,
    aws_sdk_s3::operation::upload_part::UploadPartOutput
);
