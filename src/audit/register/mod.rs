//! The transfer register: for a tenant (or all) and a period, where data went — per destination
//! and country set, how many uploads and bytes, under which rules and legal bases — and every
//! denial. Built from one or more audit logs (one per gateway instance), each chain verified
//! first; what GDPR Art. 30 records and a supervisory authority's Art. 44–46 questions need.
//!
//! Linking a commit to the decision that allowed it (`link`): a `committed` record carries the
//! policy ids but not their reasons, the countries or the classification, which its `decision`
//! record has. Within one instance's records (files of one instance in the order of their first
//! timestamp, each in file order), a commit links to the nearest preceding *allowed upload*
//! decision with the same tenant, user, destination and object — preferring one from the same
//! bundle as the commit. A decision and its commit are always written by the same instance, in
//! that order; two concurrent uploads of one object by one user link to the later decision,
//! which (same key, same bundle) says the same. A commit with no such decision (its decision is
//! in a log not given) is kept, with `decision_seq` empty and the countries unknown.
//! A commit's own `policies`, when present, are the rules reported; the decision gives their
//! reasons.

mod link;
mod period;
mod render;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::audit::AuditEvent;

pub use period::{DateError, Millis, Period, format_time, parse_time};
pub use render::{defuse, to_csv, to_text};

use crate::audit::records::{self, Log, Record};

/// Version of the JSON shape below; bumped on any incompatible change.
pub const JSON_FORMAT: &str = "eugate-transfer-register/1";

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("cannot read audit log {}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "audit log {file} is broken at line {line} ({reason}): its records cannot be trusted, so the register refuses it"
    )]
    Unverified {
        file: String,
        line: u64,
        reason: String,
    },
    #[error("the period is empty: from ({from}) is not before to ({to})")]
    EmptyPeriod { from: String, to: String },
    #[error("cannot write the register: {0}")]
    Csv(#[from] csv::Error),
    #[error("cannot encode the register: {0}")]
    Json(#[from] serde_json::Error),
}

/// What to put in the register.
#[derive(Debug, Clone)]
pub struct Query {
    /// `None`: every tenant.
    pub tenant: Option<String>,
    pub period: Period,
    /// Include the records of a file whose chain is broken (marked `verified: false`) instead
    /// of refusing it.
    pub allow_unverified: bool,
}

/// The register. Field names are the JSON output's (documented in README, "Transfer register").
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Register {
    pub format: &'static str,
    pub tenant: Option<String>,
    pub from: String,
    pub to: String,
    pub sources: Vec<FileStatus>,
    pub totals: Vec<Total>,
    pub transfers: Vec<Transfer>,
    pub denials: Vec<Denial>,
}

/// One audit log and its chain verification.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FileStatus {
    pub file: String,
    pub instances: Vec<String>,
    /// Lines in the file.
    pub records: u64,
    /// Lines that are not a readable record (only in a broken file).
    pub unreadable: u64,
    /// Hash of the last record of an intact chain (anchor it elsewhere).
    pub head: Option<String>,
    /// First line where the chain is broken, and why (`None`: verified).
    pub broken_line: Option<u64>,
    pub broken_reason: Option<String>,
}

impl FileStatus {
    pub fn verified(&self) -> bool {
        self.broken_line.is_none()
    }
}

/// A deciding rule: its policy id and its `@reason` / `@legal_basis` (empty if unknown).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rule {
    pub policy: String,
    pub reason: String,
}

/// One committed upload in the period.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Transfer {
    pub time: String,
    pub tenant: String,
    pub user: String,
    pub destination: String,
    /// From the linked decision; empty when no decision was found.
    pub countries: Vec<String>,
    pub object: String,
    pub classification: Option<String>,
    pub plaintext_bytes: u64,
    pub ciphertext_bytes: u64,
    pub rules: Vec<Rule>,
    pub bundle: String,
    pub protocol: Option<String>,
    pub instance: Option<String>,
    pub file: String,
    pub seq: u64,
    /// `seq` of the linked decision in the same instance's log.
    pub decision_seq: Option<u64>,
    pub verified: bool,
}

