//! Ends one connection from outside, whatever its session task is waiting on.
//!
//! russh runs each session in a task of its own that we cannot abort, and that task can wait
//! for a client forever: writing to a socket the client no longer reads, or handing data to an
//! SFTP channel that is stuck. [`Killable`] wraps the socket: once [`KillSwitch::kill`] is
//! called, every read and write on it fails, which ends the session task at its next socket
//! operation; the SFTP tasks of the connection wait on [`KillSwitch::killed`] at each point
//! where a client could stall them.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// Why a connection was killed, for the log (the first reason wins).
#[derive(Debug, Default)]
pub struct KillSwitch {
    killed: AtomicBool,
    reason: std::sync::OnceLock<&'static str>,
    read: AtomicWaker,
    write: AtomicWaker,
    waiters: Notify,
}

impl KillSwitch {
    pub fn new() -> Arc<KillSwitch> {
        Arc::new(KillSwitch::default())
    }

    /// Ends the connection: its socket fails from now on and every `killed()` resolves.
    pub fn kill(&self, reason: &'static str) {
        let _ = self.reason.set(reason);
        if !self.killed.swap(true, Ordering::SeqCst) {
            self.read.wake();
            self.write.wake();
            self.waiters.notify_waiters();
        }
    }

    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }

    pub fn reason(&self) -> Option<&'static str> {
        self.reason.get().copied()
    }

    /// Resolves once the connection is killed (at once if it already is).
    pub async fn killed(&self) {
        loop {
            let notified = self.waiters.notified();
            tokio::pin!(notified);
            // Registered before the check, so a kill between the two is not missed.
            notified.as_mut().enable();
            if self.is_killed() {
                return;
            }
            notified.await;
        }
    }

    fn error(&self) -> io::Error {
        io::Error::new(
            io::ErrorKind::ConnectionAborted,
            format!(
                "connection closed by the gateway: {}",
                self.reason().unwrap_or("killed")
            ),
        )
    }
}

/// A socket that fails once its [`KillSwitch`] is thrown.
pub struct Killable<S> {
    inner: S,
    switch: Arc<KillSwitch>,
}

impl<S> Killable<S> {
    pub fn new(inner: S, switch: Arc<KillSwitch>) -> Killable<S> {
        Killable { inner, switch }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Killable<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.switch.read.register(cx.waker());
        if this.switch.is_killed() {
            return Poll::Ready(Err(this.switch.error()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Killable<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.switch.write.register(cx.waker());
        if this.switch.is_killed() {
            return Poll::Ready(Err(this.switch.error()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.switch.write.register(cx.waker());
        if this.switch.is_killed() {
            return Poll::Ready(Err(this.switch.error()));
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.switch.write.register(cx.waker());
        if this.switch.is_killed() {
            return Poll::Ready(Err(this.switch.error()));
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_blocked_read_fails_when_killed() {
        let (a, _b) = tokio::io::duplex(64);
        let switch = KillSwitch::new();
        let mut k = Killable::new(a, switch.clone());
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 8];
            k.read(&mut buf).await
        });
        tokio::task::yield_now().await;
        switch.kill("test");
        let err = reader.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);
        assert!(err.to_string().contains("test"), "{err}");
    }

    #[tokio::test]
    async fn a_write_blocked_on_a_full_peer_fails_when_killed() {
        let (a, _b) = tokio::io::duplex(16);
        let switch = KillSwitch::new();
        let mut k = Killable::new(a, switch.clone());
        let writer = tokio::spawn(async move { k.write_all(&[0u8; 1024]).await });
        tokio::task::yield_now().await;
        assert!(
            !writer.is_finished(),
            "the peer reads nothing: the write must block"
        );
        switch.kill("client stopped reading");
        assert!(writer.await.unwrap().is_err());
    }

    #[tokio::test]
    async fn killed_resolves_for_waiters_before_and_after_the_kill() {
        let switch = KillSwitch::new();
        let s = switch.clone();
        let early = tokio::spawn(async move { s.killed().await });
        tokio::task::yield_now().await;
        switch.kill("first");
        switch.kill("second");
        early.await.unwrap();
        switch.killed().await;
        assert_eq!(switch.reason(), Some("first"));
    }
}
