//! Tests of `bundle.rs`: loading, checking, hashing and deciding.
use super::*;
use crate::policy::Evidence;
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

fn class() -> impl Strategy<Value = Option<Classification>> {
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
        let (whole, grant) = b.decide(&req(tenant, Location::Declared(countries.clone()), c));
        let each = countries.iter().all(|k| {
            b.decide(&req(tenant, Location::Declared(vec![k.clone()]), c)).0.allowed
        });
        prop_assert_eq!(whole.allowed, each);
        prop_assert_eq!(grant.is_some(), whole.allowed);
    }
}
