//! What a client offered in its key exchange, for the log line an operator needs when a client
//! cannot connect because its algorithms do not meet ours.
//!
//! russh reports a failed negotiation as `Error::NoCommonAlgo`, with both lists of the one kind
//! that failed only. To show the whole offer (kex, host keys, ciphers, MACs), [`Recorder`] keeps
//! a copy of the start of the connection: the client's version line and its first binary
//! packet, which is KEXINIT and travels in the clear (RFC 4253, 7.1). It stops recording there,
//! so the data path afterwards is a plain pass-through.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::Buf;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// RFC 4253, 6.1: implementations must accept packets of 35000 bytes; a KEXINIT is ~2 KiB.
const MAX_FIRST_PACKET: usize = 35_000;
/// Version line (255 bytes at most, RFC 4253 4.2) and a few lines some clients put before it.
const MAX_LINES: usize = 8 * 1024;
const SSH_MSG_KEXINIT: u8 = 20;

/// The start of the client's byte stream, published once the first packet is complete.
pub type Captured = Arc<OnceLock<Vec<u8>>>;

/// A pass-through stream that keeps a copy of what the client sends up to the end of its first
/// binary packet (at most [`MAX_LINES`] + [`MAX_FIRST_PACKET`] bytes), then only forwards.
pub struct Recorder<S> {
    inner: S,
    /// `None` once recording is over.
    recording: Option<Vec<u8>>,
    captured: Captured,
}

impl<S> Recorder<S> {
    pub fn new(inner: S) -> (Recorder<S>, Captured) {
        let captured = Captured::default();
        let r = Recorder {
            inner,
            recording: Some(Vec::new()),
            captured: captured.clone(),
        };
        (r, captured)
    }

