//! One FTPS control connection: the command loop. Plaintext is refused beyond `AUTH TLS`
//! (no login, no data without `PROT P`); every file operation goes through `transfer` with the
//! logged-in [`Principal`], exactly as SFTP's do.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use tokio::io::AsyncWriteExt;

use crate::frontend::admission::Entry;
use crate::frontend::proxy_header::Client;
use crate::transfer::{
    AuthOutcome, ClientCertificate, FileInfo, Method, Principal, Protocol, SessionSlot,
    TransferError, Verdict, VirtualPath, WriteMode,
};

use super::Shared;
use super::command::{self, Command};
use super::data::{self, DataError};
use super::lines::{Control, Line, Lines};
use super::listing;
use super::passive::Passive;
use super::reply;

mod certificate_login;
mod proxy_opening;
mod transfers;
use transfers::Format;

/// Over-long lines tolerated before the connection is closed.
const MAX_LONG_LINES: u32 = 3;
/// Failed logins on one connection before it is closed.
const MAX_LOGIN_FAILURES: u32 = 3;
/// Entries per listing page read from `transfer` (and written to the data connection).
const PAGE_ENTRIES: usize = 200;
const PAGE_NAME_BYTES: usize = 64 * 1024;

const FEATURES: &str = "Features:\nAUTH TLS\nPBSZ\nPROT\nUTF8\nEPSV\nPASV\nSIZE\nMDTM\nREST STREAM\nMLST type*;size*;modify*;perm*;\nEnd";
const PLAINTEXT: &str = "plaintext FTP is refused: send AUTH TLS first (explicit FTPS); user names, passwords and files never cross the network in the clear";
const SEALED: &str = "objects are sealed once (encrypted as a whole): upload the whole file again";

enum Flow {
    Continue,
    Quit,
}

pub struct Session {
    shared: Arc<Shared>,
    /// The client: the socket's peer, or the one a load balancer's PROXY header named.
    peer: SocketAddr,
    /// The load balancer the connection came through, if any.
    via: Option<SocketAddr>,
    /// A direct connection whose first bytes are not yet checked for a PROXY header.
    check_opening: bool,
    local: SocketAddr,
    control: Control,
    lines: Lines,
    started: Instant,
    prot_p: bool,
    user: Option<String>,
    who: Option<Principal>,
    cwd: VirtualPath,
    rename_from: Option<VirtualPath>,
    rest: u64,
    passive: Option<Passive>,
    long_lines: u32,
    login_failures: u32,
    /// This connection's place in the connection caps (shared with SFTP).
    entry: Entry,
    /// The user's session slot (shared with SFTP), once logged in.
    slot: Option<SessionSlot>,
    /// Implicit FTPS: TLS from the first byte.
    implicit: bool,
    /// The client certificate the TLS handshake verified, if the client sent one.
    client_cert: Option<ClientCertificate>,
    /// Random, written into this control connection's TLS session tickets: a data connection
    /// that resumes a session carrying it resumes this connection's (`require_ssl_reuse`).
    tls_token: [u8; 16],
    /// Held from a STOR's start until its reply is sent (graceful shutdown waits for it).
    stor_reply: Option<super::StorReply>,
}

type Reply = (u16, String);

fn r(code: u16, text: impl Into<String>) -> Reply {
    (code, text.into())
}

fn refusal(e: TransferError) -> Reply {
    let code = match e {
        TransferError::NotFound(_) | TransferError::PermissionDenied(_) => 550,
        TransferError::Unsupported(_) => 504,
        TransferError::Failure(_) => 451,
    };
    (code, e.to_string())
}

fn data_refusal(e: DataError) -> Reply {
    match e {
        DataError::Transfer(t) => refusal(t),
        DataError::NoConnection | DataError::Handshake(_) => r(425, e.to_string()),
        DataError::Truncated | DataError::Timeout(_) | DataError::Io(_) => r(426, e.to_string()),
        // The 426 for the transfer is sent; this answers the ABOR itself.
        DataError::Aborted => r(226, "ABOR done"),
        // vsftpd's reply for its require_ssl_reuse.
        DataError::NotReused(_) => r(522, e.to_string()),
    }
}

