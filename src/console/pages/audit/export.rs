//! The audit selection as CSV (flat columns, formula prefixes neutralised as in the register's
//! CSV) or JSON (each record whole, with its file and chain status).

use serde::Serialize;

use super::search::{Filter, Row};
use crate::audit::AuditEvent;
use crate::audit::register::defuse;
use crate::console::{Act, ConsoleError};

/// The CSV columns, in order.
pub const CSV_COLUMNS: [&str; 13] = [
    "time",
    "type",
    "tenant",
    "user",
    "destination",
    "object",
    "outcome",
    "detail",
    "instance",
    "file",
    "seq",
    "verified",
    "record",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
}

impl Format {
    pub fn parse(v: Option<&str>) -> Result<Format, ConsoleError> {
        match v {
            Some("csv") => Ok(Format::Csv),
            Some("json") => Ok(Format::Json),
            other => Err(ConsoleError::BadRequest(format!(
                "format: {:?} is not an export format; use format=csv or format=json",
                other.unwrap_or("")
            ))),
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
        }
    }
}

/// The audit record of an export: what was selected, how many records, in which format.
pub fn act(filter: &Filter, format: Format, records: usize) -> Act {
    Act {
        action: "export".into(),
        target: format!("audit: {}", filter.describe()),
        outcome: "ok".into(),
        detail: format!("{records} records as {}", format.extension()),
        ..Act::default()
    }
}

pub fn body(format: Format, rows: &[Row]) -> Result<Vec<u8>, ConsoleError> {
    match format {
        Format::Csv => csv(rows),
        Format::Json => json(rows),
    }
    .map_err(|e| ConsoleError::Internal(format!("cannot write the export: {e}")))
}

fn csv(rows: &[Row]) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_COLUMNS)?;
    for r in rows {
        let record = serde_json::to_string(&r.event)?;
        let cells = [
            r.ts.as_str(),
            r.kind,
            &r.tenant,
            &r.users.join("; "),
            &r.destination,
            &r.object,
            &r.outcome,
            &r.detail,
            r.instance.as_deref().unwrap_or(""),
            &r.file,
            &r.seq.to_string(),
            &r.verified.to_string(),
            &record,
        ];
        w.write_record(cells.iter().map(|c| defuse(c)))?;
    }
    Ok(w.into_inner().map_err(|e| e.into_error())?)
}

/// One exported record: the log's own fields, where it is, and whether its chain verified.
#[derive(Serialize)]
struct JsonRecord<'a> {
    file: &'a str,
    instance: Option<&'a str>,
    seq: u64,
    ts: &'a str,
    verified: bool,
    event: &'a AuditEvent,
}

#[derive(Serialize)]
struct JsonExport<'a> {
    format: &'static str,
    records: Vec<JsonRecord<'a>>,
}

fn json(rows: &[Row]) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let export = JsonExport {
        format: "eugate-audit-export/1",
        records: rows
            .iter()
            .map(|r| JsonRecord {
                file: &r.file,
                instance: r.instance.as_deref(),
                seq: r.seq,
                ts: &r.ts,
                verified: r.verified,
                event: &r.event,
            })
            .collect(),
    };
    let mut out = serde_json::to_vec_pretty(&export)?;
    out.push(b'\n');
    Ok(out)
}
