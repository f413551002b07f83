//! Streaming upload of one sealed object: sealed buffers are gathered into parts (see `parts`)
//! without copying, full parts go to S3 with an explicit CRC32C, at most `max_in_flight` at once. An object that fits
//! in one part is sent with a single PutObject; a larger one becomes a multipart upload that is
//! completed on `commit` and aborted on every other path (error, `abort`, or drop).

use std::sync::Arc;

use aws_sdk_s3::types::{ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart};
use base64::Engine;
use tokio::task::JoinSet;

use super::body::PartBody;
use super::spool::{SEND_BUDGET, SpoolPart, Spooled};
use super::{
    MemoryBudget, OBJECT_ID_KEY, PayloadHash, PayloadSigning, S3Error, Target, metadata, parts,
};
use crate::budget::Reservation;
use crate::storage::ObjectMeta;

/// The result of a committed upload, for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub sealed_len: u64,
    /// CRC32C over the whole sealed object, as `crc32c:<8 hex>`.
    pub checksum: String,
    pub parts: u32,
}

/// The part being filled: in memory (its whole size reserved from its first byte), or spooled
/// to a file when the budget could not hold it (see `spool`).
enum Filling {
    Memory(PartBody),
    /// Boxed: the SHA-256 and CRC states are about 0.5 KiB.
    Spool(Box<SpoolPart>),
}

impl Default for Filling {
    fn default() -> Self {
        Filling::Memory(PartBody::default())
    }
}

