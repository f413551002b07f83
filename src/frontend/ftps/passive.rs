//! Passive data connections (PASV/EPSV): a listener on a port from the configured range, on the
//! control connection's local address, that accepts only connections from the control
//! connection's own IP. Others are dropped unheard, so nobody can steal a transfer.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

/// The configured port range, handed out round-robin.
pub struct PassivePorts {
    range: RangeInclusive<u16>,
    next: AtomicU32,
}

impl PassivePorts {
    pub fn new(range: RangeInclusive<u16>) -> PassivePorts {
        PassivePorts {
            range,
            next: AtomicU32::new(0),
        }
    }

    /// A listener on `ip` at the next free port of the range; `None` when every port is taken.
    pub async fn bind(&self, ip: IpAddr, peer: IpAddr) -> Option<Passive> {
        let start = u32::from(*self.range.start());
        let count = u32::from(*self.range.end()) - start + 1;
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..count {
            let port = start + (first.wrapping_add(i) % count);
            let port = u16::try_from(port).ok()?;
            if let Ok(listener) = TcpListener::bind(SocketAddr::new(ip, port)).await {
                return Some(Passive {
                    listener,
                    peer: peer.to_canonical(),
                });
            }
        }
        None
    }
}

pub struct Passive {
    listener: TcpListener,
    peer: IpAddr,
}

impl Passive {
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The first connection from the control connection's IP within `timeout`; connections
    /// from anywhere else are closed at once.
    pub async fn accept(&self, timeout: Duration) -> Option<TcpStream> {
        tokio::time::timeout(timeout, async {
            loop {
                match self.listener.accept().await {
                    Ok((s, from)) if from.ip().to_canonical() == self.peer => {
                        let _ = s.set_nodelay(true);
                        return Some(s);
                    }
                    Ok((_, from)) => {
                        tracing::warn!(%from, expected = %self.peer, "data connection from another IP refused");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting a data connection failed");
                        return None;
                    }
                }
            }
        })
        .await
        .ok()
        .flatten()
    }
}
