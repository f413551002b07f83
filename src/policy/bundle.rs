//! The immutable policy bundle: facts + rules + test cases, a content hash, and `decide`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Context, Entities, Entity, EntityId, EntityTypeName, EntityUid,
    Request as CedarRequest, RestrictedExpression,
};

use super::cases::{self, Case, TestReport};
use super::error::{PolicyError, Problem};
use super::facts::{self, AdequacyDecision, COUNTRIES, Facts, JURISDICTIONS, REGIONS, TENANTS};
use super::rules::{self, RuleInfo, Rules, SCHEMA};
use super::{Classification, CountryOutcome, DEFAULT_DENY_ID, Decision, Grant, Location, Request};

/// Entity type names of the schema, parsed once.
struct Types {
    zone: EntityTypeName,
    country: EntityTypeName,
    destination: EntityTypeName,
    tenant: EntityTypeName,
    action: EntityUid,
}

impl Types {
    fn new() -> Result<Types, String> {
        let t = |s: &str| EntityTypeName::from_str(s).map_err(|e| e.to_string());
        Ok(Types {
            zone: t("Zone")?,
            country: t("Country")?,
            destination: t("Destination")?,
            tenant: t("Tenant")?,
            action: EntityUid::from_type_name_and_id(t("Action")?, EntityId::new("store")),
        })
    }

    fn uid(ty: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
    }
}

/// Validated facts, rules and cases, with the hash of the files they came from.
pub struct PolicyBundle {
    hash: String,
    /// The files it was loaded from (relative name → text), for people to read.
    sources: BTreeMap<String, String>,
    facts: Facts,
    rules: Rules,
    cases: Vec<Case>,
    types: Types,
    /// Country code → its entity and its zones' entities.
    country_entities: HashMap<String, Vec<Entity>>,
    tenant_entities: HashMap<String, Entity>,
    /// Countries some rule names as `Country::"XX"`. Every other country is indistinguishable
    /// to the rules from any country with the same zones, so `decide` evaluates one per class.
    named_countries: HashSet<String>,
    authorizer: Authorizer,
}

impl std::fmt::Debug for PolicyBundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyBundle")
            .field("hash", &self.hash)
            .field("policies", &self.rules.reasons.len())
            .field("regions", &self.facts.regions.len())
            .finish_non_exhaustive()
    }
}

/// Whether `name` (relative, `/`-separated) is a file the bundle consists of.
fn is_bundle_file(name: &str) -> bool {
    match name.split_once('/') {
        None => {
            [COUNTRIES, JURISDICTIONS, REGIONS, TENANTS, SCHEMA].contains(&name)
                || name.ends_with(".cedar")
        }
        Some(("tests", rest)) => !rest.contains('/') && rest.ends_with(".toml"),
        Some(_) => false,
    }
}

