//! PROXY headers where none may come: from a peer that is not a listed balancer, a connection
//! that opens with one is refused (see the parent module).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{HeaderError, ProxyProtocol, SIGNATURE, V1_PREFIX};

/// Which PROXY header `start` (a connection's first bytes) begins with, if any.
pub fn signature_of(start: &[u8]) -> Option<&'static str> {
    if start.starts_with(SIGNATURE) {
        Some("v2")
    } else if start.starts_with(V1_PREFIX) {
        Some("v1")
    } else {
        None
    }
}

/// Which PROXY header a text protocol's first line (`line`, without its line end) and the
/// bytes after it (`rest`) begin, if any: v1 is a line of its own; v2's signature reads as an
/// empty line followed by `\r\n\0\r\nQUIT\n`.
pub fn in_first_line(line: &str, rest: &[u8]) -> Option<&'static str> {
    if line.as_bytes().starts_with(V1_PREFIX) {
        Some("v1")
    } else if line.is_empty() && rest.starts_with(&SIGNATURE[2..]) {
        Some("v2")
    } else {
        None
    }
}

/// A stream from a peer that is not a balancer: refuses the connection (a read error) if its
/// first bytes are a PROXY header, then is a plain pass-through.
pub struct Guarded<S> {
    inner: S,
    /// The first bytes, until they decide; `None` once they have.
    start: Option<Vec<u8>>,
    peer: SocketAddr,
    proxy: Arc<ProxyProtocol>,
}

impl<S> Guarded<S> {
    pub fn new(inner: S, peer: SocketAddr, proxy: Arc<ProxyProtocol>) -> Guarded<S> {
        Guarded {
            inner,
            start: Some(Vec::new()),
            peer,
            proxy,
        }
    }

    /// `Err` if the bytes so far are a PROXY header.
    fn look(&mut self, data: &[u8]) -> io::Result<()> {
        let Some(start) = self.start.as_mut() else {
            return Ok(());
        };
        start.extend_from_slice(&data[..data.len().min(SIGNATURE.len())]);
        if let Some(version) = signature_of(start) {
            let why = HeaderError::NotABalancer(version);
            self.proxy.refused(self.peer, &why);
            self.start = None;
            return Err(io::Error::new(io::ErrorKind::InvalidData, why));
        }
        let undecided = |p: &[u8]| {
            let n = start.len().min(p.len());
            start[..n] == p[..n] && start.len() < p.len()
        };
        if !(undecided(SIGNATURE) || undecided(V1_PREFIX)) {
            self.start = None;
        }
        Ok(())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Guarded<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.start.is_some() && matches!(r, Poll::Ready(Ok(()))) {
            // Only the first bytes decide: copy no more than the signature's length.
            let new = &buf.filled()[before..];
            let new = new[..new.len().min(SIGNATURE.len())].to_vec();
            this.look(&new)?;
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guarded<S> {
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
