//! The command-line edge. One file per subcommand family; `anyhow` lives only here.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod audit;
pub mod config;
pub mod crypt;
pub mod demo;
pub mod destinations;
pub mod keys;
mod keys_list;
pub mod passwd;
pub mod policy;
pub mod serve;

/// eugate — SFTP gateway with per-tenant encryption and verified data residency.
#[derive(Debug, Parser)]
#[command(name = "eugate", version, about, long_about = None)]
pub struct Cli {
    /// More log output (-v debug, -vv trace). `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Log lines as text (default) or as one JSON object per line, for log shippers.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Gateway configuration tools.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Read a password from stdin and print its argon2id hash for `password_hash`.
    Passwd,
    /// Run the SFTP gateway.
    Serve(serve::ServeArgs),
    /// Start a ready-to-use local gateway in ./eugate-demo (keys, config, store) and print how to connect.
    Demo(demo::DemoArgs),
    /// Manage keys: init, add-tenant, rotate, shred, list, rewrap, probe.
    Keys(keys::KeysArgs),
    /// Seal a local file for a tenant in the eugate object format.
    Encrypt(crypt::EncryptArgs),
    /// Verify and open a sealed object; no output file unless everything verifies.
    Decrypt(crypt::DecryptArgs),
    /// Audit log tools: verify the hash chain, the transfer register.
    Audit(audit::AuditArgs),
    /// Residency policies: check, explain, test, diff.
    Policy(policy::PolicyArgs),
    /// Probe every destination: observed region, evidence, verified or quarantined (exit 1).
    Destinations(destinations::DestinationsArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message`, and each event's
    /// fields at the top level (e.g. `event`, `outcome`, `tenant`, `protocol`).
    Json,
}

/// Logs go to stderr so that commands writing data to stdout stay pipeable.
pub fn init_tracing(verbose: u8, format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Colour only for a person at a terminal: log files and journals get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(ansi).try_init(),
        // Flattened: an event's fields sit beside `message`, where shippers index them.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
}

/// Runs one command; the exit code is the command's own (e.g. `policy explain` exits 3 on deny).
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Config(cmd) => config::run(cmd),
        Command::Passwd => passwd::run().map(|()| ExitCode::SUCCESS),
        Command::Serve(args) => serve::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Keys(args) => keys::run(args).map(|()| ExitCode::SUCCESS),
        Command::Encrypt(args) => crypt::encrypt(args).map(|()| ExitCode::SUCCESS),
        Command::Decrypt(args) => crypt::decrypt(args).map(|()| ExitCode::SUCCESS),
        Command::Audit(args) => audit::run(args),
        Command::Policy(args) => policy::run(args),
        Command::Destinations(args) => destinations::run(args),
    }
}
