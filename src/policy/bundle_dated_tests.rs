//! Tests of jurisdictions (providers.toml) and dated facts: who a decision says can reach the
//! data, and which decisions and attestations count on which day.
use super::tests::class;
use super::*;
use crate::policy::{Classification, Day, Evidence, FixedClock, Location, PolicyStore, Request};
use proptest::prelude::*;

fn day(s: &str) -> Day {
    s.parse().expect(s)
}

fn req(tenant: &str, destination: &str, class: Option<Classification>) -> Request {
    Request {
        tenant: tenant.into(),
        user: "u".into(),
        classification: class,
        destination: destination.into(),
        location: Location::Region(destination.into()),
        evidence: Evidence::Probed,
        key_held_by_tenant: false,
        operator_country: None,
    }
}

fn declared(countries: &[&str], operator: Option<&str>, class: Classification) -> Request {
    Request {
        location: Location::Declared(countries.iter().map(|c| c.to_string()).collect()),
        evidence: Evidence::Attested,
        operator_country: operator.map(str::to_string),
        ..req("globex", "local", Some(class))
    }
}

/// The shipped sources with `from` replaced by `to` in `file`.
fn edited(file: &str, from: &str, to: &str) -> BTreeMap<String, String> {
    let mut s = crate::policy::embedded::sources();
    let t = s.get_mut(file).expect(file);
    assert!(t.contains(from), "{from} not in {file}");
    *t = t.replacen(from, to, 1);
    s
}

fn problems(sources: BTreeMap<String, String>) -> Vec<Problem> {
    match PolicyBundle::from_sources(sources) {
        Err(PolicyError::Invalid(p)) => p,
        other => panic!(
            "must be refused, got {:?}",
            other.map(|b| b.hash().to_string())
        ),
    }
}

const PERSONAL: Option<Classification> = Some(Classification::Personal);

#[test]
fn a_decision_names_the_provider_and_the_operator() {
    let b = PolicyBundle::embedded();
    let today = day("2027-01-01");
    let (d, _) = b.decide_at(&req("t", "alibaba-oss:oss-eu-central-1", PERSONAL), today);
    assert!(!d.allowed);
    assert_eq!(d.policies, ["provider-jurisdiction"]);
    assert_eq!(d.countries, ["DE"]);
    let j: Vec<(&str, &str)> = d
        .jurisdictions
        .iter()
        .map(|j| (j.role, j.country.as_str()))
        .collect();
    assert_eq!(j, [("provider", "CN"), ("operator", "CN")]);
    assert!(d.jurisdictions[0].zones.is_empty());
    assert_eq!(d.as_of, today);

    let (d, grant) = b.decide_at(&req("t", "aws:eu-central-1", PERSONAL), today);
    assert!(d.allowed && grant.is_some());
    assert_eq!(d.jurisdictions[0].country, "US");
    assert_eq!(d.jurisdictions[0].zones, ["ADEQUATE_SCOPED"]);

    // A region run by another entity than the parent's group.
    let (d, _) = b.decide_at(&req("t", "aws:eusc-de-east-1", PERSONAL), today);
    assert!(d.allowed);
    let j: Vec<&str> = d.jurisdictions.iter().map(|j| j.country.as_str()).collect();
    assert_eq!(j, ["US", "DE"]);
    let (d, _) = b.decide_at(&req("t", "aws:cn-north-1", PERSONAL), today);
    assert_eq!(d.jurisdictions[1].country, "CN");
}