impl Session {
    pub fn new(
        shared: Arc<Shared>,
        tcp: tokio::net::TcpStream,
        client: Client,
        implicit: bool,
        entry: Entry,
    ) -> Session {
        let peer = client.addr;
        let local = tcp.local_addr().unwrap_or(peer);
        // A balancer's connection had its header read; a second one is no business of ours.
        let check_opening = tcp.peer_addr().map_or(true, |p| p == peer);
        Session {
            shared,
            peer,
            via: client.via,
            check_opening,
            local,
            control: Control::Plain(tcp),
            lines: Lines::default(),
            started: Instant::now(),
            prot_p: false,
            user: None,
            who: None,
            cwd: VirtualPath::root(),
            rename_from: None,
            rest: 0,
            passive: None,
            long_lines: 0,
            login_failures: 0,
            entry,
            slot: None,
            implicit,
            client_cert: None,
            tls_token: rand::random(),
            stor_reply: None,
        }
    }

    pub async fn run(mut self) {
        let greeting = if self.implicit {
            if self.proxy_header_peeked().await {
                return;
            }
            // Plaintext or garbage on an implicit port fails here: the connection just closes.
            if !self.start_tls().await {
                return;
            }
            "eugate FTPS ready (implicit TLS)"
        } else {
            "eugate FTPS ready; send AUTH TLS"
        };
        if self.send(220, greeting).await.is_err() {
            return;
        }
        loop {
            let wait = if self.who.is_some() {
                self.shared.idle_timeout
            } else {
                self.shared
                    .login_grace
                    .saturating_sub(self.started.elapsed())
            };
            let line = match tokio::time::timeout(wait, self.lines.next(&mut self.control)).await {
                Err(_) => {
                    let _ = self
                        .send(421, "timeout: closing the control connection")
                        .await;
                    break;
                }
                Ok(Ok(Some(line))) => line,
                Ok(Ok(None)) | Ok(Err(_)) => break,
            };
            if self.proxy_header_first(&line) {
                break;
            }
            match self.line(line).await {
                Ok(Flow::Continue) => {}
                Ok(Flow::Quit) | Err(_) => break,
            }
        }
        let _ = self.control.shutdown().await;
    }

    async fn send(&mut self, code: u16, text: &str) -> std::io::Result<()> {
        self.control
            .write_all(reply::format(code, text).as_bytes())
            .await?;
        self.control.flush().await
    }

    async fn line(&mut self, line: Line) -> std::io::Result<Flow> {
        let mut text = match line {
            Line::Text(t) => t,
            Line::TooLong => {
                self.long_lines += 1;
                if self.long_lines >= MAX_LONG_LINES {
                    self.send(421, "too many over-long command lines; closing")
                        .await?;
                    return Ok(Flow::Quit);
                }
                let msg = format!(
                    "command line too long (limit {} bytes)",
                    super::lines::MAX_LINE
                );
                self.send(500, &msg).await?;
                return Ok(Flow::Continue);
            }
            Line::NotUtf8 => {
                self.send(501, "command line is not UTF-8").await?;
                return Ok(Flow::Continue);
            }
        };
        let cmd = command::parse(&text);
        // The line may hold a password.
        zeroize::Zeroize::zeroize(&mut text);
        if matches!(cmd, Command::Auth(_)) {
            return self.auth(cmd).await;
        }
        if matches!(cmd, Command::Quit) {
            self.send(221, "goodbye").await?;
            return Ok(Flow::Quit);
        }
        let (code, text) = self.dispatch(cmd).await;
        self.send(code, &text).await?;
        self.stor_reply = None;
        if code == 421 {
            return Ok(Flow::Quit);
        }
        Ok(Flow::Continue)
    }

