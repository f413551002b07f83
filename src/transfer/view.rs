//! What the compliance console reads from the gateway: the policy in force, the destinations
//! with their verified locations, and the audit log it appends officers' acts to.

use std::sync::Arc;

use super::Gateway;
use crate::audit::AuditLog;
use crate::policy::{Classification, Day, Decision, PolicyBundle, PolicyStore};
use crate::storage::Destination;

impl Gateway {
    /// The bundle in force now.
    pub fn policy(&self) -> Arc<PolicyBundle> {
        self.policy.current()
    }

    /// The store, to reload after an approved change.
    pub fn policy_store(&self) -> &Arc<PolicyStore> {
        &self.policy
    }

    /// Every configured destination, in configuration order.
    pub fn destinations(&self) -> &[Arc<dyn Destination>] {
        &self.destinations
    }

    pub fn audit_log(&self) -> &Arc<AuditLog> {
        &self.audit
    }
}

/// What `bundle` decides for an upload by `tenant` to `dest`, exactly as a transfer would be
/// decided (on the verified location; denied while quarantined), without recording anything.
pub fn preview(
    bundle: &PolicyBundle,
    dest: &dyn Destination,
    tenant: &str,
    user: &str,
    classification: Option<Classification>,
    key_held_by_tenant: bool,
    day: Day,
) -> Decision {
    super::decide::decide_for(
        bundle,
        dest,
        tenant,
        user,
        classification,
        key_held_by_tenant,
        day,
    )
    .1
}
