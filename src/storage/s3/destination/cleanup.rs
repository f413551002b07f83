//! Cleaning up multipart uploads: the ones an earlier run of this instance left (its upload
//! journal), and the ones whose abort failed or whose create never answered, retried in the
//! background until the store confirms.

use std::time::SystemTime;

use super::{Inner, S3Destination};
use crate::storage::s3::S3Error;

/// Clean listings (one per retry round, so about a minute) before a lost upload is given up on.
const LOST_CONFIRMATIONS: u8 = 30;

impl S3Destination {
    /// Aborts the multipart uploads an earlier run of this instance left open (its upload
    /// journal's unfinished entries for this destination), and only those: other instances
    /// writing below the same prefixes keep theirs. Returns how many were aborted; what cannot
    /// be aborted now is retried in the background.
    pub async fn sweep_unfinished(&self, pending: Vec<crate::storage::s3::Pending>) -> usize {
        let t = &self.inner.target;
        let mut aborted = 0;
        for p in pending {
            let (result, upload) = match &p.upload_id {
                Some(id) => (
                    crate::storage::s3::writer::try_abort(t, &p.key, id)
                        .await
                        .map(|()| 1),
                    crate::storage::s3::OrphanId::Known(id.clone()),
                ),
                // The create never answered: any upload of this key it may have made started
                // after the journal entry did.
                None => {
                    let since = p.began - std::time::Duration::from_secs(1);
                    (
                        self.inner.abort_unknown_uploads(&p.key, since).await,
                        crate::storage::s3::OrphanId::Lost {
                            since,
                            confirmations: LOST_CONFIRMATIONS,
                        },
                    )
                }
            };
            match result {
                Ok(n) => {
                    aborted += n;
                    t.journal_end(Some(p.entry));
                }
                Err(e) => {
                    tracing::warn!(destination = %self.inner.name, error = %e, "a multipart upload left by an earlier run cannot be aborted yet; retrying in the background");
                    if let Ok(mut o) = t.orphans.lock() {
                        o.push(crate::storage::s3::Orphan {
                            key: p.key.clone(),
                            upload,
                            entry: Some(p.entry),
                        });
                    }
                }
            }
        }
        if aborted > 0 {
            tracing::info!(destination = %self.inner.name, aborted, "aborted multipart uploads an earlier run of this instance left");
        }
        aborted
    }

    /// Multipart uploads whose abort is still pending (store unreachable).
    pub fn pending_aborts(&self) -> usize {
        self.inner
            .target
            .orphans
            .lock()
            .map(|o| o.len())
            .unwrap_or(0)
    }
}

impl Inner {
    pub(super) async fn retry_orphans(&self) {
        let pending: Vec<crate::storage::s3::Orphan> = match self.target.orphans.lock() {
            Ok(mut o) => std::mem::take(&mut *o),
            Err(_) => return,
        };
        for orphan in pending {
            let keep = match &orphan.upload {
                crate::storage::s3::OrphanId::Known(id) => {
                    match crate::storage::s3::writer::try_abort(&self.target, &orphan.key, id).await
                    {
                        Ok(()) => {
                            tracing::info!(destination = %self.name, "pending multipart upload aborted");
                            self.target.journal_end(orphan.entry);
                            None
                        }
                        Err(e) => {
                            tracing::debug!(destination = %self.name, error = %e, "abort still failing");
                            Some(orphan)
                        }
                    }
                }
                crate::storage::s3::OrphanId::Lost {
                    since,
                    confirmations,
                } => match self.abort_unknown_uploads(&orphan.key, *since).await {
                    // Keep looking a little while after the store answers again: a request it
                    // was holding may be processed only after it recovered.
                    Ok(n) => {
                        if n > 0 {
                            tracing::info!(destination = %self.name, aborted = n, "aborted a multipart upload whose creation had timed out");
                        }
                        if *confirmations >= LOST_CONFIRMATIONS {
                            self.target.journal_end(orphan.entry);
                        }
                        (*confirmations < LOST_CONFIRMATIONS).then(|| crate::storage::s3::Orphan {
                            key: orphan.key.clone(),
                            upload: crate::storage::s3::OrphanId::Lost {
                                since: *since,
                                confirmations: confirmations + 1,
                            },
                            entry: orphan.entry,
                        })
                    }
                    Err(e) => {
                        tracing::debug!(destination = %self.name, error = %e, "cannot list multipart uploads yet");
                        Some(orphan)
                    }
                },
            };
            if let Some(o) = keep
                && let Ok(mut list) = self.target.orphans.lock()
            {
                list.push(o);
            }
        }
    }

    /// Aborts the multipart uploads of exactly `key`, started after `since`, that no writer of
    /// this process owns.
    async fn abort_unknown_uploads(&self, key: &str, since: SystemTime) -> Result<usize, S3Error> {
        let t = &self.target;
        let out = t
            .client
            .list_multipart_uploads()
            .bucket(&t.bucket)
            .prefix(key)
            .send()
            .await
            .map_err(|e| S3Error::request("ListMultipartUploads", e))?;
        let mut aborted = 0;
        for u in out.uploads() {
            let (Some(k), Some(id)) = (u.key(), u.upload_id()) else {
                continue;
            };
            let recent = u
                .initiated()
                .and_then(|d| SystemTime::try_from(*d).ok())
                .is_none_or(|at| at >= since);
            let owned = t
                .active
                .lock()
                .map(|a| a.contains(id) || crate::storage::s3::writer::creating(&a, key))
                .unwrap_or(true);
            if k == key && recent && !owned {
                crate::storage::s3::writer::try_abort(t, k, id).await?;
                aborted += 1;
            }
        }
        Ok(aborted)
    }
}
