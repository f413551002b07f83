//! `eugate audit verify FILE`: check the hash chain of an audit log.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

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
    }
}
