//! What a policy change does: every catalogued destination × classification × tenant whose
//! decision changes between two bundles; and the axes (classifications, tenants, catalogue
//! requests) the console's residency matrix shares with it.

use std::collections::BTreeSet;

use super::{Classification, Day, Evidence, Location, PolicyBundle, Request};

/// The tenant name used for "a tenant with no facts in tenants.toml".
pub const OTHER_TENANT: &str = "(any other tenant)";

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    pub destination: String,
    /// `None` = unclassified.
    pub classification: Option<Classification>,
    pub tenant: String,
    /// `None`: the change is the same whether or not the tenant holds its own key.
    pub key_held_by_tenant: Option<bool>,
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
        key_held_by_tenant: false,
        operator_country: None,
    }
}

/// Decisions that change (allow ↔ deny) from `old` to `new`, with probed evidence. Each
/// question is asked for a tenant holding its own key and for one that does not; a change the
/// same either way is listed once (`key_held_by_tenant: None`).
pub fn diff(old: &PolicyBundle, new: &PolicyBundle) -> Vec<Change> {
    diff_at(old, new, Day::today_utc())
}

/// [`diff`] with both bundles deciding as of `day`: what an edit of a dated fact changes on
/// the day it matters.
pub fn diff_at(old: &PolicyBundle, new: &PolicyBundle, day: Day) -> Vec<Change> {
    let destinations: BTreeSet<&str> = old.destinations().chain(new.destinations()).collect();
    let tenants = tenants(&[old, new]);
    let mut out = Vec::new();
    for dest in destinations {
        for classification in classifications() {
            for tenant in &tenants {
                let mut req = catalogue_request(dest, classification, tenant, "policy-diff");
                let without = change(old, new, &req, day);
                req.key_held_by_tenant = true;
                let with = change(old, new, &req, day);
                match (without, with) {
                    (Some(a), Some(b)) if a.old == b.old && a.new == b.new => out.push(a),
                    (a, b) => out.extend(
                        a.map(|c| c.held(false))
                            .into_iter()
                            .chain(b.map(|c| c.held(true))),
                    ),
                }
            }
        }
    }
    out
}

/// The change `req`'s decision makes from `old` to `new`, if it changes.
fn change(old: &PolicyBundle, new: &PolicyBundle, req: &Request, day: Day) -> Option<Change> {
    let (a, _) = old.decide_at(req, day);
    let (b, _) = new.decide_at(req, day);
    (a.allowed != b.allowed).then(|| Change {
        destination: req.destination.clone(),
        classification: req.classification,
        tenant: req.tenant.clone(),
        key_held_by_tenant: None,
        old: a.verdict().into(),
        old_policies: a.policies,
        new: b.verdict().into(),
        new_policies: b.policies,
    })
}

impl Change {
    fn held(self, key_held_by_tenant: bool) -> Change {
        Change {
            key_held_by_tenant: Some(key_held_by_tenant),
            ..self
        }
    }

    /// The tenant, and whether it holds its own key when the change depends on it.
    pub fn tenant_label(&self) -> String {
        match self.key_held_by_tenant {
            None => self.tenant.clone(),
            Some(true) => format!("{} (holds its key)", self.tenant),
            Some(false) => format!("{} (keyring key)", self.tenant),
        }
    }
}