    /// `AUTH TLS`: 234, then the TLS handshake on the same connection.
    async fn auth(&mut self, cmd: Command) -> std::io::Result<Flow> {
        let Command::Auth(mech) = cmd else {
            return Ok(Flow::Continue);
        };
        if self.control.is_tls() {
            self.send(503, "TLS is already active on this connection")
                .await?;
            return Ok(Flow::Continue);
        }
        if !matches!(mech.to_ascii_uppercase().as_str(), "TLS" | "TLS-C" | "SSL") {
            self.send(504, "only AUTH TLS is supported").await?;
            return Ok(Flow::Continue);
        }
        if self.lines.has_pending() {
            // Bytes sent behind AUTH before our 234 could be injected plaintext (CVE-2011-0411).
            self.send(503, "data after AUTH TLS before the 234 reply; closing")
                .await?;
            return Ok(Flow::Quit);
        }
        self.send(234, "AUTH TLS accepted; start the TLS handshake")
            .await?;
        Ok(if self.start_tls().await {
            Flow::Continue
        } else {
            Flow::Quit
        })
    }

    /// The TLS handshake on the control connection (after `AUTH TLS`, or first on an implicit
    /// port); keeps the client certificate it verified. `false`: the connection is done.
    async fn start_tls(&mut self) -> bool {
        let Control::Plain(tcp) = std::mem::replace(&mut self.control, Control::Gone) else {
            return false;
        };
        let token = self.tls_token;
        let handshake = self
            .shared
            .acceptor
            .accept_with(tcp, |c| c.set_resumption_data(&token));
        match tokio::time::timeout(self.shared.data_timeout, handshake).await {
            Ok(Ok(tls)) => {
                self.client_cert = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .map(|c| ClientCertificate::from_der(c));
                self.control = Control::Tls(Box::new(tls));
                true
            }
            Ok(Err(e)) => {
                tracing::info!(peer = %self.peer, implicit = self.implicit, error = %e, "TLS handshake on the control connection failed");
                false
            }
            Err(_) => {
                tracing::info!(peer = %self.peer, implicit = self.implicit, "TLS handshake on the control connection timed out");
                false
            }
        }
    }

    async fn dispatch(&mut self, cmd: Command) -> Reply {
        match cmd {
            Command::Feat => return r(211, FEATURES),
            Command::Noop => return r(200, "NOOP ok"),
            Command::Syst => return r(215, "UNIX Type: L8"),
            Command::Unknown(v) => return r(502, format!("command `{v}` is not implemented")),
            Command::MissingArgument(v) => return r(501, format!("{v} needs an argument")),
            Command::Active => {
                return r(
                    502,
                    "active mode (PORT/EPRT) is not supported: the gateway never connects to an address a client names; use PASV or EPSV",
                );
            }
            _ => {}
        }
        if !self.control.is_tls() {
            return r(530, PLAINTEXT);
        }
        match cmd {
            Command::Pbsz(_) => return r(200, "PBSZ=0"),
            Command::Prot(level) => return self.prot(&level),
            Command::Ccc => return r(534, "CCC refused: the control connection stays encrypted"),
            Command::User(name) => return self.user(name).await,
            Command::Pass(pw) => return self.pass(pw).await,
            Command::Opts(o) => return opts(&o),
            _ => {}
        }
        let Some(who) = self.who.clone() else {
            return r(530, "log in first with USER and PASS");
        };
        self.command(cmd, who).await
    }

    fn prot(&mut self, level: &str) -> Reply {
        match level.to_ascii_uppercase().as_str() {
            "P" => {
                self.prot_p = true;
                r(200, "PROT P: data connections are encrypted")
            }
            "C" => {
                self.prot_p = false;
                r(
                    534,
                    "PROT C refused: data connections must be encrypted (PROT P)",
                )
            }
            _ => r(504, "only PROT P is supported"),
        }
    }

    async fn user(&mut self, name: String) -> Reply {
        if self.who.is_some() {
            return r(
                503,
                "already logged in; open a new connection to change user",
            );
        }
        if let Some(cert) = self.client_cert.clone()
            && let Some(reply) = self.certificate_login(&name, &cert).await
        {
            return reply;
        }
        self.user = Some(name);
        r(331, "password required")
    }

