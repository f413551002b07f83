//! The facts as of one day: which countries are in which zones (a country whose adequacy
//! decision does not count that day is in none of the zones that require one), which tenant
//! attestations count, and the Cedar entities built from both. Built for the day a decision
//! is taken and kept until another day is asked for, so that a running gateway decides by the
//! new day's facts as soon as the date passes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use cedar_policy::{Entity, EntityUid};

use super::{PolicyBundle, Types, tenant_entity};
use crate::policy::day::Day;
use crate::policy::facts::Facts;

pub(super) struct Dated {
    pub day: Day,
    /// Country → the zones it is in on `day` (sorted); countries in no zone are absent.
    zones: HashMap<String, Vec<String>>,
    /// Country → its entity and its zones' entities.
    country_entities: HashMap<String, Vec<Entity>>,
    tenant_entities: HashMap<String, Entity>,
    /// Country → why its adequacy decision does not count on `day`.
    pub lapsed_decisions: BTreeMap<String, String>,
    /// Tenant → why its attestation does not count on `day`, and the destinations it names.
    pub lapsed_attestations: BTreeMap<String, (String, Vec<String>)>,
    /// Tenants Cedar refused as entities (a bundle with any is refused at load).
    pub problems: Vec<String>,
}

impl Dated {
    pub fn build(facts: &Facts, types: &Types, day: Day) -> Dated {
        let mut lapsed_decisions = BTreeMap::new();
        for (country, d) in &facts.decisions {
            if let Some(l) = d.lapse_on(day) {
                lapsed_decisions.insert(country.clone(), d.lapse_words(l));
            }
        }
        let mut zones = HashMap::new();
        let mut country_entities = HashMap::new();
        for code in facts.countries.keys() {
            let member: Vec<String> = facts
                .zones_of(code)
                .iter()
                .filter(|z| {
                    !facts.decision_zones.contains(*z) || !lapsed_decisions.contains_key(code)
                })
                .cloned()
                .collect();
            let parents: HashSet<EntityUid> =
                member.iter().map(|z| Types::uid(&types.zone, z)).collect();
            let mut list = vec![Entity::new_no_attrs(
                Types::uid(&types.country, code),
                parents,
            )];
            list.extend(
                member
                    .iter()
                    .map(|z| Entity::new_no_attrs(Types::uid(&types.zone, z), HashSet::new())),
            );
            country_entities.insert(code.clone(), list);
            if !member.is_empty() {
                zones.insert(code.clone(), member);
            }
        }
        let mut lapsed_attestations = BTreeMap::new();
        let mut tenant_entities = HashMap::new();
        let mut problems = Vec::new();
        for (name, t) in &facts.tenants {
            let attested: &[String] = match t.lapse_on(day) {
                None => &t.attested_destinations,
                Some(l) => {
                    if !t.attested_destinations.is_empty() {
                        lapsed_attestations.insert(
                            name.clone(),
                            (t.lapse_words(name, l), t.attested_destinations.clone()),
                        );
                    }
                    &[]
                }
            };
            match tenant_entity(types, name, attested) {
                Ok(e) => {
                    tenant_entities.insert(name.clone(), e);
                }
                Err(m) => problems.push(format!("tenant {name}: {m}")),
            }
        }
        Dated {
            day,
            zones,
            country_entities,
            tenant_entities,
            lapsed_decisions,
            lapsed_attestations,
            problems,
        }
    }

    /// Why `tenant`'s attestation does not count on this day, if it names `dest_id`.
    pub fn lapsed_attestation(&self, tenant: &str, dest_id: &str) -> Option<&String> {
        self.lapsed_attestations
            .get(tenant)
            .filter(|(_, dests)| dests.iter().any(|d| d == dest_id))
            .map(|(words, _)| words)
    }

    /// The zones `country` is in on this day.
    pub fn zones_of(&self, country: &str) -> &[String] {
        self.zones.get(country).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The entities of `country` and of its zones (none for a country not in countries.toml).
    pub fn country_entities(&self, country: &str) -> &[Entity] {
        self.country_entities
            .get(country)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub fn tenant_entity(&self, tenant: &str) -> Option<&Entity> {
        self.tenant_entities.get(tenant)
    }
}

impl PolicyBundle {
    /// The facts as of `day`, built once per day.
    pub(super) fn dated(&self, day: Day) -> Arc<Dated> {
        let mut cache = match self.dated.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some(d) = cache.as_ref().filter(|d| d.day == day) {
            return Arc::clone(d);
        }
        let built = Arc::new(Dated::build(&self.facts, &self.types, day));
        *cache = Some(Arc::clone(&built));
        built
    }
}
