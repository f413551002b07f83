//! Policy change proposals with four-eyes approval (issue 16, "Propose a change" and "Approve").
//!
//! A proposal is the *whole* proposed bundle (every file of the policy directory with the change
//! applied), made against the bundle in force (`base`), kept on disk under `[console]
//! proposals_dir` so several instances sharing that directory see the same proposals.
//! - `names`: which file names a client may send (plain bundle file names, size caps);
//! - `store`: the on-disk store, atomic writes, state transitions under a lock;
//! - `review`: the four checks an officer sees (check, tests, diff, replay);
//! - `decide`: approve (four-eyes, stale base, audit first) and reject;
//! - `apply`: writing an approved bundle into the policy directory atomically.

pub mod apply;
pub mod decide;
pub mod names;
pub mod review;
pub mod store;
#[cfg(test)]
mod test_support;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use store::ProposalStore;

/// Where a proposal stands. `stale` is not stored: it is an open proposal whose base is no
/// longer the bundle in force (see [`Proposal::status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Open,
    Approved,
    Rejected,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Approved => "approved",
            State::Rejected => "rejected",
        }
    }
}

/// Who decided a proposal, when, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decided {
    pub officer: String,
    pub certificate: String,
    /// RFC 3339, as the audit log writes times.
    pub at: String,
    pub comment: String,
}

/// A proposal's `meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub id: String,
    pub proposer: String,
    /// Fingerprint of the certificate the proposer logged in with.
    pub proposer_certificate: String,
    pub created: String,
    pub created_ms: i64,
    pub summary: String,
    /// Hash of the bundle in force when the proposal was made.
    pub base: String,
    /// Hash of the proposed files (as `PolicyBundle::load` would compute it).
    pub hash: String,
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided: Option<Decided>,
}

/// A proposal: its metadata and the proposed bundle files (relative name → text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub meta: Meta,
    pub files: BTreeMap<String, String>,
}

impl Proposal {
    /// `open`, `approved`, `rejected`, or `stale` for an open proposal made against another
    /// bundle than `in_force`.
    pub fn status(&self, in_force: &str) -> &'static str {
        match self.meta.state {
            State::Open if self.meta.base != in_force => "stale",
            s => s.as_str(),
        }
    }

    /// Whether `name`/`certificate` is the proposer: the same officer name OR the same
    /// certificate (an officer renamed in the config is still the same person).
    pub fn proposed_by(&self, name: &str, certificate: &str) -> bool {
        self.meta.proposer == name || self.meta.proposer_certificate == certificate
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProposalError {
    /// A name or content from the client that cannot be part of a bundle.
    #[error("{0}")]
    Invalid(String),
    #[error("no proposal {0}")]
    NotFound(String),
    /// The proposal was already decided, or another decision is being written.
    #[error("{0}")]
    Conflict(String),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("proposal {path} is unreadable: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

impl ProposalError {
    pub(crate) fn io(what: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        ProposalError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }
}

impl From<ProposalError> for crate::console::ConsoleError {
    fn from(e: ProposalError) -> Self {
        use crate::console::ConsoleError as C;
        match e {
            ProposalError::Invalid(m) => C::BadRequest(m),
            ProposalError::NotFound(_) => C::NotFound(e.to_string()),
            ProposalError::Conflict(m) => C::Conflict(m),
            ProposalError::Io { .. } | ProposalError::Corrupt { .. } => C::Internal(e.to_string()),
        }
    }
}
