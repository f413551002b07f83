//! Expected-decision cases kept beside the policies (`tests/*.toml`), run by `policy test`
//! and by every reload: a bundle whose own cases fail is never activated.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;
use toml::Spanned;

use super::error::{Problem, line_of};
use super::rules::Rules;
use super::{Classification, DEFAULT_DENY_ID, Day, Evidence, Location, PolicyBundle, Request};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CasesFile {
    #[serde(default, rename = "case")]
    cases: Vec<Spanned<CaseEntry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseEntry {
    name: String,
    tenant: String,
    user: Option<String>,
    /// "provider:region", or "unknown".
    destination: Option<String>,
    /// Self-hosted store: declared countries (evidence defaults to "attested").
    declared: Option<Vec<String>>,
    /// Self-hosted store: its operator's country (default: the one declared country).
    operator_country: Option<String>,
    /// Decide as of this day (`YYYY-MM-DD`) instead of today.
    at: Option<String>,
    classification: Option<String>,
    evidence: Option<String>,
    /// The tenant holds its own key (`context.key_held_by_tenant`); default false.
    #[serde(default)]
    key_held_by_tenant: bool,
    expect: String,
    /// If given, the deciding policy ids must be exactly these (any order).
    policies: Option<Vec<String>>,
}

/// One expected decision.
#[derive(Debug, Clone)]
pub struct Case {
    pub file: String,
    pub line: usize,
    pub name: String,
    pub request: Request,
    /// The day the case is decided as of; `None` = the day the cases run.
    pub at: Option<Day>,
    pub expect_allow: bool,
    pub policies: Option<Vec<String>>,
}

/// A case whose actual decision differs from the expected one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CaseFailure {
    pub file: String,
    pub line: usize,
    pub name: String,
    pub expected: String,
    pub expected_policies: Option<Vec<String>>,
    pub actual: String,
    pub actual_policies: Vec<String>,
    pub reasons: Vec<String>,
}

impl fmt::Display for CaseFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: case \"{}\": expected {}",
            self.file, self.line, self.name, self.expected
        )?;
        if let Some(p) = &self.expected_policies {
            write!(f, " by [{}]", p.join(", "))?;
        }
        write!(
            f,
            ", actual {} by [{}]",
            self.actual,
            self.actual_policies.join(", ")
        )
    }
}

/// Result of running a bundle's cases.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TestReport {
    pub total: usize,
    pub failures: Vec<CaseFailure>,
}

impl TestReport {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

pub(crate) fn load(
    sources: &BTreeMap<String, String>,
    rules: Option<&Rules>,
    problems: &mut Vec<Problem>,
) -> Vec<Case> {
    let mut out = Vec::new();
    for (file, text) in sources.iter().filter(|(n, _)| n.starts_with("tests/")) {
        let parsed: CasesFile = match toml::from_str(text) {
            Ok(p) => p,
            Err(e) => {
                problems.push(Problem {
                    file: file.clone(),
                    line: e.span().map(|s| line_of(text, s.start)).unwrap_or(0),
                    message: format!("TOML error: {}", e.message().trim()),
                });
                continue;
            }
        };
        for spanned in parsed.cases {
            let line = line_of(text, spanned.span().start);
            let c = spanned.into_inner();
            let mut bad = |message: String| {
                problems.push(Problem {
                    file: file.clone(),
                    line,
                    message: format!("case \"{}\": {message}", c.name),
                })
            };
            let classification = match c.classification.as_deref() {
                None | Some("unclassified") => None,
                Some(s) => match s.parse::<Classification>() {
                    Ok(v) => Some(v),
                    Err(e) => {
                        bad(format!("{e} (or leave it out / \"unclassified\")"));
                        continue;
                    }
                },
            };
            let location = match (&c.destination, &c.declared) {
                (Some(d), None) if d == "unknown" => Location::Unknown,
                (Some(d), None) => {
                    // Cases may name uncatalogued regions on purpose (to test the deny), but
                    // must be written as provider:region.
                    if !d.contains(':') {
                        bad(format!(
                            "destination '{d}' must be provider:region (e.g. aws:eu-central-1) or \"unknown\""
                        ));
                        continue;
                    }
                    Location::Region(d.clone())
                }
                (None, Some(list)) => Location::Declared(list.clone()),
                _ => {
                    bad("give exactly one of destination = \"provider:region\" or declared = [\"DE\", ...]".into());
                    continue;
                }
            };
            let evidence = match c.evidence.as_deref() {
                None if c.declared.is_some() => Evidence::Attested,
                None => Evidence::Probed,
                Some(s) => match s.parse::<Evidence>() {
                    Ok(e) => e,
                    Err(e) => {
                        bad(e.to_string());
                        continue;
                    }
                },
            };
            if c.operator_country.is_some() && c.declared.is_none() {
                bad("operator_country belongs to a self-hosted store: give it with declared = [\"DE\", ...] (a catalogued provider's operator is in providers.toml)".into());
                continue;
            }
            let at = match c.at.as_deref().map(str::parse::<Day>) {
                None => None,
                Some(Ok(d)) => Some(d),
                Some(Err(e)) => {
                    bad(format!("at: {e}"));
                    continue;
                }
            };
            let expect_allow = match c.expect.as_str() {
                "allow" => true,
                "deny" => false,
                other => {
                    bad(format!("expect = \"{other}\": write \"allow\" or \"deny\""));
                    continue;
                }
            };
            if let (Some(ids), Some(rules)) = (&c.policies, rules) {
                let unknown: Vec<&String> = ids
                    .iter()
                    .filter(|id| *id != DEFAULT_DENY_ID && !rules.reasons.contains_key(*id))
                    .collect();
                if !unknown.is_empty() {
                    bad(format!(
                        "expected policies {unknown:?} do not exist: use @id values from the *.cedar files or \"{DEFAULT_DENY_ID}\""
                    ));
                    continue;
                }
            }
            let destination = match &location {
                Location::Region(r) => r.clone(),
                _ => "self-hosted".to_string(),
            };
            out.push(Case {
                file: file.clone(),
                line,
                name: c.name,
                request: Request {
                    tenant: c.tenant,
                    user: c.user.unwrap_or_else(|| "policy-test".into()),
                    classification,
                    destination,
                    location,
                    evidence,
                    key_held_by_tenant: c.key_held_by_tenant,
                    operator_country: c.operator_country,
                },
                at,
                expect_allow,
                policies: c.policies,
            });
        }
    }
    out
}

pub(crate) fn run(bundle: &PolicyBundle, today: Day) -> TestReport {
    let mut report = TestReport::default();
    for case in bundle.cases() {
        report.total += 1;
        let (decision, _grant) = bundle.decide_at(&case.request, case.at.unwrap_or(today));
        let verdict_ok = decision.allowed == case.expect_allow;
        let policies_ok = case.policies.as_ref().is_none_or(|want| {
            want.iter().collect::<BTreeSet<_>>()
                == decision.policies.iter().collect::<BTreeSet<_>>()
        });
        if !(verdict_ok && policies_ok) {
            report.failures.push(CaseFailure {
                file: case.file.clone(),
                line: case.line,
                name: case.name.clone(),
                expected: if case.expect_allow { "allow" } else { "deny" }.into(),
                expected_policies: case.policies.clone(),
                actual: decision.verdict().into(),
                actual_policies: decision.policies.clone(),
                reasons: decision.reasons.clone(),
            });
        }
    }
    report
}
