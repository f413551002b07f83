//! How a bundle decides one request: the location resolved from the facts, one Cedar
//! evaluation per country (equivalent countries once), and the explained outcome.

use std::collections::HashSet;

use cedar_policy::{Context, Entities, Entity, Request as CedarRequest, RestrictedExpression};

use super::{PolicyBundle, Types, tenant_entity};
use crate::policy::{
    Classification, CountryOutcome, DEFAULT_DENY_ID, Decision, Grant, Location, Request,
};

/// Where a request's data would be, as far as the facts tell.
struct Resolved {
    /// Cedar id of the Destination entity.
    dest_id: String,
    /// Empty = unknown location.
    countries: Vec<String>,
    notes: Vec<String>,
}

impl PolicyBundle {
    pub(super) fn context(
        &self,
        classification: &str,
        evidence: &str,
        known: bool,
        user: &str,
        destination: &str,
        key_held_by_tenant: bool,
    ) -> Result<Context, String> {
        Context::from_pairs([
            (
                "classification".to_string(),
                RestrictedExpression::new_string(classification.to_string()),
            ),
            (
                "evidence".to_string(),
                RestrictedExpression::new_string(evidence.to_string()),
            ),
            (
                "location_known".to_string(),
                RestrictedExpression::new_bool(known),
            ),
            (
                "user".to_string(),
                RestrictedExpression::new_string(user.to_string()),
            ),
            (
                "destination_name".to_string(),
                RestrictedExpression::new_string(destination.to_string()),
            ),
            (
                "key_held_by_tenant".to_string(),
                RestrictedExpression::new_bool(key_held_by_tenant),
            ),
        ])
        .map_err(|e| e.to_string())
    }

    fn resolve(&self, req: &Request) -> Resolved {
        match &req.location {
            Location::Region(r) => {
                let key = r.trim().to_ascii_lowercase();
                match self.facts.regions.get(&key) {
                    None => Resolved {
                        dest_id: key.clone(),
                        countries: vec![],
                        notes: vec![format!(
                            "region '{key}' is not in the catalogue (regions.toml): its country is unknown"
                        )],
                    },
                    Some(fact) if fact.unverified => Resolved {
                        dest_id: key.clone(),
                        countries: vec![],
                        notes: vec![format!(
                            "region '{key}' is marked conf = \"unverified\" in regions.toml: treated as unknown until checked"
                        )],
                    },
                    Some(fact) => Resolved {
                        dest_id: key,
                        countries: fact.countries.clone(),
                        notes: vec![],
                    },
                }
            }
            Location::Declared(list) => {
                let dest_id = format!("declared:{}", req.destination.to_ascii_lowercase());
                let mut countries: Vec<String> =
                    list.iter().map(|c| c.trim().to_ascii_uppercase()).collect();
                countries.sort();
                countries.dedup();
                let unknown: Vec<&String> = countries
                    .iter()
                    .filter(|c| !self.facts.countries.contains_key(*c))
                    .collect();
                if countries.is_empty() {
                    Resolved {
                        dest_id,
                        countries: vec![],
                        notes: vec!["declared location lists no country".into()],
                    }
                } else if !unknown.is_empty() {
                    let note = format!(
                        "declared countries {unknown:?} are not ISO 3166-1 alpha-2 codes listed in countries.toml: location unknown"
                    );
                    Resolved {
                        dest_id,
                        countries: vec![],
                        notes: vec![note],
                    }
                } else {
                    Resolved {
                        dest_id,
                        countries,
                        notes: vec![],
                    }
                }
            }
            Location::Unknown => Resolved {
                dest_id: format!("unknown:{}", req.destination),
                countries: vec![],
                notes: vec![
                    "the destination's location is unknown (not probed or quarantined)".into(),
                ],
            },
        }
    }

    /// Countries with equal keys get equal decisions from every rule.
    fn equivalence_key(&self, country: &str) -> String {
        if self.named_countries.contains(country) {
            format!("country:{country}")
        } else {
            format!("zones:{}", self.facts.zones_of(country).join(","))
        }
    }

    /// "US (Scoped adequacy: …)" or "CN (in no zone)", for default-deny explanations.
    fn country_words(&self, country: &str) -> String {
        let zones = self.facts.zones_of(country);
        if zones.is_empty() {
            return format!("{country} (in no zone)");
        }
        let names: Vec<&str> = zones
            .iter()
            .map(|z| {
                self.facts
                    .zone_names
                    .get(z)
                    .map(String::as_str)
                    .unwrap_or(z)
            })
            .collect();
        format!("{country} ({})", names.join("; "))
    }

