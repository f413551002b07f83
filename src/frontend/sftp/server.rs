//! The SFTP server: binds the listen addresses, runs the accept loops, and on shutdown drains
//! (stop accepting, give running uploads the grace period, then disconnect and wait for aborts).

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use russh::{MethodKind, MethodSet};
use tokio::net::TcpListener;

use super::FrontendError;
use super::algorithms::preferred_algorithms;
use super::connection::{MAX_CHANNEL_PACKET, Shared};
use super::hostkeys::load_host_keys;
use super::listener::{accept_loop, channel_buffer_packets};
use crate::config::Config;
use crate::frontend::admission::Admission;
use crate::frontend::proxy_header::ProxyProtocol;
use crate::transfer::Gateway;

/// Everything `serve` needs, built once at startup.
pub struct SftpServer {
    ssh: Arc<russh::server::Config>,
    shared: Arc<Shared>,
    listen: Vec<SocketAddr>,
    grace: Duration,
}

/// What a graceful shutdown did with the uploads that were running when it began.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    pub grace: Duration,
    pub running_at_signal: usize,
    /// Committed after the signal (within the grace period).
    pub finished: u64,
    /// Ended without a commit after the signal: cut off at the deadline, or failed on their own.
    pub aborted: u64,
    /// Still running when the abort wait ran out (their storage aborts may not have completed).
    pub unfinished: usize,
}

/// After the last upload finished within the grace period, how long open sessions get to
/// receive their last replies and hang up before they are disconnected.
const SESSION_FLUSH: Duration = Duration::from_secs(2);

/// After the grace period, how long to wait for the aborts to clean up storage.
const ABORT_WAIT: Duration = Duration::from_secs(10);

impl SftpServer {
    /// `admission` is shared with the other front ends: its connection caps count them all.
    pub fn new(
        config: &Config,
        gateway: Arc<Gateway>,
        admission: Arc<Admission>,
    ) -> Result<SftpServer, FrontendError> {
        let keys = load_host_keys(&config.server.host_keys)?;
        let ssh = russh::server::Config {
            server_id: russh::SshId::Standard(Cow::Borrowed("SSH-2.0-eugate")),
            methods: MethodSet::from(&[MethodKind::PublicKey, MethodKind::Password][..]),
            // Our guard adds growing delays; this is the floor for every rejection.
            auth_rejection_time: Duration::from_millis(200),
            auth_rejection_time_initial: Some(Duration::from_millis(0)),
            keys,
            preferred: preferred_algorithms(config.server.algorithms),
            inactivity_timeout: Some(config.server.idle_timeout),
            keepalive_interval: Some(Duration::from_secs(30)),
            keepalive_max: 4,
            max_auth_attempts: 6,
            window_size: 4 << 20,
            maximum_packet_size: MAX_CHANNEL_PACKET,
            // What a channel may have received and the gateway not yet consumed, in packets
            // of at most MAX_CHANNEL_PACKET (larger ones end the connection): a client that
            // sends more waits, through TCP, until the SFTP loop takes it. This must hold
            // every request a pipelining client has in flight (OpenSSH: 64 reads): if it fills
            // while the SFTP loop waits for window space to send replies, russh cannot process
            // the WINDOW_ADJUST that would free it, until `reply_timeout` ends the connection.
            channel_buffer_size: channel_buffer_packets(&config.limits),
            nodelay: true,
            ..Default::default()
        };
        let proxy = ProxyProtocol::new(config, "sftp", &gateway);
        let shared = Arc::new(Shared {
            gateway,
            logged_in: AtomicU32::new(0),
            max_handles: config.server.max_open_handles as usize,
            algorithms: config.server.algorithms,
            admission,
            limits: config.limits.clone(),
            proxy,
        });
        Ok(SftpServer {
            ssh: Arc::new(ssh),
            shared,
            listen: config.server.listen.clone(),
            grace: config.server.shutdown_grace,
        })
    }

    /// Binds every listen address (fails if any cannot be bound).
    pub async fn bind(&self) -> Result<Vec<TcpListener>, FrontendError> {
        let mut out = Vec::new();
        for addr in &self.listen {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|source| FrontendError::Bind {
                    addr: *addr,
                    source,
                })?;
            out.push(l);
        }
        Ok(out)
    }

    /// Serves until `shutdown` resolves; then drains like tokio's mini-redis: stop accepting
    /// (new connections are refused, new uploads on open sessions too), give running uploads
    /// up to the grace period to be closed by their clients, then disconnect every session
    /// (their open uploads abort through the transfer layer, nothing is published) and wait for
    /// the aborts to finish.
    pub async fn run(
        &self,
        listeners: Vec<TcpListener>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> ShutdownReport {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut accepts = tokio::task::JoinSet::new();
        for l in listeners {
            let ssh = self.ssh.clone();
            let shared = self.shared.clone();
            let stop = stop_rx.clone();
            accepts.spawn(accept_loop(l, ssh, shared, stop));
        }
        shutdown.await;
        let gw = self.shared.gateway.clone();
        let start = gw.begin_drain();
        // Cancelled accept loops drop their listeners: from here connections are refused.
        accepts.abort_all();
        while accepts.join_next().await.is_some() {}
        tracing::info!(
            running = start.running,
            grace_secs = self.grace.as_secs(),
            "shutting down: no new connections; waiting for running uploads"
        );
        let began = tokio::time::Instant::now();
        if !self.grace.is_zero()
            && tokio::time::timeout(self.grace, gw.wait_uploads_idle())
                .await
                .is_err()
        {
            tracing::warn!(
                remaining = gw.uploads_in_flight(),
                "grace period over: aborting the uploads still open"
            );
        } else if !self.grace.is_zero() {
            // An upload counts as finished when its commit is done, a moment before its CLOSE
            // reply is on the wire: disconnecting now could make a client that succeeded see a
            // dropped connection. Let clients hang up themselves, briefly.
            let flush = SESSION_FLUSH.min(self.grace.saturating_sub(began.elapsed()));
            let _ = tokio::time::timeout(flush, async {
                while self.shared.logged_in.load(Ordering::SeqCst) > 0 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await;
        }
        let _ = stop_tx.send(true);
        if tokio::time::timeout(ABORT_WAIT, gw.wait_uploads_idle())
            .await
            .is_err()
        {
            tracing::warn!(
                remaining = gw.uploads_in_flight(),
                "uploads still aborting at shutdown deadline"
            );
        }
        let end = gw.upload_counts();
        ShutdownReport {
            grace: self.grace,
            running_at_signal: start.running,
            finished: end.committed.saturating_sub(start.committed),
            aborted: end.aborted.saturating_sub(start.aborted),
            unfinished: end.running,
        }
    }
}