fn read_dir_sources(dir: &Path) -> Result<BTreeMap<String, String>, PolicyError> {
    let io = |path: &Path, source| PolicyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut sources = BTreeMap::new();
    let mut read_level = |sub: Option<&str>| -> Result<(), PolicyError> {
        let level = match sub {
            Some(s) => dir.join(s),
            None => dir.to_path_buf(),
        };
        let entries = match std::fs::read_dir(&level) {
            Ok(e) => e,
            // A bundle without tests/ is valid; a missing policy directory is not.
            Err(e) if sub.is_some() && e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(&level, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io(&level, e))?;
            let Some(file_name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let name = match sub {
                Some(s) => format!("{s}/{file_name}"),
                None => file_name,
            };
            let path = entry.path();
            if !is_bundle_file(&name) || !path.is_file() {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
            sources.insert(name, text);
        }
        Ok(())
    };
    read_level(None)?;
    read_level(Some("tests"))?;
    Ok(sources)
}

/// SHA-256 over a canonical listing: for each file in name order, its name, its length, its bytes.
fn bundle_hash(sources: &BTreeMap<String, String>) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for (name, text) in sources {
        ctx.update(&(name.len() as u64).to_be_bytes());
        ctx.update(name.as_bytes());
        ctx.update(&(text.len() as u64).to_be_bytes());
        ctx.update(text.as_bytes());
    }
    format!("sha256:{}", hex::encode(ctx.finish().as_ref()))
}

/// Where a request's data would be, as far as the facts tell.
struct Resolved {
    /// Cedar id of the Destination entity.
    dest_id: String,
    /// Empty = unknown location.
    countries: Vec<String>,
    notes: Vec<String>,
}

impl PolicyBundle {
    /// Loads and validates a policy directory. Does not run its tests (see `run_tests`).
    pub fn load(dir: &Path) -> Result<PolicyBundle, PolicyError> {
        let sources = read_dir_sources(dir)?;
        PolicyBundle::from_sources(sources)
    }

    /// The bundle files of a policy directory (relative name → text), as `load` reads them:
    /// for a proposal that starts from the directory in force.
    pub fn read_sources(dir: &Path) -> Result<BTreeMap<String, String>, PolicyError> {
        read_dir_sources(dir)
    }

    /// The hash `load` would give these bundle files (other names are not part of a bundle).
    pub fn hash_sources(sources: &BTreeMap<String, String>) -> String {
        let files: BTreeMap<String, String> = sources
            .iter()
            .filter(|(name, _)| is_bundle_file(name))
            .map(|(n, t)| (n.clone(), t.clone()))
            .collect();
        bundle_hash(&files)
    }

    /// Whether `name` (relative, `/`-separated) is a file a bundle consists of: the facts files,
    /// the schema, `*.cedar` and `tests/*.toml`.
    pub fn is_bundle_file(name: &str) -> bool {
        is_bundle_file(name)
    }

    /// The shipped `policies/` directory, compiled in.
    pub fn embedded() -> PolicyBundle {
        let sources = super::embedded::sources();
        // The shipped policies are checked by tests (`embedded_matches_directory`); failing here
        // means the binary was built from a broken tree, which no input can cause.
        #[allow(clippy::expect_used)]
        PolicyBundle::from_sources(sources).expect("shipped policies/ must be valid")
    }

    /// Validates files given as (relative name → text).
    pub fn from_sources(sources: BTreeMap<String, String>) -> Result<PolicyBundle, PolicyError> {
        let sources: BTreeMap<String, String> = sources
            .into_iter()
            .filter(|(name, _)| is_bundle_file(name))
            .collect();
        let mut problems: Vec<Problem> = Vec::new();
        let facts = facts::load(&sources, &mut problems);
        let rules = rules::load(&sources, &facts, &mut problems);
        let case_list = cases::load(&sources, rules.as_ref(), &mut problems);
        let types = match Types::new() {
            Ok(t) => t,
            Err(e) => {
                problems.push(Problem {
                    file: SCHEMA.into(),
                    line: 0,
                    message: format!("internal: entity type names: {e}"),
                });
                return Err(PolicyError::Invalid(problems));
            }
        };
        let (Some(rules), true) = (rules, problems.is_empty()) else {
            return Err(PolicyError::Invalid(problems));
        };

        let mut country_entities = HashMap::new();
        for code in facts.countries.keys() {
            let zones = facts.zones_of(code);
            let parents: HashSet<EntityUid> =
                zones.iter().map(|z| Types::uid(&types.zone, z)).collect();
            let mut list = vec![Entity::new_no_attrs(
                Types::uid(&types.country, code),
                parents,
            )];
            for z in zones {
                list.push(Entity::new_no_attrs(
                    Types::uid(&types.zone, z),
                    HashSet::new(),
                ));
            }
            country_entities.insert(code.clone(), list);
        }
        let mut tenant_entities = HashMap::new();
        for (name, t) in &facts.tenants {
            match tenant_entity(&types, name, &t.attested_destinations) {
                Ok(e) => {
                    tenant_entities.insert(name.clone(), e);
                }
                Err(message) => problems.push(Problem {
                    file: TENANTS.into(),
                    line: 0,
                    message: format!("tenant {name}: {message}"),
                }),
            }
        }
        if !problems.is_empty() {
            return Err(PolicyError::Invalid(problems));
        }

        let named_countries = rules
            .set
            .policies()
            .flat_map(|p| p.entity_literals())
            .filter(|e| e.type_name() == &types.country)
            .map(|e| e.id().unescaped().to_string())
            .collect();
        let bundle = PolicyBundle {
            named_countries,
            hash: bundle_hash(&sources),
            sources,
            facts,
            rules,
            cases: case_list,
            types,
            country_entities,
            tenant_entities,
            authorizer: Authorizer::new(),
        };
        // The engine's request shape must match the schema the officers maintain.
        bundle.check_request_shape()?;
        Ok(bundle)
    }

    fn check_request_shape(&self) -> Result<(), PolicyError> {
        let probe = CedarRequest::new(
            Types::uid(&self.types.tenant, "schema-probe"),
            self.types.action.clone(),
            Types::uid(&self.types.destination, "schema-probe"),
            self.context("public", "probed", true, "u", "d", false)
                .map_err(|m| schema_problem(&m))?,
            Some(&self.rules.schema),
        );
        probe
            .map(|_| ())
            .map_err(|e| schema_problem(&e.to_string()))
    }

    /// `sha256:<hex>` of the files this bundle was loaded from.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// Number of rules (Cedar policies).
    pub fn rule_count(&self) -> usize {
        self.rules.reasons.len()
    }

    /// Every catalogued destination, `provider:region`, sorted.
    pub fn destinations(&self) -> impl Iterator<Item = &str> {
        self.facts.regions.keys().map(String::as_str)
    }

    /// Tenants with facts in tenants.toml, sorted.
    pub fn tenants(&self) -> impl Iterator<Item = &str> {
        self.facts.tenants.keys().map(String::as_str)
    }

    /// The files of the bundle: relative name → text, in name order.
    pub fn sources(&self) -> &BTreeMap<String, String> {
        &self.sources
    }

    /// Every rule with its effect and annotations, in file and source order.
    pub fn rules(&self) -> &[RuleInfo] {
        &self.rules.list
    }

    /// Adequacy decisions (jurisdictions.toml `[decisions]`), by country code.
    pub fn adequacy_decisions(&self) -> impl Iterator<Item = &AdequacyDecision> {
        self.facts.decisions.values()
    }

    /// Zone id → its name and member countries, sorted by id.
    pub fn zone_members(&self) -> impl Iterator<Item = (&str, &str, &[String])> {
        self.facts.zones.iter().map(|(id, members)| {
            let name = self
                .facts
                .zone_names
                .get(id)
                .map(String::as_str)
                .unwrap_or("");
            (id.as_str(), name, members.as_slice())
        })
    }

    /// The name of an ISO country code listed in countries.toml.
    pub fn country_name(&self, code: &str) -> Option<&str> {
        self.facts.countries.get(code).map(String::as_str)
    }

    /// Zone ids, sorted.
    pub fn zones(&self) -> impl Iterator<Item = &str> {
        self.facts.zones.keys().map(String::as_str)
    }

    /// The expected-decision cases shipped in `tests/`.
    pub fn cases(&self) -> &[Case] {
        &self.cases
    }

    /// Runs the bundle's own expected-decision cases.
    pub fn run_tests(&self) -> TestReport {
        cases::run(self)
    }

    /// The human text of a policy id (`@reason` / `@legal_basis`).
    pub fn reason(&self, policy_id: &str) -> Option<&str> {
        self.rules.reasons.get(policy_id).map(String::as_str)
    }

    fn context(
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

fn schema_problem(message: &str) -> PolicyError {
    PolicyError::Invalid(vec![Problem {
        file: SCHEMA.into(),
        line: 0,
        message: format!(
            "the schema does not accept the engine's request (principal Tenant, action \"store\", resource Destination, context classification/evidence/user/destination_name: String, location_known/key_held_by_tenant: Bool): {message}"
        ),
    }])
}

fn tenant_entity(types: &Types, name: &str, attested: &[String]) -> Result<Entity, String> {
    let set = RestrictedExpression::new_set(
        attested
            .iter()
            .map(|d| RestrictedExpression::new_entity_uid(Types::uid(&types.destination, d))),
    );
    Entity::new(
        Types::uid(&types.tenant, name),
        HashMap::from([("attested_destinations".to_string(), set)]),
        HashSet::new(),
    )
    .map_err(|e| e.to_string())
}

#[cfg(test)]
#[path = "bundle_tests.rs"]
mod tests;
