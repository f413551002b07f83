//! PROXY protocol v2 (HAProxy's `proxy-protocol.txt`) on the SFTP and FTPS control listeners:
//! behind a TCP load balancer the socket's peer is the balancer, and the client's own address
//! comes in a binary header before the first byte of SSH or FTP.
//!
//! Only peers in `[server] proxy_protocol_from` may (and must) send one. From them:
//! - `PROXY` over TCP/IPv4 or TCP/IPv6: the header's source address is the client for
//!   everything downstream (admission, bans, certificate `source-address`, audit, logs).
//! - `LOCAL` (HAProxy's health checks with `check-send-proxy`): the spec says to use the real
//!   endpoints, so the connection is the balancer's own.
//! - `PROXY` with `AF_UNSPEC`, a UNIX socket, UDP or an unspecified transport: refused. The spec
//!   lets a receiver take `AF_UNSPEC` as the real endpoints, but that would put unknown clients
//!   under the balancer's address, the very thing this feature exists to avoid (one client's
//!   failures would ban everyone behind the balancer).
//! - no header, a v1 (text) header, a malformed or oversized one, or nothing within the wait:
//!   refused, logged with the reason and counted (`eugate_proxy_header_refused`).
//!
//! A peer not in the list that sends a PROXY signature is refused too ([`Guarded`] for SSH, the
//! first line or first bytes for FTPS): it is either a balancer the operator has not listed, or
//! someone trying to choose the address the gateway sees.
//!
//! The header is read in the connection's own task (never in the accept loop), before it holds
//! an admission slot, so the caps count the real client. What a balancer connection that never
//! sends its header costs is bounded: at most `[limits] max_unauthenticated` connections per
//! listener kind wait for their header at once, each for at most `[limits] login_grace_secs`
//! (10 s at most); the header is read exactly (never past its end) and is at most
//! [`MAX_HEADER`] bytes.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ppp::v2;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::Semaphore;

mod guard;
pub use guard::{Guarded, in_first_line, signature_of};

use crate::auth::AddressRange;
use crate::config::Config;
use crate::transfer::Gateway;

/// The 12 bytes every v2 header starts with.
pub const SIGNATURE: &[u8] = v2::PROTOCOL_PREFIX;
const V1_PREFIX: &[u8] = b"PROXY ";
/// Signature, version/command, family/transport, length.
const FIXED: usize = 16;
/// The largest header taken. Addresses take at most 36 bytes (IPv6); the rest is TLVs, which
/// HAProxy keeps well under this (unique id, authority, ALPN, SSL details).
pub const MAX_HEADER: usize = 4096;
/// The longest wait for a header, whatever `[limits] login_grace_secs` says: a balancer sends
/// it with its first packet.
const MAX_WAIT: Duration = Duration::from_secs(10);

/// Why a connection was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("no PROXY v2 header within {0} s")]
    Timeout(u64),
    #[error("the balancer closed the connection after {have} of the header's {need} bytes")]
    Truncated { have: usize, need: usize },
    #[error("a PROXY v1 (text) header; only v2 is accepted (HAProxy: send-proxy-v2)")]
    V1,
    #[error("no PROXY v2 header: the connection starts with {0} (HAProxy: send-proxy-v2)")]
    Missing(&'static str),
    #[error("PROXY v2 header of {0} bytes, over the {MAX_HEADER}-byte limit")]
    Oversize(usize),
    #[error("malformed PROXY v2 header: {0}")]
    Malformed(String),
    #[error("PROXY v2 header for {0}: only TCP over IPv4 or IPv6 names a client")]
    Unsupported(&'static str),
    #[error("{0} connections from load balancers are already waiting for their PROXY header")]
    Busy(usize),
    #[error("reading the PROXY header failed: {0}")]
    Io(String),
    #[error(
        "a PROXY {0} header from a peer not in [server] proxy_protocol_from (list it there if it is a load balancer)"
    )]
    NotABalancer(&'static str),
}

