//! Downloads: reads served from windows of ranged GETs, fetched ahead concurrently and charged
//! to the memory budget.

use std::collections::VecDeque;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};

use crate::budget::{MemoryBudget, Reservation};
use crate::storage::s3::S3Reader;
use crate::storage::{ObjectReader, StorageError};

/// The first window after a jump (and the window of a file read only at its start: a header
/// for a listing or a `stat`).
const FIRST_WINDOW: usize = 256 << 10;
/// Windows double while a client reads on sequentially, up to this. 8 MiB downloaded about 15 %
/// faster than 4 MiB on Garage over TLS for the same CPU (fewer requests; docs/benchmarks.md).
const MAX_WINDOW: usize = 8 << 20;
/// Windows fetched ahead of the one being read.
const READ_AHEAD: usize = 2;

/// Where windows come from: ranged GETs on S3, or memory in the tests.
#[async_trait]
pub(super) trait RangeSource: Send + Sync + 'static {
    fn len(&self) -> u64;
    /// Up to `len` bytes at `offset`: exactly that many unless the object ends first, in `buf`
    /// (cleared first; its allocation is reused where it is large enough).
    async fn fetch(&self, offset: u64, len: usize, buf: BytesMut) -> Result<Bytes, StorageError>;
}

#[async_trait]
impl RangeSource for S3Reader {
    fn len(&self) -> u64 {
        S3Reader::len(self)
    }

    async fn fetch(&self, offset: u64, len: usize, buf: BytesMut) -> Result<Bytes, StorageError> {
        Ok(self.read_into(offset, len, buf).await?)
    }
}

/// Serves reads from one ranged GET at a time, so a sequential download of 64 KiB segments
/// costs one request per window, not one per segment, and hands out slices of the window (no
/// copy). Once a client reads on from where it started, the next [`READ_AHEAD`] windows are
/// fetched in the background, concurrently: one ranged GET at a time ran at about 100 MB/s
/// through TLS on loopback, well below what the store serves to several (docs/benchmarks.md).
///
/// Every window fetched ahead holds a reservation of the read-ahead budget, and the current one
/// too where the budget allows; without room a read fetches only what it asks for. Windows
/// start at 256 KiB and double up to 8 MiB while the client keeps reading, so a client that
/// reads a header or the first bytes of a file costs 256 KiB, and a full-speed download at most
/// 24 MiB. A window's buffer is reused for a later one once no slice of it is left: a fresh
/// multi-MiB allocation per window made the kernel fault in and zero 1 GiB of pages per GiB
/// downloaded, which cost more CPU than the decryption.
pub(super) struct WindowReader<S: RangeSource = S3Reader> {
    source: Arc<S>,
    budget: MemoryBudget,
    at: u64,
    window: Bytes,
    _window_held: Option<Reservation>,
    /// The length of the next window fetched ahead.
    ahead_len: usize,
    /// The windows after `window`, in order, being fetched.
    next: VecDeque<Ahead>,
    /// Buffers of windows read to the end, for the next fetches. Held only between a window's
    /// end and the fetch that reuses it (dropped when the budget has no room for that fetch).
    spare: Vec<BytesMut>,
}

struct Ahead {
    at: u64,
    len: usize,
    task: tokio::task::JoinHandle<Result<Bytes, StorageError>>,
    held: Reservation,
}

impl<S: RangeSource> WindowReader<S> {
    pub(super) fn new(source: S, budget: MemoryBudget) -> WindowReader<S> {
        WindowReader {
            source: Arc::new(source),
            budget,
            at: 0,
            window: Bytes::new(),
            _window_held: None,
            ahead_len: FIRST_WINDOW,
            next: VecDeque::new(),
            spare: Vec::new(),
        }
    }

    /// Keeps `old`'s buffer for a later fetch, if nothing else holds a slice of it; at most
    /// `READ_AHEAD + 1`, the largest.
    fn recycle(&mut self, old: Bytes) {
        if let Ok(buf) = old.try_into_mut() {
            self.spare.push(buf);
            if self.spare.len() > READ_AHEAD + 1 {
                self.spare.sort_by_key(|b| std::cmp::Reverse(b.capacity()));
                self.spare.truncate(READ_AHEAD + 1);
            }
        }
    }

    /// A buffer for a fetch of `len` bytes: a spare one large enough, or a new one.
    fn buffer(&mut self, len: usize) -> BytesMut {
        match self.spare.iter().position(|b| b.capacity() >= len) {
            Some(i) => self.spare.swap_remove(i),
            None => BytesMut::new(),
        }
    }

    fn window_end(&self) -> u64 {
        self.at + self.window.len() as u64
    }

