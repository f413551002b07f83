//! The FTPS front end: explicit FTPS (`AUTH TLS`) on tokio-rustls, passive data connections
//! only, every data connection encrypted. It knows only `transfer` (and `config` at startup).
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
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::config::{Config, FtpsConfig};
use crate::frontend::admission::{Admission, RefusalLog};
use crate::frontend::killswitch::KillSwitch;
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
}

pub struct FtpsServer {
    shared: Arc<Shared>,
    listen: Vec<SocketAddr>,
    grace: Duration,
}

impl FtpsServer {
    pub fn new(
        config: &Config,
        ftps: &FtpsConfig,
        gateway: Arc<Gateway>,
        admission: Arc<Admission>,
    ) -> Result<FtpsServer, FtpsError> {
        let (control, data) = tls::server_configs(&ftps.certificate, &ftps.private_key)?;
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
        });
        Ok(FtpsServer {
            shared,
            listen: ftps.listen.clone(),
            grace: config.server.shutdown_grace,
        })
    }

    pub async fn bind(&self) -> Result<Vec<TcpListener>, FtpsError> {
        let mut out = Vec::new();
        for addr in &self.listen {
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

    /// Serves until `shutdown` resolves; then stops accepting, gives running uploads the grace
    /// period, and closes every connection (open uploads abort in `transfer`, nothing published).
    pub async fn run(
        &self,
        listeners: Vec<TcpListener>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let sessions = Arc::new(tokio::sync::Mutex::new(tokio::task::JoinSet::new()));
        let mut accepts = tokio::task::JoinSet::new();
        for l in listeners {
            accepts.spawn(accept_loop(l, self.shared.clone(), sessions.clone()));
        }
        shutdown.await;
        accepts.abort_all();
        while accepts.join_next().await.is_some() {}
        let gw = &self.shared.gateway;
        let _ = tokio::time::timeout(self.grace, gw.wait_uploads_idle()).await;
        let mut sessions = sessions.lock().await;
        sessions.abort_all();
        while sessions.join_next().await.is_some() {}
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    sessions: Arc<tokio::sync::Mutex<tokio::task::JoinSet<()>>>,
) {
    let mut refusals = RefusalLog::default();
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "FTPS accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let kill = KillSwitch::new();
        let entry = match shared.admission.enter(peer.ip(), kill.clone()) {
            Ok(e) => e,
            Err(refusal) => {
                refusals.note(peer, &refusal, shared.admission.counts());
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let session = control::Session::new(shared.clone(), tcp, peer, entry);
        let mut set = sessions.lock().await;
        // Finished sessions are reaped here, so the set does not grow.
        while set.try_join_next().is_some() {}
        set.spawn(async move {
            // Displaced while still logging in (admission): the session is simply dropped;
            // it holds no upload yet.
            tokio::select! {
                () = session.run() => {}
                () = kill.killed() => {
                    tracing::info!(%peer, reason = ?kill.reason(), "FTPS connection ended");
                }
            }
        });
    }
}
