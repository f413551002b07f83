//! One S3 part (or single-part object) as the list of sealed buffers the transfer layer handed
//! over. The buffers go to the HTTP client as they are: gathering them into one contiguous part
//! would copy every uploaded byte once more (a tenth of the gateway's CPU in the profile).

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_types::body::SdkBody;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// Sealed bytes in the order they were written.
#[derive(Debug, Default, Clone)]
pub(super) struct PartBody {
    chunks: Vec<Bytes>,
    len: usize,
}

impl PartBody {
    pub fn push(&mut self, chunk: Bytes) {
        self.len += chunk.len();
        if !chunk.is_empty() {
            self.chunks.push(chunk);
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// CRC32C over all chunks, as S3's `x-amz-checksum-crc32c` wants it (big-endian, base64).
    pub fn crc32c(&self) -> u32 {
        let mut digest = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi);
        for c in &self.chunks {
            digest.update(c);
        }
        digest.finalize() as u32
    }

    /// Lowercase hex SHA-256 over all chunks (the SigV4 payload hash).
    pub fn sha256_hex(&self) -> String {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for c in &self.chunks {
            ctx.update(c);
        }
        hex::encode(ctx.finish())
    }

    /// The request body. Retryable: a retry replays the same buffers (reference-counted, not
    /// copied).
    pub fn into_byte_stream(self) -> ByteStream {
        let chunks = self.chunks;
        let len = self.len as u64;
        ByteStream::new(SdkBody::retryable(move || {
            SdkBody::from_body_1_x(Chunks {
                queue: chunks.iter().cloned().collect(),
                remaining: len,
            })
        }))
    }
}

/// An http-body over the chunks, with an exact size so the request carries a Content-Length.
struct Chunks {
    queue: VecDeque<Bytes>,
    remaining: u64,
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let next = self.queue.pop_front();
        if let Some(chunk) = &next {
            self.remaining -= chunk.len() as u64;
        }
        Poll::Ready(next.map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        self.queue.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

/// The CRC32C of `a ++ b` from those of `a` and `b` (the whole object's, from its parts').
pub fn crc32c_combine(crc_a: u32, crc_b: u32, len_b: usize) -> u32 {
    crc_fast::checksum_combine(
        crc_fast::CrcAlgorithm::Crc32Iscsi,
        u64::from(crc_a),
        u64::from(crc_b),
        len_b as u64,
    ) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(parts: &[&'static [u8]]) -> PartBody {
        let mut b = PartBody::default();
        for p in parts {
            b.push(Bytes::from_static(p));
        }
        b
    }

    /// CRC-32C the slow, obvious way (reflected polynomial 0x82F63B78), to check crc-fast's.
    fn bitwise_crc32c(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0x82F6_3B78
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn crc32c_is_castagnoli_on_any_split() {
        // The catalogue's check value for CRC-32/ISCSI.
        assert_eq!(body(&[b"123456789"]).crc32c(), 0xe306_9283);
        assert_eq!(PartBody::default().crc32c(), 0);
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let want = bitwise_crc32c(&data);
        for cut in [1, 15, 4096, 65_552, 299_999] {
            let mut b = PartBody::default();
            b.push(Bytes::copy_from_slice(&data[..cut]));
            b.push(Bytes::copy_from_slice(&data[cut..]));
            assert_eq!(b.crc32c(), want, "cut at {cut}");
            let (x, y) = (&data[..cut], &data[cut..]);
            assert_eq!(
                crc32c_combine(bitwise_crc32c(x), bitwise_crc32c(y), y.len()),
                want,
                "combined at {cut}"
            );
        }
    }

    #[test]
    fn checksums_equal_those_of_the_joined_bytes() {
        let b = body(&[b"hello ", b"", b"sealed ", b"world"]);
        let joined = b"hello sealed world";
        assert_eq!(b.len(), joined.len());
        assert_eq!(b.crc32c(), bitwise_crc32c(joined));
        assert_eq!(
            b.sha256_hex(),
            hex::encode(ring::digest::digest(&ring::digest::SHA256, joined))
        );
        // SigV4's published hash of the empty payload.
        assert_eq!(
            PartBody::default().sha256_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[tokio::test]
    async fn the_stream_replays_every_byte_in_order_with_an_exact_length() {
        let b = body(&[b"one,", b"two,", b"three"]);
        let stream = b.clone().into_byte_stream();
        assert_eq!(stream.size_hint(), (13, Some(13)));
        let sdk = stream.into_inner();
        // What a retry does: rebuild the body (from the same buffers) and send it again.
        let retry = sdk.try_clone().expect("a part body must be retryable");
        for body in [sdk, retry] {
            let bytes = ByteStream::new(body).collect().await.unwrap().into_bytes();
            assert_eq!(&bytes[..], b"one,two,three");
        }
        drop(b);
    }
}
