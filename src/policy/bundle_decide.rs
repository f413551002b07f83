//! How a bundle decides one request as of one day: the location and the jurisdictions
//! resolved from the facts, one Cedar evaluation per country (equivalent countries once), and
//! the explained outcome.

use std::collections::{HashMap, HashSet};

use cedar_policy::{
    Context, Entities, Entity, EntityUid, Request as CedarRequest, RestrictedExpression,
};

use super::dated::Dated;
use super::{PolicyBundle, Types, tenant_entity};
use crate::policy::day::Day;
use crate::policy::providers::{Jurisdiction, UNKNOWN_JURISDICTION};
use crate::policy::{
    Classification, CountryOutcome, DEFAULT_DENY_ID, Decision, Grant, Location, Request,
};

/// One party whose law reaches the data: role, country (or "unknown"), company, reference.
type Party = (&'static str, String, String, String);

/// Where a request's data would be, and whose law reaches it, as far as the facts tell.
struct Resolved {
    /// Cedar id of the Destination entity.
    dest_id: String,
    /// Empty = unknown location.
    countries: Vec<String>,
    /// The provider's and the operator's party (unknown when the location is).
    parties: [Party; 2],
    notes: Vec<String>,
}

fn unknown_parties() -> [Party; 2] {
    let p = |role| {
        (
            role,
            UNKNOWN_JURISDICTION.to_string(),
            "unknown".to_string(),
            String::new(),
        )
    };
    [p("provider"), p("operator")]
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
                        parties: unknown_parties(),
                        notes: vec![format!(
                            "region '{key}' is not in the catalogue (regions.toml): its country is unknown"
                        )],
                    },
                    Some(fact) if fact.unverified => Resolved {
                        dest_id: key.clone(),
                        countries: vec![],
                        parties: unknown_parties(),
                        notes: vec![format!(
                            "region '{key}' is marked conf = \"unverified\" in regions.toml: treated as unknown until checked"
                        )],
                    },
                    Some(fact) => {
                        let (provider, region) = key.split_once(':').unwrap_or((&key, ""));
                        let mut notes = vec![];
                        let parties = match self.facts.providers.get(provider) {
                            Some(p) => p.parties(region),
                            None => {
                                notes.push(format!("provider '{provider}' is not in providers.toml: its jurisdiction is unknown"));
                                unknown_parties()
                            }
                        };
                        Resolved {
                            countries: fact.countries.clone(),
                            parties,
                            notes,
                            dest_id: key,
                        }
                    }
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
                        parties: unknown_parties(),
                        notes: vec!["declared location lists no country".into()],
                    }
                } else if !unknown.is_empty() {
                    let note = format!(
                        "declared countries {unknown:?} are not ISO 3166-1 alpha-2 codes listed in countries.toml: location unknown"
                    );
                    Resolved {
                        dest_id,
                        countries: vec![],
                        parties: unknown_parties(),
                        notes: vec![note],
                    }
                } else {
                    let (parties, notes) = self.declared_parties(req, &countries);
                    Resolved {
                        dest_id,
                        countries,
                        parties,
                        notes,
                    }
                }
            }
            Location::Unknown => Resolved {
                dest_id: format!("unknown:{}", req.destination),
                countries: vec![],
                parties: unknown_parties(),
                notes: vec![
                    "the destination's location is unknown (not probed or quarantined)".into(),
                ],
            },
        }
    }

    /// A self-hosted store is run by whoever the configuration says (`operator_country`),
    /// by default someone in the one country it declares.
    fn declared_parties(&self, req: &Request, countries: &[String]) -> ([Party; 2], Vec<String>) {
        let declared = req
            .operator_country
            .as_ref()
            .map(|c| c.trim().to_ascii_uppercase())
            .or_else(|| (countries.len() == 1).then(|| countries[0].clone()));
        let mut notes = vec![];
        let country = match declared {
            Some(c) if self.facts.countries.contains_key(&c) => c,
            Some(c) => {
                notes.push(format!("operator country '{c}' is not an ISO 3166-1 alpha-2 code listed in countries.toml: jurisdiction unknown"));
                UNKNOWN_JURISDICTION.to_string()
            }
            None => {
                notes.push("the store declares several countries and no operator_country: its operator's jurisdiction is unknown".into());
                UNKNOWN_JURISDICTION.to_string()
            }
        };
        let party = |role| {
            (
                role,
                country.clone(),
                "the self-hosted store's operator".to_string(),
                "operator_country in the gateway configuration (default: the declared country)"
                    .to_string(),
            )
        };
        ([party("provider"), party("operator")], notes)
    }

    /// The Destination entity's attributes: the provider's and the operator's country.
    pub(super) fn jurisdiction_attrs(
        &self,
        provider: &EntityUid,
        operator: &EntityUid,
    ) -> HashMap<String, RestrictedExpression> {
        HashMap::from([
            (
                "provider_jurisdiction".to_string(),
                RestrictedExpression::new_entity_uid(provider.clone()),
            ),
            (
                "operator_jurisdiction".to_string(),
                RestrictedExpression::new_entity_uid(operator.clone()),
            ),
        ])
    }

    /// Countries with equal keys get equal decisions from every rule.
    fn equivalence_key(&self, dated: &Dated, country: &str) -> String {
        if self.named_countries.contains(country) {
            format!("country:{country}")
        } else {
            format!("zones:{}", dated.zones_of(country).join(","))
        }
    }

    /// "US (Scoped adequacy: …)" or "CN (in no zone)", for default-deny explanations; with
    /// the decision that does not count that day, if that is why.
    fn country_words(&self, dated: &Dated, country: &str) -> String {
        let zones = dated.zones_of(country);
        if let Some(lapsed) = dated.lapsed_decisions.get(country) {
            return format!(
                "{country} (in no adequacy zone as of {}: {lapsed})",
                dated.day
            );
        }
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

    /// One Cedar evaluation: may the tenant store in `dest_id`, seen as located in `country`
    /// and reached by the law of the `parties`' countries?
    fn evaluate(
        &self,
        ask: &Ask<'_>,
        country: Option<&str>,
        context: Context,
        notes: &mut Vec<String>,
    ) -> (bool, Vec<String>) {
        let Ask {
            req,
            dest_id,
            parties,
            dated,
        } = ask;
        let mut entities: HashMap<EntityUid, Entity> = HashMap::with_capacity(12);
        let mut add = |e: &Entity| {
            entities.entry(e.uid()).or_insert_with(|| e.clone());
        };
        let principal = Types::uid(&self.types.tenant, &req.tenant);
        match dated.tenant_entity(&req.tenant) {
            Some(e) => add(e),
            None => match tenant_entity(&self.types, &req.tenant, &[]) {
                Ok(e) => add(&e),
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
            dated.country_entities(c).iter().for_each(&mut add);
        }
        for (_, c, _, _) in parties.iter() {
            dated.country_entities(c).iter().for_each(&mut add);
        }
        let [provider, operator] = parties
            .each_ref()
            .map(|p| Types::uid(&self.types.country, &p.1));
        let destination = match Entity::new(
            resource.clone(),
            self.jurisdiction_attrs(&provider, &operator),
            parents,
        ) {
            Ok(e) => e,
            Err(e) => {
                notes.push(format!("cannot build the destination entity: {e}"));
                return (false, vec![]);
            }
        };
        add(&destination);
        let entities = match Entities::from_entities(entities.into_values(), None) {
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

    /// Decides a request as of today (UTC). Returns the decision and, only on allow, the Grant.
    pub fn decide(&self, req: &Request) -> (Decision, Option<Grant>) {
        self.decide_at(req, Day::today_utc())
    }

    /// Decides a request as of `day`: adequacy decisions and attestations count only on the
    /// days their dates give. Returns the decision and, only on allow, the Grant.
    pub fn decide_at(&self, req: &Request, day: Day) -> (Decision, Option<Grant>) {
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
            parties,
            mut notes,
        } = self.resolve(req);
        let dated = self.dated(day);
        let ask = Ask {
            req,
            dest_id: &dest_id,
            parties: &parties,
            dated: &dated,
        };
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
                        let key = self.equivalence_key(&dated, c);
                        let (allowed, policies) = match memo.iter().find(|(k, _, _)| *k == key) {
                            Some((_, a, p)) => (*a, p.clone()),
                            None => {
                                let (a, p) =
                                    self.evaluate(&ask, Some(c), context.clone(), &mut notes);
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
                    let (allowed, policies) = self.evaluate(&ask, None, context, &mut notes);
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
                default_denied.push(self.country_words(&dated, &o.country));
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
            .flat_map(|c| dated.zones_of(c).iter().cloned())
            .collect();
        zones.sort();
        zones.dedup();
        for o in &mut per_country {
            if !o.allowed && o.policies.is_empty() {
                o.policies.push(DEFAULT_DENY_ID.to_string());
            }
        }
        let jurisdictions = jurisdictions(&parties, &dated);
        let lapsed = lapsed(req, &dest_id, &countries, &jurisdictions, &dated);
        let decision = Decision {
            allowed,
            policies,
            reasons,
            countries,
            zones,
            jurisdictions,
            as_of: day,
            lapsed,
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

/// What one evaluation asks about, beside the country.
struct Ask<'a> {
    req: &'a Request,
    dest_id: &'a str,
    parties: &'a [Party; 2],
    dated: &'a Dated,
}

/// The parties with their zones on the decision's day.
fn jurisdictions(parties: &[Party; 2], dated: &Dated) -> Vec<Jurisdiction> {
    parties
        .iter()
        .map(|(role, country, entity, reference)| Jurisdiction {
            role,
            country: country.clone(),
            entity: entity.clone(),
            zones: dated.zones_of(country).to_vec(),
            reference: reference.clone(),
        })
        .collect()
}

/// The dated facts that bear on this request and do not count on the decision's day: the
/// adequacy decisions of its storage countries and jurisdictions, and the tenant's
/// attestation when it names this destination.
fn lapsed(
    req: &Request,
    dest_id: &str,
    countries: &[String],
    jurisdictions: &[Jurisdiction],
    dated: &Dated,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: &String| {
        if !out.contains(s) {
            out.push(s.clone());
        }
    };
    countries
        .iter()
        .chain(jurisdictions.iter().map(|j| &j.country))
        .filter_map(|c| dated.lapsed_decisions.get(c))
        .for_each(&mut push);
    if let Some(words) = dated.lapsed_attestation(&req.tenant, dest_id) {
        push(words);
    }
    out
}

fn classification_words(c: Option<Classification>) -> String {
    match c {
        Some(c) => c.as_str().to_string(),
        None => "unclassified (treated as special-category)".to_string(),
    }
}
