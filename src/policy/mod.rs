//! Residency policy: facts (countries, zones, regions, tenants) + Cedar rules → decisions that
//! explain themselves.
//!
//! Pure: the only I/O is reading the policy directory (and the reloader, which watches it).
//! A [`PolicyBundle`] is immutable and carries a content hash; [`PolicyBundle::decide`] returns a
//! [`Decision`] and, only on allow, a [`Grant`] — the proof storage requires before any byte moves.
//!
//! Multi-country destinations: Cedar's `in` holds when *any* ancestor matches, so a destination
//! spanning DE and US would pass `resource in Zone::"EEA"`. The engine therefore asks Cedar once
//! per country, with the destination's only parent being that country, and allows only if every
//! country is allowed.

mod bundle;
pub mod cases;
mod day;
pub mod diff;
mod embedded;
/// The shipped `policies/` files compiled in (name, text), as `eugate demo` writes them out.
pub use embedded::sources as embedded_sources;
mod error;
pub mod explain;
mod facts;
mod grant;
mod lapse;
mod providers;
pub mod replay;
mod rules;
mod store;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use bundle::{DatedWarning, EXPIRY_WARNING_DAYS, PolicyBundle};
pub use cases::{CaseFailure, TestReport};
pub use day::{Clock, Day, DayError, FixedClock, SystemClock};
pub use error::{PolicyError, Problem};
pub use grant::Grant;
pub use lapse::{AdequacyDecision, Lapse};
pub use providers::{Jurisdiction, OperatorFact, ProviderFact, UNKNOWN_JURISDICTION};
pub use rules::RuleInfo;
pub use store::{
    PolicyStore, ReloadEvent, ReloadObserver, ReloadTriggers, spawn_reloader, spawn_reloader_with,
};

/// The policy id reported when Cedar denies because no `permit` matched (Cedar's default deny).
pub const DEFAULT_DENY_ID: &str = "default-deny";

/// Data classification of an upload (GDPR-oriented).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Classification {
    Public,
    Internal,
    Personal,
    /// GDPR Art. 9 (special categories) and Art. 10 (criminal convictions).
    SpecialCategory,
}

impl Classification {
    pub const ALL: [Classification; 4] = [
        Classification::Public,
        Classification::Internal,
        Classification::Personal,
        Classification::SpecialCategory,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Classification::Public => "public",
            Classification::Internal => "internal",
            Classification::Personal => "personal",
            Classification::SpecialCategory => "special-category",
        }
    }
}

impl fmt::Display for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for an unknown classification or evidence word.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} '{value}': expected one of {expected}")]
pub struct ParseWordError {
    kind: &'static str,
    value: String,
    expected: &'static str,
}

impl FromStr for Classification {
    type Err = ParseWordError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Classification::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| ParseWordError {
                kind: "classification",
                value: s.to_string(),
                expected: "public, internal, personal, special-category",
            })
    }
}

/// How the destination's location is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Evidence {
    /// Reported by the store itself (bucket region probe) and matched against the catalogue.
    Probed,
    /// Declared by the operator of a self-hosted store.
    Attested,
    /// Nobody checked: never enough for a transfer.
    Unverified,
}

impl Evidence {
    pub fn as_str(self) -> &'static str {
        match self {
            Evidence::Probed => "probed",
            Evidence::Attested => "attested",
            Evidence::Unverified => "unverified",
        }
    }
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Evidence {
    type Err = ParseWordError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Evidence::Probed, Evidence::Attested, Evidence::Unverified]
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| ParseWordError {
                kind: "evidence",
                value: s.to_string(),
                expected: "probed, attested, unverified",
            })
    }
}

/// Where a destination stores data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Location {
    /// "provider:region" of the catalogue, e.g. "aws:eu-central-1" (case-insensitive).
    Region(String),
    /// Self-hosted store: ISO 3166-1 alpha-2 countries its operator declared.
    Declared(Vec<String>),
    Unknown,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Region(r) => f.write_str(r),
            Location::Declared(c) => write!(f, "declared [{}]", c.join(", ")),
            Location::Unknown => f.write_str("unknown"),
        }
    }
}

/// One residency question: may this tenant's upload go to this destination?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub tenant: String,
    pub user: String,
    /// `None` = unclassified, treated as special-category.
    pub classification: Option<Classification>,
    /// The destination's config name (for the Grant and the audit).
    pub destination: String,
    pub location: Location,
    pub evidence: Evidence,
    /// The tenant holds its own key (hold-your-own-key, `docs/keys.md`): its objects can be
    /// opened only while its own KMS or HSM unwraps them. Rules see it as
    /// `context.key_held_by_tenant`.
    #[serde(default)]
    pub key_held_by_tenant: bool,
    /// A self-hosted store's operator country (`operator_country` in its configuration);
    /// `None` = the one country it declares. Ignored for catalogued regions, whose operator
    /// providers.toml names.
    #[serde(default)]
    pub operator_country: Option<String>,
}

/// How one country of the destination was decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CountryOutcome {
    /// ISO code, or "unknown" when the location could not be resolved.
    pub country: String,
    pub allowed: bool,
    /// Deciding policy ids for this country.
    pub policies: Vec<String>,
}

/// The answer, with everything needed to explain and audit it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub allowed: bool,
    /// Deciding policy `@id`s: the permits on allow; the forbids (or `default-deny`) on deny.
    pub policies: Vec<String>,
    /// Their `@reason` / `@legal_basis` texts, in the same order as `policies`.
    pub reasons: Vec<String>,
    /// Countries the destination resolved to (empty when unknown).
    pub countries: Vec<String>,
    /// Zones those countries belong to on the day of the decision.
    pub zones: Vec<String>,
    /// Whose law reaches the data: the provider's controlling parent and the region's operator.
    pub jurisdictions: Vec<Jurisdiction>,
    /// The day the dated facts were taken as of.
    pub as_of: Day,
    /// Dated facts bearing on this request that do not count on that day, each naming its
    /// date (an expired adequacy decision, an attestation past its `valid_until`).
    pub lapsed: Vec<String>,
    /// SHA-256 of the policy bundle that decided.
    pub bundle_hash: String,
    /// Engine notes: how the location was resolved, why it is unknown, evaluation errors.
    pub notes: Vec<String>,
    /// Per-country detail.
    pub per_country: Vec<CountryOutcome>,
    // Inputs, echoed.
    pub tenant: String,
    pub user: String,
    pub classification: Option<Classification>,
    /// The classification the rules applied (unclassified → special-category).
    pub treated_as: Classification,
    pub destination: String,
    pub location: Location,
    pub evidence: Evidence,
}

impl Decision {
    /// "allow" or "deny".
    pub fn verdict(&self) -> &'static str {
        if self.allowed { "allow" } else { "deny" }
    }
}
