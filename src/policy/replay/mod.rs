//! Replay: re-decide audited residency decisions under a proposed bundle, to see which real
//! transfers a policy change would flip before it is activated.
//!
//! Each `decision` record is re-asked with the inputs the gateway used, as recorded: tenant,
//! user, destination name, classification, evidence, and the destination's location — the
//! recorded countries for self-hosted stores, or the catalogued `provider:region` whose region
//! name is the recorded `observed_region` (records do not name the provider; a region name
//! that several providers share is reported as not evaluable rather than guessed). Records of
//! a quarantined destination are not evaluable: no rule decided them. Logs whose hash chain
//! does not verify are refused unless the caller accepts unverified records.

mod read;
mod window;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::{Classification, Day, Evidence, Location, PolicyBundle, Request};
pub use read::RecordedDecision;
pub use window::{Window, parse_duration_ms, parse_rfc3339_ms};

/// The policy id the gateway records when a quarantined destination was denied.
const QUARANTINED: &str = "destination-quarantined";

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{0}")]
    Window(String),
    #[error("audit log {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "audit log {path} does not verify ({reason}): its records cannot be trusted, so it is not replayed; \
         pass --allow-unverified to replay it anyway (its records are then marked unverified)"
    )]
    Unverified { path: PathBuf, reason: String },
    #[error("audit log {path} line {line}: {reason}")]
    Record {
        path: PathBuf,
        line: u64,
        reason: String,
    },
}

/// What to replay.
#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    pub window: Window,
    /// Replay logs whose chain does not verify (records marked `verified: false`).
    pub allow_unverified: bool,
}

/// One side of a decision: the outcome and the rules that decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub allowed: bool,
    pub policies: Vec<String>,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Unchanged,
    AllowToDeny,
    DenyToAllow,
    NotEvaluable,
}

/// One audited decision, replayed.
#[derive(Debug, Clone, Serialize)]
pub struct Replayed {
    #[serde(flatten)]
    pub record: RecordedDecision,
    pub old: Outcome,
    /// Absent when the record could not be evaluated (`not_evaluable` says why).
    pub new: Option<Outcome>,
    pub change: Change,
    /// Same outcome, but different deciding rules.
    pub rules_changed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_evaluable: Option<String>,
}

impl Replayed {
    pub fn flipped(&self) -> bool {
        matches!(self.change, Change::AllowToDeny | Change::DenyToAllow)
    }
}

/// Counts over replayed decisions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Decisions in the window (evaluated + not evaluable).
    pub decisions: u64,
    pub evaluated: u64,
    pub unchanged: u64,
    pub allow_to_deny: u64,
    pub deny_to_allow: u64,
    pub not_evaluable: u64,
    /// Why records were not evaluable, with counts.
    pub not_evaluable_reasons: BTreeMap<String, u64>,
}

impl Summary {
    fn add(&mut self, r: &Replayed) {
        self.decisions += 1;
        match r.change {
            Change::Unchanged => self.unchanged += 1,
            Change::AllowToDeny => self.allow_to_deny += 1,
            Change::DenyToAllow => self.deny_to_allow += 1,
            Change::NotEvaluable => {
                self.not_evaluable += 1;
                let why = r.not_evaluable.clone().unwrap_or_default();
                *self.not_evaluable_reasons.entry(why).or_default() += 1;
            }
        }
        if r.change != Change::NotEvaluable {
            self.evaluated += 1;
        }
    }
}

