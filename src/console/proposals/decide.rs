//! Approving and rejecting: the rules that make a policy change need two people.
//!
//! Approval is refused when the approver is the proposer (same officer name or same
//! certificate: "four-eyes"), when the bundle in force or on disk is no longer the one the
//! proposal was made against (`stale`), and when the proposed bundle fails check or tests. The
//! audit record is written before anything else changes, so an approval never takes effect
//! unrecorded; then the bundle is written (`apply`), reloaded, and its hash compared.

use std::path::Path;

use super::store::{DecisionLock, check_open};
use super::{Decided, Meta, Proposal, ProposalError, ProposalStore, State, apply, review};
use crate::console::{Act, ConsoleError, Officer};
use crate::policy::{PolicyBundle, PolicyStore};

const MAX_COMMENT_CHARS: usize = 2000;

#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("{0}")]
    FourEyes(String),
    #[error("{0}")]
    Stale(String),
    #[error("{0}")]
    NotApprovable(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("the gateway runs the embedded policy; set [policy] dir to approve changes into it")]
    NoPolicyDir,
    #[error(transparent)]
    Proposal(#[from] ProposalError),
    #[error(transparent)]
    Apply(#[from] apply::ApplyError),
    #[error("{0}")]
    Audit(ConsoleError),
    #[error("the approved bundle was written but {0}")]
    Reload(String),
}

impl From<DecideError> for ConsoleError {
    fn from(e: DecideError) -> Self {
        match e {
            DecideError::FourEyes(m) | DecideError::Forbidden(m) => ConsoleError::Forbidden(m),
            DecideError::Stale(m) | DecideError::NotApprovable(m) => ConsoleError::Conflict(m),
            DecideError::NoPolicyDir => ConsoleError::Conflict(e.to_string()),
            DecideError::Proposal(p) => p.into(),
            DecideError::Audit(c) => c,
            DecideError::Apply(_) | DecideError::Reload(_) => ConsoleError::Internal(e.to_string()),
        }
    }
}

/// Where an approval writes to.
pub struct Target<'a> {
    pub store: &'a ProposalStore,
    pub policy: &'a PolicyStore,
    pub policy_dir: Option<&'a Path>,
}

/// Approves proposal `id` for `officer` and puts it in force. `record` appends an audit record
/// and must succeed before anything is written.
pub fn approve(
    t: &Target<'_>,
    id: &str,
    officer: &Officer,
    comment: &str,
    now_ms: i64,
    record: &dyn Fn(Act) -> Result<(), ConsoleError>,
) -> Result<Meta, DecideError> {
    check_comment(comment)?;
    let p = t.store.get(id)?;
    check_open(&p.meta)?;
    if p.proposed_by(&officer.name, &officer.fingerprint) {
        return Err(DecideError::FourEyes(format!(
            "refused by the four-eyes rule: {} proposed {id} (officer {}, certificate {}), so another approver must approve it",
            officer.name, p.meta.proposer, p.meta.proposer_certificate
        )));
    }
    if !officer.has(crate::config::OfficerRole::Approver) {
        return Err(DecideError::Forbidden(format!(
            "approving needs the approver role; {} has {}",
            officer.name,
            officer.roles_text()
        )));
    }
    let dir = t.policy_dir.ok_or(DecideError::NoPolicyDir)?;
    let lock = t.store.lock()?;
    // Decided by someone else while this request waited?
    let p = t.store.get(id)?;
    check_open(&p.meta)?;
    check_base(&p, t.policy, dir)?;
    let bundle = review::approvable(&p.files).map_err(DecideError::NotApprovable)?;
    if bundle.hash() != p.meta.hash {
        return Err(ProposalError::Corrupt {
            path: t.store.dir().join(id),
            reason: format!("its files hash to {}, not {}", bundle.hash(), p.meta.hash),
        }
        .into());
    }
    let act = |outcome: &str, detail: String| Act {
        action: "approve".into(),
        target: id.to_string(),
        outcome: outcome.into(),
        detail,
        old_bundle: Some(p.meta.base.clone()),
        new_bundle: Some(p.meta.hash.clone()),
    };
    record(act("approved", comment.to_string())).map_err(DecideError::Audit)?;
    if let Err(e) = put_in_force(&p, t.policy, dir) {
        // The approval is recorded; so is its failure.
        if let Err(a) = record(act("failed", e.to_string())) {
            tracing::error!(error = %a, proposal = id, "failed approval not recorded");
        }
        return Err(e);
    }
    decided(
        t.store,
        &lock,
        id,
        State::Approved,
        officer,
        comment,
        now_ms,
    )
}

