//! Ranged reads of a sealed object: a read at any offset fetches and opens only the segments
//! it overlaps. The last opened segment is kept, because clients read sequentially in pieces
//! smaller than a segment.

use bytes::BufMut;
use prometheus_client::metrics::counter::Counter;
use zeroize::Zeroizing;

use super::TransferError;
use crate::crypto::{ObjectKey, SEALED_SEGMENT_SIZE, SEGMENT_SIZE};
use crate::storage::ObjectReader;

pub struct DownloadHandle {
    reader: Box<dyn ObjectReader>,
    header_len: u64,
    key: ObjectKey,
    plaintext_len: u64,
    segments: u64,
    cache: Option<(u64, Zeroizing<Vec<u8>>)>,
    /// Plaintext bytes sent to clients (`eugate_transfer_bytes{direction="out"}`).
    bytes_out: Counter,
}

impl std::fmt::Debug for DownloadHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DownloadHandle")
            .field("plaintext_len", &self.plaintext_len)
            .finish_non_exhaustive()
    }
}

impl DownloadHandle {
    pub(crate) fn new(
        reader: Box<dyn ObjectReader>,
        header_len: u64,
        key: ObjectKey,
        bytes_out: Counter,
    ) -> Result<DownloadHandle, TransferError> {
        let sealed = reader.sealed_len();
        let plaintext_len = crate::crypto::plaintext_len(header_len, sealed)
            .map_err(|e| TransferError::Failure(format!("damaged object: {e}")))?;
        let body = sealed.saturating_sub(header_len);
        let segments = body.div_ceil(SEALED_SEGMENT_SIZE as u64).max(1);
        Ok(DownloadHandle {
            reader,
            header_len,
            key,
            plaintext_len,
            segments,
            cache: None,
            bytes_out,
        })
    }

    pub fn len(&self) -> u64 {
        self.plaintext_len
    }

    pub fn is_empty(&self) -> bool {
        self.plaintext_len == 0
    }

    /// Up to `len` plaintext bytes at `offset`; `None` at or past the end.
    pub async fn read(&mut self, offset: u64, len: u32) -> Result<Option<Vec<u8>>, TransferError> {
        let mut out = Vec::with_capacity(self.available(offset, len));
        Ok(self.read_into(offset, len, &mut out).await?.map(|_| out))
    }

    /// How many bytes a read of `len` at `offset` returns: what [`DownloadHandle::read_into`]
    /// appends, known before the read (an SFTP DATA reply states its length first).
    pub fn available(&self, offset: u64, len: u32) -> usize {
        let end = offset
            .saturating_add(u64::from(len))
            .min(self.plaintext_len);
        end.saturating_sub(offset) as usize
    }

    /// Appends up to `len` plaintext bytes at `offset` to `out`, straight from the opened
    /// segments, and returns how many ([`DownloadHandle::available`]); `None` at or past the
    /// end. On an error some bytes may have been appended: the caller takes them back.
    pub async fn read_into(
        &mut self,
        offset: u64,
        len: u32,
        out: &mut impl BufMut,
    ) -> Result<Option<usize>, TransferError> {
        if offset >= self.plaintext_len {
            return Ok(None);
        }
        let end = offset + self.available(offset, len) as u64;
        let seg = SEGMENT_SIZE as u64;
        let mut pos = offset;
        while pos < end {
            let index = pos / seg;
            let plain = self.segment(index).await?;
            let start = (pos - index * seg) as usize;
            let stop = ((end - index * seg) as usize).min(plain.len());
            if start >= stop {
                return Err(TransferError::Failure(
                    "damaged object: segment shorter than expected".into(),
                ));
            }
            out.put_slice(&plain[start..stop]);
            pos += (stop - start) as u64;
        }
        let n = (end - offset) as usize;
        self.bytes_out.inc_by(n as u64);
        Ok(Some(n))
    }

    async fn segment(&mut self, index: u64) -> Result<&[u8], TransferError> {
        let cached = matches!(&self.cache, Some((i, _)) if *i == index);
        if !cached {
            let start = self.header_len + index * SEALED_SEGMENT_SIZE as u64;
            // A slice of the reader's window: the one copy is the decryption's, into `plain`.
            let sealed = self
                .reader
                .read_at(start, SEALED_SEGMENT_SIZE)
                .await
                .map_err(TransferError::from)?;
            let last = index + 1 == self.segments;
            let mut plain = Zeroizing::new(Vec::with_capacity(SEGMENT_SIZE));
            self.key
                .open_segment(index, last, &sealed, &mut plain)
                .map_err(|e| TransferError::Failure(format!("object failed verification: {e}")))?;
            self.cache = Some((index, plain));
        }
        match &self.cache {
            Some((_, p)) => Ok(p.as_slice()),
            None => Err(TransferError::Failure("segment cache empty".into())),
        }
    }
}
