//! The SFTP front end: a russh server with modern algorithms (or, by the operator's choice, a
//! compatible set), per-IP and per-user brute-force defence, a session limit per user, and one
//! [`handler::SftpSession`] per SFTP channel. It knows only `transfer` (and `config` at startup).

mod admission;
mod framing;
pub mod guard;
pub mod handler;
mod hostkeys;
mod killswitch;
mod offer;
mod requests;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::keys::{Algorithm, EcdsaCurve, HashAlg, PublicKey};
use russh::server::{Auth, ChannelOpenHandle, Msg, Session};
use russh::{Channel, ChannelId, MethodKind, MethodSet, Preferred};
use tokio::net::TcpListener;
use zeroize::Zeroizing;

use crate::config::{Algorithms, Config, LimitsConfig};
use crate::transfer::{AuthOutcome, Gateway, Principal};

use admission::{Admission, Entry};
use killswitch::{KillSwitch, Killable};

pub use guard::{AuthGuard, Method, Verdict};
pub use hostkeys::load_host_keys;

#[derive(Debug, thiserror::Error)]
pub enum FrontendError {
    #[error("host key {path}: {reason}")]
    HostKey { path: String, reason: String },
    #[error("cannot listen on {addr}: {source}; is another process using the port?")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Why a connection's session ended with an error.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error(transparent)]
    Ssh(#[from] russh::Error),
    #[error(
        "the client sent a {len}-byte channel packet; the gateway advertised at most {max} bytes"
    )]
    PacketTooLarge { len: usize, max: u32 },
}

/// The largest channel data packet we advertise (and accept).
const MAX_CHANNEL_PACKET: u32 = 32 << 10;

/// The algorithms offered for `set`. Never SHA-1, never CBC. Strict kex (Terrapin fix) is
/// announced by listing `kex-strict-s-v00@openssh.com`.
///
/// `Modern` offers AEAD ciphers and ETM MACs only. `Compatible` adds, after them, what OpenSSH
/// offers by default that `Modern` lacks: AES-CTR with the non-ETM hmac-sha2 MACs
/// (encrypt-and-MAC; not affected by Terrapin, which needs ChaCha20-Poly1305 or an ETM MAC with
/// CBC). Clients that have AEAD keep choosing it: the server takes the client's first choice
/// that it offers.
pub fn preferred_algorithms(set: Algorithms) -> Preferred {
    let mut cipher = vec![
        russh::cipher::AES_256_GCM,
        russh::cipher::CHACHA20_POLY1305,
        russh::cipher::AES_128_GCM,
    ];
    let mut mac = vec![russh::mac::HMAC_SHA512_ETM, russh::mac::HMAC_SHA256_ETM];
    if set == Algorithms::Compatible {
        cipher.extend([
            russh::cipher::AES_256_CTR,
            russh::cipher::AES_192_CTR,
            russh::cipher::AES_128_CTR,
        ]);
        mac.extend([russh::mac::HMAC_SHA512, russh::mac::HMAC_SHA256]);
    }
    Preferred {
        kex: Cow::Owned(vec![
            russh::kex::MLKEM768X25519_SHA256,
            russh::kex::CURVE25519,
            russh::kex::CURVE25519_PRE_RFC_8731,
            russh::kex::EXTENSION_SUPPORT_AS_SERVER,
            russh::kex::EXTENSION_OPENSSH_STRICT_KEX_AS_SERVER,
        ]),
        key: Cow::Owned(vec![
            Algorithm::Ed25519,
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP256,
            },
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP384,
            },
            Algorithm::Ecdsa {
                curve: EcdsaCurve::NistP521,
            },
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha512),
            },
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha256),
            },
        ]),
        host_key_certificates: Cow::Borrowed(&[]),
        cipher: Cow::Owned(cipher),
        mac: Cow::Owned(mac),
        compression: Cow::Owned(vec![russh::compression::NONE]),
    }
}

struct Shared {
    gateway: Arc<Gateway>,
    guard: AuthGuard,
    sessions: Mutex<HashMap<String, u32>>,
    max_sessions: u32,
    max_handles: usize,
    algorithms: Algorithms,
    admission: Arc<Admission>,
    limits: LimitsConfig,
}

impl Shared {
    /// Logged-in sessions, all users.
    fn session_count(&self) -> u32 {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .sum()
    }
}

