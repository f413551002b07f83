//! The upload pipeline. The front end calls [`UploadHandle::write_pieces`] with the data of
//! each WRITE: in order, it is copied straight from the received packet into a part buffer
//! (its only copy in the gateway), whose 64 KiB segments are sealed in place once full. Sealed
//! parts go to a storage task, which stores them while the next part fills. Writes ahead of a
//! gap are held (bounded) until it fills. CLOSE ([`UploadHandle::commit`]) waits for the
//! durable commit. Dropping the handle without a commit aborts: nothing is published.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::buffers::BufferPool;
use super::in_flight::{InFlight, InFlightGuard};
use super::reorder::{Reorder, ReorderLimits};
use super::{Protocol, TransferError};
use crate::admin::{AbortReason, Metrics};
use crate::audit::{AuditError, AuditEvent, AuditLog};
use crate::crypto::{CryptoError, PartSealer, SEGMENT_SIZE, Sealer};
use crate::storage::{Destination, StorageError, Upload};

/// Plaintext per storage write: each part is 4 sealed segments (≈ 256 KiB), plus the header in
/// the first one. Sealing 256 KiB at a time keeps the bytes in cache from the receive copy
/// through sealing and hashing; the sealed buffer is then handed to storage by value (an S3 part
/// is a list of them), so it is never copied again. Small, because an upload waiting for the
/// memory budget holds up to three of them outside it (one filling, one queued, one offered to
/// storage): at 1 MiB, 64 waiting uploads held 192 MiB beyond the budget.
const PART_SIZE: usize = 256 << 10;
const SEGMENTS_PER_PART: usize = PART_SIZE / SEGMENT_SIZE;
/// Sealed parts queued for the storage task: when it is full, `write_pieces` waits, and the SSH
/// channel feels the backpressure.
const QUEUE_DEPTH: usize = 1;
/// The audit cause when an existing object was opened without TRUNCATE and closed unwritten.
const UNCHANGED_CAUSE: &str =
    "opened without truncate and closed without a write: the existing object is unchanged";

/// A copy of received plaintext: a write held ahead of a gap, or a WRITE decoded the slow way.
/// Wiped when dropped (by `crypto::wipe`, word-wise: zeroize's byte-wise loop over every
/// received byte was 6.5 % of the upload CPU when every write was copied).
pub struct Chunk(Vec<u8>);

impl Chunk {
    pub fn new(data: Vec<u8>) -> Chunk {
        Chunk(data)
    }
}

impl std::ops::Deref for Chunk {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        crate::crypto::wipe_vec(&mut self.0);
    }
}

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Chunk({} bytes)", self.0.len())
    }
}

enum Msg {
    /// A sealed part, in order.
    Part(Bytes),
    Finish {
        last: Bytes,
        plaintext: u64,
        blake3: String,
        reply: oneshot::Sender<Result<u64, TransferError>>,
    },
    /// The upload cannot go on: abort, recording this cause.
    Abort(AbortReason, String),
}

/// What the audit trail records about one upload, whichever way it ends.
pub(crate) struct UploadRecord {
    pub log: Arc<AuditLog>,
    /// Where the object goes: a commit the audit log cannot record is taken back from here.
    pub store: Arc<dyn Destination>,
    pub tenant: String,
    pub user: String,
    pub protocol: Protocol,
    pub destination: String,
    pub object: String,
    pub object_id: String,
    pub key_id: String,
    pub key_version: u32,
    /// The rules that allowed the upload, and their bundle (from the Grant).
    pub policies: Vec<String>,
    pub bundle: String,
    pub metrics: Arc<Metrics>,
    /// When the upload was opened (for the duration histogram).
    pub opened: Instant,
}

