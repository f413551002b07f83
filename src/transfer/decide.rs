//! The residency decision that every upload and every new name (mkdir, rename target) takes
//! before anything reaches a store: decided, put on record, and only an allow yields the
//! `Grant` that storage requires.

use super::{Gateway, Principal, Route, TransferError};
use crate::audit::AuditEvent;
use crate::policy::{Classification, Day, Decision, Grant, PolicyBundle, Request};
use crate::storage::{Destination, Verification};

/// What a decision is for; audit records name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    Upload,
    Mkdir,
    Rename,
}

impl Operation {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Operation::Upload => "upload",
            Operation::Mkdir => "mkdir",
            Operation::Rename => "rename",
        }
    }
}

impl Gateway {
    /// Whether `tenant` holds its own key (`[tenants.X] key_provider`): the fact the rules see
    /// as `context.key_held_by_tenant`.
    pub fn key_held_by_tenant(&self, tenant: &str) -> bool {
        self.external.provider_of(tenant).is_some()
    }

    /// The tenants that hold their own key, for previews that must decide as uploads would.
    pub fn tenants_holding_their_keys(&self) -> std::collections::BTreeSet<String> {
        self.external
            .tenants()
            .map(|(t, _)| t.to_string())
            .collect()
    }

    /// The day residency decisions are taken as of (the policy store's clock): an adequacy
    /// decision or attestation that ends stops counting on the next decision, no restart.
    pub fn today(&self) -> Day {
        self.policy.today()
    }

    /// Decides whether `who` may put `object` on the route's destination. The decision is on
    /// record before any byte or name can move: no record, no grant. A quarantined destination
    /// is denied whatever the rules say.
    pub(super) fn decide(
        &self,
        who: &Principal,
        route: &Route,
        object: &str,
        op: Operation,
    ) -> Result<Grant, TransferError> {
        let dest = &route.destination;
        let bundle = self.policy.current();
        let (request, decision, grant, observed_region) = decide_for(
            &bundle,
            dest.as_ref(),
            &who.tenant,
            &who.user,
            route.classification,
            self.key_held_by_tenant(&who.tenant),
            self.today(),
        );
        let recorded = self.audit.append(&AuditEvent::Decision {
            operation: op.as_str().to_string(),
            tenant: who.tenant.clone(),
            user: who.user.clone(),
            destination: dest.name().to_string(),
            object: object.to_string(),
            classification: match decision.classification {
                Some(c) => c.as_str().to_string(),
                None => format!("unclassified (treated as {})", decision.treated_as.as_str()),
            },
            allowed: decision.allowed,
            policies: decision.policies.clone(),
            reasons: decision.reasons.clone(),
            countries: decision.countries.clone(),
            observed_region,
            evidence: request.evidence.as_str().to_string(),
            bundle: decision.bundle_hash.clone(),
            protocol: Some(who.protocol.as_str().to_string()),
            key_held_by_tenant: request.key_held_by_tenant,
            jurisdictions: decision
                .jurisdictions
                .iter()
                .map(|j| format!("{}:{}", j.role, j.country))
                .collect(),
            as_of: Some(decision.as_of.to_string()),
            lapsed: decision.lapsed.clone(),
        });
        if let Err(e) = recorded {
            tracing::error!(error = %e, "audit log unavailable: transfer refused");
            return Err(TransferError::Failure(
                "the audit log is unavailable, so nothing can be stored; contact the operator"
                    .into(),
            ));
        }
        self.metrics.decision(
            op.as_str(),
            decision.allowed,
            decision.policies.first().map(String::as_str),
        );
        tracing::info!(
            tenant = %who.tenant,
            user = %who.user,
            destination = %dest.name(),
            operation = op.as_str(),
            allowed = decision.allowed,
            policies = ?decision.policies,
            bundle = %decision.bundle_hash,
            "residency decision"
        );
        grant.ok_or_else(|| {
            let rules = if decision.policies.is_empty() {
                "default-deny".to_string()
            } else {
                decision.policies.join(", ")
            };
            let mut reasons = if decision.reasons.is_empty() {
                "no policy permits this destination".to_string()
            } else {
                decision.reasons.join("; ")
            };
            if !decision.lapsed.is_empty() {
                reasons.push_str(&format!(
                    "; not counted as of {}: {}",
                    decision.as_of,
                    decision.lapsed.join("; ")
                ));
            }
            TransferError::PermissionDenied(format!("residency policy denied: {rules}: {reasons}"))
        })
    }
}

/// Decides as the gateway does for `dest`: on the location the destination verified, and
/// denied whatever the rules say while it is quarantined. Also returns the request and the
/// observed region, for the audit record. Records nothing: callers that act on it record it.
pub(crate) fn decide_for(
    bundle: &PolicyBundle,
    dest: &dyn Destination,
    tenant: &str,
    user: &str,
    classification: Option<Classification>,
    key_held_by_tenant: bool,
    day: Day,
) -> (Request, Decision, Option<Grant>, Option<String>) {
    let (location, evidence) = dest.location();
    let request = Request {
        tenant: tenant.to_string(),
        user: user.to_string(),
        classification,
        destination: dest.name().to_string(),
        location,
        evidence,
        key_held_by_tenant,
        operator_country: dest.operator_country(),
    };
    let (mut decision, mut grant) = bundle.decide_at(&request, day);
    let observed_region = match dest.verification() {
        Verification::Verified {
            observed_region, ..
        } => Some(observed_region),
        Verification::Quarantined {
            reason,
            observed_region,
        } => {
            decision.allowed = false;
            decision.policies = vec![QUARANTINED_ID.into()];
            decision.reasons = vec![reason];
            grant = None;
            observed_region
        }
        Verification::Declared => None,
    };
    (request, decision, grant, observed_region)
}

/// The deciding "rule" of a decision on a quarantined destination.
pub(crate) const QUARANTINED_ID: &str = "destination-quarantined";