impl Filling {
    fn len(&self) -> usize {
        match self {
            Filling::Memory(b) => b.len(),
            Filling::Spool(s) => s.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn finish(self) -> Part {
        match self {
            Filling::Memory(b) => Part::Memory(b),
            Filling::Spool(s) => Part::Spooled((*s).finish()),
        }
    }
}

/// A complete part, ready to send.
enum Part {
    Memory(PartBody),
    Spooled(Spooled),
}

impl Part {
    fn len(&self) -> usize {
        match self {
            Part::Memory(b) => b.len(),
            Part::Spooled(s) => usize::try_from(s.len).unwrap_or(usize::MAX),
        }
    }

    fn crc32c(&self) -> u32 {
        match self {
            Part::Memory(b) => b.crc32c(),
            Part::Spooled(s) => s.crc,
        }
    }

    fn payload(&self, tls: bool) -> PayloadHash {
        match self {
            Part::Memory(b) => PayloadHash::of(tls, b),
            // Spooled parts hashed on the way in exactly when requests are signed over it.
            Part::Spooled(s) => match &s.sha256_hex {
                Some(hex) if !tls => PayloadHash::Sha256Hex(hex.clone()),
                _ => PayloadHash::Unsigned,
            },
        }
    }

    fn into_byte_stream(self) -> aws_sdk_s3::primitives::ByteStream {
        match self {
            Part::Memory(b) => b.into_byte_stream(),
            Part::Spooled(s) => s.into_byte_stream(),
        }
    }
}

fn budget_error(e: crate::budget::BudgetError) -> S3Error {
    S3Error::Config(format!("upload memory budget: {e}"))
}

pub struct S3Writer {
    target: Arc<Target>,
    key: String,
    no_clobber: bool,
    budget: MemoryBudget,
    max_in_flight: usize,
    part: Filling,
    /// The budget held for `part` (reserved when the part starts), and how many bytes it covers.
    permit: Option<Reservation>,
    reserved: usize,
    part_no: u32,
    upload_id: Option<String>,
    /// The upload journal's entry for the multipart upload, until it is completed or aborted.
    entry: Option<u64>,
    in_flight: JoinSet<Result<(CompletedPart, u32, usize), S3Error>>,
    done: Vec<(CompletedPart, u32, usize)>,
    written: u64,
    finished: bool,
    meta: ObjectMeta,
}

/// How often a commit whose answer was lost is checked with HeadObject before the outcome is
/// reported as unknown.
const COMMIT_CHECKS: u32 = 3;

impl S3Writer {
    pub(super) fn new(
        target: Arc<Target>,
        key: String,
        no_clobber: bool,
        budget: MemoryBudget,
        max_in_flight: usize,
        meta: ObjectMeta,
    ) -> S3Writer {
        S3Writer {
            target,
            key,
            no_clobber,
            budget,
            max_in_flight: max_in_flight.max(1),
            part: Filling::default(),
            permit: None,
            reserved: 0,
            part_no: 1,
            upload_id: None,
            entry: None,
            in_flight: JoinSet::new(),
            done: Vec::new(),
            written: 0,
            finished: false,
            meta,
        }
    }

    /// Appends a buffer of sealed bytes (kept, not copied); waits when the memory budget or the
    /// in-flight limit is reached. A part is sent once it holds at least its size and more data
    /// follows, so parts are whole buffers: at least `part_size`, less than one buffer more.
    pub async fn write(&mut self, data: bytes::Bytes) -> Result<(), S3Error> {
        if data.is_empty() {
            return Ok(());
        }
        if self.part.len() >= parts::part_size(self.part_no) {
            // Full, and more data follows: this cannot be the only part.
            self.send_part().await?;
        }
        if parts::spooled(self.part_no, self.budget.total_bytes(), self.max_in_flight) {
            return self.spool(data).await;
        }
        if self.permit.is_none() {
            // A whole part at once: uploads that each held a partly filled part's worth of
            // budget could otherwise wait for each other forever. Waiting here stops the
            // sealing task from making its next buffer: backpressure.
            let size = parts::part_size(self.part_no) + parts::PART_SLACK;
            self.permit = Some(self.budget.reserve(size).await.map_err(budget_error)?);
            self.reserved = size;
        }
        let needed = self.part.len() + data.len();
        if needed > self.reserved
            && let Some(extra) = self.budget.try_reserve(needed - self.reserved)
            && let Some(held) = &mut self.permit
        {
            // Never wait while holding a partial part (see above): if the budget is spent, this
            // upload runs over it by less than one buffer.
            held.merge(extra);
            self.reserved = needed;
        }
        self.written += data.len() as u64;
        if let Filling::Memory(body) = &mut self.part {
            body.push(data);
        }
        Ok(())
    }

    /// Appends to a spooled part. Each buffer is charged to the budget only while it is
    /// written, so a spooled part holds no budget between writes: whatever its size, it needs
    /// one buffer's worth at a time, and uploads never wait on each other's partial parts.
    async fn spool(&mut self, data: bytes::Bytes) -> Result<(), S3Error> {
        let slice = self
            .budget
            .reserve(data.len())
            .await
            .map_err(budget_error)?;
        if !matches!(self.part, Filling::Spool(_)) {
            // A new part (parts only switch to spooling when one is sent, leaving it empty).
            self.part = Filling::Spool(Box::new(SpoolPart::create(!self.target.tls).await?));
            tracing::debug!(
                part = self.part_no,
                size = parts::part_size(self.part_no),
                "part spooled to a temporary file: larger than the memory budget holds"
            );
        }
        self.written += data.len() as u64;
        if let Filling::Spool(part) = &mut self.part {
            part.push(data).await?;
        }
        drop(slice);
        Ok(())
    }

    async fn send_part(&mut self) -> Result<(), S3Error> {
        if self.part_no > parts::MAX_PARTS {
            return Err(S3Error::TooLarge);
        }
        let upload_id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let id = self.create_multipart().await?;
                self.upload_id = Some(id.clone());
                id
            }
        };
        while self.in_flight.len() >= self.max_in_flight {
            self.reap_one().await?;
        }
        let body = std::mem::take(&mut self.part).finish();
        let permit = match body {
            Part::Memory(_) => self.permit.take(),
            // Sent in small reads: the budget for the few in the HTTP client at once.
            Part::Spooled(_) => Some(
                self.budget
                    .reserve(SEND_BUDGET)
                    .await
                    .map_err(budget_error)?,
            ),
        };
        self.reserved = 0;
        let target = self.target.clone();
        let key = self.key.clone();
        let n = self.part_no;
        self.in_flight.spawn(async move {
            let len = body.len();
            let crc = body.crc32c();
            let b64 = base64::engine::general_purpose::STANDARD.encode(crc.to_be_bytes());
            let payload = body.payload(target.tls);
            let out = target
                .client
                .upload_part()
                .bucket(&target.bucket)
                .key(&key)
                .upload_id(&upload_id)
                .part_number(n as i32)
                .checksum_crc32_c(&b64)
                .content_length(len as i64)
                .body(body.into_byte_stream())
                .customize()
                .signing(payload)
                .send()
                .await
                .map_err(|e| S3Error::request("UploadPart", e))?;
            drop(permit);
            let part = CompletedPart::builder()
                .part_number(n as i32)
                .set_e_tag(out.e_tag().map(str::to_string))
                .checksum_crc32_c(b64)
                .build();
            Ok((part, crc, len))
        });
        self.part_no += 1;
        Ok(())
    }

