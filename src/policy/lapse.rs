//! When a dated fact counts: an adequacy decision from its adoption until it ends (its
//! `valid_until`, a suspension or an annulment), a tenant's attestation from `attested_on`
//! through `valid_until`. Outside that span the fact does not count, and what is said about it
//! names the fact and the date.

use super::day::Day;
use super::facts::TenantFact;

/// An adequacy decision (GDPR Art. 45) as jurisdictions.toml records it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AdequacyDecision {
    /// ISO code of the country it covers.
    pub country: String,
    /// The decision's reference, e.g. "(EU) 2021/1772".
    pub decision: String,
    pub adopted: Day,
    pub renewed: Option<Day>,
    /// The last day it counts, when it expires (e.g. the UK decision's sunset clause).
    pub valid_until: Option<Day>,
    /// It does not count from this day on (Art. 45(5) suspension).
    pub suspended_from: Option<Day>,
    /// It does not count from this day on (annulled by the Court of Justice).
    pub annulled_on: Option<Day>,
    pub scope: Option<String>,
    pub note: Option<String>,
}

/// Why a dated fact does not count on some day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lapse {
    /// Before the day it starts to count.
    NotYet { from: Day },
    /// It ended: `field` names the date that ended it.
    Ended { field: &'static str, on: Day },
}

impl Lapse {
    /// Whether the fact will never count again after this day (an end, not a start).
    pub fn is_end(self) -> bool {
        matches!(self, Lapse::Ended { .. })
    }

    fn words(self) -> String {
        match self {
            Lapse::NotYet { from } => format!("counts only from {from}"),
            Lapse::Ended {
                field: "valid_until",
                on,
            } => format!("ended after {on} (valid_until)"),
            Lapse::Ended { field, on } => format!("does not count from {on} ({field})"),
        }
    }
}