impl UploadRecord {
    fn committed(&self, plaintext: u64, sealed: u64, blake3: String) -> Result<(), AuditError> {
        let event = AuditEvent::Committed {
            tenant: self.tenant.clone(),
            user: self.user.clone(),
            destination: self.destination.clone(),
            object: self.object.clone(),
            object_id: self.object_id.clone(),
            key_id: self.key_id.clone(),
            key_version: self.key_version,
            plaintext_size: plaintext,
            ciphertext_size: sealed,
            ciphertext_blake3: blake3,
            policies: self.policies.clone(),
            bundle: self.bundle.clone(),
            protocol: Some(self.protocol.as_str().to_string()),
        };
        self.log.append(&event)?;
        let elapsed = self.opened.elapsed();
        tracing::info!(
            event = "upload",
            outcome = "committed",
            protocol = self.protocol.as_str(),
            tenant = %self.tenant,
            user = %self.user,
            destination = %self.destination,
            object_id = %self.object_id,
            plaintext_bytes = plaintext,
            sealed_bytes = sealed,
            duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
            "upload committed"
        );
        self.metrics.upload_committed(
            self.protocol,
            &self.tenant,
            &self.destination,
            plaintext,
            elapsed,
        );
        Ok(())
    }

    /// A stored object the audit log could not record must not stay: an unrecorded transfer is
    /// what the log exists to rule out. Returns what the client is told.
    async fn retract(&self, e: AuditError) -> TransferError {
        tracing::error!(error = %e, object = %self.object, "committed upload could not be recorded in the audit log: removing it");
        match self.store.remove(&self.object).await {
            Ok(()) => TransferError::Failure(
                "nothing was stored: the audit log could not record the upload; contact the operator"
                    .into(),
            ),
            Err(re) => {
                tracing::error!(error = %re, object = %self.object, "removing the unrecorded object failed");
                TransferError::Failure(
                    "the audit log could not record the upload and removing the object failed: it may be visible; contact the operator"
                        .into(),
                )
            }
        }
    }

    fn aborted(&self, why: AbortReason, cause: &str) {
        tracing::info!(
            event = "upload",
            outcome = why.as_str(),
            protocol = self.protocol.as_str(),
            tenant = %self.tenant,
            user = %self.user,
            destination = %self.destination,
            object_id = %self.object_id,
            cause,
            "upload aborted"
        );
        self.metrics
            .upload_aborted(self.protocol, &self.tenant, &self.destination, why);
        let event = AuditEvent::Aborted {
            tenant: self.tenant.clone(),
            user: self.user.clone(),
            destination: self.destination.clone(),
            object: self.object.clone(),
            cause: cause.to_string(),
            protocol: Some(self.protocol.as_str().to_string()),
        };
        if let Err(e) = self.log.append(&event) {
            tracing::error!(error = %e, object = %self.object, "aborted upload could not be recorded in the audit log");
        }
    }
}

/// The sealing half of an upload, owned by the front end's task: plaintext is copied from the
/// received packet straight into the part buffer (its only copy in the gateway), sealed in
/// place and hashed while still in cache. Only sealed parts cross to the storage task.
struct Sealing {
    parts: PartSealer,
    buffers: BufferPool,
    digest: blake3::Hasher,
    plaintext: u64,
}

impl Sealing {
    /// Copies `data` into the part buffer; returns the parts it completed, sealed.
    fn take(&mut self, data: &[u8], out: &mut Vec<Bytes>) -> Result<(), CryptoError> {
        self.plaintext += data.len() as u64;
        let mut rest = data;
        loop {
            let taken = self.parts.fill(rest);
            rest = &rest[taken..];
            if rest.is_empty() {
                return Ok(());
            }
            // The part is full and plaintext follows it: seal it and hand it on.
            let part = self.parts.seal_part(self.buffers.take())?;
            self.digest.update(&part);
            out.push(self.buffers.share(part));
        }
    }
}

