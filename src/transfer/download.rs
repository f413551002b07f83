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
            // One buffer for every segment of the download: it holds a sealed segment (the
            // ciphertext is copied in, then opened in place), so it never grows, and it is
            // zeroized once, when the download ends. A fresh `SEGMENT_SIZE` buffer per segment
            // was reallocated (copied) to fit the tag, then zeroized on drop: two more passes
            // over every byte downloaded.
            let mut plain = match self.cache.take() {
                Some((_, mut p)) => {
                    p.clear();
                    p
                }
                None => Zeroizing::new(Vec::with_capacity(SEALED_SEGMENT_SIZE)),
            };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{Header, ObjectContext, Sealer};
    use crate::storage::StorageError;

    struct Memory(bytes::Bytes);

    #[async_trait::async_trait]
    impl ObjectReader for Memory {
        fn sealed_len(&self) -> u64 {
            self.0.len() as u64
        }

        async fn read_at(&mut self, offset: u64, len: usize) -> Result<bytes::Bytes, StorageError> {
            let start = (offset as usize).min(self.0.len());
            Ok(self.0.slice(start..(start + len).min(self.0.len())))
        }
    }

    /// A download of `plaintext`, sealed under a throwaway key.
    fn download_of(plaintext: &[u8]) -> DownloadHandle {
        let kek = [7u8; 32];
        let ctx = ObjectContext {
            tenant: "t".into(),
            key_id: "k".into(),
            key_version: 1,
            object_id: [1; 16],
            external: None,
        };
        let mut sealer = Sealer::new(&kek, &ctx).unwrap();
        let mut object = sealer.header().to_vec();
        sealer.push(plaintext, &mut object).unwrap();
        sealer.finish(&mut object).unwrap();
        let header = Header::parse(&object).unwrap();
        let key = header.unlock(&kek).unwrap();
        let reader = Box::new(Memory(object.into()));
        DownloadHandle::new(reader, header.encoded_len() as u64, key, Counter::default()).unwrap()
    }

    #[tokio::test]
    async fn segments_open_into_one_buffer_that_never_grows() {
        let plaintext: Vec<u8> = (0..SEGMENT_SIZE * 3 + 1000)
            .map(|i| (i % 251) as u8)
            .collect();
        let mut d = download_of(&plaintext);
        let mut got = Vec::new();
        let mut buffer = None;
        let mut offset = 0u64;
        // 32 KiB reads, as OpenSSH's sftp makes them: two per segment.
        while let Some(chunk) = d.read(offset, 32 << 10).await.unwrap() {
            offset += chunk.len() as u64;
            got.extend_from_slice(&chunk);
            let (_, p) = d.cache.as_ref().unwrap();
            assert_eq!(
                p.capacity(),
                SEALED_SEGMENT_SIZE,
                "the buffer holds a sealed segment"
            );
            let at = p.as_ptr();
            assert_eq!(
                *buffer.get_or_insert(at),
                at,
                "the same buffer for every segment"
            );
        }
        assert!(got == plaintext);
    }

    #[tokio::test]
    async fn a_segment_that_fails_verification_fails_every_read_and_its_neighbour_still_opens() {
        let plaintext: Vec<u8> = (0..SEGMENT_SIZE * 2).map(|i| (i % 241) as u8).collect();
        let mut d = download_of(&plaintext);
        assert!(d.read(0, 32 << 10).await.unwrap().is_some());
        // The store hands back segment 1 with one bit flipped.
        let len = d.reader.sealed_len() as usize;
        let mut sealed = d.reader.read_at(0, len).await.unwrap().to_vec();
        sealed[d.header_len as usize + SEALED_SEGMENT_SIZE + 5] ^= 1;
        d.reader = Box::new(Memory(sealed.into()));
        for _ in 0..2 {
            let e = d.read(SEGMENT_SIZE as u64, 32 << 10).await.unwrap_err();
            assert!(e.to_string().contains("verification"), "{e}");
        }
        let first = d.read(32 << 10, 32 << 10).await.unwrap().unwrap();
        assert!(first == plaintext[32 << 10..64 << 10]);
    }
}