    async fn pass(&mut self, pw: zeroize::Zeroizing<String>) -> Reply {
        if self.who.is_some() {
            return r(503, "already logged in");
        }
        let Some(user) = self.user.take() else {
            return r(503, "send USER first");
        };
        let ip = Some(self.peer.ip());
        let source = self.peer.to_string();
        let gw = self.shared.gateway.clone();
        let guard = gw.guard();
        match guard.check(ip, &user, Method::Password, Instant::now()) {
            Verdict::Allowed => {}
            Verdict::Throttled(d) => tokio::time::sleep(d).await,
            Verdict::Banned | Verdict::Full => {
                gw.audit_auth(&user, None, &source, "ftps password", AuthOutcome::Banned);
                return r(
                    421,
                    "too many failed logins from your address; try again later",
                );
            }
        }
        match gw.authenticate_password(&user, pw).await {
            Some(who) => {
                let tenant = who.tenant.clone();
                let record = |outcome| {
                    gw.audit_auth(&user, Some(&tenant), &source, "ftps password", outcome)
                };
                match self.login(who, record) {
                    Ok(()) => r(230, "logged in"),
                    Err(refused) => refused,
                }
            }
            None => {
                let delay = guard.failure(ip, &user, Method::Password, Instant::now());
                gw.audit_auth(&user, None, &source, "ftps password", AuthOutcome::Rejected);
                tokio::time::sleep(delay).await;
                self.login_failures += 1;
                if self.login_failures >= MAX_LOGIN_FAILURES {
                    return r(421, "too many failed logins; closing");
                }
                r(530, "login incorrect")
            }
        }
    }

    /// Starts the session of a user whose credential is proved: takes a session slot (shared
    /// with SFTP) and writes the audit record with `record`, or says why not.
    fn login(&mut self, who: Principal, record: impl Fn(AuthOutcome) -> bool) -> Result<(), Reply> {
        let gw = self.shared.gateway.clone();
        let slot = match gw.open_session(&who, Some(self.peer.ip())) {
            Ok(slot) => slot,
            Err(full) => {
                tracing::warn!(user = %who.user, limit = full.limit, "session limit reached; FTPS login refused");
                record(AuthOutcome::SessionLimit);
                return Err(r(530, full.to_string()));
            }
        };
        if !record(AuthOutcome::Accepted) {
            return Err(r(
                421,
                "the audit log is unavailable, so no session can start",
            ));
        }
        self.entry.authenticated();
        gw.guard().success(Some(self.peer.ip()), &who.user);
        tracing::info!(user = %who.user, peer = %self.peer, "FTPS login");
        self.slot = Some(slot);
        self.who = Some(who.over(Protocol::Ftps));
        Ok(())
    }

