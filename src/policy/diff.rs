//! What a policy change does: every catalogued destination × classification × tenant whose
//! decision changes between two bundles.

use std::collections::BTreeSet;

use super::{Classification, Evidence, Location, PolicyBundle, Request};

/// The tenant name used for "a tenant with no facts in tenants.toml".
pub const OTHER_TENANT: &str = "(any other tenant)";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    pub destination: String,
    /// `None` = unclassified.
    pub classification: Option<Classification>,
    pub tenant: String,
    pub old: String,
    pub old_policies: Vec<String>,
    pub new: String,
    pub new_policies: Vec<String>,
}

/// Decisions that change (allow ↔ deny) from `old` to `new`, with probed evidence.
pub fn diff(old: &PolicyBundle, new: &PolicyBundle) -> Vec<Change> {
    let destinations: BTreeSet<&str> = old.destinations().chain(new.destinations()).collect();
    let mut tenants: Vec<&str> = old
        .tenants()
        .chain(new.tenants())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    tenants.push(OTHER_TENANT);
    let classes: Vec<Option<Classification>> = std::iter::once(None)
        .chain(Classification::ALL.into_iter().map(Some))
        .collect();
    let mut out = Vec::new();
    for dest in destinations {
        for &classification in &classes {
            for tenant in &tenants {
                let req = Request {
                    tenant: tenant.to_string(),
                    user: "policy-diff".into(),
                    classification,
                    destination: dest.to_string(),
                    location: Location::Region(dest.to_string()),
                    evidence: Evidence::Probed,
                };
                let (a, _) = old.decide(&req);
                let (b, _) = new.decide(&req);
                if a.allowed != b.allowed {
                    out.push(Change {
                        destination: dest.to_string(),
                        classification,
                        tenant: tenant.to_string(),
                        old: a.verdict().into(),
                        old_policies: a.policies,
                        new: b.verdict().into(),
                        new_policies: b.policies,
                    });
                }
            }
        }
    }
    out
}
