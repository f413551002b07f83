//! What a policy change does: every catalogued destination × classification × tenant whose
//! decision changes between two bundles; and the axes (classifications, tenants, catalogue
//! requests) the console's residency matrix shares with it.

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

/// Every classification an upload can carry: unclassified (`None`) first.
pub fn classifications() -> Vec<Option<Classification>> {
    std::iter::once(None)
        .chain(Classification::ALL.into_iter().map(Some))
        .collect()
}

/// The tenants with facts in any of `bundles`, sorted, then [`OTHER_TENANT`].
pub fn tenants(bundles: &[&PolicyBundle]) -> Vec<String> {
    let mut out: Vec<String> = bundles
        .iter()
        .flat_map(|b| b.tenants())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(str::to_string)
        .collect();
    out.push(OTHER_TENANT.to_string());
    out
}

/// The question for a catalogued region, as its probe would verify it.
pub fn catalogue_request(
    region: &str,
    classification: Option<Classification>,
    tenant: &str,
    user: &str,
) -> Request {
    Request {
        tenant: tenant.to_string(),
        user: user.to_string(),
        classification,
        destination: region.to_string(),
        location: Location::Region(region.to_string()),
        evidence: Evidence::Probed,
    }
}

/// Decisions that change (allow ↔ deny) from `old` to `new`, with probed evidence.
pub fn diff(old: &PolicyBundle, new: &PolicyBundle) -> Vec<Change> {
    let destinations: BTreeSet<&str> = old.destinations().chain(new.destinations()).collect();
    let tenants = tenants(&[old, new]);
    let mut out = Vec::new();
    for dest in destinations {
        for classification in classifications() {
            for tenant in &tenants {
                let req = catalogue_request(dest, classification, tenant, "policy-diff");
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