#[test]
fn a_self_hosted_store_is_run_from_its_declared_or_configured_country() {
    let b = PolicyBundle::embedded();
    let d = |r: &Request| b.decide_at(r, day("2027-01-01")).0;
    let de = d(&declared(&["DE"], None, Classification::Personal));
    assert!(de.allowed);
    assert_eq!(de.jurisdictions[1].country, "DE");
    let cn = d(&declared(&["DE"], Some("CN"), Classification::Personal));
    assert!(!cn.allowed);
    assert_eq!(cn.policies, ["provider-jurisdiction"]);
    assert!(d(&declared(&["DE"], Some("CN"), Classification::Public)).allowed);
    // Several countries and no operator: unknown, refused for personal data.
    let several = d(&declared(&["DE", "FR"], None, Classification::Personal));
    assert!(!several.allowed);
    assert_eq!(several.jurisdictions[0].country, "unknown");
    assert!(
        several.notes.iter().any(|n| n.contains("operator_country")),
        "{:?}",
        several.notes
    );
    let typo = d(&declared(&["DE"], Some("XX"), Classification::Personal));
    assert!(!typo.allowed);
    assert!(
        typo.notes.iter().any(|n| n.contains("'XX'")),
        "{:?}",
        typo.notes
    );
}

#[test]
fn providers_toml_is_checked_against_the_catalogue() {
    let missing = problems(edited("providers.toml", "[hetzner]", "[hetzner-renamed]"));
    assert!(
        missing.iter().any(|p| p.file == "providers.toml"
            && p.message
                .contains("provider 'hetzner' of regions.toml has no entry")),
        "{missing:?}"
    );
    assert!(
        missing
            .iter()
            .any(|p| p.message.contains("'hetzner-renamed' has no regions"))
    );
    let bad_country = problems(edited(
        "providers.toml",
        r#"parent_country = "CN""#,
        r#"parent_country = "PRC""#,
    ));
    assert!(
        bad_country
            .iter()
            .any(|p| p.line > 1 && p.message.contains("unknown country 'PRC'")),
        "{bad_country:?}"
    );
    let bad_region = problems(edited(
        "providers.toml",
        "[aws.regions.cn-north-1]",
        "[aws.regions.cn-north-9]",
    ));
    assert!(
        bad_region
            .iter()
            .any(|p| p.message.contains("aws:cn-north-9 is not in regions.toml")),
        "{bad_region:?}"
    );
}

#[test]
fn an_unverified_provider_has_an_unknown_jurisdiction() {
    let s = edited(
        "providers.toml",
        "parent_country = \"DE\"\nconf = \"doc\"\nreference = \"Hetzner Online GmbH",
        "parent_country = \"DE\"\nconf = \"unverified\"\nreference = \"Hetzner Online GmbH",
    );
    let b = PolicyBundle::from_sources(s).expect("valid");
    let (d, _) = b.decide(&req("t", "hetzner:fsn1", PERSONAL));
    assert!(!d.allowed);
    assert_eq!(d.jurisdictions[0].country, "unknown");
    let (d, _) = b.decide(&req("t", "hetzner:fsn1", Some(Classification::Public)));
    assert!(d.allowed);
}

#[test]
fn the_uk_counts_until_its_decision_ends() {
    let b = PolicyBundle::embedded();
    let r = req("t", "wasabi:eu-west-1", PERSONAL);
    assert!(b.decide_at(&r, day("2031-12-27")).0.allowed);
    let (d, grant) = b.decide_at(&r, day("2031-12-28"));
    assert!(!d.allowed && grant.is_none());
    assert_eq!(d.zones, Vec::<String>::new());
    assert_eq!(
        d.lapsed,
        ["GB's adequacy decision (EU) 2021/1772 ended after 2031-12-27 (valid_until)"]
    );
    assert!(
        d.reasons[0].contains("in no adequacy zone as of 2031-12-28"),
        "{}",
        d.reasons[0]
    );
    // The operator's jurisdiction is dated too.
    let run_from_gb = declared(&["DE"], Some("GB"), Classification::Personal);
    assert!(b.decide_at(&run_from_gb, day("2030-01-01")).0.allowed);
    let (d, _) = b.decide_at(&run_from_gb, day("2032-01-01"));
    assert_eq!(d.policies, ["provider-jurisdiction"]);
    assert_eq!(d.lapsed.len(), 1);
}

