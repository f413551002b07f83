//! Facts from TOML: countries, zones (with adequacy decisions), the region catalogue, tenants.
//! Parsed with spans so every problem points at its line.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Deserialize;
use toml::Spanned;

use super::day::Day;
use super::error::{Problem, line_of};
pub(crate) use super::providers::{PROVIDERS, ProviderFact};

pub(crate) const COUNTRIES: &str = "countries.toml";
pub(crate) const JURISDICTIONS: &str = "jurisdictions.toml";
pub(crate) const REGIONS: &str = "regions.toml";
pub(crate) const TENANTS: &str = "tenants.toml";

const CONFIDENCE: [&str; 4] = ["sdk", "doc", "inferred", "unverified"];

/// One catalogue entry, resolved.
#[derive(Debug, Clone)]
pub(crate) struct RegionFact {
    /// Every country the data may be in; all must pass.
    pub countries: Vec<String>,
    /// `conf = "unverified"`: the engine treats the location as unknown.
    pub unverified: bool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct TenantFact {
    pub attested_destinations: Vec<String>,
    /// The signed attestation the destinations rest on.
    pub reference: Option<String>,
    /// The attestation counts from this day (inclusive)...
    pub attested_on: Option<Day>,
    /// ...through this one (inclusive).
    pub valid_until: Option<Day>,
}

pub use super::lapse::AdequacyDecision;

#[derive(Debug, Clone, Default)]
pub(crate) struct Facts {
    /// Adequacy decisions, by country.
    pub decisions: BTreeMap<String, AdequacyDecision>,
    /// ISO 3166-1 alpha-2 code → name.
    pub countries: BTreeMap<String, String>,
    /// Zone id → member countries.
    pub zones: BTreeMap<String, Vec<String>>,
    /// Zone id → its human name.
    pub zone_names: BTreeMap<String, String>,
    /// Zones whose members count only while their adequacy decision does (`decision_required`).
    pub decision_zones: BTreeSet<String>,
    /// Country → the zones it belongs to (sorted).
    pub country_zones: HashMap<String, Vec<String>>,
    /// "provider:region" (lower case) → entry.
    pub regions: BTreeMap<String, RegionFact>,
    pub tenants: BTreeMap<String, TenantFact>,
    /// Provider id (regions.toml section) → who runs it, under which country's law.
    pub providers: BTreeMap<String, ProviderFact>,
}

impl Facts {
    /// Zones of `country` (empty if it is in none).
    pub fn zones_of(&self, country: &str) -> &[String] {
        self.country_zones
            .get(country)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

pub(super) struct Ctx<'a> {
    pub file: &'a str,
    pub text: &'a str,
    pub problems: &'a mut Vec<Problem>,
}

impl Ctx<'_> {
    pub fn at(&mut self, offset: usize, message: impl Into<String>) {
        self.problems.push(Problem {
            file: self.file.to_string(),
            line: line_of(self.text, offset),
            message: message.into(),
        });
    }

