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
        let mut out = vec![self.keyring_check(), self.policy_check()];
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

    /// Every routed tenant has an active key. Names the keyring version, so that instances
    /// with different keys stand out, and a refused reload (which leaves the instance ready:
    /// the keys it has still work).
    fn keyring_check(&self) -> HealthCheck {
        let loaded = self.keys.current();
        let mut missing: Vec<&str> = self
            .routes
            .keys()
            .filter(|t| {
                self.external.provider_of(t).is_none() && loaded.keyring().active(t).is_err()
            })
            .map(String::as_str)
            .collect();
        missing.sort_unstable();
        let mut detail = format!(
            "version {}, loaded {}, ",
            loaded.version(),
            crate::audit::rfc3339_at(loaded.loaded_at())
        );
        if missing.is_empty() {
            detail.push_str(&format!(
                "{} tenant(s) with an active key",
                self.routes.len()
            ));
        } else {
            detail.push_str(&format!("no active key for {}", missing.join(", ")));
        }
        if let Some(f) = self.keys.last_failure() {
            detail.push_str(&format!(
                "; last reload refused at {} ({} refused since start): {}",
                crate::audit::rfc3339_at(f.at),
                self.keys.failures(),
                one_line(&f.error)
            ));
        }
        HealthCheck {
            name: "keyring".into(),
            ok: missing.is_empty(),
            detail,
        }
    }

    /// The bundle in force, and a refused reload (the bundle in force keeps deciding).
    fn policy_check(&self) -> HealthCheck {
        let mut detail = format!("bundle {}", self.policy.current().hash());
        if let Some(f) = self.policy_reloads.last_failure() {
            detail.push_str(&format!(
                "; last reload refused at {}: {}",
                crate::audit::rfc3339_at(f.at),
                one_line(&f.error)
            ));
        }
        HealthCheck {
            name: "policy".into(),
            ok: true,
            detail,
        }
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
        let loaded = self.keys.current();
        let key_versions: Vec<(String, u32)> = loaded
            .keyring()
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
            keyring_version: loaded.version(),
            keyring_loaded_at: loaded
                .loaded_at()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        });
        self.metrics.encode()
    }
}

/// An error on one `/readyz` line: newlines folded, and capped (a policy test report can be long).
fn one_line(text: &str) -> String {
    const MAX: usize = 500;
    let flat: String = text
        .split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" / ");
    match flat.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &flat[..at]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn errors_fit_one_line() {
        assert_eq!(super::one_line("a\n\n  b  \nc"), "a / b / c");
        let long = "x".repeat(2000);
        let cut = super::one_line(&long);
        assert_eq!(cut.chars().count(), 501);
        assert!(cut.ends_with('…'));
    }
}
