//! Downloads: reads served from windows of ranged GETs, fetched ahead concurrently.

use std::collections::VecDeque;
use std::sync::Arc;

use async_trait::async_trait;

use crate::storage::s3::{S3Error, S3Reader};
use crate::storage::{ObjectReader, StorageError};

/// Ranged GETs fetch this much (whole segments) at a time; downloads read sequentially.
const READ_WINDOW: usize = 4 << 20;

/// Serves reads from one ranged GET of up to [`READ_WINDOW`] bytes, so a sequential download of
/// 64 KiB segments costs one request per window, not one per segment. While a window is being
/// read, the next [`READ_AHEAD`] are fetched in the background, concurrently: one ranged GET at a
/// time ran at about 100 MB/s through TLS on loopback, well below what the store serves to
/// several (docs/benchmarks.md). Memory per download: at most `1 + READ_AHEAD` windows.
pub(super) struct WindowReader {
    reader: Arc<S3Reader>,
    at: u64,
    window: Vec<u8>,
    /// The windows after `window`, in order, being fetched: each one's offset and its task.
    next: VecDeque<(u64, ReadAhead)>,
}

/// Windows fetched ahead of the one being read.
const READ_AHEAD: usize = 2;

type ReadAhead = tokio::task::JoinHandle<Result<Vec<u8>, S3Error>>;

impl WindowReader {
    pub(super) fn new(reader: S3Reader) -> WindowReader {
        WindowReader {
            reader: Arc::new(reader),
            at: 0,
            window: Vec::new(),
            next: VecDeque::new(),
        }
    }

    fn prefetch(&mut self) {
        if self.window.is_empty() {
            return;
        }
        while self.next.len() < READ_AHEAD {
            let at = match self.next.back() {
                Some((at, _)) => at + READ_WINDOW as u64,
                None => self.at + self.window.len() as u64,
            };
            if at >= self.reader.len() {
                return;
            }
            let reader = self.reader.clone();
            self.next.push_back((
                at,
                tokio::spawn(async move { reader.read_at(at, READ_WINDOW).await }),
            ));
        }
    }

    fn drop_read_ahead(&mut self) {
        for (_, task) in self.next.drain(..) {
            task.abort();
        }
    }

    /// Serves `offset..end` from the tail of the current window and the first prefetched one
    /// (which then becomes current), if the read continues into it; `None` otherwise (the
    /// client jumped, or nothing was prefetched), and then the read-ahead is dropped.
    async fn continue_into_next(
        &mut self,
        offset: u64,
        end: u64,
    ) -> Result<Option<Vec<u8>>, StorageError> {
        let cached_end = self.at + self.window.len() as u64;
        let continues = matches!(self.next.front(), Some((at, _))
            if *at == cached_end && offset >= self.at && end <= at + READ_WINDOW as u64);
        if !continues {
            self.drop_read_ahead();
            return Ok(None);
        }
        let Some((next_at, task)) = self.next.pop_front() else {
            return Ok(None);
        };
        let next = task.await.map_err(|e| {
            StorageError::from(S3Error::Internal(format!("read-ahead task: {e}")))
        })??;
        if end > next_at + next.len() as u64 || next.len() < READ_WINDOW && !self.next.is_empty() {
            // The store returned less than asked: read directly, and refetch what follows.
            self.drop_read_ahead();
            return Ok(None);
        }
        // Segments straddle window boundaries: the read's head may still be in this window.
        let mut out = Vec::with_capacity((end - offset) as usize);
        if offset < next_at {
            out.extend_from_slice(&self.window[(offset - self.at) as usize..]);
        }
        let from = offset.max(next_at) - next_at;
        out.extend_from_slice(&next[from as usize..(end - next_at) as usize]);
        self.at = next_at;
        self.window = next;
        Ok(Some(out))
    }
}

impl Drop for WindowReader {
    fn drop(&mut self) {
        self.drop_read_ahead();
    }
}

#[async_trait]
impl ObjectReader for WindowReader {
    fn sealed_len(&self) -> u64 {
        self.reader.len()
    }

    async fn read_at(&mut self, offset: u64, len: usize) -> Result<Vec<u8>, StorageError> {
        let end = offset.saturating_add(len as u64).min(self.reader.len());
        if offset >= end {
            return Ok(Vec::new());
        }
        let cached_end = self.at + self.window.len() as u64;
        if offset >= self.at && end <= cached_end {
            let out = self.window[(offset - self.at) as usize..(end - self.at) as usize].to_vec();
            self.prefetch();
            return Ok(out);
        }
        if let Some(out) = self.continue_into_next(offset, end).await? {
            self.prefetch();
            return Ok(out);
        }
        self.window = self.reader.read_at(offset, len.max(READ_WINDOW)).await?;
        self.at = offset;
        self.prefetch();
        let to = ((end - offset) as usize).min(self.window.len());
        Ok(self.window[..to].to_vec())
    }
}
