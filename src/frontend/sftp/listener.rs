//! The accept loop and the life of one connection: the PROXY header of a load balancer's
//! connection, admission (connection caps), the login grace time, shutdown, and cutting off a
//! connection whose session is stuck.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

use super::algorithms::log_no_common_algorithm;
use super::connection::{Connection, ConnectionError, MAX_CHANNEL_PACKET, Shared};
use super::offer;
use crate::config::LimitsConfig;
use crate::frontend::admission::{Entry, RefusalLog};
use crate::frontend::killswitch::{KillSwitch, Killable};
use crate::frontend::proxy_header::Guarded;

/// `[limits] channel_buffer` in channel packets (russh counts messages, not bytes).
pub(super) fn channel_buffer_packets(limits: &LimitsConfig) -> usize {
    (limits.channel_buffer / u64::from(MAX_CHANNEL_PACKET)).max(8) as usize
}

/// How long a disconnect message may take to be queued before the socket is simply cut.
const DISCONNECT_WAIT: Duration = Duration::from_secs(1);
/// After a connection is killed, how long its session task gets to notice.
const KILL_WAIT: Duration = Duration::from_secs(5);

pub(super) async fn accept_loop(
    listener: TcpListener,
    ssh: Arc<russh::server::Config>,
    shared: Arc<Shared>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let refusals = Arc::new(Mutex::new(RefusalLog::default()));
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        if shared.proxy.is_balancer(peer.ip()) {
            // The header is read in the connection's own task: a slow balancer never holds
            // up the accept loop.
            tokio::spawn(behind_balancer(
                socket,
                peer,
                ssh.clone(),
                shared.clone(),
                stop.clone(),
                refusals.clone(),
            ));
            continue;
        }
        // Closed at once if refused: a refused connection costs no more than its accept.
        let Some((kill, entry)) = admit(&shared, peer, &refusals) else {
            continue;
        };
        let handler = Connection::new(shared.clone(), peer, kill.clone(), entry);
        let socket = Guarded::new(Killable::new(socket, kill), peer, shared.proxy.clone());
        tokio::spawn(serve_connection(
            socket,
            peer,
            handler,
            ssh.clone(),
            shared.clone(),
            stop.clone(),
        ));
    }
}

/// A place in the connection caps for `client`, or `None` (refusal logged).
fn admit(
    shared: &Shared,
    client: SocketAddr,
    refusals: &Mutex<RefusalLog>,
) -> Option<(Arc<KillSwitch>, Arc<Entry>)> {
    let kill = KillSwitch::new();
    match shared.admission.enter(client.ip(), kill.clone()) {
        Ok(e) => Some((kill, Arc::new(e))),
        Err(refusal) => {
            refusals
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .note(client, &refusal, shared.admission.counts());
            None
        }
    }
}

/// A load balancer's connection: its PROXY header first, then admission and the SSH session
/// as the client the header names.
async fn behind_balancer(
    mut socket: TcpStream,
    peer: SocketAddr,
    ssh: Arc<russh::server::Config>,
    shared: Arc<Shared>,
    stop: tokio::sync::watch::Receiver<bool>,
    refusals: Arc<Mutex<RefusalLog>>,
) {
    let client = match shared.proxy.client(&mut socket, peer).await {
        Ok(c) => c,
        Err(why) => {
            shared.proxy.refused(peer, &why);
            return;
        }
    };
    tracing::debug!(client = %client.addr, balancer = %peer, "PROXY header read");
    let Some((kill, entry)) = admit(&shared, client.addr, &refusals) else {
        return;
    };
    let handler = Connection::new(shared.clone(), client.addr, kill.clone(), entry);
    let socket = Killable::new(socket, kill);
    serve_connection(socket, client.addr, handler, ssh, shared, stop).await;
}

/// One connection from accept to end: the SSH session, ended early if the login grace time
/// passes before a login, if a newcomer displaces it, or at shutdown.
async fn serve_connection<S>(
    socket: S,
    peer: SocketAddr,
    handler: Connection,
    ssh: Arc<russh::server::Config>,
    shared: Arc<Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let kill = handler.kill_switch();
    let entry = handler.entry();
    let grace = tokio::time::sleep(shared.limits.login_grace);
    tokio::pin!(grace);
    let (socket, opening) = offer::Recorder::new(socket);
    // The version exchange happens here, before russh's session task exists: a client that
    // sends nothing is bounded by the grace time too.
    let session = tokio::select! {
        r = russh::server::run_stream(ssh, socket, handler) => match r {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, ?peer, "connection setup failed");
                return;
            }
        },
        _ = &mut grace => {
            tracing::info!(?peer, "no SSH version line within [limits] login_grace_secs; closed");
            return;
        }
        _ = kill.killed() => return,
        _ = async { let _ = stop.wait_for(|s| *s).await; } => return,
    };
    let handle = session.handle();
    tokio::pin!(session);
    let mut grace_over = false;
    let ended = loop {
        tokio::select! {
            r = &mut session => break Some(r),
            _ = &mut grace, if !grace_over => {
                grace_over = true;
                if !entry.is_authenticated() {
                    tracing::info!(?peer, grace_secs = shared.limits.login_grace.as_secs(), "no login within [limits] login_grace_secs; disconnecting");
                    disconnect(&handle, "login grace time over").await;
                    kill.kill("login grace time over");
                }
            }
            _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                disconnect(&handle, "server shutting down").await;
                kill.kill("server shutting down");
                break None;
            }
            _ = kill.killed() => break None,
        }
    };
    let ended = match ended {
        Some(r) => Some(r),
        // Killed: the session task fails at its next socket operation; wait for it briefly.
        None => tokio::time::timeout(KILL_WAIT, &mut session).await.ok(),
    };
    match ended {
        Some(Err(ConnectionError::Ssh(russh::Error::NoCommonAlgo { kind, ours, theirs }))) => {
            log_no_common_algorithm(peer, &opening, shared.algorithms, kind, &ours, &theirs);
        }
        Some(Err(e)) => {
            tracing::debug!(error = %e, ?peer, reason = kill.reason(), "connection ended with error")
        }
        Some(Ok(())) => {}
        None => tracing::warn!(
            ?peer,
            reason = kill.reason(),
            "session task did not end after the connection was cut"
        ),
    }
}

/// Asks the client to go away, without waiting long for a session task that may be stuck.
async fn disconnect(handle: &russh::server::Handle, why: &str) {
    let _ = tokio::time::timeout(
        DISCONNECT_WAIT,
        handle.disconnect(russh::Disconnect::ByApplication, why.into(), "en".into()),
    )
    .await;
}