pub struct UploadHandle {
    /// The storage task: a failed CLOSE waits for it, so that its answer comes only once
    /// nothing is left behind (no temp file, no multipart upload).
    storage: Option<tokio::task::JoinHandle<()>>,
    tx: Option<mpsc::Sender<Msg>>,
    /// `None` once committed, or after a sealing error. Boxed: the BLAKE3 state is ~2 KiB.
    sealing: Option<Box<Sealing>>,
    reorder: Reorder,
    failed: Arc<Mutex<Option<TransferError>>>,
    path: String,
    /// The file existed and was opened without TRUNCATE: writing must start at offset 0
    /// (a whole new version), because appending to a sealed object is impossible; and a CLOSE
    /// with no write at all leaves the existing object as it was (OpenSSH's sftp-server too).
    replaces_existing: bool,
    /// Whether any WRITE was accepted.
    wrote_any: bool,
}

impl std::fmt::Debug for UploadHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadHandle")
            .field("path", &self.path)
            .field("next", &self.reorder.next())
            .finish_non_exhaustive()
    }
}

fn failed_state(f: &Mutex<Option<TransferError>>) -> Option<TransferError> {
    f.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

fn set_failed(f: &Mutex<Option<TransferError>>, e: TransferError) -> TransferError {
    *f.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e.clone());
    e
}

impl UploadHandle {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start(
        sealer: Sealer,
        buffers: BufferPool,
        upload: Box<dyn Upload>,
        record: UploadRecord,
        reorder: ReorderLimits,
        path: String,
        inflight: Arc<InFlight>,
        replaces_existing: bool,
    ) -> UploadHandle {
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let failed = Arc::new(Mutex::new(None));
        let guard = InFlightGuard::new(inflight);
        // The first part's buffer comes from the pool too: allocated anew, each upload would
        // leave one more buffer in the pool when it ends (its last part goes back there), and
        // the idle pool grew by 1 MiB per upload up to its cap (docs/benchmarks.md).
        let sealing = match sealer.into_part_sealer_in(SEGMENTS_PER_PART, buffers.take()) {
            Ok(parts) => Some(Box::new(Sealing {
                parts,
                buffers,
                digest: blake3::Hasher::new(),
                plaintext: 0,
            })),
            Err(e) => {
                tracing::error!(error = %e, "setting up the part buffer failed");
                set_failed(
                    &failed,
                    TransferError::Failure("encryption setup failed".into()),
                );
                let _ = tx.try_send(Msg::Abort(
                    AbortReason::Crypto,
                    format!("sealing setup failed: {e}"),
                ));
                None
            }
        };
        let storage = tokio::spawn(store(upload, record, rx, failed.clone(), guard));
        UploadHandle {
            storage: Some(storage),
            tx: Some(tx),
            sealing,
            reorder: Reorder::new(reorder),
            failed,
            path,
            replaces_existing,
            wrote_any: false,
        }
    }

    /// Bytes received in order so far.
    pub fn written(&self) -> u64 {
        self.reorder.next()
    }

    /// Accepts the bytes of `pieces`, joined, at `offset`: in order, they go straight into the
    /// part buffer; ahead of a gap, they are copied and held (within the reorder window) until
    /// the gap fills. Errors the storage task hit earlier surface here, so the client learns
    /// early.
    pub async fn write_pieces(
        &mut self,
        offset: u64,
        pieces: &[&[u8]],
    ) -> Result<(), TransferError> {
        if let Some(e) = failed_state(&self.failed) {
            return Err(e);
        }
        if self.tx.is_none() {
            return Err(TransferError::Failure("upload already closed".into()));
        }
        if let Err(refusal) = self.check_offset(offset) {
            return Err(self.refuse(offset, refusal));
        }
        let len: usize = pieces.iter().map(|p| p.len()).sum();
        let mut sealed = Vec::new();
        if offset == self.reorder.next() {
            let released = match self.reorder.advance(offset, len as u64) {
                Ok(released) => released,
                Err(refusal) => return Err(self.refuse(offset, refusal)),
            };
            for piece in pieces {
                self.seal(piece, &mut sealed)?;
            }
            for chunk in released {
                self.seal(&chunk, &mut sealed)?;
            }
        } else {
            let mut copy = Vec::with_capacity(len);
            for piece in pieces {
                copy.extend_from_slice(piece);
            }
            let ready = match self.reorder.accept(offset, Chunk::new(copy)) {
                Ok(ready) => ready,
                Err(refusal) => return Err(self.refuse(offset, refusal)),
            };
            for chunk in ready {
                self.seal(&chunk, &mut sealed)?;
            }
        }
        self.wrote_any = true;
        for part in sealed {
            self.send(Msg::Part(part)).await?;
        }
        Ok(())
    }

