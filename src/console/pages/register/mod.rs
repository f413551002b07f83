//! `/console/register`: the transfer register (`audit::register`) of a tenant (or all) for a
//! period — default: the current calendar quarter, UTC — as a page, as a printable document for
//! a supervisory authority (`&print=1`), and as CSV/JSON downloads byte-identical to
//! `eugate audit register --format csv|json` (with `--allow-unverified`: a broken log's rows are
//! included and marked, never silently dropped). Downloads and printouts are audit records.

mod render;

use std::path::PathBuf;

use crate::audit::register::{self, Period, Query, Register};
use crate::audit::time::{Millis, format_time, parse_time};
use crate::console::{Act, ConsoleError, Ctx, Params, Reply};

/// The form: what the officer asked for, with the defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    /// `None`: every tenant.
    pub tenant: Option<String>,
    pub from: String,
    pub to: String,
    pub period: Period,
}

impl Form {
    /// The form in `q`; `now` decides the default period (its calendar quarter).
    pub fn parse(q: &Params, now: Millis) -> Result<Form, ConsoleError> {
        let (q_from, q_to) = quarter_of(now);
        let from = q.non_empty("from").map(str::to_string).unwrap_or(q_from);
        let to = q.non_empty("to").map(str::to_string).unwrap_or(q_to);
        let time = |name: &str, v: &str| {
            parse_time(v).map_err(|e| ConsoleError::BadRequest(format!("{name}: {e}")))
        };
        let period = Period {
            from: time("from", &from)?,
            to: time("to", &to)?,
        };
        if period.from >= period.to {
            return Err(ConsoleError::BadRequest(
                "from must be before to (to is excluded)".into(),
            ));
        }
        Ok(Form {
            tenant: q.non_empty("tenant").map(str::to_string),
            from,
            to,
            period,
        })
    }

    /// The form as a query string, for the download and print links.
    pub fn query(&self) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        if let Some(t) = &self.tenant {
            s.append_pair("tenant", t);
        }
        s.append_pair("from", &self.from);
        s.append_pair("to", &self.to);
        s.finish()
    }

    /// For the audit record of an export or printout.
    pub fn describe(&self) -> String {
        format!(
            "register: tenant={}; from={}; to={}",
            self.tenant.as_deref().unwrap_or("(all)"),
            self.from,
            self.to
        )
    }

    /// `register-acme-2026-10-01-2027-01-01.csv`: ASCII only (the header must not carry a
    /// client's bytes).
    pub fn filename(&self, ext: &str) -> String {
        let raw = format!(
            "register-{}-{}-{}",
            self.tenant.as_deref().unwrap_or("all"),
            self.from,
            self.to
        );
        let safe: String = raw
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{safe}.{ext}")
    }
}

/// `[first day of now's quarter, first day of the next)`, as dates.
fn quarter_of(now: Millis) -> (String, String) {
    let text = format_time(now);
    let year: i64 = text[0..4].parse().unwrap_or(1970);
    let month: i64 = text[5..7].parse().unwrap_or(1);
    let first = (month - 1) / 3 * 3 + 1;
    let (ny, nm) = if first == 10 {
        (year + 1, 1)
    } else {
        (year, first + 3)
    };
    (
        format!("{year:04}-{first:02}-01"),
        format!("{ny:04}-{nm:02}-01"),
    )
}

fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as Millis)
        .unwrap_or_default()
}

/// What the printed document says about itself.
pub struct Meta {
    pub generated: String,
    pub officer: String,
    pub certificate: String,
    pub active_bundle: String,
}

pub async fn get(ctx: &Ctx<'_>) -> Result<Reply, ConsoleError> {
    let now = now_ms();
    let form = Form::parse(&ctx.query, now)?;
    let print = ctx.query.get("print") == Some("1");
    let reg = build(ctx.console.audit_files(), &form).await?;
    if print {
        ctx.record(Act {
            action: "print".into(),
            target: form.describe(),
            outcome: "ok".into(),
            detail: counts(&reg),
            ..Act::default()
        })?;
    }
    let meta = Meta {
        generated: format_time(now),
        officer: ctx.officer.name.clone(),
        certificate: ctx.officer.fingerprint.clone(),
        active_bundle: ctx.console.gateway().policy().hash().to_string(),
    };
    Ok(Reply::page(
        "Transfer register",
        render::page(&reg, &form, &meta, print),
    ))
}

pub async fn export(ctx: &Ctx<'_>) -> Result<Reply, ConsoleError> {
    let form = Form::parse(&ctx.query, now_ms())?;
    let (ext, content_type) = match ctx.query.get("format") {
        Some("csv") => ("csv", "text/csv; charset=utf-8"),
        Some("json") => ("json", "application/json"),
        other => {
            return Err(ConsoleError::BadRequest(format!(
                "format: {:?} is not an export format; use format=csv or format=json",
                other.unwrap_or("")
            )));
        }
    };
    let reg = build(ctx.console.audit_files(), &form).await?;
    let body = encode(&reg, ext)?;
    // Data leaves the gateway only once the act is on record.
    ctx.record(Act {
        action: "export".into(),
        target: form.describe(),
        outcome: "ok".into(),
        detail: format!("{} as {ext}", counts(&reg)),
        ..Act::default()
    })?;
    Ok(Reply::Download {
        content_type,
        filename: form.filename(ext),
        body,
    })
}

/// The bytes `eugate audit register --format csv|json` writes.
fn encode(reg: &Register, ext: &str) -> Result<Vec<u8>, ConsoleError> {
    let fail = |e: register::RegisterError| ConsoleError::Internal(e.to_string());
    if ext == "csv" {
        return register::to_csv(reg).map_err(fail);
    }
    let mut j = reg.to_json().map_err(fail)?;
    j.push('\n');
    Ok(j.into_bytes())
}

fn counts(reg: &Register) -> String {
    format!(
        "{} transfers, {} denials",
        reg.transfers.len(),
        reg.denials.len()
    )
}

/// Builds the register off the async runtime (it reads and verifies every log).
async fn build(files: Vec<PathBuf>, form: &Form) -> Result<Register, ConsoleError> {
    let query = Query {
        tenant: form.tenant.clone(),
        period: form.period,
        allow_unverified: true,
    };
    tokio::task::spawn_blocking(move || register::build(&files, &query))
        .await
        .map_err(|e| ConsoleError::Internal(format!("building the register failed: {e}")))?
        .map_err(|e| {
            let detail = std::error::Error::source(&e)
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            ConsoleError::Internal(format!("{e}{detail}"))
        })
}

#[cfg(test)]
mod tests;