#[test]
fn an_annulled_decision_stops_counting_on_its_day() {
    let s = edited(
        "jurisdictions.toml",
        r#"US = { decision = "(EU) 2023/1795", adopted = "2023-07-10","#,
        r#"US = { decision = "(EU) 2023/1795", adopted = "2023-07-10", annulled_on = "2029-03-01","#,
    );
    let b = PolicyBundle::from_sources(s).expect("valid");
    let r = req("t", "aws:eu-central-1", PERSONAL);
    assert!(b.decide_at(&r, day("2029-02-28")).0.allowed);
    let (d, _) = b.decide_at(&r, day("2029-03-01"));
    assert!(!d.allowed);
    assert_eq!(d.policies, ["provider-jurisdiction"]);
    assert_eq!(
        d.lapsed,
        ["US's adequacy decision (EU) 2023/1795 does not count from 2029-03-01 (annulled_on)"]
    );
    // Storage in the EEA by an EEA provider is untouched.
    assert!(
        b.decide_at(&req("t", "hetzner:fsn1", PERSONAL), day("2029-03-01"))
            .0
            .allowed
    );
    let w = b.dated_warnings(day("2029-01-15"), 60);
    assert!(
        w.iter().any(|w| w.file == "jurisdictions.toml"
            && w.message
                .contains("stops counting on 2029-03-01 (annulled_on), in 45 days")),
        "{w:?}"
    );
}

#[test]
fn an_attestation_counts_from_attested_on_through_valid_until() {
    let b = PolicyBundle::embedded();
    let r = req("acme", "aws:us-east-1", PERSONAL);
    assert!(!b.decide_at(&r, day("2026-07-13")).0.allowed);
    assert!(b.decide_at(&r, day("2026-07-14")).0.allowed);
    assert!(b.decide_at(&r, day("2027-07-14")).0.allowed);
    let (d, _) = b.decide_at(&r, day("2027-07-15"));
    assert!(!d.allowed);
    assert_eq!(d.lapsed.len(), 1);
    assert!(d.lapsed[0].starts_with("tenant acme's attestation (DPO attestation ACME-2026-07"));
    assert!(d.lapsed[0].ends_with("ended after 2027-07-14 (valid_until)"));
    // Another tenant's attestation, or one that does not name this destination, is not said.
    let (d, _) = b.decide_at(&req("globex", "aws:us-east-1", PERSONAL), day("2027-07-15"));
    assert!(d.lapsed.is_empty());
}

#[test]
fn dated_facts_are_checked_when_loading() {
    let p = problems(edited("tenants.toml", "valid_until = \"2027-07-14\"\n", ""));
    assert!(
        p.iter()
            .any(|p| p.file == "tenants.toml" && p.message.contains("need valid_until")),
        "{p:?}"
    );
    let p = problems(edited(
        "tenants.toml",
        "valid_until = \"2027-07-14\"",
        "valid_until = \"2027-02-30\"",
    ));
    assert!(
        p.iter()
            .any(|p| p.message == "'2027-02-30' is not a date: write YYYY-MM-DD (e.g. 2031-12-27)"),
        "{p:?}"
    );
    let p = problems(edited(
        "tenants.toml",
        "valid_until = \"2027-07-14\"",
        "valid_until = \"2026-01-01\"",
    ));
    assert!(
        p.iter().any(|p| p
            .message
            .contains("valid_until 2026-01-01 lies before attested_on 2026-07-14")),
        "{p:?}"
    );
    let p = problems(edited(
        "jurisdictions.toml",
        "valid_until = \"2031-12-27\"",
        "valid_until = \"2031-12-27\", suspended_from = \"soon\"",
    ));
    assert!(
        p.iter().any(|p| p.file == "jurisdictions.toml"
            && p.line > 1
            && p.message.contains("'soon' is not a date")),
        "{p:?}"
    );
    let p = problems(edited(
        "tests/default.toml",
        "name = \"personal data to London (GB adequacy)\"\nat = \"2027-01-01\"",
        "name = \"personal data to London (GB adequacy)\"\nat = \"tomorrow\"",
    ));
    assert!(
        p.iter()
            .any(|p| p.message.contains("at: 'tomorrow' is not a date")),
        "{p:?}"
    );
}