/// Rejects (an approver) or withdraws (the proposer) proposal `id`.
pub fn reject(
    store: &ProposalStore,
    id: &str,
    officer: &Officer,
    comment: &str,
    now_ms: i64,
    record: &dyn Fn(Act) -> Result<(), ConsoleError>,
) -> Result<Meta, DecideError> {
    check_comment(comment)?;
    let p = store.get(id)?;
    let withdraw = p.proposed_by(&officer.name, &officer.fingerprint);
    if !withdraw && !officer.has(crate::config::OfficerRole::Approver) {
        return Err(DecideError::Forbidden(format!(
            "rejecting needs the approver role (the proposer may withdraw); {} has {}",
            officer.name,
            officer.roles_text()
        )));
    }
    let lock = store.lock()?;
    let p = store.get(id)?;
    check_open(&p.meta)?;
    record(Act {
        action: "reject".into(),
        target: id.to_string(),
        outcome: if withdraw { "withdrawn" } else { "rejected" }.into(),
        detail: comment.to_string(),
        old_bundle: Some(p.meta.base.clone()),
        new_bundle: Some(p.meta.hash.clone()),
    })
    .map_err(DecideError::Audit)?;
    decided(store, &lock, id, State::Rejected, officer, comment, now_ms)
}

fn check_comment(comment: &str) -> Result<(), DecideError> {
    if comment.chars().count() > MAX_COMMENT_CHARS {
        return Err(ProposalError::Invalid(format!(
            "the comment has more than {MAX_COMMENT_CHARS} characters"
        ))
        .into());
    }
    Ok(())
}

/// Refuses a proposal made against another bundle than the one in force, or than the one on
/// disk (changed by hand, or by another instance whose reload this one has not seen yet).
fn check_base(p: &Proposal, policy: &PolicyStore, dir: &Path) -> Result<(), DecideError> {
    let in_force = policy.current().hash().to_string();
    if in_force != p.meta.base {
        return Err(DecideError::Stale(format!(
            "proposal {} is stale: it was made against bundle {}, but {} is in force now; make a new proposal from the current bundle",
            p.meta.id, p.meta.base, in_force
        )));
    }
    let on_disk = PolicyBundle::read_sources(dir)
        .map(|s| PolicyBundle::hash_sources(&s))
        .map_err(|e| {
            DecideError::Stale(format!("stale: the policy directory cannot be read: {e}"))
        })?;
    if on_disk != p.meta.base {
        return Err(DecideError::Stale(format!(
            "proposal {} is stale: the policy directory now holds bundle {on_disk}, not {} it was made against; make a new proposal",
            p.meta.id, p.meta.base
        )));
    }
    Ok(())
}

fn put_in_force(p: &Proposal, policy: &PolicyStore, dir: &Path) -> Result<(), DecideError> {
    apply::write_bundle(dir, &p.files)?;
    policy
        .reload(dir)
        .map_err(|e| DecideError::Reload(format!("the reload failed: {e}")))?;
    let now = policy.current().hash().to_string();
    if now != p.meta.hash {
        return Err(DecideError::Reload(format!(
            "after the reload bundle {now} is in force, not the proposal's {}",
            p.meta.hash
        )));
    }
    tracing::info!(proposal = %p.meta.id, old = %p.meta.base, new = %now, "approved proposal in force");
    Ok(())
}

fn decided(
    store: &ProposalStore,
    lock: &DecisionLock,
    id: &str,
    state: State,
    officer: &Officer,
    comment: &str,
    now_ms: i64,
) -> Result<Meta, DecideError> {
    let d = Decided {
        officer: officer.name.clone(),
        certificate: officer.fingerprint.clone(),
        at: crate::audit::time::format_time(now_ms),
        comment: comment.to_string(),
    };
    Ok(store.decide(lock, id, state, d)?)
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