    /// One Cedar evaluation: may the tenant store in `dest_id`, seen as located in `country`?
    fn evaluate(
        &self,
        req: &Request,
        dest_id: &str,
        country: Option<&str>,
        context: Context,
        notes: &mut Vec<String>,
    ) -> (bool, Vec<String>) {
        let mut entities: Vec<Entity> = Vec::with_capacity(6);
        let principal = Types::uid(&self.types.tenant, &req.tenant);
        match self.tenant_entities.get(&req.tenant) {
            Some(e) => entities.push(e.clone()),
            None => match tenant_entity(&self.types, &req.tenant, &[]) {
                Ok(e) => entities.push(e),
                Err(m) => {
                    notes.push(format!("cannot build tenant entity: {m}"));
                    return (false, vec![]);
                }
            },
        }
        let resource = Types::uid(&self.types.destination, dest_id);
        let mut parents = HashSet::new();
        if let Some(c) = country {
            parents.insert(Types::uid(&self.types.country, c));
            if let Some(list) = self.country_entities.get(c) {
                entities.extend(list.iter().cloned());
            }
        }
        entities.push(Entity::new_no_attrs(resource.clone(), parents));
        let entities = match Entities::from_entities(entities, None) {
            Ok(e) => e,
            Err(e) => {
                notes.push(format!("cannot build entities: {e}"));
                return (false, vec![]);
            }
        };
        let request = match CedarRequest::new(
            principal,
            self.types.action.clone(),
            resource,
            context,
            None,
        ) {
            Ok(r) => r,
            Err(e) => {
                notes.push(format!("cannot build request: {e}"));
                return (false, vec![]);
            }
        };
        let response = self
            .authorizer
            .is_authorized(&request, &self.rules.set, &entities);
        let mut errors = false;
        for e in response.diagnostics().errors() {
            // A rule that errors is skipped by Cedar; if it was a forbid, skipping it could allow.
            errors = true;
            notes.push(format!("rule evaluation error (denied): {e}"));
        }
        let ids: Vec<String> = response
            .diagnostics()
            .reason()
            .map(ToString::to_string)
            .collect();
        let allowed = response.decision() == cedar_policy::Decision::Allow && !errors;
        (allowed, ids)
    }

    /// Decides a request. Returns the decision and, only on allow, the Grant.
    pub fn decide(&self, req: &Request) -> (Decision, Option<Grant>) {
        let treated_as = req
            .classification
            .unwrap_or(Classification::SpecialCategory);
        let classification = req
            .classification
            .map(Classification::as_str)
            .unwrap_or("unclassified");
        let Resolved {
            dest_id,
            countries,
            mut notes,
        } = self.resolve(req);
        let known = !countries.is_empty();
        let mut per_country = Vec::with_capacity(countries.len().max(1));
        match self.context(
            classification,
            req.evidence.as_str(),
            known,
            &req.user,
            &req.destination,
            req.key_held_by_tenant,
        ) {
            Err(m) => notes.push(format!("cannot build request context: {m}")),
            Ok(context) => {
                if known {
                    // Countries in the same equivalence class decide alike (see
                    // `named_countries`): a 27-country "EU" location needs a few evaluations.
                    let mut memo: Vec<(String, bool, Vec<String>)> = Vec::new();
                    for c in &countries {
                        let key = self.equivalence_key(c);
                        let (allowed, policies) = match memo.iter().find(|(k, _, _)| *k == key) {
                            Some((_, a, p)) => (*a, p.clone()),
                            None => {
                                let (a, p) = self.evaluate(
                                    req,
                                    &dest_id,
                                    Some(c),
                                    context.clone(),
                                    &mut notes,
                                );
                                memo.push((key, a, p.clone()));
                                (a, p)
                            }
                        };
                        per_country.push(CountryOutcome {
                            country: c.clone(),
                            allowed,
                            policies,
                        });
                    }
                } else {
                    let (allowed, policies) =
                        self.evaluate(req, &dest_id, None, context, &mut notes);
                    per_country.push(CountryOutcome {
                        country: "unknown".into(),
                        allowed,
                        policies,
                    });
                }
            }
        }
        // Every country must pass; an empty evaluation (internal error) is a deny.
        let allowed = !per_country.is_empty() && per_country.iter().all(|o| o.allowed);
        let mut policies: Vec<String> = Vec::new();
        let mut default_denied: Vec<String> = Vec::new();
        for o in per_country.iter().filter(|o| o.allowed == allowed) {
            if !allowed && o.policies.is_empty() {
                default_denied.push(self.country_words(&o.country));
                if !policies.iter().any(|p| p == DEFAULT_DENY_ID) {
                    policies.push(DEFAULT_DENY_ID.to_string());
                }
            }
            for p in &o.policies {
                if !policies.contains(p) {
                    policies.push(p.clone());
                }
            }
        }
        if !allowed && per_country.is_empty() && !policies.iter().any(|p| p == DEFAULT_DENY_ID) {
            policies.push(DEFAULT_DENY_ID.to_string());
        }
        let reasons = policies
            .iter()
            .map(|p| match self.rules.reasons.get(p) {
                Some(r) => r.clone(),
                None if p == DEFAULT_DENY_ID => format!(
                    "No rule allows {} data in {}: Cedar denies by default.",
                    classification_words(req.classification),
                    if default_denied.is_empty() {
                        "this destination".to_string()
                    } else {
                        default_denied.join("; ")
                    }
                ),
                None => String::new(),
            })
            .collect();
        let mut zones: Vec<String> = countries
            .iter()
            .flat_map(|c| self.facts.zones_of(c).iter().cloned())
            .collect();
        zones.sort();
        zones.dedup();
        for o in &mut per_country {
            if !o.allowed && o.policies.is_empty() {
                o.policies.push(DEFAULT_DENY_ID.to_string());
            }
        }
        let decision = Decision {
            allowed,
            policies,
            reasons,
            countries,
            zones,
            bundle_hash: self.hash.clone(),
            notes,
            per_country,
            tenant: req.tenant.clone(),
            user: req.user.clone(),
            classification: req.classification,
            treated_as,
            destination: req.destination.clone(),
            location: req.location.clone(),
            evidence: req.evidence,
        };
        let grant = decision.allowed.then(|| {
            Grant::new(
                req.tenant.clone(),
                req.destination.clone(),
                treated_as,
                self.hash.clone(),
                decision.policies.clone(),
            )
        });
        (decision, grant)
    }
}

fn classification_words(c: Option<Classification>) -> String {
    match c {
        Some(c) => c.as_str().to_string(),
        None => "unclassified (treated as special-category)".to_string(),
    }
}
