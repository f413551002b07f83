//! Reads the `decision` records of one audit log.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{ReplayError, window::parse_rfc3339_ms};
use crate::audit::AuditEvent;

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
}

#[derive(Deserialize)]
struct Line {
    #[serde(default)]
    instance: Option<String>,
    seq: u64,
    ts: String,
    event: AuditEvent,
}

/// Every decision in the log, and how many records it holds. A line that is not a record is
/// an error in a verified log and skipped in an unverified one.
pub(super) fn decisions(
    path: &Path,
    verified: bool,
) -> Result<(Vec<RecordedDecision>, u64), ReplayError> {
    let io = |source| ReplayError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let default_instance = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut count = 0u64;
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io)?;
        let bad = |reason: String| ReplayError::Record {
            path: path.to_path_buf(),
            line: i as u64 + 1,
            reason,
        };
        let parsed = serde_json::from_str::<Line>(&line)
            .map_err(|e| format!("not an audit record: {e}"))
            .and_then(|l| {
                parse_rfc3339_ms(&l.ts)
                    .map(|ms| (l, ms))
                    .map_err(|e| e.to_string())
            });
        let (l, ts_ms) = match parsed {
            Ok(p) => p,
            Err(_) if !verified => continue,
            Err(reason) => return Err(bad(reason)),
        };
        count += 1;
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
        } = l.event
        {
            out.push(RecordedDecision {
                ts: l.ts,
                ts_ms,
                instance: l.instance.unwrap_or_else(|| default_instance.clone()),
                log: path.to_path_buf(),
                seq: l.seq,
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
            });
        }
    }
    Ok((out, count))
}