/// One audit log read for the replay.
#[derive(Debug, Clone, Serialize)]
pub struct LogInfo {
    pub path: PathBuf,
    pub records: u64,
    pub verified: bool,
    /// Why it did not verify (only with `allow_unverified`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The whole replay.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Hash of the proposed bundle.
    pub bundle: String,
    pub window: WindowInfo,
    pub logs: Vec<LogInfo>,
    pub summary: Summary,
    /// The same counts per bundle hash the gateway recorded at decision time.
    pub by_recorded_bundle: BTreeMap<String, Summary>,
    /// Every replayed decision, in log order (file by file).
    pub decisions: Vec<Replayed>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WindowInfo {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// Replays every decision in `logs` within the window under `bundle`.
pub fn replay(
    bundle: &PolicyBundle,
    logs: &[PathBuf],
    opts: &ReplayOptions,
) -> Result<Report, ReplayError> {
    let mut report = Report {
        bundle: bundle.hash().to_string(),
        window: WindowInfo {
            from: opts.window.from_ms.map(ms_to_rfc3339),
            to: opts.window.to_ms.map(ms_to_rfc3339),
        },
        logs: Vec::with_capacity(logs.len()),
        summary: Summary::default(),
        by_recorded_bundle: BTreeMap::new(),
        decisions: Vec::new(),
    };
    for path in logs {
        let (info, records) = read::read_log(path, opts.allow_unverified)?;
        report.logs.push(info);
        for rec in records {
            if !opts.window.contains(rec.ts_ms) {
                continue;
            }
            let r = replay_one(bundle, rec);
            report.summary.add(&r);
            report
                .by_recorded_bundle
                .entry(r.record.bundle.clone())
                .or_default()
                .add(&r);
            report.decisions.push(r);
        }
    }
    tracing::debug!(bundle = %report.bundle, decisions = report.summary.decisions, "replayed");
    Ok(report)
}

/// Re-decides one record.
pub fn replay_one(bundle: &PolicyBundle, record: RecordedDecision) -> Replayed {
    let old = Outcome {
        allowed: record.allowed,
        policies: record.policies.clone(),
        reasons: record.reasons.clone(),
    };
    let new = request_for(bundle, &record).map(|req| {
        // As of the record's day: a decision or attestation that counted then is what the
        // new bundle is compared under, not today's facts.
        let day = Day::from_unix_millis(record.ts_ms).unwrap_or_else(Day::today_utc);
        let (d, _grant) = bundle.decide_at(&req, day);
        Outcome {
            allowed: d.allowed,
            policies: d.policies,
            reasons: d.reasons,
        }
    });
    match new {
        Err(why) => Replayed {
            record,
            old,
            new: None,
            change: Change::NotEvaluable,
            rules_changed: false,
            not_evaluable: Some(why),
        },
        Ok(new) => {
            let change = match (old.allowed, new.allowed) {
                (true, false) => Change::AllowToDeny,
                (false, true) => Change::DenyToAllow,
                _ => Change::Unchanged,
            };
            Replayed {
                rules_changed: change == Change::Unchanged && old.policies != new.policies,
                record,
                old,
                new: Some(new),
                change,
                not_evaluable: None,
            }
        }
    }
}

/// The request the gateway asked, rebuilt from the record; `Err` says why it cannot be.
fn request_for(bundle: &PolicyBundle, r: &RecordedDecision) -> Result<Request, String> {
    if r.policies.iter().any(|p| p == QUARANTINED) {
        return Err("destination was quarantined (no rule decided)".into());
    }
    let classification = if r.classification.starts_with("unclassified") {
        None
    } else {
        Some(
            r.classification
                .parse::<Classification>()
                .map_err(|e| e.to_string())?,
        )
    };
    let evidence: Evidence = r
        .evidence
        .parse()
        .map_err(|e: super::ParseWordError| e.to_string())?;
    let location = location_for(bundle, r, classification, evidence)?;
    Ok(Request {
        tenant: r.tenant.clone(),
        user: r.user.clone(),
        classification,
        destination: r.destination.clone(),
        location,
        evidence,
        key_held_by_tenant: r.key_held_by_tenant,
        // Only a self-hosted store's is used; a catalogued region's comes from the bundle.
        operator_country: r.operator_country.clone(),
    })
}

/// The destination's location as the gateway saw it: a probed store's catalogued region, or a
/// self-hosted store's declared countries.
fn location_for(
    bundle: &PolicyBundle,
    r: &RecordedDecision,
    classification: Option<Classification>,
    evidence: Evidence,
) -> Result<Location, String> {
    let Some(observed) = r.observed_region.as_deref() else {
        return Ok(if r.countries.is_empty() {
            Location::Unknown
        } else {
            Location::Declared(r.countries.clone())
        });
    };
    let observed = observed.trim().to_ascii_lowercase();
    // Providers whose catalogue has this region *and* puts it where the gateway saw it.
    let matching: Vec<&str> = bundle
        .destinations()
        .filter(|id| id.split_once(':').is_some_and(|(_, reg)| reg == observed))
        .filter(|id| {
            let probe = Request {
                tenant: r.tenant.clone(),
                user: r.user.clone(),
                classification,
                destination: r.destination.clone(),
                location: Location::Region((*id).to_string()),
                evidence,
                key_held_by_tenant: r.key_held_by_tenant,
                operator_country: None,
            };
            bundle.decide(&probe).0.countries == r.countries
        })
        .collect();
    match matching.as_slice() {
        [one] => Ok(Location::Region((*one).to_string())),
        [] => Err(format!(
            "observed region '{observed}' is not catalogued in the proposed bundle with countries [{}]",
            r.countries.join(", ")
        )),
        many => Err(format!(
            "observed region '{observed}' is ambiguous in the catalogue ({})",
            many.join(", ")
        )),
    }
}

fn ms_to_rfc3339(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    crate::audit::rfc3339_at(t)
}

#[cfg(test)]
mod tests;