impl HeaderError {
    /// A fixed word for the metric's label.
    pub fn reason(&self) -> &'static str {
        match self {
            HeaderError::Timeout(_) => "timeout",
            HeaderError::Truncated { .. } => "truncated",
            HeaderError::V1 => "v1",
            HeaderError::Missing(_) => "missing",
            HeaderError::Oversize(_) => "oversize",
            HeaderError::Malformed(_) => "malformed",
            HeaderError::Unsupported(_) => "unsupported",
            HeaderError::Busy(_) => "busy",
            HeaderError::Io(_) => "io",
            HeaderError::NotABalancer(_) => "not_a_balancer",
        }
    }
}

/// Who a connection is from, once its header (if any) is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    /// The client: the header's source, or the socket's peer.
    pub addr: SocketAddr,
    /// The balancer it came through (`PROXY` command only).
    pub via: Option<SocketAddr>,
}

impl Client {
    pub fn direct(peer: SocketAddr) -> Client {
        Client {
            addr: peer,
            via: None,
        }
    }
}

/// Whether `start` (the first bytes of a connection) can still be a v2 header; if not, why.
pub fn check_start(start: &[u8]) -> Result<(), HeaderError> {
    let n = start.len().min(SIGNATURE.len());
    if start[..n] == SIGNATURE[..n] {
        return Ok(());
    }
    let n = start.len().min(V1_PREFIX.len());
    if start[..n] == V1_PREFIX[..n] {
        return Err(HeaderError::V1);
    }
    Err(HeaderError::Missing(describe(start)))
}

/// What a connection that should have started with a header started with instead.
fn describe(start: &[u8]) -> &'static str {
    match start.first() {
        _ if start.starts_with(b"SSH-") || b"SSH-".starts_with(start) => "an SSH version line",
        Some(0x16) => "a TLS handshake",
        Some(b) if b.is_ascii_alphabetic() => "text (a client speaking directly?)",
        _ => "bytes that are not the PROXY v2 signature",
    }
}

/// The whole header's length, from its first [`FIXED`] bytes.
pub fn header_len(fixed: &[u8]) -> Result<usize, HeaderError> {
    let len = match v2::Header::try_from(fixed) {
        Ok(h) => h.len(),
        Err(v2::ParseError::Partial(_, need)) => FIXED + need,
        Err(e) => return Err(HeaderError::Malformed(e.to_string())),
    };
    if len > MAX_HEADER {
        return Err(HeaderError::Oversize(len));
    }
    Ok(len)
}

/// The client a complete header names; `peer` is the balancer.
pub fn decide(header: &[u8], peer: SocketAddr) -> Result<Client, HeaderError> {
    let h = v2::Header::try_from(header).map_err(|e| HeaderError::Malformed(e.to_string()))?;
    if h.command == v2::Command::Local {
        return Ok(Client::direct(peer));
    }
    let addr = match (h.addresses, h.protocol) {
        (v2::Addresses::Unspecified, _) => {
            return Err(HeaderError::Unsupported("AF_UNSPEC (no address)"));
        }
        (v2::Addresses::Unix(_), _) => return Err(HeaderError::Unsupported("a UNIX socket")),
        (_, v2::Protocol::Datagram) => return Err(HeaderError::Unsupported("UDP")),
        (_, v2::Protocol::Unspecified) => {
            return Err(HeaderError::Unsupported("an unspecified transport"));
        }
        (v2::Addresses::IPv4(a), v2::Protocol::Stream) => {
            SocketAddr::new(IpAddr::V4(a.source_address), a.source_port)
        }
        (v2::Addresses::IPv6(a), v2::Protocol::Stream) => {
            // An IPv4 client behind an IPv6 balancer: the same address bans and admits it.
            SocketAddr::new(IpAddr::V6(a.source_address).to_canonical(), a.source_port)
        }
    };
    Ok(Client {
        addr,
        via: Some(peer),
    })
}

/// Reads exactly one header from `s`: never a byte past its end, so what follows is the
/// client's own stream.
pub async fn read_header<S: AsyncRead + Unpin>(s: &mut S) -> Result<Vec<u8>, HeaderError> {
    let mut buf = vec![0u8; FIXED];
    let mut have = 0;
    while have < FIXED {
        let n = read_some(s, &mut buf[have..]).await?;
        if n == 0 {
            // Nothing at all, or the start of something else: say which.
            check_start(&buf[..have])?;
            return Err(HeaderError::Truncated { have, need: FIXED });
        }
        have += n;
        check_start(&buf[..have])?;
    }
    let need = header_len(&buf)?;
    buf.resize(need, 0);
    while have < need {
        let n = read_some(s, &mut buf[have..]).await?;
        if n == 0 {
            return Err(HeaderError::Truncated { have, need });
        }
        have += n;
    }
    Ok(buf)
}