/// Committed uploads per tenant, destination and country set.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Total {
    pub tenant: String,
    pub destination: String,
    pub countries: Vec<String>,
    pub transfers: u64,
    pub plaintext_bytes: u64,
    pub classifications: Vec<String>,
    pub rules: Vec<Rule>,
    pub bundles: Vec<String>,
    pub instances: Vec<String>,
    /// Of `transfers`, those with no linked decision.
    pub unlinked: u64,
    /// False if any of them comes from a file whose chain is broken.
    pub verified: bool,
}

/// A decision that refused an upload, directory or rename.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Denial {
    pub time: String,
    pub tenant: String,
    pub user: String,
    pub operation: String,
    pub destination: String,
    pub countries: Vec<String>,
    pub object: String,
    pub classification: String,
    pub rules: Vec<Rule>,
    pub evidence: String,
    pub bundle: String,
    pub protocol: Option<String>,
    pub instance: Option<String>,
    pub file: String,
    pub seq: u64,
    pub verified: bool,
}

/// Reads, verifies and summarises `files` for `query`. A file whose chain is broken is refused
/// (`RegisterError::Unverified`) unless `query.allow_unverified`; then its status says where it
/// broke and every row from it says `verified: false`.
pub fn build<P: AsRef<Path>>(files: &[P], query: &Query) -> Result<Register, RegisterError> {
    if query.period.from >= query.period.to {
        return Err(RegisterError::EmptyPeriod {
            from: period::format_time(query.period.from),
            to: period::format_time(query.period.to),
        });
    }
    let mut inputs = Vec::new();
    let mut sources = Vec::new();
    for path in files {
        let (records, status) = read_file(path.as_ref())?;
        if let (Some(line), false) = (status.broken_line, query.allow_unverified) {
            return Err(RegisterError::Unverified {
                file: status.file,
                line,
                reason: status.broken_reason.unwrap_or_default(),
            });
        }
        if !status.verified() {
            tracing::warn!(file = %status.file, line = ?status.broken_line, "register includes a broken audit log");
        }
        inputs.push((status.file.clone(), records));
        sources.push(status);
    }
    let (transfers, denials) = link::link(inputs, query);
    Ok(Register {
        format: JSON_FORMAT,
        tenant: query.tenant.clone(),
        from: period::format_time(query.period.from),
        to: period::format_time(query.period.to),
        sources,
        totals: link::totals(&transfers),
        transfers,
        denials,
    })
}

/// The file's decisions and commits, and its chain status.
fn read_file(path: &Path) -> Result<(Vec<Record>, FileStatus), RegisterError> {
    let log = records::read_log(path).map_err(|e| RegisterError::Io {
        file: e.file,
        source: e.source,
    })?;
    let status = status_of(&log);
    let records = log
        .records
        .into_iter()
        .filter(|r| {
            matches!(
                r.event,
                AuditEvent::Decision { .. } | AuditEvent::Committed { .. }
            )
        })
        .collect();
    Ok((records, status))
}

fn status_of(log: &Log) -> FileStatus {
    FileStatus {
        file: log.file.display().to_string(),
        instances: log.instances.iter().cloned().collect(),
        records: log.lines,
        unreadable: log.unreadable.len() as u64,
        head: log.head.clone(),
        broken_line: log.broken.as_ref().map(|b| b.line),
        broken_reason: log.broken.as_ref().map(|b| b.reason.clone()),
    }
}

impl Register {
    /// The JSON form: pretty, field names as in the structs above.
    pub fn to_json(&self) -> Result<String, RegisterError> {
        Ok(serde_json::to_string_pretty(self)?)
    }
}

#[cfg(test)]
mod tests;
