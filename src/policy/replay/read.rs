//! The `decision` records of one audit log, read and verified by `audit::records`.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{LogInfo, ReplayError};
use crate::audit::AuditEvent;
use crate::audit::records::{self, Log};

/// A `decision` record as written, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedDecision {
    pub ts: String,
    #[serde(skip)]
    pub ts_ms: i64,
    /// The gateway instance that wrote it (the log's file name for logs written before
    /// instances were named).
    pub instance: String,
    pub log: PathBuf,
    pub seq: u64,
    /// False when the log's chain did not verify.
    pub verified: bool,
    pub operation: String,
    pub tenant: String,
    pub user: String,
    pub destination: String,
    pub object: String,
    pub classification: String,
    pub allowed: bool,
    pub policies: Vec<String>,
    pub reasons: Vec<String>,
    pub countries: Vec<String>,
    pub observed_region: Option<String>,
    pub evidence: String,
    /// Hash of the bundle that decided at the time.
    pub bundle: String,
    pub protocol: Option<String>,
    pub key_held_by_tenant: bool,
    /// The operator's country the decision considered (`operator:XX` of its jurisdictions);
    /// `None` in records written before jurisdictions were recorded.
    pub operator_country: Option<String>,
}

fn open(path: &Path) -> Result<Log, ReplayError> {
    records::read_log(path).map_err(|e| ReplayError::Io {
        path: e.file,
        source: e.source,
    })
}

/// The log's status and its decisions. A log whose chain is broken is refused unless
/// `allow_unverified`; then all its decisions are marked unverified.
pub(super) fn read_log(
    path: &Path,
    allow_unverified: bool,
) -> Result<(LogInfo, Vec<RecordedDecision>), ReplayError> {
    let log = open(path)?;
    let problem = match &log.broken {
        None => None,
        Some(b) if allow_unverified => Some(b.to_verify_error().to_string()),
        Some(b) => {
            return Err(ReplayError::Unverified {
                path: path.to_path_buf(),
                reason: b.to_verify_error().to_string(),
            });
        }
    };
    let verified = problem.is_none();
    let (decisions, records) = from_log(log, verified)?;
    let info = LogInfo {
        path: path.to_path_buf(),
        records,
        verified,
        problem,
    };
    Ok((info, decisions))
}

/// Every decision in the log, and how many records it holds, as if its chain status were
/// `verified`.
#[cfg(test)]
pub(super) fn decisions(
    path: &Path,
    verified: bool,
) -> Result<(Vec<RecordedDecision>, u64), ReplayError> {
    from_log(open(path)?, verified)
}

/// A line that is not a record is an error in a verified log and skipped in an unverified one.
fn from_log(log: Log, verified: bool) -> Result<(Vec<RecordedDecision>, u64), ReplayError> {
    if let (true, Some(bad)) = (verified, log.unreadable.first()) {
        return Err(ReplayError::Record {
            path: log.file,
            line: bad.line,
            reason: bad.reason.clone(),
        });
    }
    let default_instance = log
        .file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let count = log.records.len() as u64;
    let mut out = Vec::new();
    for r in log.records {
        if let AuditEvent::Decision {
            operation,
            tenant,
            user,
            destination,
            object,
            classification,
            allowed,
            policies,
            reasons,
            countries,
            observed_region,
            evidence,
            bundle,
            protocol,
            key_held_by_tenant,
            jurisdictions,
            ..
        } = r.event
        {
            let operator_country = jurisdictions
                .iter()
                .find_map(|j| j.strip_prefix("operator:"))
                .map(str::to_string);
            out.push(RecordedDecision {
                ts: r.ts,
                ts_ms: r.at,
                instance: r.instance.unwrap_or_else(|| default_instance.clone()),
                log: log.file.clone(),
                seq: r.seq,
                verified,
                operation,
                tenant,
                user,
                destination,
                object,
                classification,
                allowed,
                policies,
                reasons,
                countries,
                observed_region,
                evidence,
                bundle,
                protocol,
                key_held_by_tenant,
                operator_country,
            });
        }
    }
    Ok((out, count))
}