async fn read_some<S: AsyncRead + Unpin>(s: &mut S, buf: &mut [u8]) -> Result<usize, HeaderError> {
    s.read(buf)
        .await
        .map_err(|e| HeaderError::Io(e.to_string()))
}

/// The PROXY protocol settings of one listener kind (SFTP, or FTPS control).
pub struct ProxyProtocol {
    from: Vec<AddressRange>,
    wait: Duration,
    pending: Arc<Semaphore>,
    cap: usize,
    protocol: &'static str,
    log: Mutex<LogState>,
    refused: AtomicU64,
    /// Counts a refusal in the metrics, by reason.
    count: Box<dyn Fn(&'static str) + Send + Sync>,
}

#[derive(Default)]
struct LogState {
    last: Option<Instant>,
    suppressed: u64,
}

/// PROXY headers from peers that are not balancers are logged at most once per interval.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

impl ProxyProtocol {
    /// `protocol` names the listener kind in logs and metrics ("sftp", "ftps").
    pub fn new(
        config: &Config,
        protocol: &'static str,
        gateway: &Arc<Gateway>,
    ) -> Arc<ProxyProtocol> {
        let gw = gateway.clone();
        let mut p = ProxyProtocol::with(
            config.server.proxy_protocol_from.clone(),
            config.limits.login_grace.min(MAX_WAIT),
            config.limits.max_unauthenticated.max(1) as usize,
            protocol,
        );
        p.count = Box::new(move |reason| gw.metrics().proxy_header_refused(protocol, reason));
        Arc::new(p)
    }

    fn with(
        from: Vec<AddressRange>,
        wait: Duration,
        cap: usize,
        protocol: &'static str,
    ) -> ProxyProtocol {
        ProxyProtocol {
            from,
            wait,
            pending: Arc::new(Semaphore::new(cap)),
            cap,
            protocol,
            log: Mutex::new(LogState::default()),
            refused: AtomicU64::new(0),
            count: Box::new(|_| {}),
        }
    }

    /// Whether connections from `ip` must start with a header.
    pub fn is_balancer(&self, ip: IpAddr) -> bool {
        self.from.iter().any(|r| r.contains(ip))
    }

    /// The client a balancer's connection names in its header (read within the wait).
    pub async fn client<S: AsyncRead + Unpin>(
        &self,
        s: &mut S,
        peer: SocketAddr,
    ) -> Result<Client, HeaderError> {
        let Ok(_permit) = self.pending.clone().try_acquire_owned() else {
            return Err(HeaderError::Busy(self.cap));
        };
        match tokio::time::timeout(self.wait, read_header(s)).await {
            Err(_) => Err(HeaderError::Timeout(self.wait.as_secs())),
            Ok(header) => {
                let client = decide(&header?, peer)?;
                if client.via.is_none() {
                    tracing::debug!(%peer, protocol = self.protocol, "PROXY LOCAL (health check): the balancer's own connection");
                }
                Ok(client)
            }
        }
    }

    /// Logs and counts a refused connection. A listed balancer's refusals are each logged:
    /// only the balancer can cause them (it sends a header for every client), and each one is a
    /// misconfiguration to fix. Headers from other peers are logged at most once per interval
    /// (with how many were not): anyone can send those, and a flood of connections must not
    /// become a flood of log lines.
    pub fn refused(&self, peer: SocketAddr, why: &HeaderError) {
        (self.count)(why.reason());
        let total = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        let mut suppressed = 0;
        if matches!(why, HeaderError::NotABalancer(_)) {
            let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            if log
                .last
                .is_some_and(|t| now.duration_since(t) < LOG_INTERVAL)
            {
                log.suppressed += 1;
                return;
            }
            log.last = Some(now);
            suppressed = std::mem::take(&mut log.suppressed);
        }
        tracing::warn!(
            %peer,
            protocol = self.protocol,
            reason = why.reason(),
            also_refused_since_last_report = suppressed,
            refused_total = total,
            "connection refused: {why}"
        );
    }

    /// Connections refused so far.
    pub fn refused_count(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests;
