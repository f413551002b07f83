//! The register as CSV (one table a spreadsheet opens, a `kind` column per row) and as text.

use std::fmt::Write as _;

use super::{Register, RegisterError, Rule};

/// The CSV columns, in order. A row's `kind` says which ones it fills: `source` (one audit
/// log and its chain status), `total` (per tenant, destination and country set), `transfer`
/// (one committed upload), `denial` (one refused decision).
pub const CSV_COLUMNS: [&str; 20] = [
    "kind",
    "time",
    "tenant",
    "user",
    "operation",
    "destination",
    "countries",
    "object",
    "classification",
    "transfers",
    "plaintext_bytes",
    "policies",
    "reasons",
    "bundle",
    "instance",
    "file",
    "seq",
    "decision_seq",
    "verified",
    "status",
];

/// Neutralises spreadsheet formulas (OWASP CSV injection): a cell starting with `=`, `+`,
/// `-`, `@`, tab or carriage return gets a leading `'`. Quoting and escaping of commas, quotes
/// and newlines is the csv writer's.
pub fn defuse(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell.to_string(),
    }
}

fn policies(rules: &[Rule]) -> String {
    rules
        .iter()
        .map(|r| r.policy.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

fn reasons(rules: &[Rule]) -> String {
    rules
        .iter()
        .map(|r| r.reason.as_str())
        .collect::<Vec<_>>()
        .join(" | ")
}

#[derive(Default)]
struct Row {
    cells: [String; 20],
}

impl Row {
    fn set(mut self, column: &str, value: impl ToString) -> Self {
        if let Some(i) = CSV_COLUMNS.iter().position(|c| *c == column) {
            self.cells[i] = defuse(&value.to_string());
        }
        self
    }
}

pub fn to_csv(reg: &Register) -> Result<Vec<u8>, RegisterError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_COLUMNS)?;
    let mut rows = Vec::new();
    for s in &reg.sources {
        let status = match (&s.broken_line, &s.broken_reason) {
            (Some(line), reason) => format!(
                "broken at line {line}: {}; records from it are unverified",
                reason.as_deref().unwrap_or("")
            ),
            (None, _) => format!(
                "verified: {} records, head {}",
                s.records,
                s.head.as_deref().unwrap_or("")
            ),
        };
        rows.push(
            Row::default()
                .set("kind", "source")
                .set("instance", s.instances.join("; "))
                .set("file", &s.file)
                .set("verified", s.verified())
                .set("status", status),
        );
    }
    for t in &reg.totals {
        rows.push(
            Row::default()
                .set("kind", "total")
                .set("tenant", &t.tenant)
                .set("destination", &t.destination)
                .set("countries", t.countries.join(" "))
                .set("classification", t.classifications.join("; "))
                .set("transfers", t.transfers)
                .set("plaintext_bytes", t.plaintext_bytes)
                .set("policies", policies(&t.rules))
                .set("reasons", reasons(&t.rules))
                .set("bundle", t.bundles.join("; "))
                .set("instance", t.instances.join("; "))
                .set("verified", t.verified)
                .set(
                    "status",
                    format!("{} without a linked decision", t.unlinked),
                ),
        );
    }
    for t in &reg.transfers {
        rows.push(
            Row::default()
                .set("kind", "transfer")
                .set("time", &t.time)
                .set("tenant", &t.tenant)
                .set("user", &t.user)
                .set("operation", "upload")
                .set("destination", &t.destination)
                .set("countries", t.countries.join(" "))
                .set("object", &t.object)
                .set("classification", t.classification.as_deref().unwrap_or(""))
                .set("transfers", 1)
                .set("plaintext_bytes", t.plaintext_bytes)
                .set("policies", policies(&t.rules))
                .set("reasons", reasons(&t.rules))
                .set("bundle", &t.bundle)
                .set("instance", t.instance.as_deref().unwrap_or(""))
                .set("file", &t.file)
                .set("seq", t.seq)
                .set(
                    "decision_seq",
                    t.decision_seq.map(|s| s.to_string()).unwrap_or_default(),
                )
                .set("verified", t.verified),
        );
    }
    for d in &reg.denials {
        rows.push(
            Row::default()
                .set("kind", "denial")
                .set("time", &d.time)
                .set("tenant", &d.tenant)
                .set("user", &d.user)
                .set("operation", &d.operation)
                .set("destination", &d.destination)
                .set("countries", d.countries.join(" "))
                .set("object", &d.object)
                .set("classification", &d.classification)
                .set("policies", policies(&d.rules))
                .set("reasons", reasons(&d.rules))
                .set("bundle", &d.bundle)
                .set("instance", d.instance.as_deref().unwrap_or(""))
                .set("file", &d.file)
                .set("seq", d.seq)
                .set("verified", d.verified),
        );
    }
    for row in rows {
        w.write_record(&row.cells)?;
    }
    w.into_inner()
        .map_err(|e| RegisterError::Csv(csv::Error::from(e.into_error())))
}

