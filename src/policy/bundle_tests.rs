//! Tests of `bundle.rs`: loading, checking, hashing and deciding.
use super::*;
use crate::policy::{Classification, DEFAULT_DENY_ID, Evidence, Location, Request};
use proptest::prelude::*;

fn shipped_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")
}

fn req(tenant: &str, location: Location, class: Option<Classification>) -> Request {
    Request {
        tenant: tenant.into(),
        user: "u".into(),
        classification: class,
        destination: "dest".into(),
        location,
        evidence: Evidence::Probed,
        key_held_by_tenant: false,
        operator_country: None,
    }
}

fn region(r: &str) -> Location {
    Location::Region(r.into())
}

#[test]
fn embedded_matches_directory() {
    let dir = PolicyBundle::load(&shipped_dir()).expect("shipped policies load");
    let emb = PolicyBundle::embedded();
    assert_eq!(
        dir.hash(),
        emb.hash(),
        "add new policies/ files to embedded.rs"
    );
    assert!(emb.run_tests().passed());
}

#[test]
fn catalogue_covers_providers_with_iso_countries() {
    let b = PolicyBundle::embedded();
    for provider in [
        "aws",
        "gcs",
        "azure",
        "hetzner",
        "ovhcloud",
        "scaleway",
        "ionos",
        "exoscale",
        "wasabi",
        "cloudflare-r2",
        "backblaze-b2",
        "alibaba-oss",
        "tencent-cos",
    ] {
        assert!(
            b.destinations()
                .any(|d| d.starts_with(&format!("{provider}:"))),
            "{provider} missing"
        );
    }
    for (key, fact) in &b.facts.regions {
        assert!(!fact.countries.is_empty(), "{key} has no country");
        for c in &fact.countries {
            assert!(
                c.len() == 2 && b.facts.countries.contains_key(c),
                "{key}: {c} not ISO"
            );
        }
    }
    let countries = |k: &str| b.facts.regions[k].countries.clone();
    assert_eq!(countries("aws:eu-central-1"), ["DE"]);
    assert_eq!(countries("wasabi:eu-central-1"), ["NL"]);
    assert_eq!(countries("aws:eusc-de-east-1"), ["DE"]);
    assert_eq!(countries("aws:cn-north-1"), ["CN"]);
    assert_eq!(countries("aws:us-gov-west-1"), ["US"]);
    assert_eq!(countries("gcs:eu").len(), 27);
    assert_eq!(countries("cloudflare-r2:eu").len(), 27);
}

#[test]
fn grant_only_on_allow() {
    let b = PolicyBundle::embedded();
    let (d, g) = b.decide(&req("t", region("aws:eu-central-1"), None));
    assert!(d.allowed);
    let g = g.expect("grant on allow");
    assert_eq!(g.tenant(), "t");
    assert_eq!(g.destination(), "dest");
    assert_eq!(g.classification(), Classification::SpecialCategory);
    assert_eq!(g.bundle_hash(), b.hash());
    assert_eq!(g.policies(), ["eea"]);
    let (d, g) = b.decide(&req(
        "t",
        region("aws:us-east-1"),
        Some(Classification::Public),
    ));
    assert!(!d.allowed);
    assert!(g.is_none());
}

#[test]
fn default_deny_explains_zone() {
    let b = PolicyBundle::embedded();
    let (d, _) = b.decide(&req(
        "t",
        region("aws:us-east-1"),
        Some(Classification::Personal),
    ));
    assert_eq!(d.policies, [DEFAULT_DENY_ID]);
    assert!(
        d.reasons[0].contains("US (Scoped adequacy"),
        "{}",
        d.reasons[0]
    );
    let (d, _) = b.decide(&req(
        "t",
        region("aws:cn-north-1"),
        Some(Classification::Public),
    ));
    assert!(d.reasons[0].contains("CN (in no zone)"), "{}", d.reasons[0]);
}

#[test]
fn hash_covers_content_and_ignores_other_files() {
    let mut s = crate::policy::embedded::sources();
    let h = bundle_hash(&s);
    s.insert("README.md".into(), "notes".into());
    let b = PolicyBundle::from_sources(s.clone()).expect("valid");
    assert_eq!(b.hash(), h);
    if let Some(t) = s.get_mut("tenants.toml") {
        t.push_str("\n# reviewed\n");
    }
    let b = PolicyBundle::from_sources(s).expect("valid");
    assert_ne!(b.hash(), h);
}