/// Holds one of a user's session slots; gives it back when the connection ends.
struct SessionSlot {
    shared: Arc<Shared>,
    user: String,
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        let mut s = self
            .shared
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = s.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                s.remove(&self.user);
            }
        }
    }
}

struct Connection {
    shared: Arc<Shared>,
    peer: Option<SocketAddr>,
    principal: Option<Principal>,
    slot: Option<SessionSlot>,
    /// Session channels opened and not yet given an SFTP task.
    channels: HashMap<ChannelId, Channel<Msg>>,
    /// Session channels open, for `[limits] max_channels_per_connection`.
    open_channels: HashSet<ChannelId>,
    key_failure_counted: bool,
    /// Ends the connection (socket and SFTP tasks); thrown when this handler is dropped.
    kill: Arc<KillSwitch>,
    entry: Arc<Entry>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        // The session is over, however it ended: stop its SFTP tasks (their open uploads
        // abort) even if they are waiting on a client that will never answer.
        self.kill.kill("the connection ended");
    }
}

impl Connection {
    fn ip(&self) -> Option<std::net::IpAddr> {
        self.peer.map(|p| p.ip())
    }

    /// Takes a session slot for the principal, or refuses if the user has too many.
    fn source(&self) -> String {
        self.peer
            .map(|p| p.ip().to_string())
            .unwrap_or_else(|| "unknown".into())
    }

    fn admit(&mut self, who: Principal, method: &str) -> Auth {
        let mut s = self
            .shared
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = s.entry(who.user.clone()).or_insert(0);
        if *n >= self.shared.max_sessions {
            tracing::warn!(user = %who.user, limit = self.shared.max_sessions, "session limit reached; login refused");
            drop(s);
            self.shared.gateway.audit_auth(
                &who.user,
                Some(&who.tenant),
                &self.source(),
                method,
                AuthOutcome::SessionLimit,
            );
            return Auth::reject();
        }
        // No audit record, no session.
        if !self.shared.gateway.audit_auth(
            &who.user,
            Some(&who.tenant),
            &self.source(),
            method,
            AuthOutcome::Accepted,
        ) {
            return Auth::reject();
        }
        *n += 1;
        drop(s);
        self.entry.authenticated();
        self.shared.guard.success(self.ip(), &who.user);
        tracing::info!(tenant = %who.tenant, user = %who.user, peer = ?self.peer, "login");
        self.slot = Some(SessionSlot {
            shared: self.shared.clone(),
            user: who.user.clone(),
        });
        self.principal = Some(who);
        Auth::Accept
    }

    async fn fail(&self, user: &str, method: Method) -> Auth {
        let delay = self
            .shared
            .guard
            .failure(self.ip(), user, method, Instant::now());
        let name = method.name();
        tracing::warn!(user, method = name, peer = ?self.peer, "authentication failed");
        self.shared
            .gateway
            .audit_auth(user, None, &self.source(), name, AuthOutcome::Rejected);
        tokio::time::sleep(delay).await;
        Auth::reject()
    }

    /// Whether the guard refuses this attempt unheard; sits out a password throttle first.
    async fn refused(&self, user: &str, method: Method) -> bool {
        match self
            .shared
            .guard
            .check(self.ip(), user, method, Instant::now())
        {
            Verdict::Allowed => false,
            Verdict::Throttled(pause) => {
                tracing::info!(user, peer = ?self.peer, ?pause, "password attempts for this user are throttled");
                tokio::time::sleep(pause).await;
                false
            }
            v @ (Verdict::Banned | Verdict::Full) => {
                let why = if v == Verdict::Banned {
                    "banned"
                } else {
                    "unknown source while the ban table is full"
                };
                tracing::warn!(user, peer = ?self.peer, why, "attempt while banned; refused");
                self.shared.gateway.audit_auth(
                    user,
                    None,
                    &self.source(),
                    "any",
                    AuthOutcome::Banned,
                );
                true
            }
        }
    }
}

impl Connection {
    /// russh accepts channel packets larger than the maximum we advertised; we do not.
    fn check_packet(&self, len: usize) -> Result<(), ConnectionError> {
        if len > MAX_CHANNEL_PACKET as usize {
            tracing::warn!(len, max = MAX_CHANNEL_PACKET, peer = ?self.peer, "channel packet over the advertised maximum; disconnecting");
            return Err(ConnectionError::PacketTooLarge {
                len,
                max: MAX_CHANNEL_PACKET,
            });
        }
        Ok(())
    }
}

