//! The immutable policy bundle: facts + rules + test cases, a content hash, and `decide`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use cedar_policy::{
    Authorizer, Entities, Entity, EntityId, EntityTypeName, EntityUid, Request as CedarRequest,
    RestrictedExpression,
};

use super::cases::{self, Case, TestReport};
use super::day::Day;
use super::error::{PolicyError, Problem};
use super::facts::{
    self, AdequacyDecision, COUNTRIES, Facts, JURISDICTIONS, PROVIDERS, ProviderFact, REGIONS,
    TENANTS,
};
use super::rules::{self, RuleInfo, Rules, SCHEMA};

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
    /// The facts as of the last day asked for (zones, attestations, their entities).
    dated: Mutex<Option<Arc<dated::Dated>>>,
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
            [
                COUNTRIES,
                JURISDICTIONS,
                REGIONS,
                PROVIDERS,
                TENANTS,
                SCHEMA,
            ]
            .contains(&name)
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

        // Built for today here so that a tenant entity Cedar refuses is a load problem.
        let today = dated::Dated::build(&facts, &types, Day::today_utc());
        if !today.problems.is_empty() {
            problems.extend(today.problems.iter().map(|message| Problem {
                file: TENANTS.into(),
                line: 0,
                message: message.clone(),
            }));
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
            dated: Mutex::new(Some(Arc::new(today))),
            authorizer: Authorizer::new(),
        };
        // The engine's request shape must match the schema the officers maintain.
        bundle.check_request_shape()?;
        Ok(bundle)
    }

    fn check_request_shape(&self) -> Result<(), PolicyError> {
        let country = Types::uid(&self.types.country, "DE");
        let entities = [
            tenant_entity(&self.types, "schema-probe", &["schema-probe".to_string()]),
            Entity::new(
                Types::uid(&self.types.destination, "schema-probe"),
                self.jurisdiction_attrs(&country, &country),
                HashSet::from([country.clone()]),
            )
            .map_err(|e| e.to_string()),
            Ok(Entity::new_no_attrs(country, HashSet::new())),
        ];
        let entities: Result<Vec<Entity>, String> = entities.into_iter().collect();
        entities
            .and_then(|list| {
                Entities::from_entities(list, Some(&self.rules.schema)).map_err(|e| e.to_string())
            })
            .map_err(|m| schema_problem(ENTITY_SHAPE, &m))?;
        let probe = CedarRequest::new(
            Types::uid(&self.types.tenant, "schema-probe"),
            self.types.action.clone(),
            Types::uid(&self.types.destination, "schema-probe"),
            self.context("public", "probed", true, "u", "d", false)
                .map_err(|m| schema_problem(REQUEST_SHAPE, &m))?,
            Some(&self.rules.schema),
        );
        probe
            .map(|_| ())
            .map_err(|e| schema_problem(REQUEST_SHAPE, &e.to_string()))
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

    /// Catalogue providers (providers.toml) by id: whose law governs each, and the regions
    /// another entity operates.
    pub fn providers(&self) -> impl Iterator<Item = (&str, &ProviderFact)> {
        self.facts.providers.iter().map(|(k, v)| (k.as_str(), v))
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

    /// Runs the bundle's own expected-decision cases, those without `at` as of today (UTC).
    pub fn run_tests(&self) -> TestReport {
        self.run_tests_at(Day::today_utc())
    }

    /// Runs the bundle's own expected-decision cases, those without `at` as of `today`.
    pub fn run_tests_at(&self, today: Day) -> TestReport {
        cases::run(self, today)
    }

    /// The human text of a policy id (`@reason` / `@legal_basis`).
    pub fn reason(&self, policy_id: &str) -> Option<&str> {
        self.rules.reasons.get(policy_id).map(String::as_str)
    }
}

/// What the engine's requests look like, for a schema that does not accept them.
const REQUEST_SHAPE: &str = "request (principal Tenant, action \"store\", resource Destination, context classification/evidence/user/destination_name: String, location_known/key_held_by_tenant: Bool)";
/// What the engine's entities look like, likewise.
const ENTITY_SHAPE: &str = "entities (Tenant with attested_destinations: Set<Destination>; Destination in [Country] with provider_jurisdiction and operator_jurisdiction: Country; Country in [Zone])";

fn schema_problem(shape: &str, message: &str) -> PolicyError {
    PolicyError::Invalid(vec![Problem {
        file: SCHEMA.into(),
        line: 0,
        message: format!("the schema does not accept the engine's {shape}: {message}"),
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

#[path = "bundle_decide.rs"]
mod decide;

#[path = "bundle_dated.rs"]
mod dated;

#[path = "bundle_warnings.rs"]
mod warnings;
pub use warnings::{DatedWarning, EXPIRY_WARNING_DAYS};

#[cfg(test)]
#[path = "bundle_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "bundle_dated_tests.rs"]
mod dated_tests;