    fn record(&mut self, data: &[u8]) {
        let Some(buf) = self.recording.as_mut() else {
            return;
        };
        buf.extend_from_slice(data);
        match first_packet_end(buf) {
            Progress::Complete(end) => {
                buf.truncate(end);
                let done = self.recording.take().unwrap_or_default();
                let _ = self.captured.set(done);
            }
            Progress::Incomplete => {}
            // Not SSH as we expect it: russh will say so; nothing to keep.
            Progress::Unusable => self.recording = None,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Progress {
    Complete(usize),
    Incomplete,
    Unusable,
}

/// Where the first binary packet ends in `buf` (version line and all), if it is all there.
fn first_packet_end(buf: &[u8]) -> Progress {
    let mut at = 0;
    // Lines up to and including the one starting with "SSH-".
    loop {
        let Some(nl) = buf[at..].iter().position(|&b| b == b'\n') else {
            return if buf.len() > MAX_LINES {
                Progress::Unusable
            } else {
                Progress::Incomplete
            };
        };
        let line = &buf[at..at + nl];
        at += nl + 1;
        if line.starts_with(b"SSH-") {
            break;
        }
        if at > MAX_LINES {
            return Progress::Unusable;
        }
    }
    let Some(len) = buf.get(at..at + 4) else {
        return Progress::Incomplete;
    };
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    if len > MAX_FIRST_PACKET {
        return Progress::Unusable;
    }
    let end = at + 4 + len;
    if buf.len() >= end {
        Progress::Complete(end)
    } else {
        Progress::Incomplete
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Recorder<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.recording.is_some() && matches!(r, Poll::Ready(Ok(()))) {
            this.record(&buf.filled()[before..]);
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Recorder<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A client's KEXINIT, client-to-server directions (what decides whether we can talk).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOffer {
    /// The client's version line, e.g. `SSH-2.0-libssh2_1.10.0`.
    pub version: String,
    pub kex: Vec<String>,
    pub host_keys: Vec<String>,
    pub ciphers: Vec<String>,
    pub macs: Vec<String>,
    pub compression: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OfferError {
    #[error("the client's first packet was not recorded")]
    NotRecorded,
    #[error("the client's first packet is not a KEXINIT (message type {0})")]
    NotKexinit(u8),
    #[error("the client's KEXINIT ends early")]
    Truncated,
}

impl ClientOffer {
    /// Parses what [`Recorder`] captured: version line(s), then the first binary packet.
    pub fn parse(captured: &[u8]) -> Result<ClientOffer, OfferError> {
        let Progress::Complete(end) = first_packet_end(captured) else {
            return Err(OfferError::NotRecorded);
        };
        let mut lines = captured[..end].split(|&b| b == b'\n');
        let mut consumed = 0;
        let version = loop {
            let line = lines.next().ok_or(OfferError::NotRecorded)?;
            consumed += line.len() + 1;
            if line.starts_with(b"SSH-") {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                break String::from_utf8_lossy(line).into_owned();
            }
        };
        let mut p = &captured[consumed..end];
        let len = p.try_get_u32().map_err(|_| OfferError::Truncated)? as usize;
        let padding = p.try_get_u8().map_err(|_| OfferError::Truncated)? as usize;
        let payload_len = len.checked_sub(1 + padding).ok_or(OfferError::Truncated)?;
        let mut payload = p.get(..payload_len).ok_or(OfferError::Truncated)?;
        let kind = payload.try_get_u8().map_err(|_| OfferError::Truncated)?;
        if kind != SSH_MSG_KEXINIT {
            return Err(OfferError::NotKexinit(kind));
        }
        if payload.remaining() < 16 {
            return Err(OfferError::Truncated);
        }
        payload.advance(16); // cookie
        let mut lists = Vec::with_capacity(8);
        for _ in 0..8 {
            lists.push(name_list(&mut payload)?);
        }
        let mut lists = lists.into_iter();
        let mut next = || lists.next().unwrap_or_default();
        let (kex, host_keys, ciphers, _ciphers_s2c, macs, _macs_s2c, compression) =
            (next(), next(), next(), next(), next(), next(), next());
        Ok(ClientOffer {
            version,
            kex,
            host_keys,
            ciphers,
            macs,
            compression,
        })
    }
}

fn name_list(p: &mut &[u8]) -> Result<Vec<String>, OfferError> {
    let n = p.try_get_u32().map_err(|_| OfferError::Truncated)? as usize;
    let s = p.get(..n).ok_or(OfferError::Truncated)?;
    p.advance(n);
    Ok(String::from_utf8_lossy(s)
        .split(',')
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use tokio::io::AsyncReadExt;

    /// A client's opening bytes: version line, KEXINIT with these lists, then `after`.
    pub(crate) fn opening(version: &str, lists: [&str; 10], after: &[u8]) -> Vec<u8> {
        let mut payload = vec![SSH_MSG_KEXINIT];
        payload.extend_from_slice(&[7; 16]);
        for l in lists {
            payload.extend_from_slice(&(l.len() as u32).to_be_bytes());
            payload.extend_from_slice(l.as_bytes());
        }
        payload.extend_from_slice(&[0, 0, 0, 0, 0]); // first_kex_packet_follows, reserved
        let padding = 8 - (5 + payload.len()) % 8 + 4;
        let mut out = format!("{version}\r\n").into_bytes();
        out.extend_from_slice(&((1 + payload.len() + padding) as u32).to_be_bytes());
        out.push(padding as u8);
        out.extend_from_slice(&payload);
        out.extend_from_slice(&vec![0; padding]);
        out.extend_from_slice(after);
        out
    }

    /// libssh2 1.10's offer, as curl on Debian 12 sends it (abridged).
    pub(crate) const LIBSSH2: [&str; 10] = [
        "curve25519-sha256,ecdh-sha2-nistp256,diffie-hellman-group14-sha1",
        "ssh-ed25519,rsa-sha2-512,ssh-rsa",
        "aes128-ctr,aes192-ctr,aes256-ctr,aes256-cbc",
        "aes128-ctr,aes192-ctr,aes256-ctr,aes256-cbc",
        "hmac-sha2-256,hmac-sha2-512,hmac-sha1",
        "hmac-sha2-256,hmac-sha2-512,hmac-sha1",
        "none",
        "none",
        "",
        "",
    ];

    #[test]
    fn parses_the_client_to_server_lists() {
        let wire = opening("SSH-2.0-libssh2_1.10.0", LIBSSH2, b"");
        let o = ClientOffer::parse(&wire).unwrap();
        assert_eq!(o.version, "SSH-2.0-libssh2_1.10.0");
        assert_eq!(
            o.kex,
            [
                "curve25519-sha256",
                "ecdh-sha2-nistp256",
                "diffie-hellman-group14-sha1"
            ]
        );
        assert_eq!(o.host_keys, ["ssh-ed25519", "rsa-sha2-512", "ssh-rsa"]);
        assert_eq!(
            o.ciphers,
            ["aes128-ctr", "aes192-ctr", "aes256-ctr", "aes256-cbc"]
        );
        assert_eq!(o.macs, ["hmac-sha2-256", "hmac-sha2-512", "hmac-sha1"]);
        assert_eq!(o.compression, ["none"]);
    }

    #[test]
    fn other_first_packets_and_cut_captures_are_reported() {
        let mut wire = opening("SSH-2.0-x", LIBSSH2, b"");
        let type_at = wire.iter().position(|&b| b == b'\n').unwrap() + 1 + 5;
        wire[type_at] = 21;
        assert_eq!(ClientOffer::parse(&wire), Err(OfferError::NotKexinit(21)));
        let wire = opening("SSH-2.0-x", LIBSSH2, b"");
        assert_eq!(
            ClientOffer::parse(&wire[..wire.len() - 1]),
            Err(OfferError::NotRecorded)
        );
        assert_eq!(ClientOffer::parse(b""), Err(OfferError::NotRecorded));
    }

    /// Reads `wire` through a [`Recorder`] in reads of the given sizes.
    async fn record(wire: &[u8], reads: &[usize]) -> (Vec<u8>, Option<Vec<u8>>) {
        let (mut r, captured) = Recorder::new(wire);
        let mut got = Vec::new();
        let mut sizes = reads.iter().copied().chain(std::iter::repeat(4096));
        loop {
            let mut buf = vec![0; sizes.next().unwrap_or(1).max(1)];
            let n = r.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        (got, captured.get().cloned())
    }

    #[tokio::test]
    async fn recorder_keeps_version_and_first_packet_and_passes_everything_on() {
        let after = b"next packet bytes that are not kept";
        let wire = opening("SSH-2.0-OpenSSH_9.2", LIBSSH2, after);
        let (passed, captured) = record(&wire, &[3, 50, 1, 7]).await;
        assert_eq!(passed, wire, "a pass-through");
        let captured = captured.expect("the first packet was complete");
        assert_eq!(captured, wire[..wire.len() - after.len()]);
        assert_eq!(
            ClientOffer::parse(&captured).unwrap().version,
            "SSH-2.0-OpenSSH_9.2"
        );
    }

    #[tokio::test]
    async fn recorder_gives_up_on_what_is_not_ssh() {
        let junk = vec![b'x'; MAX_LINES + 10];
        assert_eq!(record(&junk, &[]).await.1, None);
        let mut huge = b"SSH-2.0-x\r\n".to_vec();
        huge.extend_from_slice(&(MAX_FIRST_PACKET as u32 + 1).to_be_bytes());
        huge.extend_from_slice(&[0; 64]);
        assert_eq!(record(&huge, &[]).await.1, None);
    }

    proptest! {
        /// Any bytes: parsing never panics.
        #[test]
        fn parse_never_panics(mut bytes in proptest::collection::vec(any::<u8>(), 0..600), cut in 0usize..600) {
            let _ = ClientOffer::parse(&bytes);
            let mut wire = opening("SSH-2.0-x", LIBSSH2, b"");
            let n = wire.len();
            let at = 16 + cut % (n - 16);
            wire.truncate(at);
            wire.append(&mut bytes);
            let _ = ClientOffer::parse(&wire);
        }
    }
}
