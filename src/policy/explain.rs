//! One decision, explained: the request `policy explain` and the console's explain page build
//! from what an officer typed, and the decision described as text and as JSON.

use std::fmt::Write as _;

use super::{Classification, Decision, Location, ParseWordError, PolicyBundle};

/// Why an officer's explain input cannot become a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExplainError {
    /// An unknown classification or evidence word.
    #[error(transparent)]
    Word(#[from] ParseWordError),
    #[error("destination '{0}' must be PROVIDER:REGION, e.g. aws:eu-central-1")]
    NotARegion(String),
    #[error("give a destination PROVIDER:REGION or declared countries CC,CC")]
    NoDestination,
    #[error(
        "region '{0}' is not in the catalogue (regions.toml): write provider:region as listed there, e.g. aws:eu-central-1"
    )]
    UnknownRegion(String),
    #[error(
        "country '{0}' is not an ISO 3166-1 alpha-2 code listed in countries.toml: write two letters, e.g. DE"
    )]
    UnknownCountry(String),
    #[error("the declared countries list no country: write e.g. DE,FR")]
    NoCountry,
}

/// `None` (or "unclassified") is unclassified data, which the rules treat as special-category.
pub fn classification(word: Option<&str>) -> Result<Option<Classification>, ParseWordError> {
    match word {
        None | Some("unclassified") => Ok(None),
        Some(s) => s.parse().map(Some),
    }
}

/// The location of a catalogued region (`provider:region`, or "unknown") or of a self-hosted
/// store's declared countries, with the destination name the request carries.
pub fn location(
    destination: Option<&str>,
    declared: Option<&[String]>,
) -> Result<(Location, String), ExplainError> {
    match (destination, declared) {
        (Some("unknown"), _) => Ok((Location::Unknown, "unknown".into())),
        (Some(d), _) if !d.contains(':') => Err(ExplainError::NotARegion(d.to_string())),
        (Some(d), _) => Ok((Location::Region(d.to_string()), d.to_string())),
        (None, Some(list)) => Ok((Location::Declared(list.to_vec()), "self-hosted".into())),
        (None, None) => Err(ExplainError::NoDestination),
    }
}

/// Refuses a region missing from the catalogue and a declared country missing from
/// countries.toml. The engine decides those as an unknown location (deny); an officer typing
/// one has more likely mistyped it, so the console says so instead.
pub fn check_known(bundle: &PolicyBundle, location: &Location) -> Result<(), ExplainError> {
    match location {
        Location::Unknown => Ok(()),
        Location::Region(r) => {
            let key = r.trim().to_ascii_lowercase();
            if bundle.destinations().any(|d| d == key) {
                Ok(())
            } else {
                Err(ExplainError::UnknownRegion(r.clone()))
            }
        }
        Location::Declared(list) => {
            if list.iter().all(|c| c.trim().is_empty()) {
                return Err(ExplainError::NoCountry);
            }
            match list
                .iter()
                .map(|c| c.trim())
                .filter(|c| !c.is_empty())
                .find(|c| bundle.country_name(&c.to_ascii_uppercase()).is_none())
            {
                Some(bad) => Err(ExplainError::UnknownCountry(bad.to_string())),
                None => Ok(()),
            }
        }
    }
}

/// The decision as `policy explain --format json` prints it.
pub fn json(d: &Decision) -> serde_json::Value {
    serde_json::json!({
        "decision": d.verdict(),
        "policies": d.policies,
        "reasons": d.reasons,
        "countries": d.countries,
        "zones": d.zones,
        "jurisdictions": d.jurisdictions,
        "as_of": d.as_of,
        "lapsed": d.lapsed,
        "per_country": d.per_country,
        "notes": d.notes,
        "bundle": d.bundle_hash,
        "input": {
            "tenant": d.tenant,
            "user": d.user,
            "classification": d.classification.map(Classification::as_str).unwrap_or("unclassified"),
            "treated_as": d.treated_as,
            "destination": d.destination,
            "location": d.location,
            "evidence": d.evidence,
        },
    })
}

/// "personal", or "unclassified (treated as special-category)".
pub fn classification_text(d: &Decision) -> String {
    match d.classification {
        Some(c) => c.to_string(),
        None => format!("unclassified (treated as {})", d.treated_as),
    }
}