impl russh::server::Handler for Connection {
    type Error = ConnectionError;

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        Ok(Auth::Reject {
            proceed_with_methods: Some(MethodSet::from(
                &[MethodKind::PublicKey, MethodKind::Password][..],
            )),
            partial_success: false,
        })
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: russh::server::PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        if self.refused(user, Method::Key).await {
            return Ok(Auth::reject());
        }
        if self
            .shared
            .gateway
            .authenticate_key(user, offer.public_key)
            .is_some()
        {
            return Ok(Auth::Accept);
        }
        // Clients offer several keys in turn; count one failure per connection, not per key.
        if !self.key_failure_counted {
            self.key_failure_counted = true;
            return Ok(self.fail(user, Method::Key).await);
        }
        Ok(Auth::reject())
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: russh::server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let pk: &PublicKey = key.public_key;
        if self.refused(user, Method::Key).await {
            return Ok(Auth::reject());
        }
        match self.shared.gateway.authenticate_key(user, pk) {
            Some(who) => Ok(self.admit(who, "publickey")),
            None => Ok(self.fail(user, Method::Key).await),
        }
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        if self.refused(user, Method::Password).await {
            return Ok(Auth::reject());
        }
        let pw = Zeroizing::new(password.to_string());
        match self.shared.gateway.authenticate_password(user, pw).await {
            Some(who) => Ok(self.admit(who, "password")),
            None => Ok(self.fail(user, Method::Password).await),
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.principal.is_none() {
            return Ok(()); // dropping `reply` rejects
        }
        let limit = self.shared.limits.max_channels_per_connection;
        if self.open_channels.len() >= limit as usize {
            tracing::warn!(limit, peer = ?self.peer, "session channel refused: [limits] max_channels_per_connection reached");
            return Ok(());
        }
        self.open_channels.insert(channel.id());
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.open_channels.remove(&channel);
        self.channels.remove(&channel);
        Ok(())
    }

    async fn data(
        &mut self,
        _channel: ChannelId,
        data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.check_packet(data.len())
    }

    async fn extended_data(
        &mut self,
        _channel: ChannelId,
        _code: u32,
        data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.check_packet(data.len())
    }

