//! What the keyring and policy reloads show: the versions in force (so that instances that
//! drifted apart stand out on a dashboard) and how reload attempts ended.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// How a reload attempt ended: a closed set, the same words for keyring and policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadResult {
    /// Something new is in force.
    Changed,
    /// The files hold what is in force already.
    Unchanged,
    /// Refused; what was in force stays.
    Failed,
}

impl ReloadResult {
    const ALL: [ReloadResult; 3] = [
        ReloadResult::Changed,
        ReloadResult::Unchanged,
        ReloadResult::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReloadResult::Changed => "changed",
            ReloadResult::Unchanged => "unchanged",
            ReloadResult::Failed => "failed",
        }
    }
}

impl From<crate::keys::ReloadOutcome> for ReloadResult {
    fn from(o: crate::keys::ReloadOutcome) -> Self {
        match o {
            crate::keys::ReloadOutcome::Changed => ReloadResult::Changed,
            crate::keys::ReloadOutcome::Unchanged => ReloadResult::Unchanged,
            crate::keys::ReloadOutcome::Failed => ReloadResult::Failed,
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

pub(super) struct ReloadMetrics {
    keyring_info: Family<VersionLabels, Gauge>,
    keyring_loaded: Gauge,
    keyring_reloads: Family<OutcomeLabels, Counter>,
    policy_reloads: Family<OutcomeLabels, Counter>,
}

impl ReloadMetrics {
    pub(super) fn new() -> ReloadMetrics {
        let m = ReloadMetrics {
            keyring_info: Family::default(),
            keyring_loaded: Gauge::default(),
            keyring_reloads: Family::default(),
            policy_reloads: Family::default(),
        };
        // Every outcome from the start at 0, so that an alert on `increase(...)` sees the first.
        for r in ReloadResult::ALL {
            let labels = OutcomeLabels {
                outcome: r.as_str(),
            };
            drop(m.keyring_reloads.get_or_create(&labels));
            drop(m.policy_reloads.get_or_create(&labels));
        }
        m
    }

    pub(super) fn register(&self, r: &mut Registry) {
        r.register(
            "eugate_keyring_info",
            "The version of the keyring in force (value 1): a hash naming its keys, equal on instances that loaded the same keys",
            self.keyring_info.clone(),
        );
        r.register(
            "eugate_keyring_loaded_timestamp_seconds",
            "When the keyring in force was loaded (Unix time)",
            self.keyring_loaded.clone(),
        );
        r.register(
            "eugate_keyring_reloads",
            "Keyring reload attempts (SIGHUP, file change) by outcome: changed, unchanged, failed (the loaded keyring stays)",
            self.keyring_reloads.clone(),
        );
        r.register(
            "eugate_policy_reloads",
            "Policy bundle reload attempts by outcome: changed, unchanged, failed (the bundle in force stays)",
            self.policy_reloads.clone(),
        );
    }

    pub(super) fn keyring_reload(&self, result: ReloadResult) {
        self.keyring_reloads
            .get_or_create(&OutcomeLabels {
                outcome: result.as_str(),
            })
            .inc();
    }

    pub(super) fn policy_reload(&self, result: ReloadResult) {
        self.policy_reloads
            .get_or_create(&OutcomeLabels {
                outcome: result.as_str(),
            })
            .inc();
    }

    /// The keyring in force: only its version is shown.
    pub(super) fn set_keyring(&self, version: &str, loaded_at_unix: i64) {
        self.keyring_info.clear();
        self.keyring_info
            .get_or_create(&VersionLabels {
                version: version.to_string(),
            })
            .set(1);
        self.keyring_loaded.set(loaded_at_unix);
    }
}
