//! What the admin endpoints read from the gateway: readiness checks and the metrics text, with
//! the gauges refreshed from live state at each scrape.

use super::Gateway;
use crate::admin::metrics::GaugeState;
use crate::storage::Verification;

/// One readiness check: its name, whether it passes, and a word on why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

impl Gateway {
    /// The gateway's metrics, to count into.
    pub fn metrics(&self) -> &crate::admin::Metrics {
        &self.metrics
    }

    /// Keyring and policy loaded, audit log writable, every destination usable.
    pub fn health_checks(&self) -> Vec<HealthCheck> {
        let mut out = Vec::new();
        let missing: Vec<&str> = self
            .routes
            .keys()
            .filter(|t| self.keyring.active(t).is_err())
            .map(String::as_str)
            .collect();
        out.push(HealthCheck {
            name: "keyring".into(),
            ok: missing.is_empty(),
            detail: if missing.is_empty() {
                format!("loaded, {} tenant(s) with an active key", self.routes.len())
            } else {
                format!("no active key for {}", missing.join(", "))
            },
        });
        out.push(HealthCheck {
            name: "policy".into(),
            ok: true,
            detail: format!("bundle {}", self.policy.current().hash()),
        });
        out.push(self.audit_check());
        for d in &self.destinations {
            let v = d.verification();
            out.push(HealthCheck {
                name: format!("destination {}", d.name()),
                ok: !matches!(v, Verification::Quarantined { .. }),
                detail: match &v {
                    Verification::Quarantined { reason, .. } => format!("quarantined: {reason}"),
                    other => other.state().as_str().to_string(),
                },
            });
        }
        out
    }

    /// Whether the audit file can still be opened for appending (it was deleted, made
    /// read-only, or its file system remounted read-only: every transfer would be refused).
    fn audit_check(&self) -> HealthCheck {
        let path = self.audit.path();
        let opened = std::fs::OpenOptions::new().append(true).open(path);
        HealthCheck {
            name: "audit".into(),
            ok: opened.is_ok(),
            detail: match opened {
                Ok(_) => "writable".into(),
                Err(e) => format!("{} is not writable: {e}", path.display()),
            },
        }
    }

    /// The Prometheus text, gauges read now.
    pub fn metrics_text(&self) -> String {
        let destinations: Vec<(String, &'static str)> = self
            .destinations
            .iter()
            .map(|d| (d.name().to_string(), d.verification().state().as_str()))
            .collect();
        let key_versions: Vec<(String, u32)> = self
            .keyring
            .list()
            .into_iter()
            .map(|k| (k.tenant, k.active_version))
            .collect();
        let bundle = self.policy.current();
        self.metrics.set_state(&GaugeState {
            sessions: self.sessions.total(),
            bans: self.guard.active_bans(std::time::Instant::now()),
            budget_in_use: self
                .budget
                .total_bytes()
                .saturating_sub(self.budget.available_bytes()),
            budget_limit: self.budget.total_bytes(),
            destinations: &destinations,
            bundle_hash: bundle.hash(),
            key_versions: &key_versions,
        });
        self.metrics.encode()
    }
}
