//! The admin listener: HTTPS only (rustls), for load balancers and monitoring. Each connection,
//! TLS handshake included, runs in its own task under a timeout, so a client that connects
//! and stalls holds only its own task.

pub mod metrics;
pub mod ready;
mod routes;
pub(crate) mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use rustls::pki_types::CertificateDer;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

pub use metrics::{AbortReason, Metrics};
pub use ready::{Readiness, ReadyReport};
pub use routes::AdminState;

use crate::config::AdminConfig;

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request's headers may take once the connection is up.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one connection may stay open at all (a scraper keeps it alive between polls).
const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);
/// Admin connections at once; more are closed at accept (monitoring needs a handful).
const MAX_CONNECTIONS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("admin TLS: {0}")]
    TlsFile(#[from] crate::tls::TlsFileError),
    #[error("admin TLS: {0}")]
    Tls(String),
    #[error("cannot listen on {address} for the admin endpoints: {source}")]
    Bind {
        address: SocketAddr,
        source: std::io::Error,
    },
}

pub struct AdminServer {
    config: AdminConfig,
    acceptor: TlsAcceptor,
    state: Arc<AdminState>,
}

impl std::fmt::Debug for AdminServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminServer")
            .field("listen", &self.config.listen)
            .finish_non_exhaustive()
    }
}

impl AdminServer {
    /// Reads the certificate, key and client CA now, so that a bad file stops the start.
    pub fn new(config: &AdminConfig, state: Arc<AdminState>) -> Result<AdminServer, AdminError> {
        Ok(AdminServer {
            config: config.clone(),
            acceptor: TlsAcceptor::from(tls::server_config(
                config,
                state.console.as_ref().map(|c| c.client_ca()),
            )?),
            state,
        })
    }

    pub async fn bind(&self) -> Result<Vec<TcpListener>, AdminError> {
        let mut out = Vec::new();
        for &address in &self.config.listen {
            let l = TcpListener::bind(address)
                .await
                .map_err(|source| AdminError::Bind { address, source })?;
            out.push(l);
        }
        Ok(out)
    }

    /// Serves until the task is dropped or aborted.
    pub async fn run(self, listeners: Vec<TcpListener>) {
        let me = Arc::new(self);
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut tasks = tokio::task::JoinSet::new();
        for l in listeners {
            tasks.spawn(me.clone().accept_loop(l, slots.clone()));
        }
        while tasks.join_next().await.is_some() {}
    }

    async fn accept_loop(self: Arc<Self>, listener: TcpListener, slots: Arc<Semaphore>) {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    // Out of descriptors and the like: pause instead of spinning.
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                tracing::warn!(%peer, "admin connection refused: too many open");
                continue;
            };
            let me = self.clone();
            tokio::spawn(async move {
                let _slot = slot;
                if tokio::time::timeout(CONNECTION_LIFETIME, me.connection(tcp, peer))
                    .await
                    .is_err()
                {
                    tracing::debug!(%peer, "admin connection closed: open too long");
                }
            });
        }
    }

    async fn connection(&self, tcp: TcpStream, peer: SocketAddr) {
        let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "admin TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "admin TLS handshake timed out");
                return;
            }
        };
        // The verified chain, for the console to map to an officer.
        let chain: Arc<Vec<CertificateDer<'static>>> = Arc::new(
            tls.get_ref()
                .1
                .peer_certificates()
                .map(|c| c.iter().map(|d| d.clone().into_owned()).collect())
                .unwrap_or_default(),
        );
        let state = self.state.clone();
        let service = hyper::service::service_fn(move |req| {
            let (state, chain) = (state.clone(), chain.clone());
            async move { Ok::<_, std::convert::Infallible>(routes::answer(&state, &chain, req).await) }
        });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT);
        if let Err(e) = http.serve_connection(TokioIo::new(tls), service).await {
            tracing::debug!(%peer, error = %e, "admin connection ended with an error");
        }
    }
}
