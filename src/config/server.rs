//! `[server]` and `[auth]`: where the gateway listens, how SSH sessions behave, and the
//! brute-force defence's thresholds.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use russh::keys::PublicKey;

use super::Collector;
use super::raw::{RawAuth, RawServer};
use super::size::size_or;
use crate::auth::AddressRange;

/// Defaults, also documented in README "Running the gateway".
pub const DEFAULT_REORDER_WINDOW: u64 = 16 << 20;
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 600;
pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 30;
/// A day: longer than any sane drain, short enough that a typo (e.g. milliseconds) is caught.
pub const MAX_SHUTDOWN_GRACE_SECS: u64 = 86_400;
pub const DEFAULT_MAX_SESSIONS_PER_USER: u32 = 10;
pub const DEFAULT_MAX_OPEN_HANDLES: u32 = 64;

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: Vec<SocketAddr>,
    pub host_keys: Vec<PathBuf>,
    pub idle_timeout: Duration,
    pub max_sessions_per_user: u32,
    /// Bytes an upload may hold out of order before writes are refused.
    pub reorder_window: u64,
    pub max_open_handles: u32,
    /// How long a shutdown waits for running uploads before aborting them (0: at once).
    pub shutdown_grace: Duration,
    /// The SSH algorithm set offered to clients.
    pub algorithms: Algorithms,
    /// This gateway among several: named in every audit record.
    pub instance_id: String,
    /// Load balancers whose connections to the SFTP and FTPS control listeners must start with
    /// a PROXY protocol v2 header naming the client; empty: PROXY protocol is off.
    pub proxy_protocol_from: Vec<AddressRange>,
}

/// `[server] algorithms`: which SSH algorithm set the gateway offers (docs/ssh-algorithms.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Algorithms {
    /// AEAD ciphers (AES-GCM, ChaCha20-Poly1305) and ETM MACs only.
    #[default]
    Modern,
    /// Modern, plus what OpenSSH itself offers by default beyond it: AES-CTR with the non-ETM
    /// hmac-sha2-256/512 MACs, for clients on libssh2 1.10 (curl's `sftp://` on Debian 12,
    /// PHP's ssh2). Never SHA-1, never CBC.
    Compatible,
}

impl Algorithms {
    pub fn name(self) -> &'static str {
        match self {
            Algorithms::Modern => "modern",
            Algorithms::Compatible => "compatible",
        }
    }
}

/// Most entries `[auth] max_tracked` may ask for: each costs about a hundred bytes.
pub const MAX_TRACKED_LIMIT: u32 = 1_000_000;

#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Failures of one user name from one source before that pair is banned.
    pub max_failures: u32,
    /// Failures from one source, all user names together, before the source is banned. A
    /// successful login never lowers this count.
    pub max_failures_per_source: u32,
    /// Entries kept per table (sources, source+user pairs, user names); active bans are never
    /// dropped, and while a table is full of them, sources it does not know are refused.
    pub max_tracked: usize,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// How long a ban lasts; also how long a failure is remembered.
    pub ban: Duration,
    /// CAs trusted to sign OpenSSH user certificates (`user_ca_keys` and `user_ca_keys_file`);
    /// empty: certificates are not accepted.
    pub user_ca_keys: Vec<PublicKey>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            max_failures: 5,
            max_failures_per_source: 10,
            max_tracked: 10_000,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
            ban: Duration::from_secs(300),
            user_ca_keys: Vec::new(),
        }
    }
}

