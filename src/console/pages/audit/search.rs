//! The audit search: a filter from the query string, one flat view of every record type
//! (who, which tenant, where, what came of it), and the newest-first selection with paging.

use crate::audit::AuditEvent;
use crate::audit::records::{Log, Record};
use crate::audit::time::{Millis, parse_time};
use crate::console::{ConsoleError, Params};

/// Rows on one page.
pub const PAGE_SIZE: usize = 100;

/// Record types, as the log names them (`type`).
pub const TYPES: [&str; 12] = [
    "decision",
    "committed",
    "aborted",
    "namespace",
    "auth",
    "auth_summary",
    "console",
    "policy_reload",
    "keyring_reload",
    "destination",
    "lifecycle",
    "shutdown",
];

/// Outcomes the form offers (`Row::outcome` of the record types).
pub const OUTCOMES: [&str; 11] = [
    "allowed",
    "denied",
    "committed",
    "aborted",
    "accepted",
    "rejected",
    "banned",
    "refused",
    "done",
    "failed",
    "ok",
];

/// What to show; every field optional, all given ones must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub tenant: Option<String>,
    pub user: Option<String>,
    /// Included.
    pub from: Option<String>,
    /// Excluded.
    pub to: Option<String>,
    pub outcome: Option<String>,
    pub destination: Option<String>,
    pub kind: Option<String>,
    from_ms: Option<Millis>,
    to_ms: Option<Millis>,
}

impl Filter {
    /// The filter in `q`; a bad date or an unknown type is a `BadRequest` naming the field.
    pub fn parse(q: &Params) -> Result<Filter, ConsoleError> {
        let text = |name| q.non_empty(name).map(str::to_string);
        let time = |name: &str| {
            q.non_empty(name)
                .map(|v| {
                    parse_time(v).map_err(|e| ConsoleError::BadRequest(format!("{name}: {e}")))
                })
                .transpose()
        };
        let f = Filter {
            tenant: text("tenant"),
            user: text("user"),
            from: text("from"),
            to: text("to"),
            outcome: text("outcome"),
            destination: text("destination"),
            kind: text("type"),
            from_ms: time("from")?,
            to_ms: time("to")?,
        };
        if let Some(k) = &f.kind
            && !TYPES.contains(&k.as_str())
        {
            return Err(ConsoleError::BadRequest(format!(
                "type: {k:?} is not a record type; choose one of {}",
                TYPES.join(", ")
            )));
        }
        if let (Some(a), Some(b)) = (f.from_ms, f.to_ms)
            && a >= b
        {
            return Err(ConsoleError::BadRequest(
                "from must be before to (to is excluded)".into(),
            ));
        }
        Ok(f)
    }

    /// The filter's fields as (name, value) pairs, in the form's order.
    pub fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("tenant", &self.tenant),
            ("user", &self.user),
            ("from", &self.from),
            ("to", &self.to),
            ("outcome", &self.outcome),
            ("destination", &self.destination),
            ("type", &self.kind),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
    }

    /// The filter as a query string (for links: export, pages).
    pub fn query(&self) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.pairs() {
            s.append_pair(k, v);
        }
        s.finish()
    }

    /// For the audit record of an export: `tenant=acme; type=decision`, or `all records`.
    pub fn describe(&self) -> String {
        let pairs = self.pairs();
        if pairs.is_empty() {
            return "all records".into();
        }
        pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn matches(&self, row: &Row) -> bool {
        let eq = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
        eq(&self.tenant, &row.tenant)
            && self
                .user
                .as_deref()
                .is_none_or(|u| row.users.iter().any(|have| have == u))
            && eq(&self.outcome, &row.outcome)
            && eq(&self.destination, &row.destination)
            && eq(&self.kind, row.kind)
            && self.from_ms.is_none_or(|f| row.at >= f)
            && self.to_ms.is_none_or(|t| row.at < t)
    }
}

/// One record, flattened for the table and the CSV; `event` kept whole for the JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub file: String,
    pub instance: Option<String>,
    pub seq: u64,
    pub ts: String,
    pub at: Millis,
    pub kind: &'static str,
    pub tenant: String,
    /// The user (an officer for console acts; the names tried for a summary of logins).
    pub users: Vec<String>,
    pub destination: String,
    pub object: String,
    pub outcome: String,
    pub detail: String,
    pub verified: bool,
    pub event: AuditEvent,
}

impl Row {
    pub fn new(file: &str, r: &Record) -> Row {
        let v = super::view::view(&r.event);
        Row {
            file: file.to_string(),
            instance: r.instance.clone(),
            seq: r.seq,
            ts: r.ts.clone(),
            at: r.at,
            kind: v.kind,
            tenant: v.tenant,
            users: v.users,
            destination: v.destination,
            object: v.object,
            outcome: v.outcome,
            detail: v.detail,
            verified: r.verified,
            event: r.event.clone(),
        }
    }
}

/// Every record of `logs` that `filter` matches, newest first (ties: file order, later first).
pub fn select(logs: &[Log], filter: &Filter) -> Vec<Row> {
    let mut rows: Vec<Row> = logs
        .iter()
        .flat_map(|log| {
            let file = log.file.display().to_string();
            log.records
                .iter()
                .map(move |r| Row::new(&file, r))
                .collect::<Vec<_>>()
        })
        .filter(|row| filter.matches(row))
        .collect();
    rows.sort_by(|a, b| (b.at, &a.file, b.seq).cmp(&(a.at, &b.file, a.seq)));
    rows
}

/// `?page=` (1-based; absent is 1).
pub fn page_number(q: &Params) -> Result<usize, ConsoleError> {
    match q.non_empty("page") {
        None => Ok(1),
        Some(p) => p.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            ConsoleError::BadRequest(format!("page: {p:?} is not a page number (1, 2, …)"))
        }),
    }
}

/// The rows of page `n` (empty past the end) and the number of pages (at least 1).
pub fn page(rows: &[Row], n: usize) -> (&[Row], usize) {
    let pages = rows.len().div_ceil(PAGE_SIZE).max(1);
    let start = (n - 1).saturating_mul(PAGE_SIZE).min(rows.len());
    let end = (start + PAGE_SIZE).min(rows.len());
    (&rows[start..end], pages)
}