#[test]
fn missing_files_are_reported() {
    let mut s = crate::policy::embedded::sources();
    s.remove("regions.toml");
    s.remove("schema.cedarschema");
    let Err(PolicyError::Invalid(p)) = PolicyBundle::from_sources(s) else {
        panic!("must fail");
    };
    assert!(p.iter().any(|p| p.file == "regions.toml"));
    assert!(p.iter().any(|p| p.file == "schema.cedarschema"));
}

/// An officer's rule: special-category (and unclassified) data only under a key the tenant holds.
const OWN_KEY_RULE: &str = r#"
@id("special-category-needs-own-key")
@reason("Special-category data is stored only under a key its tenant holds in its own KMS.")
forbid (principal, action, resource)
when { ["special-category", "unclassified"].contains(context.classification) }
unless { context.key_held_by_tenant };
"#;

fn with_own_key_rule() -> BTreeMap<String, String> {
    let mut s = crate::policy::embedded::sources();
    s.insert("own-key.cedar".into(), OWN_KEY_RULE.into());
    s
}

#[test]
fn rules_see_whether_the_tenant_holds_its_own_key() {
    let b = PolicyBundle::from_sources(with_own_key_rule()).expect("valid");
    let special = Some(Classification::SpecialCategory);
    let mut r = req("globex", region("aws:eu-central-1"), special);
    let (d, grant) = b.decide(&r);
    assert!(!d.allowed && grant.is_none());
    assert_eq!(d.policies, ["special-category-needs-own-key"]);
    assert!(d.reasons[0].contains("holds in its own KMS"), "{d:?}");
    r.key_held_by_tenant = true;
    let (d, grant) = b.decide(&r);
    assert!(d.allowed && grant.is_some(), "{d:?}");
    // Unclassified data is covered too; personal data is not.
    r.key_held_by_tenant = false;
    r.classification = None;
    assert!(!b.decide(&r).0.allowed);
    r.classification = Some(Classification::Personal);
    assert!(b.decide(&r).0.allowed);
    // The other rules still apply to a tenant holding its key: no special-category data to
    // Japan, whoever holds the key.
    let mut r = req("globex", region("aws:ap-northeast-1"), special);
    r.key_held_by_tenant = true;
    let (d, _) = b.decide(&r);
    assert_eq!(d.policies, ["special-category-eea-only"]);
}

#[test]
fn a_schema_without_the_own_key_fact_is_refused_with_its_name() {
    let mut s = crate::policy::embedded::sources();
    let schema = s.get_mut("schema.cedarschema").expect("schema");
    *schema = schema.replace("key_held_by_tenant: Bool,", "");
    let Err(PolicyError::Invalid(p)) = PolicyBundle::from_sources(s) else {
        panic!("must fail");
    };
    assert!(
        p.iter()
            .any(|p| p.file == "schema.cedarschema" && p.message.contains("key_held_by_tenant")),
        "{p:?}"
    );
}

#[test]
fn cases_can_state_that_the_tenant_holds_its_key() {
    // The shipped cases expect special-category uploads without the rule: only ours here.
    let own_cases = || {
        let mut s = with_own_key_rule();
        s.retain(|name, _| !name.starts_with("tests/"));
        s
    };
    let mut s = own_cases();
    s.insert(
        "tests/own-key.toml".into(),
        r#"
[[case]]
name = "special-category under the tenant's own key"
tenant = "globex"
destination = "aws:eu-central-1"
classification = "special-category"
key_held_by_tenant = true
expect = "allow"

[[case]]
name = "special-category under a keyring key"
tenant = "globex"
destination = "aws:eu-central-1"
classification = "special-category"
expect = "deny"
policies = ["special-category-needs-own-key"]
"#
        .into(),
    );
    let b = PolicyBundle::from_sources(s).expect("valid");
    let report = b.run_tests();
    assert_eq!(report.total, 2);
    assert!(report.passed(), "{:?}", report.failures);
    // Flipping the fact in the first case makes it fail: the field is read, not ignored.
    let mut s = own_cases();
    s.insert(
        "tests/own-key.toml".into(),
        "[[case]]\nname = \"x\"\ntenant = \"globex\"\ndestination = \"aws:eu-central-1\"\nclassification = \"special-category\"\nkey_held_by_tenant = false\nexpect = \"allow\"\n".into(),
    );
    assert_eq!(
        PolicyBundle::from_sources(s)
            .expect("valid")
            .run_tests()
            .failures
            .len(),
        1
    );
}