    /// A replacement of an existing object opened without TRUNCATE must start at offset 0:
    /// anything else is a resume or an append, which a sealed object cannot take.
    fn check_offset(&mut self, offset: u64) -> Result<(), TransferError> {
        if self.replaces_existing && !self.wrote_any && offset != 0 {
            return Err(TransferError::Unsupported(format!(
                "{} exists; resuming or appending (write at offset {offset}) is not supported: objects are sealed once; upload the whole file again (e.g. `put`, not `reput`)",
                self.path
            )));
        }
        Ok(())
    }

    /// A refused WRITE spoils the upload: the client still gets the precise refusal for this
    /// WRITE, every later WRITE and the CLOSE fail naming it, and the storage task aborts at
    /// once, so nothing the client sent before or after is ever published.
    fn refuse(&mut self, offset: u64, refusal: TransferError) -> TransferError {
        let spoiled = TransferError::Failure(format!(
            "nothing was stored: the write at offset {offset} was refused ({refusal}); upload the whole file again"
        ));
        set_failed(&self.failed, spoiled);
        self.sealing = None;
        self.stop_storage(
            AbortReason::Refused,
            format!("write at offset {offset} refused: {refusal}"),
        );
        refusal
    }

    /// Waits until the storage task has ended (after an abort: cleaned up).
    async fn storage_done(&mut self) {
        self.tx = None;
        if let Some(task) = self.storage.take() {
            let _ = task.await;
        }
    }

    /// Tells the storage task to abort, recording `cause`. It may be waiting on a full
    /// queue; it learns of the abort from this message when it catches up.
    fn stop_storage(&mut self, why: AbortReason, cause: String) {
        if let Some(tx) = self.tx.take() {
            tokio::spawn(async move {
                let _ = tx.send(Msg::Abort(why, cause)).await;
            });
        }
    }

    fn seal(&mut self, data: &[u8], out: &mut Vec<Bytes>) -> Result<(), TransferError> {
        let Some(sealing) = self.sealing.as_mut() else {
            return Err(failed_state(&self.failed)
                .unwrap_or_else(|| TransferError::Failure("upload aborted".into())));
        };
        if let Err(e) = sealing.take(data, out) {
            self.sealing_failed(&e);
            return Err(TransferError::Failure("encryption failed".into()));
        }
        Ok(())
    }

    /// A sealer error ends the upload: the storage task aborts and records why.
    fn sealing_failed(&mut self, e: &CryptoError) {
        tracing::error!(error = %e, "sealing failed");
        self.sealing = None;
        set_failed(
            &self.failed,
            TransferError::Failure("encryption failed".into()),
        );
        self.stop_storage(AbortReason::Crypto, format!("sealing failed: {e}"));
    }

