//! Keyring and policy reloads as the gateway records them: an audit record for each change and
//! each refusal (which keys and which rules were in force when is evidence), a counter by
//! outcome, and the last policy refusal for `/readyz`.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::admin::Metrics;
use crate::admin::metrics::ReloadResult;
use crate::audit::{AuditEvent, AuditLog};
use crate::keys::{KeyringReloadEvent, KeyringStore, ReloadFailure, ReloadOutcome};
use crate::policy::{PolicyStore, ReloadEvent};

/// What the gateway remembers of policy reloads (the policy store keeps only the bundle).
#[derive(Debug, Default)]
pub(super) struct PolicyReloads {
    last_failure: Mutex<Option<ReloadFailure>>,
}

impl PolicyReloads {
    /// The last refused bundle, unless a later reload was accepted.
    pub(super) fn last_failure(&self) -> Option<ReloadFailure> {
        lock(&self.last_failure).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Registers the gateway as the observer of both stores' reloads.
pub(super) fn observe(
    keys: &KeyringStore,
    policy: &PolicyStore,
    audit: &Arc<AuditLog>,
    metrics: &Arc<Metrics>,
) -> Arc<PolicyReloads> {
    {
        let (audit, metrics) = (audit.clone(), metrics.clone());
        keys.observe_reloads(Arc::new(move |e: &KeyringReloadEvent| {
            metrics.keyring_reload(e.outcome.into());
            if let Some(record) = keyring_record(e) {
                append(&audit, &record);
            }
        }));
    }
    let state = Arc::new(PolicyReloads::default());
    {
        let (audit, metrics, state) = (audit.clone(), metrics.clone(), state.clone());
        // The bundle in force before each attempt: the policy event names only the one after.
        let in_force = Mutex::new(policy.current().hash().to_string());
        policy.observe_reloads(Arc::new(move |e: &ReloadEvent| {
            let previous = std::mem::replace(&mut *lock(&in_force), e.active.clone());
            let result = policy_result(e, &previous);
            metrics.policy_reload(result);
            *lock(&state.last_failure) = (result == ReloadResult::Failed).then(|| ReloadFailure {
                at: SystemTime::now(),
                error: e.detail.clone(),
            });
            append(
                &audit,
                &AuditEvent::PolicyReload {
                    accepted: e.accepted,
                    bundle: e.active.clone(),
                    detail: e.detail.clone(),
                    previous: (result == ReloadResult::Changed).then_some(previous),
                },
            );
        }));
    }
    state
}

fn policy_result(e: &ReloadEvent, previous: &str) -> ReloadResult {
    if !e.accepted {
        ReloadResult::Failed
    } else if e.active != previous {
        ReloadResult::Changed
    } else {
        ReloadResult::Unchanged
    }
}

/// Changes and refusals are audited; a reload that found the keys already in force is not
/// (a touched file, a SIGHUP meant for the policies) and shows only in the counter.
fn keyring_record(e: &KeyringReloadEvent) -> Option<AuditEvent> {
    match e.outcome {
        ReloadOutcome::Changed => Some(AuditEvent::KeyringReload {
            accepted: true,
            version: e.active.clone(),
            previous: Some(e.previous.clone()),
            detail: format!("{}: new keys in force", e.trigger),
        }),
        ReloadOutcome::Failed => Some(AuditEvent::KeyringReload {
            accepted: false,
            version: e.active.clone(),
            previous: None,
            detail: format!(
                "{}: refused, the loaded keyring stays in force: {}",
                e.trigger,
                e.error.as_deref().unwrap_or("unknown error")
            ),
        }),
        ReloadOutcome::Unchanged => None,
    }
}

fn append(audit: &AuditLog, record: &AuditEvent) {
    if let Err(e) = audit.append(record) {
        tracing::error!(error = %e, "audit log unavailable");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(outcome: ReloadOutcome) -> KeyringReloadEvent {
        KeyringReloadEvent {
            outcome,
            trigger: "SIGHUP",
            previous: "sha256:a".into(),
            active: if outcome == ReloadOutcome::Changed {
                "sha256:b".into()
            } else {
                "sha256:a".into()
            },
            error: (outcome == ReloadOutcome::Failed).then(|| "bad magic bytes".into()),
        }
    }

    #[test]
    fn keyring_changes_and_refusals_are_audited_with_what_they_replaced() {
        assert_eq!(
            keyring_record(&event(ReloadOutcome::Changed)),
            Some(AuditEvent::KeyringReload {
                accepted: true,
                version: "sha256:b".into(),
                previous: Some("sha256:a".into()),
                detail: "SIGHUP: new keys in force".into(),
            })
        );
        match keyring_record(&event(ReloadOutcome::Failed)) {
            Some(AuditEvent::KeyringReload {
                accepted: false,
                version,
                previous: None,
                detail,
            }) => {
                assert_eq!(version, "sha256:a");
                assert!(detail.contains("bad magic bytes"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(keyring_record(&event(ReloadOutcome::Unchanged)), None);
    }

    #[test]
    fn policy_outcomes_compare_with_the_bundle_in_force_before() {
        let e = |accepted, active: &str| ReloadEvent {
            accepted,
            active: active.into(),
            detail: String::new(),
        };
        assert_eq!(policy_result(&e(true, "b"), "a"), ReloadResult::Changed);
        assert_eq!(policy_result(&e(true, "a"), "a"), ReloadResult::Unchanged);
        assert_eq!(policy_result(&e(false, "a"), "a"), ReloadResult::Failed);
    }
}