    async fn reap_one(&mut self) -> Result<(), S3Error> {
        match self.in_flight.join_next().await {
            Some(Ok(Ok(done))) => {
                self.done.push(done);
                Ok(())
            }
            Some(Ok(Err(e))) => Err(e),
            Some(Err(join)) => Err(S3Error::Internal(format!(
                "part upload task failed: {join}"
            ))),
            None => Ok(()),
        }
    }

    async fn create_multipart(&mut self) -> Result<String, S3Error> {
        // Written down (synced) before the store hears of it: after a crash, the next start
        // aborts this upload, and no other instance's.
        if let Some(j) = &self.target.journal {
            self.entry = Some(j.begin(&self.target.name, &self.key)?);
        }
        // While our create is in flight, the lost-upload sweep leaves this key alone: the upload
        // it is about to create is ours, not a leftover.
        let creating = creating_token(&self.key, self as *const S3Writer as usize);
        if let Ok(mut active) = self.target.active.lock() {
            active.insert(creating.clone());
        }
        let out = self
            .target
            .client
            .create_multipart_upload()
            .bucket(&self.target.bucket)
            .key(&self.key)
            .checksum_algorithm(ChecksumAlgorithm::Crc32C)
            .set_metadata(Some(metadata(&self.meta, None)))
            .content_type("application/octet-stream")
            .send()
            .await;
        let out = match out {
            Ok(out) => {
                if let Some(id) = out.upload_id()
                    && let Ok(mut active) = self.target.active.lock()
                {
                    active.insert(id.to_string());
                }
                self.forget(&creating);
                Ok(out)
            }
            Err(e) => {
                self.forget(&creating);
                Err(e)
            }
        };
        let out = match out {
            Ok(out) => out,
            Err(e) => {
                if e.raw_response().is_none() {
                    // No answer (timeout, connection lost): the store may create the upload
                    // anyway once it recovers, and we would never learn its id.
                    if let Ok(mut orphans) = self.target.orphans.lock() {
                        orphans.push(super::Orphan {
                            key: self.key.clone(),
                            upload: super::OrphanId::Lost {
                                since: std::time::SystemTime::now()
                                    - std::time::Duration::from_secs(60),
                                confirmations: 0,
                            },
                            entry: self.entry.take(),
                        });
                    }
                } else {
                    // Refused: there is no upload to clean up.
                    self.target.journal_end(self.entry.take());
                }
                return Err(S3Error::request("CreateMultipartUpload", e));
            }
        };
        let id = out.upload_id().map(str::to_string).ok_or_else(|| {
            S3Error::Internal("CreateMultipartUpload returned no upload id".into())
        })?;
        if let (Some(j), Some(n)) = (&self.target.journal, self.entry) {
            j.created(n, &id);
        }
        Ok(id)
    }

