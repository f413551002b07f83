//! The control connection as a plain-or-TLS stream, read a line at a time with a length cap.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// The longest command line accepted (RFC 959 has no limit; paths are at most 4 KiB here).
pub const MAX_LINE: usize = 4096;

/// The control connection: plaintext until `AUTH TLS`, then TLS.
pub enum Control {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Only between taking the TCP stream for the handshake and the handshake's end.
    Gone,
}

impl Control {
    pub fn is_tls(&self) -> bool {
        matches!(self, Control::Tls(_))
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "control connection closed")
}

impl AsyncRead for Control {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Control::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Control::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Control::Gone => Poll::Ready(Err(gone())),
        }
    }
}

impl AsyncWrite for Control {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Control::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Control::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Control::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Control::Plain(s) => Pin::new(s).poll_flush(cx),
            Control::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Control::Gone => Poll::Ready(Err(gone())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Control::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Control::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Control::Gone => Poll::Ready(Ok(())),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    Text(String),
    /// Longer than [`MAX_LINE`]: its bytes were discarded up to the end of the line.
    TooLong,
    NotUtf8,
}

/// Bytes received and not yet returned as a line. Reading is cancel-safe: a read that is
/// interrupted loses nothing.
#[derive(Default)]
pub struct Lines {
    buf: Vec<u8>,
    discarding: bool,
}

impl Lines {
    /// Whether bytes beyond the last line have arrived (a client may not pipeline a TLS
    /// handshake behind `AUTH TLS`).
    pub fn has_pending(&self) -> bool {
        !self.buf.is_empty()
    }

    /// The bytes received beyond the last line returned.
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }

    /// The next line, or `None` at the end of the connection.
    pub async fn next(&mut self, s: &mut (impl AsyncRead + Unpin)) -> io::Result<Option<Line>> {
        loop {
            if let Some(line) = self.take() {
                return Ok(Some(line));
            }
            let mut chunk = [0u8; 1024];
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn take(&mut self) -> Option<Line> {
        match self.buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let mut raw: Vec<u8> = self.buf.drain(..=i).collect();
                if std::mem::take(&mut self.discarding) || raw.len() > MAX_LINE + 2 {
                    return Some(Line::TooLong);
                }
                raw.pop();
                if raw.last() == Some(&b'\r') {
                    raw.pop();
                }
                Some(match String::from_utf8(raw) {
                    Ok(s) => Line::Text(s),
                    Err(_) => Line::NotUtf8,
                })
            }
            None => {
                if self.buf.len() > MAX_LINE {
                    self.buf.clear();
                    self.discarding = true;
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines_of(input: &[u8]) -> Vec<Line> {
        let mut l = Lines::default();
        let mut r = input;
        let mut out = Vec::new();
        while let Some(line) = l.next(&mut r).await.unwrap() {
            out.push(line);
        }
        out
    }

    #[tokio::test]
    async fn splits_on_lf_and_strips_cr() {
        assert_eq!(
            lines_of(b"USER a\r\nPASS b\nNOOP").await,
            vec![Line::Text("USER a".into()), Line::Text("PASS b".into())]
        );
    }

    #[tokio::test]
    async fn long_lines_are_discarded_whole() {
        let mut input = b"STOR ".to_vec();
        input.extend(std::iter::repeat_n(b'x', 3 * MAX_LINE));
        input.extend_from_slice(b"\r\nNOOP\r\n\xff\r\n");
        assert_eq!(
            lines_of(&input).await,
            vec![Line::TooLong, Line::Text("NOOP".into()), Line::NotUtf8]
        );
    }
}