    /// Starts fetching the windows after the current one, as far as the budget allows.
    fn prefetch(&mut self) {
        while self.next.len() < READ_AHEAD && !self.window.is_empty() {
            let at = self
                .next
                .back()
                .map_or(self.window_end(), |a| a.at + a.len as u64);
            let len = (self.source.len().saturating_sub(at)).min(self.ahead_len as u64) as usize;
            if len == 0 {
                return;
            }
            let Some(held) = self.budget.try_reserve(len) else {
                self.spare.clear();
                return;
            };
            let buf = self.buffer(len);
            let source = self.source.clone();
            let task = tokio::spawn(async move { source.fetch(at, len, buf).await });
            self.next.push_back(Ahead {
                at,
                len,
                task,
                held,
            });
            self.ahead_len = (self.ahead_len * 2).min(MAX_WINDOW);
        }
    }

    fn drop_read_ahead(&mut self) {
        for a in self.next.drain(..) {
            a.task.abort();
        }
    }

    /// Serves `offset..end` from the tail of the current window and the first window fetched
    /// ahead (which then becomes current), if the read continues into it; `None` otherwise (the
    /// client jumped, or nothing was fetched ahead), and then the read-ahead is dropped.
    async fn continue_into_next(
        &mut self,
        offset: u64,
        end: u64,
    ) -> Result<Option<Bytes>, StorageError> {
        let continues = matches!(self.next.front(), Some(a)
            if a.at == self.window_end() && offset >= self.at && end <= a.at + a.len as u64);
        let Some(ahead) = self.next.pop_front().filter(|_| continues) else {
            self.drop_read_ahead();
            return Ok(None);
        };
        let next = ahead.task.await.map_err(|e| StorageError::Backend {
            op: "GetObject",
            detail: format!("read-ahead task: {e}"),
        })??;
        if end > ahead.at + next.len() as u64 {
            // The store returned less than asked: read directly, and refetch what follows.
            self.drop_read_ahead();
            return Ok(None);
        }
        let from = (offset.max(ahead.at) - ahead.at) as usize;
        let to = (end - ahead.at) as usize;
        let out = if offset >= ahead.at {
            next.slice(from..to)
        } else {
            // A read straddling two windows: the one copy this path makes.
            let mut joined = Vec::with_capacity((end - offset) as usize);
            joined.extend_from_slice(&self.window[(offset - self.at) as usize..]);
            joined.extend_from_slice(&next[..to]);
            Bytes::from(joined)
        };
        self.at = ahead.at;
        let old = std::mem::replace(&mut self.window, next);
        self.recycle(old);
        self._window_held = Some(ahead.held);
        Ok(Some(out))
    }

    /// A read that is not the continuation of the last one: a fresh window at `offset`, as
    /// large as the budget allows, and no read-ahead until the client reads on.
    async fn jump(&mut self, offset: u64, len: usize) -> Result<(), StorageError> {
        self.drop_read_ahead();
        let old = std::mem::take(&mut self.window);
        self.recycle(old);
        self._window_held = None;
        let want = len.max(FIRST_WINDOW);
        let (held, fetch) = match self.budget.try_reserve(want) {
            Some(r) => (Some(r), want),
            None => {
                self.spare.clear();
                (None, len)
            }
        };
        let buf = self.buffer(fetch);
        self.window = self.source.fetch(offset, fetch, buf).await?;
        self._window_held = held;
        self.at = offset;
        self.ahead_len = (FIRST_WINDOW * 2).min(MAX_WINDOW);
        Ok(())
    }

    async fn read(&mut self, offset: u64, len: usize) -> Result<Bytes, StorageError> {
        let end = offset.saturating_add(len as u64).min(self.source.len());
        if offset >= end {
            return Ok(Bytes::new());
        }
        if offset >= self.at && end <= self.window_end() {
            let out = self
                .window
                .slice((offset - self.at) as usize..(end - self.at) as usize);
            self.prefetch();
            return Ok(out);
        }
        if let Some(out) = self.continue_into_next(offset, end).await? {
            self.prefetch();
            return Ok(out);
        }
        self.jump(offset, len).await?;
        let to = ((end - offset) as usize).min(self.window.len());
        Ok(self.window.slice(..to))
    }
}

impl<S: RangeSource> Drop for WindowReader<S> {
    fn drop(&mut self) {
        self.drop_read_ahead();
    }
}

#[async_trait]
impl<S: RangeSource> ObjectReader for WindowReader<S> {
    fn sealed_len(&self) -> u64 {
        self.source.len()
    }

    async fn read_at(&mut self, offset: u64, len: usize) -> Result<Bytes, StorageError> {
        self.read(offset, len).await
    }
}

#[cfg(test)]
#[path = "reader_tests.rs"]
mod tests;
