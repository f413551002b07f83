//! `eugate audit verify FILE`: check the hash chain of an audit log.
//! `eugate audit register …`: the transfer register (`audit::register`) as text, CSV or JSON.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};

use crate::audit::register::{self, Period, Query, RegisterError};
use crate::audit::{VerifyError, verify_file};

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Verify every record's hash and the chain; names the first bad line (exit 1).
    Verify {
        /// The audit log (JSON lines).
        file: PathBuf,
    },
    /// The transfer register: per destination and country set, the uploads committed in a
    /// period, their volume and the rules that allowed them, and every denial.
    Register(RegisterArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// A readable summary.
    Text,
    /// One table with a `kind` column (source, total, transfer, denial), for a spreadsheet.
    Csv,
    /// Everything, with stable field names (README, "Transfer register").
    Json,
}

#[derive(Debug, Args)]
struct RegisterArgs {
    /// Only this tenant (default: every tenant).
    #[arg(long)]
    tenant: Option<String>,
    /// Start of the period, included: 2026-10-01 (midnight UTC) or 2026-10-01T08:00:00Z.
    #[arg(long)]
    from: String,
    /// End of the period, excluded: 2027-01-01 or a date-time.
    #[arg(long)]
    to: String,
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// Write here instead of standard output.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Include logs whose chain is broken (their rows are marked unverified) instead of refusing.
    #[arg(long)]
    allow_unverified: bool,
    /// Audit logs (JSON lines), one or more: one per gateway instance.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        AuditCommand::Verify { file } => match verify_file(&file) {
            Ok(report) => {
                println!(
                    "ok: {} records, chain intact; head {} (record it elsewhere to detect truncation)",
                    report.records, report.head
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(VerifyError::Broken { line, reason }) => {
                eprintln!("{}:{line}: {reason}", file.display());
                Ok(ExitCode::from(1))
            }
            Err(e @ VerifyError::Io(_)) => Err(e.into()),
        },
        AuditCommand::Register(args) => run_register(args),
    }
}

fn run_register(args: RegisterArgs) -> anyhow::Result<ExitCode> {
    let from = register::parse_time(&args.from).context("--from")?;
    let to = register::parse_time(&args.to).context("--to")?;
    let query = Query {
        tenant: args.tenant,
        period: Period { from, to },
        allow_unverified: args.allow_unverified,
    };
    let reg = match register::build(&args.files, &query) {
        Err(e @ RegisterError::Unverified { .. }) => {
            return Err(anyhow::Error::new(e).context(
                "refusing to build a register from an unverified audit log (check it with `eugate audit verify`; --allow-unverified includes its records, marked unverified)",
            ));
        }
        other => other?,
    };
    for s in reg.sources.iter().filter(|s| !s.verified()) {
        eprintln!(
            "warning: {} is broken at line {}: its records are included and marked unverified",
            s.file,
            s.broken_line.unwrap_or_default()
        );
    }
    let bytes = match args.format {
        Format::Text => register::to_text(&reg).into_bytes(),
        Format::Csv => register::to_csv(&reg)?,
        Format::Json => {
            let mut j = reg.to_json()?;
            j.push('\n');
            j.into_bytes()
        }
    };
    match &args.output {
        Some(path) => std::fs::write(path, &bytes)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => {
            use std::io::Write;
            std::io::stdout()
                .write_all(&bytes)
                .context("cannot write to standard output")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
