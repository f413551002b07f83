//! providers.toml: who runs each catalogue provider and under which country's law, and, per
//! region where it differs, the country of the entity that operates the region. A destination's
//! jurisdictions are these two countries; a rule names them as `resource.provider_jurisdiction`
//! and `resource.operator_jurisdiction`.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::error::Problem;
use super::facts::{Ctx, Facts, REGIONS, is_region_key, parse_toml};

pub(crate) const PROVIDERS: &str = "providers.toml";

/// The country a jurisdiction is unknown as: it is in no zone, so every rule that asks for a
/// zone refuses it.
pub const UNKNOWN_JURISDICTION: &str = "unknown";

const CONFIDENCE: [&str; 3] = ["doc", "inferred", "unverified"];

/// A catalogue provider as providers.toml records it.
#[derive(Debug, Clone)]
pub struct ProviderFact {
    pub name: String,
    pub parent: String,
    /// ISO code; "unknown" when `conf = "unverified"`.
    pub parent_country: String,
    pub reference: String,
    /// Regions whose operating entity sits in another country, by region id.
    pub regions: BTreeMap<String, OperatorFact>,
}

/// The entity that operates one region, where it is not the provider's parent.
#[derive(Debug, Clone)]
pub struct OperatorFact {
    pub operator: String,
    pub operator_country: String,
    pub reference: String,
}

/// One party whose law reaches a destination's data.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Jurisdiction {
    /// "provider" (the controlling parent) or "operator" (who runs the region or store).
    pub role: &'static str,
    /// ISO 3166-1 alpha-2 code, or "unknown".
    pub country: String,
    /// The company, as providers.toml names it.
    pub entity: String,
    /// Zones the country is in on the day of the decision.
    pub zones: Vec<String>,
    pub reference: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // `note` is for people; parsing it rejects typos
struct ProviderEntry {
    name: String,
    parent: String,
    parent_country: Spanned<String>,
    conf: Spanned<String>,
    reference: String,
    note: Option<String>,
    #[serde(default)]
    regions: BTreeMap<Spanned<String>, OperatorEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct OperatorEntry {
    operator: String,
    operator_country: Spanned<String>,
    reference: String,
    note: Option<String>,
}

/// Parses providers.toml against the countries and the region catalogue already in `facts`.
pub(crate) fn load(
    text: &str,
    facts: &Facts,
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, ProviderFact> {
    let mut out = BTreeMap::new();
    let Some(file) =
        parse_toml::<BTreeMap<Spanned<String>, ProviderEntry>>(PROVIDERS, text, problems)
    else {
        return out;
    };
    let mut cx = Ctx {
        file: PROVIDERS,
        text,
        problems,
    };
    let country = |c: &Spanned<String>, what: &str, cx: &mut Ctx<'_>| -> String {
        if facts.countries.contains_key(c.get_ref()) {
            c.get_ref().clone()
        } else {
            cx.at(
                c.span().start,
                format!("{what}: unknown country '{}': use an ISO 3166-1 alpha-2 code listed in countries.toml", c.get_ref()),
            );
            UNKNOWN_JURISDICTION.to_string()
        }
    };
    for (id, e) in &file {
        let p = id.get_ref();
        if !is_region_key(p) {
            cx.at(
                id.span().start,
                format!("provider '{p}' must be lower-case letters, digits and '-'"),
            );
            continue;
        }
        let prefix = format!("{p}:");
        if !facts.regions.keys().any(|k| k.starts_with(&prefix)) {
            cx.at(
                id.span().start,
                format!("provider '{p}' has no regions in {REGIONS}: name a provider as its section there is named"),
            );
        }
        if !CONFIDENCE.contains(&e.conf.get_ref().as_str()) {
            cx.at(
                e.conf.span().start,
                format!(
                    "{p}: conf '{}' is not one of {}",
                    e.conf.get_ref(),
                    CONFIDENCE.join(", ")
                ),
            );
        }
        let mut parent_country = country(&e.parent_country, p, &mut cx);
        if e.conf.get_ref() == "unverified" {
            parent_country = UNKNOWN_JURISDICTION.to_string();
        }
        let mut regions = BTreeMap::new();
        for (region, o) in &e.regions {
            let r = region.get_ref();
            if !facts.regions.contains_key(&format!("{p}:{r}")) {
                cx.at(
                    region.span().start,
                    format!("{p}:{r} is not in {REGIONS}: an operator is given for a catalogued region, by its id there"),
                );
                continue;
            }
            regions.insert(
                r.clone(),
                OperatorFact {
                    operator: o.operator.clone(),
                    operator_country: country(&o.operator_country, &format!("{p}:{r}"), &mut cx),
                    reference: o.reference.clone(),
                },
            );
        }
        out.insert(
            p.clone(),
            ProviderFact {
                name: e.name.clone(),
                parent: e.parent.clone(),
                parent_country,
                reference: e.reference.clone(),
                regions,
            },
        );
    }
    let mut missing: Vec<&str> = facts
        .regions
        .keys()
        .filter_map(|k| k.split_once(':').map(|(p, _)| p))
        .filter(|p| !out.contains_key(*p))
        .collect();
    missing.dedup();
    for p in missing {
        cx.at(
            0,
            format!("provider '{p}' of {REGIONS} has no entry here: add [{p}] with its parent company, parent_country and a reference (unknown jurisdictions are refused for personal data)"),
        );
    }
    out
}

impl ProviderFact {
    /// The provider's and the operator's party for one of its regions.
    pub(crate) fn parties(&self, region: &str) -> [(&'static str, String, String, String); 2] {
        let provider = (
            "provider",
            self.parent_country.clone(),
            format!("{} ({})", self.parent, self.name),
            self.reference.clone(),
        );
        let operator = match self.regions.get(region) {
            Some(o) => (
                "operator",
                o.operator_country.clone(),
                o.operator.clone(),
                o.reference.clone(),
            ),
            None => (
                "operator",
                provider.1.clone(),
                provider.2.clone(),
                provider.3.clone(),
            ),
        };
        [provider, operator]
    }
}
