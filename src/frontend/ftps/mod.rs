//! The FTPS front end: explicit FTPS (`AUTH TLS`) and implicit FTPS (TLS from the first byte)
//! on tokio-rustls, optional client certificates (mutual TLS), passive data connections only,
//! every data connection encrypted (and, with `require_ssl_reuse`, resuming the control
//! connection's TLS session). It knows only `transfer` (and `config` at startup).
//!
//! Written here rather than on libunftp, whose known problems break our requirements: a failed
//! TLS handshake on a data connection panics a task, it never sends TLS close_notify (so Python
//! `ftplib` raises `SSLEOFError` after every upload and a partner script would retry), it has no
//! implicit FTPS and a fixed data timeout.

mod command;
mod control;
mod data;
mod lines;
mod listing;
mod passive;
mod reply;
mod tls;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::config::{Config, FtpsConfig};
use crate::frontend::admission::{Admission, Entry, RefusalLog};
use crate::frontend::killswitch::KillSwitch;
use crate::frontend::proxy_header::{Client, ProxyProtocol};
use crate::transfer::Gateway;

use passive::PassivePorts;

#[derive(Debug, thiserror::Error)]
pub enum FtpsError {
    #[error("FTPS certificate {path}: {reason}")]
    Certificate { path: String, reason: String },
    #[error("cannot listen for FTPS on {addr}: {source}; is another process using the port?")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// What every control connection shares.
pub(crate) struct Shared {
    gateway: Arc<Gateway>,
    acceptor: TlsAcceptor,
    data_acceptor: TlsAcceptor,
    ports: PassivePorts,
    passive_address: Option<IpAddr>,
    data_timeout: Duration,
    idle_timeout: Duration,
    login_grace: Duration,
    /// Shared with SFTP: the connection caps count both protocols.
    admission: Arc<Admission>,
    require_ssl_reuse: bool,
    /// STORs from their start until their reply is sent (see [`StorReply`]).
    stors: tokio::sync::watch::Sender<usize>,
    /// `[server] proxy_protocol_from`: which peers are load balancers (control connections
    /// only: passive data connections carry no header).
    proxy: Arc<ProxyProtocol>,
}

/// Counts one STOR until its reply is on the wire: an upload counts as finished in `transfer`
/// when its commit is done, a moment before the 226, and a shutdown must not cut the control
/// connection in between (a client that succeeded would see a failure and upload again).
pub(crate) struct StorReply(Arc<Shared>);

impl StorReply {
    pub(crate) fn new(shared: &Arc<Shared>) -> StorReply {
        shared.stors.send_modify(|n| *n += 1);
        StorReply(shared.clone())
    }
}

impl Drop for StorReply {
    fn drop(&mut self) {
        self.0.stors.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// After the sessions are closed, how long their uploads may take to abort.
const ABORT_WAIT: Duration = Duration::from_secs(30);

/// After the running uploads are done, how long STOR replies may take to go out.
const STOR_FLUSH: Duration = Duration::from_secs(5);

pub struct FtpsServer {
    shared: Arc<Shared>,
    listen: Vec<SocketAddr>,
    implicit_listen: Vec<SocketAddr>,
    grace: Duration,
}

impl FtpsServer {
    pub fn new(
        config: &Config,
        ftps: &FtpsConfig,
        gateway: Arc<Gateway>,
        admission: Arc<Admission>,
    ) -> Result<FtpsServer, FtpsError> {
        let (control, data) = tls::server_configs(
            &ftps.certificate,
            &ftps.private_key,
            ftps.client_ca.as_deref(),
        )?;
        let proxy = ProxyProtocol::new(config, "ftps", &gateway);
        let shared = Arc::new(Shared {
            gateway,
            acceptor: TlsAcceptor::from(control),
            data_acceptor: TlsAcceptor::from(data),
            ports: PassivePorts::new(ftps.passive_ports.clone()),
            passive_address: ftps.passive_address,
            data_timeout: ftps.data_timeout,
            idle_timeout: config.server.idle_timeout,
            login_grace: config.limits.login_grace,
            admission,
            require_ssl_reuse: ftps.require_ssl_reuse,
            stors: tokio::sync::watch::Sender::new(0),
            proxy,
        });
        Ok(FtpsServer {
            shared,
            listen: ftps.listen.clone(),
            implicit_listen: ftps.implicit_listen.clone(),
            grace: config.server.shutdown_grace,
        })
    }

    /// The explicit listeners, then the implicit ones.
    pub async fn bind(&self) -> Result<Listeners, FtpsError> {
        Ok(Listeners {
            explicit: bind_all(&self.listen).await?,
            implicit: bind_all(&self.implicit_listen).await?,
        })
    }

    /// Serves until `shutdown` resolves; then stops accepting, gives running uploads the grace
    /// period, and closes every connection (open uploads abort in `transfer`, nothing published).
    pub async fn run(&self, listeners: Listeners, shutdown: impl std::future::Future<Output = ()>) {
        let sessions = Arc::new(tokio::sync::Mutex::new(tokio::task::JoinSet::new()));
        let mut accepts = tokio::task::JoinSet::new();
        let explicit = listeners.explicit.into_iter().map(|l| (l, false));
        let implicit = listeners.implicit.into_iter().map(|l| (l, true));
        for (l, implicit) in explicit.chain(implicit) {
            accepts.spawn(accept_loop(
                l,
                implicit,
                self.shared.clone(),
                sessions.clone(),
            ));
        }
        shutdown.await;
        accepts.abort_all();
        while accepts.join_next().await.is_some() {}
        let gw = &self.shared.gateway;
        let began = tokio::time::Instant::now();
        if tokio::time::timeout(self.grace, gw.wait_uploads_idle())
            .await
            .is_ok()
        {
            let flush = STOR_FLUSH.min(self.grace.saturating_sub(began.elapsed()));
            let mut stors = self.shared.stors.subscribe();
            let _ = tokio::time::timeout(flush, stors.wait_for(|n| *n == 0)).await;
        }
        let mut sessions = sessions.lock().await;
        sessions.abort_all();
        while sessions.join_next().await.is_some() {}
        // The uploads those sessions held abort in `transfer` (an S3 multipart upload is
        // aborted in the store): the process must not exit before that is done.
        if tokio::time::timeout(ABORT_WAIT, gw.wait_uploads_idle())
            .await
            .is_err()
        {
            tracing::warn!(
                remaining = gw.uploads_in_flight(),
                "FTPS uploads still aborting at shutdown deadline"
            );
        }
    }
}

/// Bound listening sockets: explicit FTPS (`AUTH TLS`) and implicit (TLS from the first byte).
pub struct Listeners {
    pub explicit: Vec<TcpListener>,
    pub implicit: Vec<TcpListener>,
}

async fn bind_all(addrs: &[SocketAddr]) -> Result<Vec<TcpListener>, FtpsError> {
    let mut out = Vec::new();
    for addr in addrs {
        let l = TcpListener::bind(addr)
            .await
            .map_err(|source| FtpsError::Bind {
                addr: *addr,
                source,
            })?;
        out.push(l);
    }
    Ok(out)
}

async fn accept_loop(
    listener: TcpListener,
    implicit: bool,
    shared: Arc<Shared>,
    sessions: Arc<tokio::sync::Mutex<tokio::task::JoinSet<()>>>,
) {
    let refusals = Arc::new(Mutex::new(RefusalLog::default()));
    loop {
        let (mut tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "FTPS accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let balancer = shared.proxy.is_balancer(peer.ip());
        let admitted = if balancer {
            None
        } else {
            match admit(&shared, peer, &refusals) {
                Some(a) => Some(a),
                None => continue,
            }
        };
        let mut set = sessions.lock().await;
        // Finished sessions are reaped here, so the set does not grow.
        while set.try_join_next().is_some() {}
        let shared = shared.clone();
        let refusals = refusals.clone();
        set.spawn(async move {
            let (client, (kill, entry)) = match admitted {
                Some(a) => (Client::direct(peer), a),
                // The header is read in the connection's own task: a slow balancer never
                // holds up the accept loop.
                None => {
                    let client = match shared.proxy.client(&mut tcp, peer).await {
                        Ok(c) => c,
                        Err(why) => return shared.proxy.refused(peer, &why),
                    };
                    let Some(a) = admit(&shared, client.addr, &refusals) else {
                        return;
                    };
                    (client, a)
                }
            };
            let session = control::Session::new(shared, tcp, client, implicit, entry);
            // Displaced while still logging in (admission): the session is simply dropped;
            // it holds no upload yet.
            tokio::select! {
                () = session.run() => {}
                () = kill.killed() => {
                    tracing::info!(peer = %client.addr, reason = ?kill.reason(), "FTPS connection ended");
                }
            }
        });
    }
}

/// A place in the connection caps for `client`, or `None` (refusal logged).
fn admit(
    shared: &Shared,
    client: SocketAddr,
    refusals: &Mutex<RefusalLog>,
) -> Option<(Arc<KillSwitch>, Entry)> {
    let kill = KillSwitch::new();
    match shared.admission.enter(client.ip(), kill.clone()) {
        Ok(e) => Some((kill, e)),
        Err(refusal) => {
            refusals
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .note(client, &refusal, shared.admission.counts());
            None
        }
    }
}