    async fn send(&mut self, msg: Msg) -> Result<(), TransferError> {
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| TransferError::Failure("upload already closed".into()))?;
        if tx.send(msg).await.is_err() {
            return Err(failed_state(&self.failed)
                .unwrap_or_else(|| TransferError::Failure("upload aborted".into())));
        }
        Ok(())
    }

    /// Seals the final segment, writes the last part and publishes. Success means durable.
    /// Returns the plaintext size stored, or `None` when an existing object was opened
    /// without TRUNCATE and closed without a write: then nothing is published and the
    /// existing object stays as it was.
    pub async fn commit(mut self) -> Result<Option<u64>, TransferError> {
        if let Some(e) = failed_state(&self.failed) {
            self.storage_done().await;
            return Err(e);
        }
        if self.replaces_existing && !self.wrote_any {
            self.sealing = None;
            self.stop_storage(AbortReason::Unchanged, UNCHANGED_CAUSE.to_string());
            self.storage_done().await;
            return Ok(None);
        }
        let pending = self.reorder.pending_bytes();
        if pending > 0 {
            let gap = format!(
                "upload has a gap at offset {}: {pending} bytes in {} writes arrived beyond it but the bytes in between never did; nothing was stored",
                self.reorder.next(),
                self.reorder.pending_writes()
            );
            self.sealing = None;
            self.stop_storage(AbortReason::Gap, gap.clone());
            self.storage_done().await;
            return Err(TransferError::Failure(gap));
        }
        let Some(sealing) = self.sealing.take() else {
            return Err(TransferError::Failure("upload already closed".into()));
        };
        let Sealing {
            parts,
            buffers,
            mut digest,
            plaintext,
        } = *sealing;
        let last = match parts.finish() {
            Ok(last) => last,
            Err(e) => {
                tracing::error!(error = %e, "sealing the final segment failed");
                let e2 = TransferError::Failure("encryption failed".into());
                set_failed(&self.failed, e2.clone());
                self.stop_storage(
                    AbortReason::Crypto,
                    format!("sealing the final segment failed: {e}"),
                );
                self.storage_done().await;
                return Err(e2);
            }
        };
        digest.update(&last);
        let (reply_tx, reply_rx) = oneshot::channel();
        self.send(Msg::Finish {
            last: buffers.share(last),
            plaintext,
            blake3: digest.finalize().to_hex().to_string(),
            reply: reply_tx,
        })
        .await?;
        self.tx = None;
        match reply_rx.await {
            Ok(r) => r.map(Some),
            Err(_) => Err(failed_state(&self.failed)
                .unwrap_or_else(|| TransferError::Failure("upload aborted".into()))),
        }
    }
}

/// The storage task: stores sealed parts in order and commits on Finish; aborts on a storage
/// error, a sealing error, or when the handle goes away without a commit.
async fn store(
    mut upload: Box<dyn Upload>,
    record: UploadRecord,
    mut rx: mpsc::Receiver<Msg>,
    failed: Arc<Mutex<Option<TransferError>>>,
    guard: InFlightGuard,
) {
    let (why, cause) = loop {
        match rx.recv().await {
            Some(Msg::Part(part)) => {
                if let Err(e) = upload.write(part).await {
                    tracing::error!(error = %e, "storage write failed");
                    set_failed(
                        &failed,
                        TransferError::Failure(format!("storing failed: {e}")),
                    );
                    break (AbortReason::Storage, format!("storage write failed: {e}"));
                }
            }
            Some(Msg::Finish {
                last,
                plaintext,
                blake3,
                reply,
            }) => {
                let mut result = finish(upload, last, plaintext).await;
                match &result {
                    Ok(sealed) => match record.committed(plaintext, *sealed, blake3) {
                        Ok(()) => {
                            guard.0.record_commit();
                        }
                        Err(e) => {
                            let told = record.retract(e).await;
                            set_failed(&failed, told.clone());
                            record.aborted(AbortReason::Audit, &told.to_string());
                            guard.0.record_abort();
                            result = Err(told);
                        }
                    },
                    Err(e) => {
                        set_failed(&failed, e.clone());
                        record.aborted(AbortReason::Storage, &e.to_string());
                        guard.0.record_abort();
                    }
                }
                let _ = reply.send(result.map(|_| plaintext));
                return;
            }
            Some(Msg::Abort(why, cause)) => break (why, cause),
            None if guard.0.draining() => {
                tracing::info!("upload cut off by the shutdown: aborted, nothing published");
                break (
                    AbortReason::Shutdown,
                    "gateway shutdown: the grace period ended before the client closed the file"
                        .to_string(),
                );
            }
            None => {
                tracing::info!("upload abandoned without close: aborted, nothing published");
                break (
                    AbortReason::ClientGone,
                    "the client went away without closing the file".to_string(),
                );
            }
        }
    };
    upload.abort().await;
    record.aborted(why, &cause);
    // Counted before `guard` drops, so a shutdown that saw the count reach zero reads final totals.
    guard.0.record_abort();
}