pub(super) fn server(
    raw: &RawServer,
    resolve: &dyn Fn(&str) -> PathBuf,
    c: &mut Collector,
) -> ServerConfig {
    let mut listen = Vec::new();
    if raw.listen.is_empty() {
        c.push(
            "server.listen",
            "no listen address; add one, e.g. listen = [\"127.0.0.1:2222\"]",
        );
    }
    for (i, addr) in raw.listen.iter().enumerate() {
        match addr.parse::<SocketAddr>() {
            Ok(a) => listen.push(a),
            Err(_) => c.push(
                format!("server.listen[{i}]"),
                format!(
                    "`{addr}` is not an IP:port socket address; write e.g. \"0.0.0.0:2222\" or \"[::1]:2222\""
                ),
            ),
        }
    }
    if raw.host_keys.is_empty() {
        c.push(
            "server.host_keys",
            "no host key; generate one with `ssh-keygen -t ed25519 -N '' -f host_ed25519` and list its path",
        );
    }
    let host_keys = raw.host_keys.iter().map(|p| resolve(p)).collect();
    let reorder_window = size_or(
        &raw.reorder_window,
        "server.reorder_window",
        DEFAULT_REORDER_WINDOW,
        "16MiB",
        c,
    );
    if !(64 << 10..=1 << 30).contains(&reorder_window) {
        c.push(
            "server.reorder_window",
            "must lie between 64KiB and 1GiB; the default \"16MiB\" suits OpenSSH and WinSCP",
        );
    }
    let max_sessions_per_user = raw
        .max_sessions_per_user
        .unwrap_or(DEFAULT_MAX_SESSIONS_PER_USER);
    if max_sessions_per_user == 0 {
        c.push(
            "server.max_sessions_per_user",
            "0 would lock every user out; use at least 1",
        );
    }
    let max_open_handles = raw.max_open_handles.unwrap_or(DEFAULT_MAX_OPEN_HANDLES);
    if max_open_handles == 0 {
        c.push("server.max_open_handles", "must be at least 1");
    }
    let idle = raw.idle_timeout_secs.unwrap_or(DEFAULT_IDLE_TIMEOUT_SECS);
    if idle == 0 {
        c.push(
            "server.idle_timeout_secs",
            "0 disables nothing and drops every session; use e.g. 600",
        );
    }
    let grace = raw
        .shutdown_grace_secs
        .unwrap_or(DEFAULT_SHUTDOWN_GRACE_SECS);
    if grace > MAX_SHUTDOWN_GRACE_SECS {
        c.push(
            "server.shutdown_grace_secs",
            format!(
                "{grace} seconds is more than a day ({MAX_SHUTDOWN_GRACE_SECS}); it is in seconds, e.g. 30 (0 aborts running uploads at once)"
            ),
        );
    }
    let algorithms = match raw.algorithms.as_deref() {
        None | Some("modern") => Algorithms::Modern,
        Some("compatible") => Algorithms::Compatible,
        Some(other) => {
            c.push(
                "server.algorithms",
                format!(
                    "`{other}` is not an algorithm set; write \"modern\" (the default: AES-GCM, ChaCha20-Poly1305, ETM MACs) or \"compatible\" (adds aes128/192/256-ctr with hmac-sha2-256/512, for libssh2-based clients such as curl's sftp://)"
                ),
            );
            Algorithms::Modern
        }
    };
    let instance_id = instance_id(raw.instance_id.as_deref(), c);
    let proxy_protocol_from = proxy_protocol_from(&raw.proxy_protocol_from, c);
    ServerConfig {
        proxy_protocol_from,
        instance_id,
        algorithms,
        shutdown_grace: Duration::from_secs(grace.min(MAX_SHUTDOWN_GRACE_SECS)),
        listen,
        host_keys,
        idle_timeout: Duration::from_secs(idle),
        max_sessions_per_user,
        reorder_window,
        max_open_handles,
    }
}

/// `[server] proxy_protocol_from`: addresses and CIDR networks of the load balancers.
fn proxy_protocol_from(raw: &[String], c: &mut Collector) -> Vec<AddressRange> {
    let mut out = Vec::new();
    for (i, entry) in raw.iter().enumerate() {
        match AddressRange::parse(entry.trim()) {
            Ok(r) => out.push(r),
            Err(e) => c.push(
                format!("server.proxy_protocol_from[{i}]"),
                format!(
                    "{e}; list the load balancers' addresses or networks, e.g. [\"10.0.0.5\", \"10.1.0.0/16\", \"fd00::/8\"] (no host names, no ports)"
                ),
            ),
        }
    }
    out
}

