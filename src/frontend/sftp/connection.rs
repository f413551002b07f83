//! One SSH connection's handler: authentication (with the brute-force guard and the per-user
//! session limit), session channels (capped per connection) and the SFTP subsystem.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use russh::keys::PublicKey;
use russh::server::{Auth, ChannelOpenHandle, Msg, Session};
use russh::{Channel, ChannelId, MethodKind, MethodSet};
use zeroize::Zeroizing;

use super::inflow::Inflow;
use super::{handler, requests};
use crate::config::{Algorithms, LimitsConfig};
use crate::frontend::admission::{Admission, Entry};
use crate::frontend::killswitch::KillSwitch;
use crate::frontend::proxy_header::ProxyProtocol;
use crate::transfer::{
    AuthOutcome, CertificateAttempt, CertificateInfo, CertificateRefusal, Gateway, Method,
    Principal, SessionSlot, Verdict,
};

/// How a login proved itself, for its audit record.
#[derive(Clone, Copy)]
enum Proof<'a> {
    /// `publickey` or `password`.
    Method(&'static str),
    Certificate(&'a CertificateInfo),
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
pub(super) const MAX_CHANNEL_PACKET: u32 = 32 << 10;

pub(super) struct Shared {
    pub(super) gateway: Arc<Gateway>,
    /// SFTP connections logged in (the drain waits for them briefly).
    pub(super) logged_in: AtomicU32,
    pub(super) max_handles: usize,
    pub(super) algorithms: Algorithms,
    pub(super) admission: Arc<Admission>,
    pub(super) limits: LimitsConfig,
    /// `[server] proxy_protocol_from`: which peers are load balancers.
    pub(super) proxy: Arc<ProxyProtocol>,
}

pub(super) struct Connection {
    shared: Arc<Shared>,
    peer: Option<SocketAddr>,
    principal: Option<Principal>,
    slot: Option<SessionSlot>,
    /// Session channels opened and not yet given an SFTP task.
    channels: HashMap<ChannelId, Channel<Msg>>,
    /// Session channels open, for `[limits] max_channels_per_connection`.
    open_channels: HashSet<ChannelId>,
    /// What each SFTP channel has received and its loop not yet consumed.
    inflows: HashMap<ChannelId, Arc<Inflow>>,
    key_failure_counted: bool,
    /// Ends the connection (socket and SFTP tasks); thrown when this handler is dropped.
    kill: Arc<KillSwitch>,
    entry: Arc<Entry>,
}

impl Connection {
    pub(super) fn new(
        shared: Arc<Shared>,
        peer: SocketAddr,
        kill: Arc<KillSwitch>,
        entry: Arc<Entry>,
    ) -> Connection {
        Connection {
            shared,
            peer: Some(peer),
            principal: None,
            slot: None,
            channels: HashMap::new(),
            open_channels: HashSet::new(),
            inflows: HashMap::new(),
            key_failure_counted: false,
            kill,
            entry,
        }
    }

    pub(super) fn kill_switch(&self) -> Arc<KillSwitch> {
        self.kill.clone()
    }

    pub(super) fn entry(&self) -> Arc<Entry> {
        self.entry.clone()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // The session is over, however it ended: stop its SFTP tasks (their open uploads
        // abort) even if they are waiting on a client that will never answer.
        self.kill.kill("the connection ended");
        if self.slot.is_some() {
            self.shared.logged_in.fetch_sub(1, Ordering::SeqCst);
        }
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

    /// Writes the audit record of an attempt proved by `proof`; `false`: it could not be
    /// written.
    fn record(
        &self,
        user: &str,
        tenant: Option<&str>,
        proof: Proof<'_>,
        outcome: AuthOutcome,
        reason: Option<&CertificateRefusal>,
    ) -> bool {
        let source = self.source();
        let gateway = &self.shared.gateway;
        match proof {
            Proof::Method(method) => gateway.audit_auth(user, tenant, &source, method, outcome),
            Proof::Certificate(info) => {
                let attempt = CertificateAttempt {
                    user,
                    tenant,
                    source: &source,
                    info,
                };
                gateway.audit_auth_certificate(&attempt, outcome, reason)
            }
        }
    }

    fn admit(&mut self, who: Principal, proof: Proof<'_>) -> Auth {
        let gateway = &self.shared.gateway;
        let slot = match gateway.open_session(&who, self.ip()) {
            Ok(slot) => slot,
            Err(full) => {
                tracing::warn!(user = %who.user, limit = full.limit, "session limit reached; login refused");
                self.record(
                    &who.user,
                    Some(&who.tenant),
                    proof,
                    AuthOutcome::SessionLimit,
                    None,
                );
                return Auth::reject();
            }
        };
        // No audit record, no session (the slot goes back as it drops).
        if !self.record(
            &who.user,
            Some(&who.tenant),
            proof,
            AuthOutcome::Accepted,
            None,
        ) {
            return Auth::reject();
        }
        self.entry.authenticated();
        gateway.guard().success(self.ip(), &who.user);
        tracing::info!(tenant = %who.tenant, user = %who.user, peer = ?self.peer, "login");
        self.shared.logged_in.fetch_add(1, Ordering::SeqCst);
        self.slot = Some(slot);
        self.principal = Some(who);
        Auth::Accept
    }

    async fn fail(&self, user: &str, method: Method) -> Auth {
        let delay = self
            .shared
            .gateway
            .guard()
            .failure(self.ip(), user, method, Instant::now());
        let name = method.name();
        tracing::warn!(user, method = name, peer = ?self.peer, "authentication failed");
        self.shared
            .gateway
            .audit_auth(user, None, &self.source(), name, AuthOutcome::Rejected);
        tokio::time::sleep(delay).await;
        Auth::reject()
    }

    /// A key the user may not log in with. Clients offer several keys in turn, so only the
    /// connection's first such key counts as a failure (and is audited).
    async fn key_refused(&mut self, user: &str) -> Auth {
        if self.key_failure_counted {
            return Auth::reject();
        }
        self.key_failure_counted = true;
        self.fail(user, Method::Key).await
    }

    /// A certificate refused: always audited with its reason; a failure for the guard like a
    /// refused key (once per connection, since the client goes on to offer its plain key).
    async fn certificate_refused(
        &mut self,
        user: &str,
        info: &CertificateInfo,
        why: &CertificateRefusal,
    ) -> Auth {
        tracing::warn!(user, peer = ?self.peer, key_id = %info.key_id, serial = info.serial, ca = %info.ca, reason = %why, "certificate refused");
        self.record(
            user,
            None,
            Proof::Certificate(info),
            AuthOutcome::Rejected,
            Some(why),
        );
        if self.key_failure_counted {
            return Auth::reject();
        }
        self.key_failure_counted = true;
        let delay =
            self.shared
                .gateway
                .guard()
                .failure(self.ip(), user, Method::Key, Instant::now());
        tokio::time::sleep(delay).await;
        Auth::reject()
    }

    /// Whether the guard refuses this attempt unheard; sits out a password throttle first.
    async fn refused(&self, user: &str, method: Method) -> bool {
        match self
            .shared
            .gateway
            .guard()
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
        let gateway = &self.shared.gateway;
        if gateway.authenticate_key(user, offer.public_key).is_some() {
            return Ok(Auth::Accept);
        }
        // russh shows a certificate's offer as its bare key, and calls
        // `auth_openssh_certificate` only for an accepted offer. So while user CAs are
        // trusted, every key goes on to prove itself; `auth_publickey` refuses a bare key
        // that is not authorized, and counts it as this refusal would have.
        if gateway.accepts_certificates() {
            return Ok(Auth::Accept);
        }
        Ok(self.key_refused(user).await)
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
            Some(who) => Ok(self.admit(who, Proof::Method("publickey"))),
            None => Ok(self.key_refused(user).await),
        }
    }

    async fn auth_openssh_certificate(
        &mut self,
        user: &str,
        certificate: &russh::keys::Certificate,
    ) -> Result<Auth, Self::Error> {
        if self.refused(user, Method::Key).await {
            return Ok(Auth::reject());
        }
        let (info, result) =
            self.shared
                .gateway
                .authenticate_certificate(user, certificate, self.ip());
        match result {
            Ok(who) => Ok(self.admit(who, Proof::Certificate(&info))),
            Err(why) => Ok(self.certificate_refused(user, &info, &why).await),
        }
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        if self.refused(user, Method::Password).await {
            return Ok(Auth::reject());
        }
        let pw = Zeroizing::new(password.to_string());
        match self.shared.gateway.authenticate_password(user, pw).await {
            Some(who) => Ok(self.admit(who, Proof::Method("password"))),
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
        self.inflows.remove(&channel);
        Ok(())
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.check_packet(data.len())?;
        // Beyond its allowance, a channel's unconsumed data waits for the memory budget: this
        // connection reads no further until it fits (the client waits through TCP).
        if let Some(inflow) = self.inflows.get(&channel) {
            tokio::select! {
                r = inflow.received(data.len()) => if let Err(e) = r {
                    tracing::warn!(error = %e, "received data not charged to the memory budget");
                },
                () = self.kill.killed() => {}
            }
        }
        Ok(())
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
        let inflow = Inflow::new(self.shared.gateway.inflow_budget().clone());
        self.inflows.insert(channel_id, inflow.clone());
        tokio::spawn(requests::serve(
            channel,
            sftp,
            handler::MAX_PACKET_LEN + 1024,
            stall,
            inflow,
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