/// Stores the last part and commits; returns the sealed size.
async fn finish(
    mut upload: Box<dyn Upload>,
    last: Bytes,
    plaintext: u64,
) -> Result<u64, TransferError> {
    if let Err(e) = upload.write(last).await {
        upload.abort().await;
        return Err(TransferError::Failure(format!(
            "storing failed, nothing stored: {e}"
        )));
    }
    upload.commit(plaintext).await.map_err(|e| match e {
        StorageError::CommitUnknown(detail) => {
            tracing::error!(detail = %detail, "commit outcome unknown");
            TransferError::Failure(format!(
                "the store did not confirm the upload and checking did not tell whether it is stored ({detail}); list the directory before uploading again"
            ))
        }
        e => TransferError::Failure(format!("commit failed, nothing stored: {e}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Counts what it is given and drops it at once, like a store that acknowledged it.
    struct Discard(Arc<AtomicU64>);

    #[async_trait::async_trait]
    impl Upload for Discard {
        async fn write(&mut self, sealed: Bytes) -> Result<(), crate::storage::StorageError> {
            self.0.fetch_add(sealed.len() as u64, Ordering::SeqCst);
            Ok(())
        }
        async fn commit(
            self: Box<Self>,
            _plaintext_size: u64,
        ) -> Result<u64, crate::storage::StorageError> {
            Ok(self.0.load(Ordering::SeqCst))
        }
        async fn abort(self: Box<Self>) {}
    }

    async fn one_upload(pool: &BufferPool, log: &Arc<AuditLog>, data: &[u8]) -> u64 {
        let store_dir = tempfile::tempdir().unwrap();
        let store = crate::storage::fs::FsDestination::open("d", store_dir.path(), "DE").unwrap();
        let ctx = crate::crypto::ObjectContext {
            tenant: "t".into(),
            key_id: "k".into(),
            key_version: 1,
            object_id: [7; 16],
            external: None,
        };
        let sealer = Sealer::with_material(&[1; 32], &ctx, &[2; 32], &[3; 32], &[4; 12]).unwrap();
        let record = UploadRecord {
            log: log.clone(),
            store: Arc::new(store),
            tenant: "t".into(),
            user: "u".into(),
            protocol: Protocol::Ftps,
            destination: "d".into(),
            object: "o".into(),
            object_id: "07".into(),
            key_id: "k".into(),
            key_version: 1,
            policies: vec!["p".into()],
            bundle: "b".into(),
            metrics: Arc::new(Metrics::new()),
            opened: Instant::now(),
        };
        let mut u = UploadHandle::start(
            sealer,
            pool.clone(),
            Box::new(Discard(Arc::new(AtomicU64::new(0)))),
            record,
            ReorderLimits {
                window: 1 << 20,
                max_held: 1024,
                budget: crate::budget::MemoryBudget::new(16 << 20),
            },
            "/o".into(),
            Arc::new(InFlight::default()),
            false,
        );
        for (i, piece) in data.chunks(64 << 10).enumerate() {
            u.write_pieces((i * (64 << 10)) as u64, &[piece])
                .await
                .unwrap();
        }
        u.commit().await.unwrap().unwrap()
    }

    /// Every buffer an upload takes goes back to the pool, and no upload adds one: the idle
    /// pool stays the size one upload needs however many follow (it used to grow by the first
    /// part's buffer per upload).
    #[tokio::test]
    async fn the_buffer_pool_does_not_grow_across_uploads() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(AuditLog::open(&dir.path().join("audit.log")).unwrap());
        let pool = BufferPool::new(64);
        let data = vec![5u8; 3 * PART_SIZE + 12_345];
        // commit returns the plaintext size stored.
        assert_eq!(one_upload(&pool, &log, &data).await, data.len() as u64);
        let after_first = pool.idle();
        assert!(after_first >= 1, "buffers came back");
        for _ in 0..5 {
            assert_eq!(one_upload(&pool, &log, &data).await, data.len() as u64);
        }
        assert_eq!(pool.idle(), after_first);
    }
}