    async fn subsystem_request(
        &mut self,
        channel_id: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let (Some(who), true) = (self.principal.clone(), name == "sftp") else {
            tracing::info!(subsystem = name, "subsystem refused: only sftp is offered");
            session.channel_failure(channel_id)?;
            return Ok(());
        };
        let Some(channel) = self.channels.remove(&channel_id) else {
            session.channel_failure(channel_id)?;
            return Ok(());
        };
        session.channel_success(channel_id)?;
        let sftp =
            handler::SftpSession::new(self.shared.gateway.clone(), who, self.shared.max_handles);
        let stall = requests::Stall {
            kill: self.kill.clone(),
            reply_timeout: self.shared.limits.reply_timeout,
        };
        tokio::spawn(requests::serve(
            channel,
            sftp,
            handler::MAX_PACKET_LEN + 1024,
            stall,
        ));
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // No commands (not even legacy `scp -t`): modern scp speaks SFTP.
        tracing::info!("exec refused");
        session.channel_failure(channel)?;
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)?;
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // The client is done (sftp/scp close stdin at the end): report success like
        // OpenSSH's sftp-server does, so `scp` exits 0, then close the channel.
        session.exit_status_request(channel, 0)?;
        session.eof(channel)?;
        session.close(channel)?;
        // russh forgets a channel we close, and with it the client's CLOSE to come.
        self.open_channels.remove(&channel);
        Ok(())
    }
}

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
    pub fn new(config: &Config, gateway: Arc<Gateway>) -> Result<SftpServer, FrontendError> {
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
        let shared = Arc::new(Shared {
            gateway,
            guard: AuthGuard::new(config.auth.clone()),
            sessions: Mutex::new(HashMap::new()),
            max_sessions: config.server.max_sessions_per_user,
            max_handles: config.server.max_open_handles as usize,
            algorithms: config.server.algorithms,
            admission: Admission::new(&config.limits),
            limits: config.limits.clone(),
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
                while self.shared.session_count() > 0 {
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

/// `[limits] channel_buffer` in channel packets (russh counts messages, not bytes).
fn channel_buffer_packets(limits: &LimitsConfig) -> usize {
    (limits.channel_buffer / u64::from(MAX_CHANNEL_PACKET)).max(8) as usize
}

/// How long a disconnect message may take to be queued before the socket is simply cut.
const DISCONNECT_WAIT: Duration = Duration::from_secs(1);
/// After a connection is killed, how long its session task gets to notice.
const KILL_WAIT: Duration = Duration::from_secs(5);

async fn accept_loop(
    listener: TcpListener,
    ssh: Arc<russh::server::Config>,
    shared: Arc<Shared>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut refusals = RefusalLog::default();
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
        let kill = KillSwitch::new();
        let entry = match shared.admission.enter(peer.ip(), kill.clone()) {
            Ok(e) => Arc::new(e),
            Err(refusal) => {
                // Closed at once: a refused connection costs no more than its accept.
                refusals.note(peer, &refusal, shared.admission.counts());
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let handler = Connection {
            shared: shared.clone(),
            peer: Some(peer),
            principal: None,
            slot: None,
            channels: HashMap::new(),
            open_channels: HashSet::new(),
            key_failure_counted: false,
            kill: kill.clone(),
            entry: entry.clone(),
        };
        let socket = Killable::new(socket, kill.clone());
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

/// Logs refused connections at most once per interval, with how many there were: a flood of
/// connections must not become a flood of log lines.
#[derive(Default)]
struct RefusalLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl RefusalLog {
    const INTERVAL: Duration = Duration::from_secs(10);

    fn note(
        &mut self,
        peer: SocketAddr,
        refusal: &admission::Refusal,
        (open, logging_in): (u32, u32),
    ) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Self::INTERVAL)
        {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(
            ?peer,
            also_refused_since_last_report = self.suppressed,
            open,
            logging_in,
            "connection refused: {refusal}"
        );
        self.last = Some(now);
        self.suppressed = 0;
    }
}

/// One connection from accept to end: the SSH session, ended early if the login grace time
/// passes before a login, if a newcomer displaces it, or at shutdown.
async fn serve_connection(
    socket: Killable<tokio::net::TcpStream>,
    peer: SocketAddr,
    handler: Connection,
    ssh: Arc<russh::server::Config>,
    shared: Arc<Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let kill = handler.kill.clone();
    let entry = handler.entry.clone();
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

/// A client whose offer does not meet ours cannot connect; say what it offered, so an operator
/// can see why (and whether `algorithms = "compatible"` would let it in).
fn log_no_common_algorithm(
    peer: SocketAddr,
    opening: &offer::Captured,
    set: Algorithms,
    kind: russh::AlgorithmKind,
    ours: &[String],
    theirs: &[String],
) {
    let offer = opening
        .get()
        .ok_or(offer::OfferError::NotRecorded)
        .and_then(|c| offer::ClientOffer::parse(c));
    let Ok(offer) = offer else {
        tracing::warn!(
            ?peer,
            failed = ?kind,
            client_offered = %theirs.join(","),
            ours = %ours.join(","),
            "SSH negotiation failed: no common {kind:?} algorithm"
        );
        return;
    };
    let compatible = preferred_algorithms(Algorithms::Compatible);
    let meets = |theirs: &[String], ours: &[russh::cipher::Name]| {
        theirs.iter().any(|t| ours.iter().any(|o| o.as_ref() == t))
    };
    let macs_meet = offer
        .macs
        .iter()
        .any(|t| compatible.mac.iter().any(|o| o.as_ref() == t));
    let hint = if set == Algorithms::Modern
        && meets(&offer.ciphers, &compatible.cipher)
        && macs_meet
        && matches!(
            kind,
            russh::AlgorithmKind::Cipher | russh::AlgorithmKind::Mac
        ) {
        "this client would connect with [server] algorithms = \"compatible\" (docs/ssh-algorithms.md)"
    } else {
        // Kex, host key and compression are the same in both sets; negotiation stops at the
        // first kind that fails, so a cipher or MAC failure means kex already matched.
        "neither algorithm set of this gateway matches this client's offer"
    };
    tracing::warn!(
        ?peer,
        client = %offer.version,
        failed = ?kind,
        client_kex = %offer.kex.join(","),
        client_host_keys = %offer.host_keys.join(","),
        client_ciphers = %offer.ciphers.join(","),
        client_macs = %offer.macs.join(","),
        ours = %ours.join(","),
        algorithms = set.name(),
        hint,
        "SSH negotiation failed: no common {kind:?} algorithm"
    );
}