/// Control characters (a newline in a file name, a terminal escape) shown as escapes, so a
/// hostile name cannot break the table or drive the terminal.
pub(super) fn clean(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// A readable summary: sources, totals per destination and country set, then every denial.
pub fn to_text(reg: &Register) -> String {
    let mut out = String::new();
    let tenant = reg
        .tenant
        .as_deref()
        .map(clean)
        .unwrap_or_else(|| "all tenants".into());
    let _ = writeln!(
        out,
        "Transfer register: {tenant}, {} to {} (UTC, end excluded)\n",
        reg.from, reg.to
    );
    let _ = writeln!(out, "Audit logs:");
    for s in &reg.sources {
        let state = match s.broken_line {
            None => format!(
                "verified ({} records, head {})",
                s.records,
                s.head.as_deref().unwrap_or("")
            ),
            Some(line) => format!(
                "BROKEN at line {line}: {} — its records are included, marked unverified",
                clean(s.broken_reason.as_deref().unwrap_or(""))
            ),
        };
        let _ = writeln!(
            out,
            "  {}  [{}]  {state}",
            clean(&s.file),
            clean(&s.instances.join(", "))
        );
    }
    let _ = writeln!(
        out,
        "\nTransfers ({} committed uploads):",
        reg.transfers.len()
    );
    if reg.totals.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for t in &reg.totals {
        let _ = writeln!(
            out,
            "  {}  ->  {} [{}]  {} uploads, {} bytes, classification {}{}{}",
            clean(&t.tenant),
            clean(&t.destination),
            clean(&t.countries.join(" ")),
            t.transfers,
            t.plaintext_bytes,
            clean(&t.classifications.join(", ")),
            if t.unlinked > 0 {
                format!(", {} without a linked decision", t.unlinked)
            } else {
                String::new()
            },
            if t.verified { "" } else { "  (UNVERIFIED)" },
        );
        for r in &t.rules {
            let _ = writeln!(out, "      rule {}: {}", clean(&r.policy), clean(&r.reason));
        }
    }
    let _ = writeln!(out, "\nDenials ({}):", reg.denials.len());
    if reg.denials.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for d in &reg.denials {
        let _ = writeln!(
            out,
            "  {}  {}/{}  {} {}  ->  {} [{}]  instance {}{}",
            d.time,
            clean(&d.tenant),
            clean(&d.user),
            clean(&d.operation),
            clean(&d.object),
            clean(&d.destination),
            clean(&d.countries.join(" ")),
            clean(d.instance.as_deref().unwrap_or("-")),
            if d.verified { "" } else { "  (UNVERIFIED)" },
        );
        for r in &d.rules {
            let _ = writeln!(out, "      rule {}: {}", clean(&r.policy), clean(&r.reason));
        }
        let _ = writeln!(out, "      bundle {}", clean(&d.bundle));
    }
    out
}
