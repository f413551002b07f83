//! Readiness: whether a balancer should send this instance new connections. Ready when the
//! gateway's checks pass (keyring and policy loaded, audit log writable, every destination
//! usable) and no shutdown has begun; draining turns it off for good.

use std::fmt::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::transfer::HealthCheck;

#[derive(Debug, Default)]
pub struct Readiness {
    draining: AtomicBool,
}

/// The answer to `/readyz`: ready or not, and one line per check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyReport {
    pub ready: bool,
    pub body: String,
}

impl Readiness {
    /// A shutdown has begun: `/readyz` answers 503 from now on.
    pub fn begin_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Combines the gateway's checks with the drain state.
    pub fn report(&self, checks: &[HealthCheck]) -> ReadyReport {
        let draining = self.draining();
        let mut body = String::new();
        let _ = writeln!(
            body,
            "draining: {}",
            if draining {
                "yes (shutting down)"
            } else {
                "no"
            }
        );
        for c in checks {
            let _ = writeln!(
                body,
                "{}: {} ({})",
                c.name,
                if c.ok { "ok" } else { "FAIL" },
                c.detail
            );
        }
        ReadyReport {
            ready: !draining && checks.iter().all(|c| c.ok),
            body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, ok: bool) -> HealthCheck {
        HealthCheck {
            name: name.into(),
            ok,
            detail: "d".into(),
        }
    }

    #[test]
    fn ready_only_when_every_check_passes_and_not_draining() {
        let r = Readiness::default();
        let good = [check("keyring", true), check("audit", true)];
        let rep = r.report(&good);
        assert!(rep.ready);
        assert!(rep.body.contains("keyring: ok (d)"), "{}", rep.body);
        let rep = r.report(&[check("keyring", true), check("audit", false)]);
        assert!(!rep.ready);
        assert!(rep.body.contains("audit: FAIL"), "{}", rep.body);
        r.begin_draining();
        let rep = r.report(&good);
        assert!(!rep.ready);
        assert!(rep.body.contains("draining: yes"), "{}", rep.body);
    }
}