    fn forget(&self, upload_id: &str) {
        if let Ok(mut active) = self.target.active.lock() {
            active.remove(upload_id);
        }
    }

    /// Makes the object visible; only now may the client be told "OK". An error means the
    /// object is not stored, except [`S3Error::CommitUnknown`].
    pub async fn commit(mut self, plaintext_size: u64) -> Result<Committed, S3Error> {
        let result = match self.commit_inner(plaintext_size).await {
            Err(S3Error::Unanswered { op, detail }) => self.check_commit(op, detail).await,
            other => other,
        };
        if result.is_err() {
            // Also when the outcome is unknown: an aborted multipart upload can no longer
            // complete, so an answer still on its way cannot publish the object later.
            self.abort_now().await;
        } else {
            self.target.journal_end(self.entry.take());
        }
        self.finished = true;
        result
    }

    /// The commit request got no answer (timeout, connection lost, 5xx): whether the object
    /// is ours is what HeadObject's object id says. Never a guess.
    async fn check_commit(
        &mut self,
        op: &'static str,
        detail: String,
    ) -> Result<Committed, S3Error> {
        tracing::warn!(op, detail = %detail, "commit unanswered; checking the store");
        let mut last = detail.clone();
        for attempt in 0..COMMIT_CHECKS {
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(500 << attempt)).await;
            }
            let head = self
                .target
                .client
                .head_object()
                .bucket(&self.target.bucket)
                .key(&self.key)
                .send()
                .await;
            match head {
                Ok(out) => {
                    let id = out.metadata().and_then(|m| m.get(OBJECT_ID_KEY));
                    if id == Some(&self.meta.object_id) {
                        if let Some(id) = self.upload_id.take() {
                            self.forget(&id);
                        }
                        return Ok(self.committed());
                    }
                    return Err(S3Error::Request { op, detail });
                }
                Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {
                    return Err(S3Error::Request { op, detail });
                }
                Err(e) => last = super::describe(&e),
            }
        }
        Err(S3Error::CommitUnknown(format!(
            "{op}: {detail}; HeadObject: {last}"
        )))
    }

    fn committed(&self) -> Committed {
        let mut crc = 0u32;
        for (_, part_crc, len) in &self.done {
            crc = super::body::crc32c_combine(crc, *part_crc, *len);
        }
        Committed {
            sealed_len: self.written,
            checksum: format!("crc32c:{crc:08x}"),
            parts: self.done.len().max(1) as u32,
        }
    }

    async fn commit_inner(&mut self, plaintext_size: u64) -> Result<Committed, S3Error> {
        if self.no_clobber && super::ops::exists(&self.target, &self.key).await? {
            return Err(S3Error::AlreadyExists);
        }
        if self.upload_id.is_none() {
            let body = std::mem::take(&mut self.part).finish();
            let len = body.len() as u64;
            let crc = body.crc32c();
            let b64 = base64::engine::general_purpose::STANDARD.encode(crc.to_be_bytes());
            let payload = body.payload(self.target.tls);
            let mut req = self
                .target
                .client
                .put_object()
                .bucket(&self.target.bucket)
                .key(&self.key)
                .checksum_crc32_c(b64)
                .set_metadata(Some(metadata(&self.meta, Some(plaintext_size))))
                .content_type("application/octet-stream")
                .content_length(len as i64)
                .body(body.into_byte_stream());
            if self.no_clobber {
                req = req.if_none_match("*");
            }
            req.customize()
                .signing(payload)
                .send()
                .await
                .map_err(|e| S3Error::commit("PutObject", e))?;
            self.permit = None;
            self.written = len;
            return Ok(Committed {
                sealed_len: len,
                checksum: format!("crc32c:{crc:08x}"),
                parts: 1,
            });
        }
        if !self.part.is_empty() {
            self.send_part().await?;
        }
        while !self.in_flight.is_empty() {
            self.reap_one().await?;
        }
        self.done.sort_by_key(|(p, _, _)| p.part_number());
        let parts: Vec<CompletedPart> = self.done.iter().map(|(p, _, _)| p.clone()).collect();
        let upload_id = self.upload_id.clone().unwrap_or_default();
        let mut req = self
            .target
            .client
            .complete_multipart_upload()
            .bucket(&self.target.bucket)
            .key(&self.key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            );
        if self.no_clobber {
            req = req.if_none_match("*");
        }
        req.send()
            .await
            .map_err(|e| S3Error::commit("CompleteMultipartUpload", e))?;
        if let Some(id) = self.upload_id.take() {
            self.forget(&id); // completed: nothing left to abort
        }
        Ok(self.committed())
    }

    /// Discards everything written: no object, no multipart upload left behind.
    pub async fn abort(mut self) {
        self.abort_now().await;
        self.finished = true;
    }

    async fn abort_now(&mut self) {
        self.in_flight.abort_all();
        while self.in_flight.join_next().await.is_some() {}
        if let Some(id) = self.upload_id.take() {
            abort_upload(&self.target, &self.key, &id, self.entry.take()).await;
            self.forget(&id);
        }
    }

    pub fn written(&self) -> u64 {
        self.written
    }
}

