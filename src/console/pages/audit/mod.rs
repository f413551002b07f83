//! `/console/audit`: search the audit logs (this gateway's and `[console] audit_logs`) by
//! tenant, user, period, outcome, destination and record type, with each log's chain status and
//! head hash; `/console/audit/export` downloads the selection as CSV or JSON (itself an audit
//! record). Records after a break in a chain are shown, marked unverified.

mod export;
mod render;
pub mod search;
mod view;

use std::path::PathBuf;

use crate::audit::records::{self, Log};
use crate::console::{ConsoleError, Ctx, Reply};
use search::Filter;

/// One configured log: read, or why not.
pub struct Source {
    pub file: PathBuf,
    pub log: Result<Log, String>,
}

pub async fn get(ctx: &Ctx<'_>) -> Result<Reply, ConsoleError> {
    let filter = Filter::parse(&ctx.query)?;
    let page = search::page_number(&ctx.query)?;
    let sources = load(ctx.console.audit_files()).await?;
    let logs: Vec<Log> = sources.iter().filter_map(|s| s.log.clone().ok()).collect();
    let rows = search::select(&logs, &filter);
    Ok(Reply::page(
        "Audit",
        render::page(&sources, &filter, &rows, page),
    ))
}

pub async fn export(ctx: &Ctx<'_>) -> Result<Reply, ConsoleError> {
    let format = export::Format::parse(ctx.query.get("format"))?;
    let filter = Filter::parse(&ctx.query)?;
    let sources = load(ctx.console.audit_files()).await?;
    let logs: Vec<Log> = sources.into_iter().filter_map(|s| s.log.ok()).collect();
    let rows = search::select(&logs, &filter);
    let body = export::body(format, &rows)?;
    // Data leaves the gateway only once the act is on record.
    ctx.record(export::act(&filter, format, rows.len()))?;
    Ok(Reply::Download {
        content_type: format.content_type(),
        filename: format!("audit-export.{}", format.extension()),
        body,
    })
}

/// Reads every log off the async runtime. A log that cannot be read is reported, not fatal.
pub async fn load(files: Vec<PathBuf>) -> Result<Vec<Source>, ConsoleError> {
    tokio::task::spawn_blocking(move || files.into_iter().map(read_settled).collect())
        .await
        .map_err(|e| ConsoleError::Internal(format!("reading the audit logs failed: {e}")))
}

/// The gateway appends while we read: a last line caught half-written is read again once
/// before it counts as a torn write.
fn read_settled(file: PathBuf) -> Source {
    let torn_tail = |l: &Log| {
        l.broken
            .as_ref()
            .is_some_and(|b| b.line == l.lines && b.reason.starts_with("incomplete last line"))
    };
    let mut log = records::read_log(&file);
    if log.as_ref().is_ok_and(torn_tail) {
        std::thread::sleep(std::time::Duration::from_millis(50));
        log = records::read_log(&file);
    }
    Source {
        log: log.map_err(|e| {
            tracing::warn!(file = %file.display(), error = %e.source, "console: audit log unreadable");
            format!("{}: {}", e, e.source)
        }),
        file,
    }
}

#[cfg(test)]
mod tests;