#[test]
fn warns_about_facts_ending_within_the_window_and_cases_they_turn() {
    let b = PolicyBundle::embedded();
    assert!(b.dated_warnings(day("2026-12-04"), 60).is_empty());
    let w = b.dated_warnings(day("2027-06-01"), 60);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].message.contains(
            "acme's attestation counts only through 2027-07-14 (valid_until), in 43 days"
        )
    );
    // A case without `at` that a dated fact turns is named: it would block the next reload.
    let s = edited(
        "tests/default.toml",
        "name = \"personal data to London (GB adequacy)\"\nat = \"2027-01-01\"\n",
        "name = \"personal data to London (GB adequacy)\"\n",
    );
    let b = PolicyBundle::from_sources(s).expect("valid");
    let w = b.dated_warnings(day("2031-11-15"), 60);
    assert!(w.iter().any(|w| w.file == "tests/default.toml" && w.message.contains("case \"personal data to London (GB adequacy)\" holds on 2031-11-15 but not on 2032-01-14")), "{w:?}");
}

#[test]
fn a_running_store_decides_by_the_new_day_without_a_reload() {
    let clock = Arc::new(FixedClock::new(day("2031-12-27")));
    let store = PolicyStore::with_clock(PolicyBundle::embedded(), clock.clone());
    let r = req("t", "wasabi:eu-west-1", PERSONAL);
    let decide = || store.current().decide_at(&r, store.today()).0;
    let before = store.current().hash().to_string();
    assert!(decide().allowed);
    clock.set(day("2031-12-28"));
    assert!(!decide().allowed, "the UK decision ended yesterday");
    assert_eq!(store.current().hash(), before, "same bundle, new day");
    // And back: the per-day facts are rebuilt for whichever day is asked.
    clock.set(day("2031-12-27"));
    assert!(decide().allowed);
}

fn catalogue() -> Vec<String> {
    PolicyBundle::embedded()
        .destinations()
        .map(str::to_string)
        .collect()
}

/// Shipped facts plus an annulled US decision and a suspended Swiss one, so that more facts end.
fn bundle_with_more_ends() -> PolicyBundle {
    let mut s = edited(
        "jurisdictions.toml",
        r#"US = { decision = "(EU) 2023/1795", adopted = "2023-07-10","#,
        r#"US = { decision = "(EU) 2023/1795", adopted = "2023-07-10", annulled_on = "2030-06-01","#,
    );
    let j = s.get_mut("jurisdictions.toml").expect("jurisdictions");
    *j = j.replacen(
        r#"CH = { decision = "2000/518/EC", adopted = "2000-07-26" }"#,
        r#"CH = { decision = "2000/518/EC", adopted = "2000-07-26", suspended_from = "2033-01-01" }"#,
        1,
    );
    PolicyBundle::from_sources(s).expect("valid")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// Moving the clock forward never turns a deny caused by a fact that ended into an allow.
    /// From 2026-07-14 on every shipped fact has started, so what no longer counts has ended.
    #[test]
    fn an_ended_fact_never_counts_again(
        dest in 0usize..168,
        c in class(),
        tenant in prop_oneof![Just("acme"), Just("acme-health"), Just("globex")],
        start in 0i64..(366 * 9),
        later in 0i64..(366 * 9),
    ) {
        thread_local! {
            static B: (PolicyBundle, Vec<String>) = (bundle_with_more_ends(), catalogue());
        }
        B.with(|(b, dests)| {
            let r = req(tenant, &dests[dest % dests.len()], c);
            let d1 = day("2026-07-14").plus_days(start);
            let (first, _) = b.decide_at(&r, d1);
            if !first.allowed && !first.lapsed.is_empty() {
                let (then, grant) = b.decide_at(&r, d1.plus_days(later));
                prop_assert!(!then.allowed && grant.is_none(), "{} {:?} {} allowed on {} after {}", tenant, c, r.destination, then.as_of, d1);
            }
            Ok(())
        })?;
    }
}