/// The decision as `policy explain` prints it.
pub fn text(d: &Decision) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "decision: {}", d.verdict().to_uppercase());
    let _ = writeln!(
        s,
        "tenant {}, classification {}, destination {}, evidence {}",
        d.tenant,
        classification_text(d),
        d.location,
        d.evidence
    );
    if d.countries.is_empty() {
        let _ = writeln!(s, "countries: unknown");
    } else {
        let _ = writeln!(
            s,
            "countries: {} (zones: {})",
            d.countries.join(", "),
            if d.zones.is_empty() {
                "none".to_string()
            } else {
                d.zones.join(", ")
            }
        );
    }
    let _ = writeln!(s, "jurisdictions (as of {}):", d.as_of);
    for j in &d.jurisdictions {
        let zones = if j.zones.is_empty() {
            "in no zone".to_string()
        } else {
            format!("zones: {}", j.zones.join(", "))
        };
        let _ = writeln!(s, "  {:<8} {} ({zones}): {}", j.role, j.country, j.entity);
    }
    for l in &d.lapsed {
        let _ = writeln!(s, "not counted as of {}: {l}", d.as_of);
    }
    if d.per_country.len() > 1 {
        let _ = writeln!(s, "every country must pass:");
        for o in &d.per_country {
            let _ = writeln!(
                s,
                "  {:<7} {:<5} {}",
                o.country,
                if o.allowed { "allow" } else { "deny" },
                o.policies.join(", ")
            );
        }
    }
    let _ = writeln!(s, "because:");
    for (p, r) in d.policies.iter().zip(&d.reasons) {
        let _ = writeln!(s, "  [{p}] {r}");
    }
    for n in &d.notes {
        let _ = writeln!(s, "note: {n}");
    }
    let _ = writeln!(s, "bundle {}", d.bundle_hash);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Evidence, Request};

    fn req(location: Location, destination: String) -> Request {
        Request {
            tenant: "t".into(),
            user: "u".into(),
            classification: None,
            destination,
            location,
            evidence: Evidence::Probed,
            key_held_by_tenant: false,
            operator_country: None,
        }
    }

    #[test]
    fn builds_locations_and_refuses_bad_input() {
        assert_eq!(
            location(Some("aws:eu-central-1"), None),
            Ok((
                Location::Region("aws:eu-central-1".into()),
                "aws:eu-central-1".into()
            ))
        );
        assert_eq!(
            location(Some("unknown"), None),
            Ok((Location::Unknown, "unknown".into()))
        );
        assert_eq!(
            location(Some("frankfurt"), None),
            Err(ExplainError::NotARegion("frankfurt".into()))
        );
        assert_eq!(location(None, None), Err(ExplainError::NoDestination));
        assert_eq!(classification(Some("unclassified")), Ok(None));
        assert!(classification(Some("secret")).is_err());
    }

    #[test]
    fn check_known_names_the_bad_part() {
        let b = PolicyBundle::embedded();
        let region = |r: &str| Location::Region(r.into());
        assert_eq!(check_known(&b, &region("AWS:eu-central-1")), Ok(()));
        assert_eq!(
            check_known(&b, &region("aws:mars-1")),
            Err(ExplainError::UnknownRegion("aws:mars-1".into()))
        );
        let declared = |l: &[&str]| Location::Declared(l.iter().map(|s| s.to_string()).collect());
        assert_eq!(check_known(&b, &declared(&["de", " FR"])), Ok(()));
        assert_eq!(
            check_known(&b, &declared(&["DE", "UK"])),
            Err(ExplainError::UnknownCountry("UK".into()))
        );
        assert_eq!(
            check_known(&b, &declared(&[" "])),
            Err(ExplainError::NoCountry)
        );
    }

    #[test]
    fn text_and_json_agree() {
        let b = PolicyBundle::embedded();
        let (l, d) = location(Some("gcs:eur5"), None).expect("location");
        let (decision, _) = b.decide(&req(l, d));
        let t = text(&decision);
        assert!(t.starts_with("decision: DENY\n"), "{t}");
        assert!(t.contains("every country must pass:"), "{t}");
        let j = json(&decision);
        assert_eq!(j["decision"], "deny");
        assert_eq!(j["input"]["classification"], "unclassified");
        assert!(t.ends_with(&format!("bundle {}\n", j["bundle"].as_str().unwrap_or("?"))));
    }

    #[test]
    fn both_name_the_jurisdictions_and_the_day() {
        let b = PolicyBundle::embedded();
        let day: crate::policy::Day = "2030-01-01".parse().expect("day");
        let (l, d) = location(Some("alibaba-oss:oss-eu-central-1"), None).expect("location");
        let mut r = req(l, d);
        r.classification = Some(Classification::Personal);
        let (decision, _) = b.decide_at(&r, day);
        let t = text(&decision);
        assert!(t.contains("jurisdictions (as of 2030-01-01):\n"), "{t}");
        assert!(t.contains("  provider CN (in no zone): Alibaba"), "{t}");
        let j = json(&decision);
        assert_eq!(j["as_of"], "2030-01-01");
        assert_eq!(j["jurisdictions"][0]["role"], "provider");
        assert_eq!(j["jurisdictions"][0]["country"], "CN");
        assert_eq!(j["jurisdictions"][1]["role"], "operator");
        assert_eq!(j["lapsed"], serde_json::json!([]));
    }
}
