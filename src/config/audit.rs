//! `[audit]`: where the log is, and how much a client can make it write (issue 13): the cap on
//! client-supplied fields, and the per-source rate of refused-login records.

use std::path::PathBuf;
use std::time::Duration;

use super::Collector;
use super::raw::RawAudit;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// The hash-chained audit log (JSON lines); default `audit.jsonl` beside the config file.
    pub file: PathBuf,
    /// Client-supplied fields (user names, paths) longer than this are written as this many
    /// bytes, their length and their SHA-256.
    pub max_field_bytes: usize,
    /// Failed-login records one source may have written per second, after its burst.
    pub auth_records_per_sec: u32,
    /// Failed-login records one source may have written at once; also how many user names a
    /// banned source gets a refusal written for per interval.
    pub auth_records_burst: u32,
    /// A banned source gets one record per name tried per interval; attempts not written one
    /// by one are written as one summary per source per interval.
    pub summary_interval: Duration,
    /// Sources whose counts are kept at once; the least recent one is summarised and dropped.
    pub max_tracked_sources: usize,
}

impl AuditConfig {
    /// Defaults for the log at `file`, also documented in README `[audit]`.
    pub fn defaults(file: PathBuf) -> AuditConfig {
        AuditConfig {
            file,
            max_field_bytes: crate::audit::DEFAULT_FIELD_CAP,
            auth_records_per_sec: 1,
            auth_records_burst: 10,
            summary_interval: Duration::from_secs(60),
            max_tracked_sources: 4096,
        }
    }
}

pub(super) fn audit(
    raw: &RawAudit,
    resolve: &impl Fn(&str) -> PathBuf,
    c: &mut Collector,
) -> AuditConfig {
    let d = AuditConfig::defaults(resolve(raw.file.as_deref().unwrap_or("audit.jsonl")));
    let field = c.within(
        raw.max_field_bytes,
        "audit.max_field_bytes",
        64..=4096,
        d.max_field_bytes as u64,
        "bytes of a user name or path kept in a record; a longer value keeps its SHA-256",
    );
    let rate = c.within(
        raw.auth_records_per_sec.map(u64::from),
        "audit.auth_records_per_sec",
        1..=1000,
        d.auth_records_per_sec.into(),
        "failed-login records per second per source; the rest are counted",
    );
    let burst = c.within(
        raw.auth_records_burst.map(u64::from),
        "audit.auth_records_burst",
        1..=10_000,
        d.auth_records_burst.into(),
        "failed-login records one source may have written at once",
    );
    let interval = c.within(
        raw.summary_interval_secs,
        "audit.summary_interval_secs",
        1..=3600,
        d.summary_interval.as_secs(),
        "seconds between a banned source's records of one name, and between summaries",
    );
    let sources = c.within(
        raw.max_tracked_sources.map(u64::from),
        "audit.max_tracked_sources",
        16..=1_000_000,
        d.max_tracked_sources as u64,
        "sources whose refused logins are counted at once",
    );
    // Every value was range-checked above.
    let u = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    AuditConfig {
        max_field_bytes: usize::try_from(field).unwrap_or(d.max_field_bytes),
        auth_records_per_sec: u(rate),
        auth_records_burst: u(burst),
        summary_interval: Duration::from_secs(interval),
        max_tracked_sources: usize::try_from(sources).unwrap_or(d.max_tracked_sources),
        ..d
    }
}
