//! The proof of an allow decision. Only this module can make one: private fields, no public
//! constructor, not `Clone`, not `Default`, not `Deserialize`. Storage takes it by value.

use super::Classification;

/// Proof that the residency policy allowed this transfer.
#[derive(Debug)]
pub struct Grant {
    tenant: String,
    destination: String,
    classification: Classification,
    bundle_hash: String,
    policies: Vec<String>,
}

impl Grant {
    pub(super) fn new(
        tenant: String,
        destination: String,
        classification: Classification,
        bundle_hash: String,
        policies: Vec<String>,
    ) -> Grant {
        Grant {
            tenant,
            destination,
            classification,
            bundle_hash,
            policies,
        }
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The destination's config name, as in the request.
    pub fn destination(&self) -> &str {
        &self.destination
    }

    /// The classification the rules applied (unclassified data is granted as special-category).
    pub fn classification(&self) -> Classification {
        self.classification
    }

    pub fn bundle_hash(&self) -> &str {
        &self.bundle_hash
    }

    /// The policy ids that allowed the transfer (for the audit record).
    pub fn policies(&self) -> &[String] {
        &self.policies
    }
}
