//! The four things an officer sees before a proposal is approved: `check` (does the proposed
//! bundle load, and if not every problem with file and line), the bundle's own `tests`, the
//! `diff` against the bundle in force, and the `replay` of recently audited decisions under the
//! proposed bundle (which real transfers would flip).
//!
//! Computed each time a proposal is shown rather than cached: the replay depends on audit logs
//! that grow by the minute and the diff on the bundle in force, which changes on reload; a cache
//! keyed by the proposal's hash alone would show stale flips. A review is a bundle load plus a
//! read of `replay_days` of audit records; callers run it in `spawn_blocking`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::policy::diff::{self, Change};
use crate::policy::replay::{self, ReplayOptions, Replayed, Window};
use crate::policy::{PolicyBundle, PolicyError, Problem, TestReport};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// The result of reviewing a proposed bundle.
#[derive(Debug)]
pub struct Review {
    /// Hash of the bundle the diff and replay compare against.
    pub in_force: String,
    /// Empty when the proposed bundle loads.
    pub problems: Vec<Problem>,
    /// Only when the bundle loads.
    pub tests: Option<TestReport>,
    pub diff: Option<Vec<Change>>,
    pub replay: Option<ReplayView>,
}

impl Review {
    /// Whether check and tests pass: the condition for approval.
    pub fn passes(&self) -> bool {
        self.problems.is_empty() && self.tests.as_ref().is_some_and(TestReport::passed)
    }

    /// Why approval is refused, if it is.
    pub fn refusal(&self) -> Option<String> {
        if !self.problems.is_empty() {
            let list: Vec<String> = self.problems.iter().map(Problem::to_string).collect();
            return Some(format!(
                "the proposed bundle does not pass check ({} problem(s)): {}",
                list.len(),
                list.join("; ")
            ));
        }
        match &self.tests {
            Some(t) if !t.passed() => Some(format!(
                "the proposed bundle fails {} of its {} test case(s)",
                t.failures.len(),
                t.total
            )),
            None => Some("the proposed bundle was not tested".into()),
            Some(_) => None,
        }
    }
}

/// The replay of the last `days` days over several audit logs.
#[derive(Debug, Default)]
pub struct ReplayView {
    pub days: u64,
    pub decisions: u64,
    pub evaluated: u64,
    pub allow_to_deny: u64,
    pub deny_to_allow: u64,
    pub not_evaluable: u64,
    /// Decisions that flip, in log order.
    pub flips: Vec<Replayed>,
    /// Logs that could not be replayed (missing, unverifiable), one line each.
    pub problems: Vec<String>,
}

/// What to review against.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub files: BTreeMap<String, String>,
    pub in_force: std::sync::Arc<PolicyBundle>,
    pub audit_files: Vec<PathBuf>,
    pub replay_days: u64,
    pub now_ms: i64,
}

/// Loads the proposed bundle (check); only if that works, the tests, diff and replay.
pub fn review(inputs: &Inputs) -> Review {
    let in_force = inputs.in_force.hash().to_string();
    let bundle = match PolicyBundle::from_sources(inputs.files.clone()) {
        Ok(b) => b,
        Err(e) => {
            return Review {
                in_force,
                problems: problems_of(e),
                tests: None,
                diff: None,
                replay: None,
            };
        }
    };
    Review {
        in_force,
        problems: Vec::new(),
        tests: Some(bundle.run_tests()),
        diff: Some(diff::diff(&inputs.in_force, &bundle)),
        replay: Some(replay_logs(&bundle, inputs)),
        // `bundle` is dropped here; only its results are shown.
    }
}

/// The proposed bundle, if it passes check and tests (what approval writes).
pub fn approvable(files: &BTreeMap<String, String>) -> Result<PolicyBundle, String> {
    let bundle = PolicyBundle::from_sources(files.clone()).map_err(|e| {
        let list: Vec<String> = problems_of(e).iter().map(Problem::to_string).collect();
        format!(
            "the proposed bundle does not pass check: {}",
            list.join("; ")
        )
    })?;
    let report = bundle.run_tests();
    if !report.passed() {
        return Err(format!(
            "the proposed bundle fails {} of its {} test case(s)",
            report.failures.len(),
            report.total
        ));
    }
    Ok(bundle)
}

fn problems_of(e: PolicyError) -> Vec<Problem> {
    match e {
        PolicyError::Invalid(p) => p,
        other => vec![Problem {
            file: String::new(),
            line: 0,
            message: other.to_string(),
        }],
    }
}

/// Each log on its own, so one unreadable log (another instance's, not mounted here) does not
/// hide the flips in the others; its problem is listed instead.
fn replay_logs(bundle: &PolicyBundle, inputs: &Inputs) -> ReplayView {
    let days = i64::try_from(inputs.replay_days).unwrap_or(i64::MAX);
    let opts = ReplayOptions {
        window: Window {
            from_ms: Some(inputs.now_ms.saturating_sub(days.saturating_mul(DAY_MS))),
            to_ms: None,
        },
        allow_unverified: false,
    };
    let mut view = ReplayView {
        days: inputs.replay_days,
        ..ReplayView::default()
    };
    for log in &inputs.audit_files {
        match replay::replay(bundle, std::slice::from_ref(log), &opts) {
            Ok(report) => {
                let s = &report.summary;
                view.decisions += s.decisions;
                view.evaluated += s.evaluated;
                view.allow_to_deny += s.allow_to_deny;
                view.deny_to_allow += s.deny_to_allow;
                view.not_evaluable += s.not_evaluable;
                view.flips
                    .extend(report.decisions.into_iter().filter(Replayed::flipped));
            }
            Err(e) => view.problems.push(e.to_string()),
        }
    }
    view
}

#[cfg(test)]
#[path = "review_tests.rs"]
mod tests;
