//! `[limits]`: every resource a client can hold, capped (OpenSSH's `MaxStartups`,
//! `LoginGraceTime`, `MaxSessions`; SFTPGo's defender). Counted per connection, per user and
//! process-wide; at a cap the client is refused or slowed, never the gateway exhausted.
//! README "Limits" says what each cap does to a client that reaches it.

use std::time::Duration;

use super::Collector;
use super::raw::RawLimits;
use super::size::size_or;

/// Defaults, also documented in README "Limits".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsConfig {
    /// TCP connections, authenticated or not, process-wide.
    pub max_connections: u32,
    /// Connections that have not authenticated yet, process-wide (OpenSSH `MaxStartups`).
    pub max_unauthenticated: u32,
    /// Connections that have not authenticated yet, per source IP (32: a partner behind one
    /// NAT address may well start 20 transfers at once).
    pub max_unauthenticated_per_source: u32,
    /// Time from TCP accept to a successful login (OpenSSH `LoginGraceTime`).
    pub login_grace: Duration,
    /// Session channels one connection may open (OpenSSH `MaxSessions`).
    pub max_channels_per_connection: u32,
    /// Bytes a channel may have received and not yet processed; a client that sends more waits
    /// (TCP backpressure) until the gateway has consumed what it sent.
    pub channel_buffer: u64,
    /// How long a reply (or a stalled channel buffer) may wait for the client to read before
    /// the connection is closed and its uploads aborted.
    pub reply_timeout: Duration,
    /// Open file and directory handles of one user, all sessions together.
    pub max_handles_per_user: u32,
    /// Open file and directory handles, process-wide.
    pub max_handles_total: u32,
    /// Out-of-order writes one upload may hold (by count; `server.reorder_window` caps bytes).
    pub max_held_writes: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_connections: 1024,
            max_unauthenticated: 128,
            max_unauthenticated_per_source: 32,
            login_grace: Duration::from_secs(30),
            max_channels_per_connection: 10,
            channel_buffer: 4 << 20,
            reply_timeout: Duration::from_secs(60),
            max_handles_per_user: 256,
            max_handles_total: 4096,
            max_held_writes: 1024,
        }
    }
}

pub(super) fn limits(raw: &RawLimits, c: &mut Collector) -> LimitsConfig {
    let d = LimitsConfig::default();
    let n = |v: Option<u32>| v.map(u64::from);
    let max_connections = c.within(
        n(raw.max_connections),
        "limits.max_connections",
        1..=1_000_000,
        d.max_connections.into(),
        "each connection holds a file descriptor",
    );
    let max_unauthenticated = c.within(
        n(raw.max_unauthenticated),
        "limits.max_unauthenticated",
        1..=max_connections,
        d.max_unauthenticated.min(max_connections as u32).into(),
        "at most limits.max_connections",
    );
    let per_source = c.within(
        n(raw.max_unauthenticated_per_source),
        "limits.max_unauthenticated_per_source",
        1..=max_unauthenticated,
        d.max_unauthenticated_per_source
            .min(max_unauthenticated as u32)
            .into(),
        "at most limits.max_unauthenticated",
    );
    let login_grace = c.within(
        raw.login_grace_secs,
        "limits.login_grace_secs",
        1..=600,
        d.login_grace.as_secs(),
        "seconds from connect to login",
    );
    let channels = c.within(
        n(raw.max_channels_per_connection),
        "limits.max_channels_per_connection",
        1..=1000,
        d.max_channels_per_connection.into(),
        "sftp and scp need one",
    );
    let channel_buffer = size_or(
        &raw.channel_buffer,
        "limits.channel_buffer",
        d.channel_buffer,
        "4MiB",
        c,
    );
    if !(256 << 10..=256 << 20).contains(&channel_buffer) {
        c.push(
            "limits.channel_buffer",
            "must lie between 256KiB and 256MiB (a WRITE packet is up to 256 KiB); the default is \"4MiB\"",
        );
    }
    let reply_timeout = c.within(
        raw.reply_timeout_secs,
        "limits.reply_timeout_secs",
        1..=3600,
        d.reply_timeout.as_secs(),
        "seconds a client may leave a reply unread",
    );
    let handles_total = c.within(
        n(raw.max_handles_total),
        "limits.max_handles_total",
        1..=1_000_000,
        d.max_handles_total.into(),
        "each open upload or listing holds memory and may hold a file descriptor",
    );
    let handles_user = c.within(
        n(raw.max_handles_per_user),
        "limits.max_handles_per_user",
        1..=handles_total,
        d.max_handles_per_user.min(handles_total as u32).into(),
        "at most limits.max_handles_total",
    );
    let held = c.within(
        n(raw.max_held_writes),
        "limits.max_held_writes",
        1..=1_000_000,
        d.max_held_writes.into(),
        "out-of-order writes held per upload; OpenSSH keeps 64 in flight",
    );
    // All values were range-checked against u32 bounds above.
    let u = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    LimitsConfig {
        max_connections: u(max_connections),
        max_unauthenticated: u(max_unauthenticated),
        max_unauthenticated_per_source: u(per_source),
        login_grace: Duration::from_secs(login_grace),
        max_channels_per_connection: u(channels),
        channel_buffer: channel_buffer.clamp(256 << 10, 256 << 20),
        reply_timeout: Duration::from_secs(reply_timeout),
        max_handles_per_user: u(handles_user),
        max_handles_total: u(handles_total),
        max_held_writes: u(held),
    }
}