/// `[server] instance_id`, or the host name: 1-63 letters, digits, `.`, `_`, `-`.
fn instance_id(raw: Option<&str>, c: &mut Collector) -> String {
    let valid = |s: &str| {
        (1..=63).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    match raw {
        Some(id) if valid(id) => id.to_string(),
        Some(id) => {
            c.push(
                "server.instance_id",
                format!("`{id}` is not an instance id: use 1-63 letters, digits, `.`, `_` or `-`, unique among the gateways sharing a store"),
            );
            String::new()
        }
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| valid(h))
            .unwrap_or_else(|| "eugate".to_string()),
    }
}

pub(super) fn auth(
    raw: &RawAuth,
    resolve: &dyn Fn(&str) -> PathBuf,
    c: &mut Collector,
) -> AuthConfig {
    let d = AuthConfig::default();
    let max_failures = raw.max_failures.unwrap_or(d.max_failures);
    let max_tracked = raw.max_tracked.unwrap_or(d.max_tracked as u32);
    let auth = AuthConfig {
        max_failures,
        // One source may try a few user names (a shared NAT, a typo in the name) before its ban.
        max_failures_per_source: raw
            .max_failures_per_source
            .unwrap_or(max_failures.saturating_mul(2)),
        max_tracked: max_tracked.clamp(1, MAX_TRACKED_LIMIT) as usize,
        base_delay: raw
            .base_delay_ms
            .map(Duration::from_millis)
            .unwrap_or(d.base_delay),
        max_delay: raw
            .max_delay_ms
            .map(Duration::from_millis)
            .unwrap_or(d.max_delay),
        ban: raw.ban_secs.map(Duration::from_secs).unwrap_or(d.ban),
        user_ca_keys: user_ca_keys(raw, resolve, c),
    };
    if auth.max_failures == 0 {
        c.push(
            "auth.max_failures",
            "0 would ban every client on its first attempt; use e.g. 5",
        );
    }
    if auth.max_failures_per_source == 0 {
        c.push(
            "auth.max_failures_per_source",
            "0 would ban every source on its first attempt; use e.g. 10 (the default: twice max_failures)",
        );
    }
    if !(1..=MAX_TRACKED_LIMIT).contains(&max_tracked) {
        c.push(
            "auth.max_tracked",
            format!(
                "must lie between 1 and {MAX_TRACKED_LIMIT}; the default 10000 holds the bans of 10,000 sources"
            ),
        );
    }
    if auth.ban.is_zero() {
        c.push(
            "auth.ban_secs",
            "0 would end every ban at once and forget every failure; use e.g. 300",
        );
    }
    if auth.max_delay < auth.base_delay {
        c.push(
            "auth.max_delay_ms",
            "is smaller than auth.base_delay_ms; raise it or lower the base delay",
        );
    }
    auth
}

/// `[auth] user_ca_keys` and the lines of `user_ca_keys_file`: one CA public key each, in
/// authorized_keys form; blank lines and `#` comments are skipped.
fn user_ca_keys(
    raw: &RawAuth,
    resolve: &dyn Fn(&str) -> PathBuf,
    c: &mut Collector,
) -> Vec<PublicKey> {
    let mut keys = Vec::new();
    let mut take =
        |line: &str, key: String, c: &mut Collector| match super::parse_authorized_key(line) {
            Ok(Some(k)) => keys.push(k),
            Ok(None) => {}
            Err(e) => c.push(key, e),
        };
    for (i, line) in raw.user_ca_keys.iter().enumerate() {
        take(line, format!("auth.user_ca_keys[{i}]"), c);
    }
    if let Some(f) = &raw.user_ca_keys_file {
        let path = resolve(f);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                for (n, line) in text.lines().enumerate() {
                    take(
                        line,
                        format!(
                            "auth.user_ca_keys_file ({}, line {})",
                            path.display(),
                            n + 1
                        ),
                        c,
                    );
                }
            }
            Err(e) => c.push(
                "auth.user_ca_keys_file",
                format!("cannot read {}: {e}", path.display()),
            ),
        }
    }
    keys
}