    /// The day a `YYYY-MM-DD` field names, or a problem at its line.
    pub fn day(&mut self, field: &Spanned<String>) -> Option<Day> {
        match field.get_ref().parse::<Day>() {
            Ok(d) => Some(d),
            Err(e) => {
                self.at(field.span().start, e.to_string());
                None
            }
        }
    }
}

pub(super) fn parse_toml<T: for<'de> Deserialize<'de>>(
    file: &str,
    text: &str,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    match toml::from_str::<T>(text) {
        Ok(v) => Some(v),
        Err(e) => {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(0);
            problems.push(Problem {
                file: file.to_string(),
                line,
                message: format!("TOML error: {}", e.message().trim()),
            });
            None
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CountriesFile {
    countries: BTreeMap<Spanned<String>, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JurisdictionsFile {
    zones: BTreeMap<Spanned<String>, ZoneEntry>,
    #[serde(default)]
    decisions: BTreeMap<Spanned<String>, DecisionEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // descriptive fields are for people; parsing them rejects typos
struct ZoneEntry {
    name: String,
    reference: String,
    #[serde(default)]
    decision_required: bool,
    countries: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionEntry {
    decision: String,
    adopted: Spanned<String>,
    renewed: Option<Spanned<String>>,
    valid_until: Option<Spanned<String>>,
    suspended_from: Option<Spanned<String>>,
    annulled_on: Option<Spanned<String>>,
    scope: Option<String>,
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RegionEntry {
    country: Option<Spanned<String>>,
    countries: Option<Vec<Spanned<String>>>,
    within_zone: Option<Spanned<String>>,
    conf: Spanned<String>,
    city: Option<String>,
    partition: Option<String>,
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TenantsFile {
    #[serde(default)]
    tenants: BTreeMap<Spanned<String>, TenantEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct TenantEntry {
    name: Option<String>,
    #[serde(default)]
    attested_destinations: Vec<Spanned<String>>,
    reference: Option<String>,
    attested_on: Option<Spanned<String>>,
    valid_until: Option<Spanned<String>>,
}

pub(super) fn is_region_key(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Parses and cross-checks the five fact files. Problems are appended; the result is usable
/// only if no problem was added.
pub(crate) fn load(sources: &BTreeMap<String, String>, problems: &mut Vec<Problem>) -> Facts {
    let mut facts = Facts::default();
    let get = |name: &str, problems: &mut Vec<Problem>| -> Option<String> {
        match sources.get(name) {
            Some(t) => Some(t.clone()),
            None => {
                problems.push(Problem {
                    file: name.to_string(),
                    line: 0,
                    message: format!("missing: every policy directory needs {name}"),
                });
                None
            }
        }
    };

    // Countries first: everything else is checked against them.
    if let Some(text) = get(COUNTRIES, problems)
        && let Some(file) = parse_toml::<CountriesFile>(COUNTRIES, &text, problems)
    {
        let mut cx = Ctx {
            file: COUNTRIES,
            text: &text,
            problems,
        };
        for (code, name) in file.countries {
            let c = code.get_ref();
            if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
                cx.at(
                    code.span().start,
                    format!("'{c}' is not an ISO 3166-1 alpha-2 code (two upper-case letters)"),
                );
                continue;
            }
            facts.countries.insert(c.clone(), name);
        }
    }

    if let Some(text) = get(JURISDICTIONS, problems)
        && let Some(file) = parse_toml::<JurisdictionsFile>(JURISDICTIONS, &text, problems)
    {
        let mut cx = Ctx {
            file: JURISDICTIONS,
            text: &text,
            problems,
        };
        for (code, d) in &file.decisions {
            if !facts.countries.contains_key(code.get_ref()) {
                cx.at(
                    code.span().start,
                    format!(
                        "decision for unknown country '{}': use an ISO 3166-1 alpha-2 code listed in {COUNTRIES}",
                        code.get_ref()
                    ),
                );
            }
            let mut day = |f: &Option<Spanned<String>>| f.as_ref().and_then(|f| cx.day(f));
            let (renewed, valid_until) = (day(&d.renewed), day(&d.valid_until));
            let (suspended_from, annulled_on) = (day(&d.suspended_from), day(&d.annulled_on));
            let Some(adopted) = cx.day(&d.adopted) else {
                continue;
            };
            if let Some(end) = valid_until
                && end < adopted
            {
                cx.at(
                    code.span().start,
                    format!(
                        "decision for '{}': valid_until {end} lies before adopted {adopted}",
                        code.get_ref()
                    ),
                );
            }
            facts.decisions.insert(
                code.get_ref().clone(),
                AdequacyDecision {
                    country: code.get_ref().clone(),
                    decision: d.decision.clone(),
                    adopted,
                    renewed,
                    valid_until,
                    suspended_from,
                    annulled_on,
                    scope: d.scope.clone(),
                    note: d.note.clone(),
                },
            );
        }
        for (zone, entry) in file.zones {
            let z = zone.get_ref();
            if z.is_empty() || !z.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                cx.at(
                    zone.span().start,
                    format!("zone id '{z}' must be letters, digits and '_' (it becomes Zone::\"{z}\" in Cedar)"),
                );
                continue;
            }
            let mut members = Vec::new();
            let mut seen = BTreeSet::new();
            for c in &entry.countries {
                let code = c.get_ref();
                if !facts.countries.contains_key(code) {
                    cx.at(
                        c.span().start,
                        format!("zone {z}: unknown country '{code}': use an ISO 3166-1 alpha-2 code listed in {COUNTRIES}"),
                    );
                } else if !seen.insert(code.clone()) {
                    cx.at(
                        c.span().start,
                        format!("zone {z}: country '{code}' is listed twice"),
                    );
                } else if entry.decision_required
                    && !file.decisions.keys().any(|k| k.get_ref() == code)
                {
                    cx.at(
                        c.span().start,
                        format!("zone {z} requires an adequacy decision for '{code}': add it under [decisions] with its reference and dates"),
                    );
                    members.push(code.clone());
                } else {
                    members.push(code.clone());
                }
            }
            for c in &members {
                facts
                    .country_zones
                    .entry(c.clone())
                    .or_default()
                    .push(z.clone());
            }
            if entry.decision_required {
                facts.decision_zones.insert(z.clone());
            }
            facts.zones.insert(z.clone(), members);
            facts.zone_names.insert(z.clone(), entry.name.clone());
        }
        for zs in facts.country_zones.values_mut() {
            zs.sort();
        }
    }

    if let Some(text) = get(REGIONS, problems)
        && let Some(file) = parse_toml::<
            BTreeMap<Spanned<String>, BTreeMap<Spanned<String>, RegionEntry>>,
        >(REGIONS, &text, problems)
    {
        let mut cx = Ctx {
            file: REGIONS,
            text: &text,
            problems,
        };
        for (provider, regions) in file {
            let p = provider.get_ref();
            if !is_region_key(p) {
                cx.at(
                    provider.span().start,
                    format!("provider '{p}' must be lower-case letters, digits and '-'"),
                );
                continue;
            }
            for (region, e) in regions {
                let r = region.get_ref();
                let at = region.span().start;
                if !is_region_key(r) {
                    cx.at(
                        at,
                        format!("{p}:{r}: region ids are lower case (lookups ignore case); write it in lower case"),
                    );
                    continue;
                }
                if !CONFIDENCE.contains(&e.conf.get_ref().as_str()) {
                    cx.at(
                        e.conf.span().start,
                        format!(
                            "{p}:{r}: conf '{}' is not one of {}",
                            e.conf.get_ref(),
                            CONFIDENCE.join(", ")
                        ),
                    );
                }
                let mut countries: Vec<String> = Vec::new();
                let mut check = |c: &Spanned<String>, cx: &mut Ctx<'_>| {
                    if facts.countries.contains_key(c.get_ref()) {
                        countries.push(c.get_ref().clone());
                    } else {
                        cx.at(
                            c.span().start,
                            format!("{p}:{r}: unknown country '{}': use an ISO 3166-1 alpha-2 code listed in {COUNTRIES} (for 'somewhere in a zone' write within_zone = \"EU\")", c.get_ref()),
                        );
                    }
                };
                let kinds = usize::from(e.country.is_some())
                    + usize::from(e.countries.is_some())
                    + usize::from(e.within_zone.is_some());
                if kinds != 1 {
                    cx.at(
                        at,
                        format!("{p}:{r}: give exactly one of country, countries or within_zone"),
                    );
                    continue;
                }
                if let Some(c) = &e.country {
                    check(c, &mut cx);
                }
                if let Some(cs) = &e.countries {
                    if cs.is_empty() {
                        cx.at(at, format!("{p}:{r}: countries is empty"));
                    }
                    for c in cs {
                        check(c, &mut cx);
                    }
                }
                if let Some(z) = &e.within_zone {
                    match facts.zones.get(z.get_ref()) {
                        Some(members) => countries.extend(members.iter().cloned()),
                        None => cx.at(
                            z.span().start,
                            format!(
                                "{p}:{r}: unknown zone '{}': zones are defined in {JURISDICTIONS} ({})",
                                z.get_ref(),
                                facts.zones.keys().cloned().collect::<Vec<_>>().join(", ")
                            ),
                        ),
                    }
                }
                countries.sort();
                countries.dedup();
                facts.regions.insert(
                    format!("{p}:{r}"),
                    RegionFact {
                        countries,
                        unverified: e.conf.get_ref() == "unverified",
                    },
                );
            }
        }
    }

    if let Some(text) = get(PROVIDERS, problems) {
        facts.providers = super::providers::load(&text, &facts, problems);
    }

    if let Some(text) = get(TENANTS, problems)
        && let Some(file) = parse_toml::<TenantsFile>(TENANTS, &text, problems)
    {
        let mut cx = Ctx {
            file: TENANTS,
            text: &text,
            problems,
        };
        for (tenant, entry) in file.tenants {
            let mut fact = TenantFact {
                reference: entry.reference.clone(),
                attested_on: entry.attested_on.as_ref().and_then(|d| cx.day(d)),
                valid_until: entry.valid_until.as_ref().and_then(|d| cx.day(d)),
                ..TenantFact::default()
            };
            if !entry.attested_destinations.is_empty() && entry.reference.is_none() {
                cx.at(
                    tenant.span().start,
                    format!("tenant {}: attested_destinations need a reference to the signed attestation (reference = \"...\")", tenant.get_ref()),
                );
            }
            if !entry.attested_destinations.is_empty() && entry.valid_until.is_none() {
                cx.at(
                    tenant.span().start,
                    format!("tenant {}: attested_destinations need valid_until = \"YYYY-MM-DD\", the last day the attestation counts (a DPF certification must be re-checked every year)", tenant.get_ref()),
                );
            }
            if let (Some(from), Some(until)) = (fact.attested_on, fact.valid_until)
                && until < from
            {
                cx.at(
                    tenant.span().start,
                    format!(
                        "tenant {}: valid_until {until} lies before attested_on {from}",
                        tenant.get_ref()
                    ),
                );
            }
            for d in &entry.attested_destinations {
                let dest = d.get_ref().to_ascii_lowercase();
                if dest.starts_with("declared:") && dest.len() > "declared:".len() {
                    // Self-hosted stores are named by their config name; nothing to check here.
                } else if !facts.regions.contains_key(&dest) {
                    cx.at(
                        d.span().start,
                        format!("tenant {}: attested destination '{}' is not in {REGIONS}: write provider:region (e.g. aws:us-east-1) or declared:<name>", tenant.get_ref(), d.get_ref()),
                    );
                    continue;
                }
                fact.attested_destinations.push(dest);
            }
            facts.tenants.insert(tenant.get_ref().clone(), fact);
        }
    }
    facts
}