/// The first way a span `[from, until]` with end dates `ends` (field, first day it no longer
/// counts) excludes `day`.
fn lapse(
    from: Option<Day>,
    until: Option<Day>,
    ends: &[(&'static str, Option<Day>)],
    day: Day,
) -> Option<Lapse> {
    if let Some(from) = from
        && day < from
    {
        return Some(Lapse::NotYet { from });
    }
    if let Some(until) = until
        && day > until
    {
        return Some(Lapse::Ended {
            field: "valid_until",
            on: until,
        });
    }
    ends.iter().find_map(|(field, on)| match on {
        Some(on) if day >= *on => Some(Lapse::Ended { field, on: *on }),
        _ => None,
    })
}

/// Dates on which a span stops counting, with the field that says so, as `policy check` warns
/// about them: the last counting day for `valid_until`, the first non-counting day otherwise.
fn ends(until: Option<Day>, others: &[(&'static str, Option<Day>)]) -> Vec<(&'static str, Day)> {
    let mut out: Vec<(&'static str, Day)> = until.map(|d| ("valid_until", d)).into_iter().collect();
    out.extend(others.iter().filter_map(|(f, d)| d.map(|d| (*f, d))));
    out
}

impl AdequacyDecision {
    fn other_ends(&self) -> [(&'static str, Option<Day>); 2] {
        [
            ("suspended_from", self.suspended_from),
            ("annulled_on", self.annulled_on),
        ]
    }

    /// `None` when the decision counts on `day`.
    pub fn lapse_on(&self, day: Day) -> Option<Lapse> {
        lapse(
            Some(self.adopted),
            self.valid_until,
            &self.other_ends(),
            day,
        )
    }

    /// "GB's adequacy decision (EU) 2021/1772 ended after 2031-12-27 (valid_until)".
    pub fn lapse_words(&self, lapse: Lapse) -> String {
        format!(
            "{}'s adequacy decision {} {}",
            self.country,
            self.decision,
            lapse.words()
        )
    }

    /// Each date that ends the decision and lies in `[from, to]`.
    pub fn ends_within(&self, from: Day, to: Day) -> Vec<(&'static str, Day)> {
        ends(self.valid_until, &self.other_ends())
            .into_iter()
            .filter(|(_, d)| (from..=to).contains(d))
            .collect()
    }
}

impl TenantFact {
    /// `None` when the tenant's attestation counts on `day`.
    pub(crate) fn lapse_on(&self, day: Day) -> Option<Lapse> {
        lapse(self.attested_on, self.valid_until, &[], day)
    }

    /// "tenant acme's attestation (DPO attestation ACME-2026-07) ended after 2027-07-14 (valid_until)".
    pub(crate) fn lapse_words(&self, tenant: &str, lapse: Lapse) -> String {
        match &self.reference {
            Some(r) => format!("tenant {tenant}'s attestation ({r}) {}", lapse.words()),
            None => format!("tenant {tenant}'s attestation {}", lapse.words()),
        }
    }

    /// The attestation's `valid_until` when it lies in `[from, to]`.
    pub(crate) fn ends_within(&self, from: Day, to: Day) -> Option<Day> {
        self.valid_until.filter(|d| (from..=to).contains(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> Day {
        s.parse().expect(s)
    }

    fn gb() -> AdequacyDecision {
        AdequacyDecision {
            country: "GB".into(),
            decision: "(EU) 2021/1772".into(),
            adopted: day("2021-06-28"),
            renewed: Some(day("2025-12-19")),
            valid_until: Some(day("2031-12-27")),
            suspended_from: None,
            annulled_on: None,
            scope: None,
            note: None,
        }
    }

    #[test]
    fn a_decision_counts_from_adoption_through_valid_until() {
        let d = gb();
        assert_eq!(
            d.lapse_on(day("2021-06-27")),
            Some(Lapse::NotYet {
                from: day("2021-06-28")
            })
        );
        assert_eq!(d.lapse_on(day("2021-06-28")), None);
        assert_eq!(d.lapse_on(day("2031-12-27")), None);
        let ended = d.lapse_on(day("2031-12-28")).expect("ended");
        assert!(ended.is_end());
        assert_eq!(
            d.lapse_words(ended),
            "GB's adequacy decision (EU) 2021/1772 ended after 2031-12-27 (valid_until)"
        );
        let open_ended = AdequacyDecision {
            valid_until: None,
            ..gb()
        };
        assert_eq!(open_ended.lapse_on(day("2999-01-01")), None);
    }

    #[test]
    fn suspension_and_annulment_end_it_on_their_day() {
        let annulled = AdequacyDecision {
            annulled_on: Some(day("2029-03-01")),
            ..gb()
        };
        assert_eq!(annulled.lapse_on(day("2029-02-28")), None);
        let l = annulled.lapse_on(day("2029-03-01")).expect("annulled");
        assert_eq!(
            annulled.lapse_words(l),
            "GB's adequacy decision (EU) 2021/1772 does not count from 2029-03-01 (annulled_on)"
        );
        let suspended = AdequacyDecision {
            suspended_from: Some(day("2028-01-01")),
            ..gb()
        };
        assert!(
            suspended
                .lapse_on(day("2028-06-01"))
                .is_some_and(Lapse::is_end)
        );
        assert_eq!(
            suspended.ends_within(day("2027-12-01"), day("2028-01-30")),
            vec![("suspended_from", day("2028-01-01"))]
        );
        assert!(
            suspended
                .ends_within(day("2026-12-01"), day("2027-01-30"))
                .is_empty()
        );
    }

    #[test]
    fn an_attestation_counts_from_attested_on_through_valid_until() {
        let t = TenantFact {
            attested_destinations: vec!["aws:us-east-1".into()],
            reference: Some("ACME-2026-07".into()),
            attested_on: Some(day("2026-07-14")),
            valid_until: Some(day("2027-07-14")),
        };
        assert!(t.lapse_on(day("2026-07-13")).is_some_and(|l| !l.is_end()));
        assert_eq!(t.lapse_on(day("2027-07-14")), None);
        let l = t.lapse_on(day("2027-07-15")).expect("ended");
        assert_eq!(
            t.lapse_words("acme", l),
            "tenant acme's attestation (ACME-2026-07) ended after 2027-07-14 (valid_until)"
        );
        assert_eq!(
            t.ends_within(day("2027-06-01"), day("2027-07-31")),
            Some(day("2027-07-14"))
        );
    }
}
