//! Parts too large for the memory budget. S3 allows 10,000 parts, so a 5 TiB object needs parts
//! of about 512 MiB and more: no budget of 64 MiB can hold one, and S3 needs each part's length
//! before its first byte while an SFTP upload's size is unknown until CLOSE. Such a part is
//! therefore spooled: its sealed buffers are written, as they arrive, to an unnamed temporary
//! file (ciphertext only; the kernel removes it when the last handle closes, crash or not), each
//! buffer charged to the budget only until it is written; the part is then sent from the file
//! in small reads. Its CRC32C (and SigV4 payload hash, without TLS) are computed on the way in.

use std::future::Future;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::task::JoinHandle;

use super::S3Error;

/// Bytes read from the spool file at once while sending. The budget reserved for a part in
/// flight ([`SEND_BUDGET`]) covers a few of these queued in the HTTP client and TLS.
const READ_CHUNK: usize = 256 * 1024;
/// Budget one spooled part holds while it is sent.
pub(super) const SEND_BUDGET: usize = 4 * READ_CHUNK;

fn io(what: &'static str, e: std::io::Error) -> S3Error {
    S3Error::Internal(format!("spool file ({what}): {e}"))
}

/// A part being written to its spool file.
pub(super) struct SpoolPart {
    file: Arc<std::fs::File>,
    len: u64,
    crc: crc_fast::Digest,
    /// The SigV4 payload hash, when requests are signed over it (no TLS).
    sha: Option<ring::digest::Context>,
}

/// A spooled part, complete: what the request needs.
pub(super) struct Spooled {
    file: Arc<std::fs::File>,
    pub len: u64,
    pub crc: u32,
    pub sha256_hex: Option<String>,
}

impl SpoolPart {
    /// A new, empty spool file in the system's temporary directory (`TMPDIR`).
    pub async fn create(signed_payload: bool) -> Result<SpoolPart, S3Error> {
        let file = tokio::task::spawn_blocking(tempfile::tempfile)
            .await
            .map_err(|e| io("create", std::io::Error::other(e)))?
            .map_err(|e| io("create", e))?;
        Ok(SpoolPart {
            file: Arc::new(file),
            len: 0,
            crc: crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi),
            sha: signed_payload.then(|| ring::digest::Context::new(&ring::digest::SHA256)),
        })
    }

    pub fn len(&self) -> usize {
        usize::try_from(self.len).unwrap_or(usize::MAX)
    }

    /// Appends `data` (hashing it on the way); the buffer is dropped once written.
    pub async fn push(&mut self, data: Bytes) -> Result<(), S3Error> {
        let file = self.file.clone();
        let at = self.len;
        let (mut crc, mut sha) = (self.crc, self.sha.take());
        let (crc, sha, written) = tokio::task::spawn_blocking(move || {
            crc.update(&data);
            if let Some(s) = &mut sha {
                s.update(&data);
            }
            let written = file.write_all_at(&data, at).map(|()| data.len() as u64);
            (crc, sha, written)
        })
        .await
        .map_err(|e| io("write", std::io::Error::other(e)))?;
        self.crc = crc;
        self.sha = sha;
        self.len += written.map_err(|e| io("write", e))?;
        Ok(())
    }

    pub fn finish(self) -> Spooled {
        Spooled {
            file: self.file,
            len: self.len,
            crc: self.crc.finalize() as u32,
            sha256_hex: self.sha.map(|s| hex::encode(s.finish())),
        }
    }
}

impl Spooled {
    /// The request body, read from the file in chunks. Retryable: a retry reads it again.
    pub fn into_byte_stream(self) -> ByteStream {
        let (file, len) = (self.file, self.len);
        ByteStream::new(SdkBody::retryable(move || {
            SdkBody::from_body_1_x(FileChunks {
                file: file.clone(),
                offset: 0,
                end: len,
                reading: None,
            })
        }))
    }
}

/// An http-body over a byte range of the spool file, with an exact size (Content-Length).
struct FileChunks {
    file: Arc<std::fs::File>,
    offset: u64,
    end: u64,
    reading: Option<JoinHandle<std::io::Result<Bytes>>>,
}

impl Body for FileChunks {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.reading.is_none() {
            if this.offset >= this.end {
                return Poll::Ready(None);
            }
            let n = (this.end - this.offset).min(READ_CHUNK as u64) as usize;
            let (file, at) = (this.file.clone(), this.offset);
            this.reading = Some(tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; n];
                file.read_exact_at(&mut buf, at)?;
                Ok(Bytes::from(buf))
            }));
        }
        let Some(reading) = this.reading.as_mut() else {
            return Poll::Ready(None);
        };
        let done = match Pin::new(reading).poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(done) => done,
        };
        this.reading = None;
        Poll::Ready(Some(match done {
            Ok(Ok(chunk)) => {
                this.offset += chunk.len() as u64;
                Ok(Frame::data(chunk))
            }
            Ok(Err(e)) => Err(e),
            Err(join) => Err(std::io::Error::other(join)),
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.reading.is_none() && self.offset >= self.end
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.end - self.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_spooled_part_replays_its_bytes_with_their_checksums() {
        let data: Vec<u8> = (0..700_000u32).map(|i| (i * 13 + i / 7) as u8).collect();
        let mut part = SpoolPart::create(true).await.unwrap();
        let mut memory = super::super::body::PartBody::default();
        for piece in data.chunks(65_552) {
            part.push(Bytes::copy_from_slice(piece)).await.unwrap();
            memory.push(Bytes::copy_from_slice(piece));
        }
        assert_eq!(part.len(), data.len());
        let spooled = part.finish();
        assert_eq!(spooled.crc, memory.crc32c(), "the same CRC32C as in memory");
        assert_eq!(spooled.sha256_hex, Some(memory.sha256_hex()));
        let stream = spooled.into_byte_stream();
        assert_eq!(stream.size_hint(), (700_000, Some(700_000)));
        let sdk = stream.into_inner();
        let retry = sdk.try_clone().expect("a spooled body must be retryable");
        for body in [sdk, retry] {
            let bytes = ByteStream::new(body).collect().await.unwrap().into_bytes();
            assert!(bytes[..] == data[..], "every byte, in order");
        }
    }

    #[tokio::test]
    async fn without_signing_no_payload_hash_is_computed() {
        let mut part = SpoolPart::create(false).await.unwrap();
        part.push(Bytes::from_static(b"sealed")).await.unwrap();
        let s = part.finish();
        assert_eq!(s.sha256_hex, None);
        assert_eq!(s.len, 6);
    }
}
