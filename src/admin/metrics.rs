//! The Prometheus metrics: one registry, its families, and small methods the transfer layer
//! calls where it already writes audit records. Every label value is either a fixed word chosen
//! here or a name from the configuration or the policy bundle (tenant, destination, rule id):
//! nothing a client sends (user names, paths, object names) ever becomes a label.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::transfer::{AuthOutcome, Protocol};

mod reload;
pub use reload::ReloadResult;

/// Why an upload ended without a commit: a closed set, so the label stays bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AbortReason {
    /// The client went away (or closed the channel) without closing the file.
    ClientGone,
    /// The shutdown grace period ended first.
    Shutdown,
    /// The store failed a write or the commit.
    Storage,
    /// A WRITE was refused (offset, reorder window), which spoils the upload.
    Refused,
    /// CLOSE came with a gap in the data.
    Gap,
    /// An existing object was opened without truncate and closed unwritten.
    Unchanged,
    /// The audit log could not record the commit, so the object was taken back.
    Audit,
    /// Sealing failed.
    Crypto,
}

impl AbortReason {
    pub fn as_str(self) -> &'static str {
        match self {
            AbortReason::ClientGone => "client_gone",
            AbortReason::Shutdown => "shutdown",
            AbortReason::Storage => "storage",
            AbortReason::Refused => "refused",
            AbortReason::Gap => "gap",
            AbortReason::Unchanged => "unchanged",
            AbortReason::Audit => "audit",
            AbortReason::Crypto => "crypto",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransferLabels {
    protocol: &'static str,
    tenant: String,
    destination: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndLabels {
    protocol: &'static str,
    tenant: String,
    destination: String,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BytesLabels {
    protocol: &'static str,
    tenant: String,
    destination: String,
    direction: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    protocol: &'static str,
    tenant: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    operation: &'static str,
    outcome: &'static str,
    rule: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuthLabels {
    protocol: &'static str,
    method: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProxyLabels {
    protocol: &'static str,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BanLabels {
    scope: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DestinationLabels {
    destination: String,
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BundleLabels {
    hash: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabels {
    tenant: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// Upload durations from 50 ms to about 15 h, doubling.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.05, 2.0, 21))
}

/// The gateway's metrics. Cheap to update (atomics behind a read lock per label set).
pub struct Metrics {
    registry: Registry,
    uploads_started: Family<TransferLabels, Counter>,
    uploads_ended: Family<EndLabels, Counter>,
    downloads_started: Family<TransferLabels, Counter>,
    bytes: Family<BytesLabels, Counter>,
    upload_seconds: Family<DurationLabels, Histogram, fn() -> Histogram>,
    decisions: Family<DecisionLabels, Counter>,
    auth: Family<AuthLabels, Counter>,
    bans: Family<BanLabels, Gauge>,
    sessions: Gauge,
    budget_in_use: Gauge,
    budget_limit: Gauge,
    destination_state: Family<DestinationLabels, Gauge>,
    policy_bundle: Family<BundleLabels, Gauge>,
    keyring_version: Family<TenantLabels, Gauge>,
    proxy_refused: Family<ProxyLabels, Counter>,
    reloads: reload::ReloadMetrics,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let m = Metrics {
            registry: Registry::default(),
            uploads_started: Family::default(),
            uploads_ended: Family::default(),
            downloads_started: Family::default(),
            bytes: Family::default(),
            upload_seconds: Family::new_with_constructor(duration_histogram),
            decisions: Family::default(),
            auth: Family::default(),
            bans: Family::default(),
            sessions: Gauge::default(),
            budget_in_use: Gauge::default(),
            budget_limit: Gauge::default(),
            destination_state: Family::default(),
            policy_bundle: Family::default(),
            keyring_version: Family::default(),
            proxy_refused: Family::default(),
            reloads: reload::ReloadMetrics::new(),
        };
        m.register()
    }

    fn register(mut self) -> Metrics {
        let r = &mut self.registry;
        r.register(
            "eugate_uploads_started",
            "Uploads granted and opened on a destination",
            self.uploads_started.clone(),
        );
        r.register(
            "eugate_uploads_ended",
            "Uploads ended, by outcome: committed, or the reason they were aborted",
            self.uploads_ended.clone(),
        );
        r.register(
            "eugate_downloads_started",
            "Downloads opened",
            self.downloads_started.clone(),
        );
        r.register(
            "eugate_transfer_bytes",
            "Plaintext bytes received from clients (in) and sent to them (out)",
            self.bytes.clone(),
        );
        r.register(
            "eugate_upload_duration_seconds",
            "Time from opening an upload to its durable commit",
            self.upload_seconds.clone(),
        );
        r.register(
            "eugate_policy_decisions",
            "Residency decisions by operation, outcome and the rule that decided",
            self.decisions.clone(),
        );
        r.register(
            "eugate_auth_attempts",
            "Authentication attempts by protocol, method and outcome (banned: refused unheard)",
            self.auth.clone(),
        );
        r.register(
            "eugate_auth_active_bans",
            "Brute-force bans in force, of whole sources and of one user name from one source",
            self.bans.clone(),
        );
        r.register(
            "eugate_sessions_open",
            "Logged-in sessions, all protocols",
            self.sessions.clone(),
        );
        r.register(
            "eugate_memory_budget_in_use_bytes",
            "Bytes of the memory budget reserved now",
            self.budget_in_use.clone(),
        );
        r.register(
            "eugate_memory_budget_limit_bytes",
            "The memory budget ([storage] memory_budget)",
            self.budget_limit.clone(),
        );
        r.register(
            "eugate_destination_state",
            "1 for each destination's current verification state (declared, verified, quarantined)",
            self.destination_state.clone(),
        );
        r.register(
            "eugate_policy_bundle_info",
            "The active policy bundle's hash (value 1)",
            self.policy_bundle.clone(),
        );
        r.register(
            "eugate_keyring_active_key_version",
            "The version of each tenant's active key",
            self.keyring_version.clone(),
        );
        self.reloads.register(r);
        r.register(
            "eugate_proxy_header_refused",
            "Connections refused over the PROXY protocol ([server] proxy_protocol_from), by listener and reason",
            self.proxy_refused.clone(),
        );
        r.register(
            "eugate_build",
            "The gateway's version",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        self
    }

    fn transfer(protocol: Protocol, tenant: &str, destination: &str) -> TransferLabels {
        TransferLabels {
            protocol: protocol.as_str(),
            tenant: tenant.to_string(),
            destination: destination.to_string(),
        }
    }

    pub fn upload_started(&self, protocol: Protocol, tenant: &str, destination: &str) {
        self.uploads_started
            .get_or_create(&Self::transfer(protocol, tenant, destination))
            .inc();
    }

    /// A committed upload: `plaintext` bytes in, `elapsed` since it was opened.
    pub fn upload_committed(
        &self,
        protocol: Protocol,
        tenant: &str,
        destination: &str,
        plaintext: u64,
        elapsed: Duration,
    ) {
        self.ended(protocol, tenant, destination, "committed");
        self.bytes
            .get_or_create(&BytesLabels {
                protocol: protocol.as_str(),
                tenant: tenant.to_string(),
                destination: destination.to_string(),
                direction: "in",
            })
            .inc_by(plaintext);
        self.upload_seconds
            .get_or_create(&DurationLabels {
                protocol: protocol.as_str(),
                tenant: tenant.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    pub fn upload_aborted(
        &self,
        protocol: Protocol,
        tenant: &str,
        destination: &str,
        why: AbortReason,
    ) {
        self.ended(protocol, tenant, destination, why.as_str());
    }

    fn ended(&self, protocol: Protocol, tenant: &str, destination: &str, outcome: &'static str) {
        self.uploads_ended
            .get_or_create(&EndLabels {
                protocol: protocol.as_str(),
                tenant: tenant.to_string(),
                destination: destination.to_string(),
                outcome,
            })
            .inc();
    }

    /// Counts a download and returns the counter its bytes go to (shared, so the handle can
    /// count without a lookup per read).
    pub fn download_started(&self, protocol: Protocol, tenant: &str, destination: &str) -> Counter {
        self.downloads_started
            .get_or_create(&Self::transfer(protocol, tenant, destination))
            .inc();
        self.bytes.get_or_create_owned(&BytesLabels {
            protocol: protocol.as_str(),
            tenant: tenant.to_string(),
            destination: destination.to_string(),
            direction: "out",
        })
    }

    /// A residency decision; `rule` is the first deciding rule id (from the bundle), if any.
    pub fn decision(&self, operation: &'static str, allowed: bool, rule: Option<&str>) {
        self.decisions
            .get_or_create(&DecisionLabels {
                operation,
                outcome: if allowed { "allow" } else { "deny" },
                rule: rule.unwrap_or("none").to_string(),
            })
            .inc();
    }

    /// A connection refused for its PROXY header (or lack of one); `reason` is a fixed word.
    pub fn proxy_header_refused(&self, protocol: &'static str, reason: &'static str) {
        self.proxy_refused
            .get_or_create(&ProxyLabels { protocol, reason })
            .inc();
    }

    /// An authentication attempt as its audit record names it (`method` as the front end
    /// wrote it: mapped onto a fixed set here).
    pub fn auth_attempt(&self, method: &str, outcome: AuthOutcome) {
        let (protocol, method) = auth_method(method);
        self.auth
            .get_or_create(&AuthLabels {
                protocol,
                method,
                outcome: match outcome {
                    AuthOutcome::Accepted => "accepted",
                    AuthOutcome::Rejected => "rejected",
                    AuthOutcome::SessionLimit => "session_limit",
                    AuthOutcome::Banned => "banned",
                },
            })
            .inc();
    }

    /// A keyring reload attempt ended so.
    pub fn keyring_reload(&self, result: ReloadResult) {
        self.reloads.keyring_reload(result);
    }

    /// A policy bundle reload attempt ended so.
    pub fn policy_reload(&self, result: ReloadResult) {
        self.reloads.policy_reload(result);
    }

    /// The gauges, read from the gateway just before a scrape.
    pub fn set_state(&self, state: &GaugeState<'_>) {
        self.sessions.set(i64::from(state.sessions));
        for (scope, n) in [
            ("source", state.bans.sources),
            ("user_at_source", state.bans.pairs),
        ] {
            self.bans.get_or_create(&BanLabels { scope }).set(to_i64(n));
        }
        self.budget_in_use.set(to_i64(state.budget_in_use));
        self.budget_limit.set(to_i64(state.budget_limit));
        for (name, current) in state.destinations {
            for s in ["declared", "verified", "quarantined"] {
                self.destination_state
                    .get_or_create(&DestinationLabels {
                        destination: name.clone(),
                        state: s,
                    })
                    .set(i64::from(s == *current));
            }
        }
        // A reload changes the hash: only the active one is shown.
        self.policy_bundle.clear();
        self.policy_bundle
            .get_or_create(&BundleLabels {
                hash: state.bundle_hash.to_string(),
            })
            .set(1);
        self.reloads
            .set_keyring(state.keyring_version, state.keyring_loaded_at);
        // A shredded tenant's gauge goes with its keys.
        self.keyring_version.clear();
        for (tenant, version) in state.key_versions {
            self.keyring_version
                .get_or_create(&TenantLabels {
                    tenant: tenant.clone(),
                })
                .set(i64::from(*version));
        }
    }

    /// The text exposition (OpenMetrics, which Prometheus scrapes as text).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The gateway state the gauges show.
#[derive(Debug)]
pub struct GaugeState<'a> {
    pub sessions: u32,
    pub bans: crate::auth::ActiveBans,
    pub budget_in_use: usize,
    pub budget_limit: usize,
    /// Destination name and its verification state name.
    pub destinations: &'a [(String, &'static str)],
    pub bundle_hash: &'a str,
    /// Tenant and its active key version.
    pub key_versions: &'a [(String, u32)],
    /// The keyring in force: its version, and when it was loaded (Unix seconds).
    pub keyring_version: &'a str,
    pub keyring_loaded_at: i64,
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The front ends' method names onto (protocol, method): a fixed set, "other" for anything new.
fn auth_method(method: &str) -> (&'static str, &'static str) {
    match method {
        "publickey" => ("sftp", "publickey"),
        "password" => ("sftp", "password"),
        "keyboard-interactive" => ("sftp", "keyboard-interactive"),
        // Refused unheard while banned, before any method was tried.
        "any" => ("sftp", "any"),
        crate::transfer::CERTIFICATE_METHOD => ("sftp", "publickey-certificate"),
        "ftps password" => ("ftps", "password"),
        crate::transfer::CLIENT_CERTIFICATE_METHOD => ("ftps", "client-certificate"),
        _ => ("other", "other"),
    }
}

#[cfg(test)]
mod tests;
