//! Facts from TOML: countries, zones (with adequacy decisions), the region catalogue, tenants.
//! Parsed with spans so every problem points at its line.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Deserialize;
use toml::Spanned;

use super::error::{Problem, line_of};

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
}

/// An adequacy decision (GDPR Art. 45) as jurisdictions.toml records it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AdequacyDecision {
    /// ISO code of the country it covers.
    pub country: String,
    /// The decision's reference, e.g. "(EU) 2021/1772".
    pub decision: String,
    pub adopted: String,
    pub renewed: Option<String>,
    /// When the decision must be reviewed or expires (`YYYY-MM-DD`).
    pub valid_until: Option<String>,
    pub scope: Option<String>,
    pub note: Option<String>,
}

impl AdequacyDecision {
    /// Whether its `valid_until` date lies before `today` (`YYYY-MM-DD`; such dates compare
    /// as text).
    pub fn review_overdue(&self, today: &str) -> bool {
        self.valid_until.as_deref().is_some_and(|d| d < today)
    }
}

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
    /// Country → the zones it belongs to (sorted).
    pub country_zones: HashMap<String, Vec<String>>,
    /// "provider:region" (lower case) → entry.
    pub regions: BTreeMap<String, RegionFact>,
    pub tenants: BTreeMap<String, TenantFact>,
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

struct Ctx<'a> {
    file: &'a str,
    text: &'a str,
    problems: &'a mut Vec<Problem>,
}

impl Ctx<'_> {
    fn at(&mut self, offset: usize, message: impl Into<String>) {
        self.problems.push(Problem {
            file: self.file.to_string(),
            line: line_of(self.text, offset),
            message: message.into(),
        });
    }
}

fn parse_toml<T: for<'de> Deserialize<'de>>(
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
}

/// `YYYY-MM-DD` with plausible month and day (no calendar arithmetic needed for review dates).
fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if !(digits(0..4) && digits(5..7) && digits(8..10)) {
        return false;
    }
    let month: u32 = s[5..7].parse().unwrap_or(0);
    let day: u32 = s[8..10].parse().unwrap_or(0);
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

fn is_region_key(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Parses and cross-checks the four fact files. Problems are appended; the result is usable
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
            for date in [Some(&d.adopted), d.renewed.as_ref(), d.valid_until.as_ref()]
                .into_iter()
                .flatten()
            {
                if !is_date(date.get_ref()) {
                    cx.at(
                        date.span().start,
                        format!("'{}' is not a date: write YYYY-MM-DD", date.get_ref()),
                    );
                }
            }
            let text = |d: &Option<Spanned<String>>| d.as_ref().map(|d| d.get_ref().clone());
            facts.decisions.insert(
                code.get_ref().clone(),
                AdequacyDecision {
                    country: code.get_ref().clone(),
                    decision: d.decision.clone(),
                    adopted: d.adopted.get_ref().clone(),
                    renewed: text(&d.renewed),
                    valid_until: text(&d.valid_until),
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

    if let Some(text) = get(TENANTS, problems)
        && let Some(file) = parse_toml::<TenantsFile>(TENANTS, &text, problems)
    {
        let mut cx = Ctx {
            file: TENANTS,
            text: &text,
            problems,
        };
        for (tenant, entry) in file.tenants {
            let mut fact = TenantFact::default();
            if let Some(d) = &entry.attested_on
                && !is_date(d.get_ref())
            {
                cx.at(
                    d.span().start,
                    format!("'{}' is not a date: write YYYY-MM-DD", d.get_ref()),
                );
            }
            if !entry.attested_destinations.is_empty() && entry.reference.is_none() {
                cx.at(
                    tenant.span().start,
                    format!("tenant {}: attested_destinations need a reference to the signed attestation (reference = \"...\")", tenant.get_ref()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn review_overdue_compares_valid_until_with_today() {
        let d = AdequacyDecision {
            country: "GB".into(),
            decision: "(EU) 2021/1772".into(),
            adopted: "2021-06-28".into(),
            renewed: None,
            valid_until: Some("2031-12-27".into()),
            scope: None,
            note: None,
        };
        assert!(!d.review_overdue("2031-12-27"));
        assert!(d.review_overdue("2031-12-28"));
        let open_ended = AdequacyDecision {
            valid_until: None,
            ..d
        };
        assert!(!open_ended.review_overdue("2999-01-01"));
    }

    #[test]
    fn dates() {
        assert!(is_date("2031-12-27"));
        assert!(!is_date("2031-13-01"));
        assert!(!is_date("31-12-2031"));
        assert!(!is_date("2031-1-1"));
    }
}