impl Drop for S3Writer {
    /// A writer dropped without commit (client vanished, task cancelled) must not leave a
    /// multipart upload behind: abort it in the background.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        self.in_flight.abort_all();
        if let Some(id) = self.upload_id.take() {
            let target = self.target.clone();
            let key = std::mem::take(&mut self.key);
            let entry = self.entry.take();
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    abort_upload(&target, &key, &id, entry).await;
                    if let Ok(mut active) = target.active.lock() {
                        active.remove(&id);
                    }
                });
            }
        }
    }
}

/// The marker an in-flight CreateMultipartUpload leaves in `Target::active`.
pub(super) fn creating_token(key: &str, writer: usize) -> String {
    format!("creating:{key}:{writer:x}")
}

/// Whether some writer is creating a multipart upload for `key` right now.
pub(super) fn creating(active: &std::collections::HashSet<String>, key: &str) -> bool {
    let prefix = format!("creating:{key}:");
    active.iter().any(|a| a.starts_with(&prefix))
}

/// Aborts one multipart upload with one request (no SDK retries); if the store
/// does not confirm, the upload is handed to the destination's orphan list, which keeps retrying
/// in the background.
///
/// Only one request inline because a failed CLOSE is answered after this returns: the fault
/// suite (tests/faults.rs, Garage frozen with SIGSTOP) measured that three inline rounds made the
/// client wait about fifteen request timeouts (30 s at `request_timeout_secs = 2`, minutes at
/// the default) for an answer the background retry gives it no better.
pub(super) async fn abort_upload(target: &Target, key: &str, upload_id: &str, entry: Option<u64>) {
    let Err(e) = try_abort(target, key, upload_id).await else {
        target.journal_end(entry);
        return;
    };
    tracing::warn!(
        bucket = %target.bucket,
        error = %e,
        "multipart upload could not be aborted yet; retrying in the background"
    );
    if let Ok(mut orphans) = target.orphans.lock() {
        orphans.push(super::Orphan {
            key: key.to_string(),
            upload: super::OrphanId::Known(upload_id.to_string()),
            entry,
        });
    }
}

/// One AbortMultipartUpload; "no such upload" counts as done (already gone).
pub(super) async fn try_abort(target: &Target, key: &str, upload_id: &str) -> Result<(), S3Error> {
    match target
        .client
        .abort_multipart_upload()
        .bucket(&target.bucket)
        .key(key)
        .upload_id(upload_id)
        .customize()
        // One attempt: a failed abort is retried by the background list anyway, and the client
        // waiting for its CLOSE answer should not sit through the SDK's retries as well.
        .config_override(
            aws_sdk_s3::config::Builder::new()
                .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled()),
        )
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) => match S3Error::request("AbortMultipartUpload", e) {
            S3Error::NotFound { .. } => Ok(()),
            other => Err(other),
        },
    }
}
