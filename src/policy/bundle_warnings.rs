//! Dated facts an officer must act on: decisions and attestations that no longer count, and
//! those that stop counting soon. `policy check` prints them; the gateway logs them at every
//! load and reload.

use super::PolicyBundle;
use crate::policy::day::Day;
use crate::policy::facts::{JURISDICTIONS, TENANTS};

/// How far ahead `policy check` looks for facts that stop counting.
pub const EXPIRY_WARNING_DAYS: i64 = 60;

/// One dated fact that needs an officer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DatedWarning {
    /// The file that records the fact (or the case that depends on it).
    pub file: String,
    pub message: String,
}

fn ahead(day: Day, end: Day) -> String {
    match day.days_until(end) {
        0 => "today".to_string(),
        1 => "in 1 day".to_string(),
        n => format!("in {n} days"),
    }
}

impl PolicyBundle {
    /// Facts that do not count on `day` although they did before, and facts that stop counting
    /// within `days` days after it.
    pub fn dated_warnings(&self, day: Day, days: i64) -> Vec<DatedWarning> {
        let horizon = day.plus_days(days);
        let mut out = Vec::new();
        for d in self.facts.decisions.values() {
            match d.lapse_on(day) {
                Some(l) if l.is_end() => out.push(DatedWarning {
                    file: JURISDICTIONS.into(),
                    message: format!(
                        "{}: as of {day} {} is in no adequacy zone; record a renewal or new decision if there is one",
                        d.lapse_words(l),
                        d.country
                    ),
                }),
                Some(_) => {}
                None => {
                    for (field, end) in d.ends_within(day, horizon) {
                        let when = if field == "valid_until" {
                            format!("counts only through {end} ({field}), {}", ahead(day, end))
                        } else {
                            format!("stops counting on {end} ({field}), {}", ahead(day, end))
                        };
                        out.push(DatedWarning {
                            file: JURISDICTIONS.into(),
                            message: format!(
                                "{}'s adequacy decision {} {when}: check for a renewal and update {JURISDICTIONS}",
                                d.country, d.decision
                            ),
                        });
                    }
                }
            }
        }
        for (tenant, t) in &self.facts.tenants {
            if t.attested_destinations.is_empty() {
                continue;
            }
            match t.lapse_on(day) {
                Some(l) if l.is_end() => out.push(DatedWarning {
                    file: TENANTS.into(),
                    message: format!(
                        "{}: its attested destinations are refused until it is renewed",
                        t.lapse_words(tenant, l)
                    ),
                }),
                Some(_) => {}
                None => {
                    if let Some(end) = t.ends_within(day, horizon) {
                        out.push(DatedWarning {
                            file: TENANTS.into(),
                            message: format!(
                                "tenant {tenant}'s attestation counts only through {end} (valid_until), {}: have it renewed and update {TENANTS}",
                                ahead(day, end)
                            ),
                        });
                    }
                }
            }
        }
        out.extend(self.cases_turning(day, horizon));
        out
    }

    /// Cases without `at` that hold on `day` but not on `later`: a dated fact ends under them.
    /// Every start and reload runs the cases, so on that day this bundle would be refused.
    fn cases_turning(&self, day: Day, later: Day) -> Vec<DatedWarning> {
        let now = self.run_tests_at(day);
        let then = self.run_tests_at(later);
        then.failures
            .iter()
            .filter(|f| !now.failures.iter().any(|n| n.file == f.file && n.line == f.line))
            .filter(|f| {
                self.cases()
                    .iter()
                    .any(|c| c.file == f.file && c.line == f.line && c.at.is_none())
            })
            .map(|f| DatedWarning {
                file: f.file.clone(),
                message: format!(
                    "line {}: case \"{}\" holds on {day} but not on {later} (a dated fact ends): give it at = \"YYYY-MM-DD\" or update it, or the bundle is refused at start and reload once it fails",
                    f.line, f.name
                ),
            })
            .collect()
    }
}