    async fn command(&mut self, cmd: Command, who: Principal) -> Reply {
        if !matches!(cmd, Command::Rnto(_)) && !matches!(cmd, Command::Rnfr(_)) {
            self.rename_from = None;
        }
        let gw = self.shared.gateway.clone();
        match cmd {
            Command::Type(t) => match t.to_ascii_uppercase().chars().next() {
                Some('I') | Some('L') => r(200, "type set to binary"),
                Some('A') => r(200, "type set to ASCII (files are transferred unchanged)"),
                _ => r(504, "unsupported type; use TYPE I"),
            },
            Command::Mode(m) if m.eq_ignore_ascii_case("S") => r(200, "mode stream"),
            Command::Mode(_) => r(504, "only MODE S is supported"),
            Command::Stru(s) if s.eq_ignore_ascii_case("F") => r(200, "structure file"),
            Command::Stru(_) => r(504, "only STRU F is supported"),
            Command::Pwd => r(
                257,
                format!(
                    "{} is the current directory",
                    reply::quoted(&self.cwd.to_string())
                ),
            ),
            Command::Cwd(p) => self.cwd(&who, &p).await,
            Command::Cdup => self.cwd(&who, "..").await,
            Command::Pasv => self.pasv(false).await,
            Command::Epsv(arg) => match arg {
                Some(a) if a.eq_ignore_ascii_case("ALL") => r(200, "EPSV ALL ok"),
                _ => self.pasv(true).await,
            },
            Command::Size(p) => match self.stat(&who, &p).await {
                Ok(i) if !i.is_dir => r(213, i.size.to_string()),
                Ok(_) => r(550, "not a plain file"),
                Err(e) => e,
            },
            Command::Mdtm(p) => match self.stat(&who, &p).await {
                Ok(i) => r(213, listing::timeval(i.modified)),
                Err(e) => e,
            },
            Command::Mlst(p) => {
                let raw = p.unwrap_or_else(|| self.cwd.to_string());
                match self.stat(&who, &raw).await {
                    Ok(i) => {
                        let name = self.resolve(&raw).map(|v| v.to_string()).unwrap_or(raw);
                        r(250, format!("Listing\n{}\nEnd", listing::facts(&i, &name)))
                    }
                    Err(e) => e,
                }
            }
            Command::Rest(n) => match n.trim().parse::<u64>() {
                Ok(n) => {
                    self.rest = n;
                    r(
                        350,
                        format!(
                            "restarting at {n}; send RETR (REST before STOR is refused: {SEALED})"
                        ),
                    )
                }
                Err(_) => r(501, "REST needs a byte offset"),
            },
            Command::Appe(_) => r(550, format!("APPE is not supported: {SEALED}")),
            Command::Dele(p) => match self.resolve(&p) {
                Ok(v) => match gw.remove(&who, &v).await {
                    Ok(()) => r(250, "deleted"),
                    Err(e) => refusal(e),
                },
                Err(e) => e,
            },
            Command::Mkd(p) => match self.resolve(&p) {
                Ok(v) => match gw.mkdir(&who, &v).await {
                    Ok(()) => r(257, format!("{} created", reply::quoted(&v.to_string()))),
                    Err(e) => refusal(e),
                },
                Err(e) => e,
            },
            Command::Rmd(p) => match self.resolve(&p) {
                Ok(v) => match gw.rmdir(&who, &v).await {
                    Ok(()) => r(250, "directory removed"),
                    Err(e) => refusal(e),
                },
                Err(e) => e,
            },
            Command::Rnfr(p) => match self.resolve(&p) {
                Ok(v) => match gw.stat(&who, &v).await {
                    Ok(_) => {
                        self.rename_from = Some(v);
                        r(350, "ready for RNTO")
                    }
                    Err(e) => refusal(e),
                },
                Err(e) => e,
            },
            Command::Rnto(p) => {
                let Some(from) = self.rename_from.take() else {
                    return r(503, "send RNFR first");
                };
                match self.resolve(&p) {
                    Ok(to) => match gw.rename(&who, &from, &to).await {
                        Ok(()) => r(250, "renamed"),
                        Err(e) => refusal(e),
                    },
                    Err(e) => e,
                }
            }
            Command::Abor => r(226, "no transfer in progress"),
            Command::Stor(p) => self.stor(&who, &p).await,
            Command::Retr(p) => self.retr(&who, &p).await,
            Command::List(p) => self.list(&who, p, Format::List).await,
            Command::Nlst(p) => self.list(&who, p, Format::Names).await,
            Command::Mlsd(p) => self.list(&who, p, Format::Facts).await,
            _ => r(502, "command not implemented"),
        }
    }

    /// A client path, absolute or relative to the working directory.
    fn resolve(&self, raw: &str) -> Result<VirtualPath, Reply> {
        let joined = if raw.starts_with('/') {
            raw.to_string()
        } else {
            format!("{}/{raw}", self.cwd)
        };
        VirtualPath::parse(&joined).map_err(|e| r(553, e.to_string()))
    }

    async fn stat(&self, who: &Principal, raw: &str) -> Result<FileInfo, Reply> {
        let v = self.resolve(raw)?;
        self.shared.gateway.stat(who, &v).await.map_err(refusal)
    }

    async fn cwd(&mut self, who: &Principal, raw: &str) -> Reply {
        let v = match self.resolve(raw) {
            Ok(v) => v,
            Err(e) => return e,
        };
        if !v.is_root() {
            match self.shared.gateway.stat(who, &v).await {
                Ok(i) if i.is_dir => {}
                Ok(_) => return r(550, "not a directory"),
                Err(e) => return refusal(e),
            }
        }
        self.cwd = v;
        r(
            250,
            format!(
                "working directory is {}",
                reply::quoted(&self.cwd.to_string())
            ),
        )
    }
}

fn opts(o: &str) -> Reply {
    let upper = o.to_ascii_uppercase();
    if upper == "UTF8 ON" || upper == "UTF-8 ON" {
        r(200, "UTF-8 is always on")
    } else if upper.starts_with("MLST") {
        r(200, "MLST facts: type;size;modify;perm;")
    } else {
        r(501, "unsupported option")
    }
}