#[test]
fn diff_says_when_a_change_depends_on_who_holds_the_key() {
    let old = PolicyBundle::embedded();
    let new = PolicyBundle::from_sources(with_own_key_rule()).expect("valid");
    let changes = crate::policy::diff::diff(&old, &new);
    assert!(!changes.is_empty());
    // Only tenants without their own key lose anything, and the diff says so.
    assert!(
        changes
            .iter()
            .all(|c| c.key_held_by_tenant == Some(false)
                && c.tenant_label().ends_with("(keyring key)")),
        "{changes:?}"
    );
    // A change that does not depend on the key is listed once.
    let mut s = crate::policy::embedded::sources();
    s.insert(
        "no-de.cedar".into(),
        "@id(\"no-de\")\n@reason(\"test\")\nforbid (principal, action, resource in Country::\"DE\");\n".into(),
    );
    let changes = crate::policy::diff::diff(&old, &PolicyBundle::from_sources(s).expect("valid"));
    assert!(!changes.is_empty());
    assert!(changes.iter().all(|c| c.key_held_by_tenant.is_none()));
}

#[test]
fn equivalent_countries_still_decided_by_name() {
    // A rule naming one EU country must single it out inside a 27-country location, even
    // though `decide` evaluates equivalent countries once.
    let mut s = crate::policy::embedded::sources();
    s.insert(
        "tenant-no-italy.cedar".into(),
        "@id(\"no-italy\")\n@reason(\"test\")\nforbid (principal == Tenant::\"t\", action, resource in Country::\"IT\");\n".into(),
    );
    let b = PolicyBundle::from_sources(s).expect("valid");
    let (d, _) = b.decide(&req("t", region("gcs:eu"), Some(Classification::Public)));
    assert!(!d.allowed);
    assert_eq!(d.policies, ["no-italy"]);
    let denied: Vec<&str> = d
        .per_country
        .iter()
        .filter(|o| !o.allowed)
        .map(|o| o.country.as_str())
        .collect();
    assert_eq!(denied, ["IT"]);
    assert_eq!(d.per_country.len(), 27);
    let (d, _) = b.decide(&req(
        "other",
        region("gcs:eu"),
        Some(Classification::Public),
    ));
    assert!(d.allowed);
}

pub(super) fn class() -> impl Strategy<Value = Option<Classification>> {
    prop_oneof![
        Just(None),
        Just(Some(Classification::Public)),
        Just(Some(Classification::Internal)),
        Just(Some(Classification::Personal)),
        Just(Some(Classification::SpecialCategory)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// A multi-country destination is allowed exactly when each of its countries is.
    #[test]
    fn every_country_must_pass(
        picks in proptest::collection::vec(0usize..40, 1..5),
        c in class(),
        tenant in prop_oneof![Just("acme"), Just("acme-health"), Just("globex")],
    ) {
        const POOL: [&str; 40] = [
            "DE","FR","NL","IE","NO","IS","LI","AT","PL","SE","GB","CH","JP","KR","BR","IL","NZ",
            "AR","UY","AD","US","CA","CN","RU","IN","SG","AU","ZA","AE","HK","TW","MX","TR","UA",
            "RS","BY","EG","NG","KE","SA",
        ];
        let b = PolicyBundle::embedded();
        let countries: Vec<String> = picks.iter().map(|i| POOL[*i].to_string()).collect();
        // One operator for the store, whichever countries it spans.
        let run_from_de = |location| Request {
            operator_country: Some("DE".into()),
            ..req(tenant, location, c)
        };
        let (whole, grant) = b.decide(&run_from_de(Location::Declared(countries.clone())));
        let each = countries.iter().all(|k| {
            b.decide(&run_from_de(Location::Declared(vec![k.clone()]))).0.allowed
        });
        prop_assert_eq!(whole.allowed, each);
        prop_assert_eq!(grant.is_some(), whole.allowed);
    }
}
