//! Passive data connections (PASV/EPSV): a listener on a port from the configured range, on the
//! control connection's local address, that accepts only connections from the control
//! connection's client IP (or, for a control connection that came through a load balancer with
//! a PROXY header, from that balancer too: data connections carry no header, and may be
//! forwarded by it). Others are dropped unheard, so nobody can steal a transfer.

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

    /// A listener on `ip` at the next free port of the range, for data connections from
    /// `client` (or `balancer`); `None` when every port is taken.
    pub async fn bind(
        &self,
        ip: IpAddr,
        client: IpAddr,
        balancer: Option<IpAddr>,
    ) -> Option<Passive> {
        let start = u32::from(*self.range.start());
        let count = u32::from(*self.range.end()) - start + 1;
        let first = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..count {
            let port = start + (first.wrapping_add(i) % count);
            let port = u16::try_from(port).ok()?;
            if let Ok(listener) = TcpListener::bind(SocketAddr::new(ip, port)).await {
                return Some(Passive {
                    listener,
                    client: client.to_canonical(),
                    balancer: balancer.map(|b| b.to_canonical()),
                });
            }
        }
        None
    }
}

pub struct Passive {
    listener: TcpListener,
    client: IpAddr,
    balancer: Option<IpAddr>,
}

impl Passive {
    fn expects(&self, from: IpAddr) -> bool {
        let from = from.to_canonical();
        from == self.client || Some(from) == self.balancer
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// The first connection from the control connection's client (or balancer) within
    /// `timeout`; connections from anywhere else are closed at once.
    pub async fn accept(&self, timeout: Duration) -> Option<TcpStream> {
        tokio::time::timeout(timeout, async {
            loop {
                match self.listener.accept().await {
                    Ok((s, from)) if self.expects(from.ip()) => {
                        let _ = s.set_nodelay(true);
                        return Some(s);
                    }
                    Ok((_, from)) => {
                        tracing::warn!(%from, expected = %self.client, balancer = ?self.balancer, "data connection from another IP refused");
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
