//! `eugate config check FILE`: validate a gateway configuration without starting anything.

use std::path::PathBuf;

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate FILE; print every problem as `file: key: what is wrong; what to do`.
    Check {
        /// The gateway configuration (gateway.toml).
        file: PathBuf,
    },
}

pub fn run(cmd: ConfigCommand) -> anyhow::Result<std::process::ExitCode> {
    match cmd {
        ConfigCommand::Check { file } => match eugate_config_load(&file) {
            Ok(summary) => {
                println!("{}: ok ({summary})", file.display());
                Ok(std::process::ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("{e}");
                Ok(std::process::ExitCode::from(2))
            }
        },
    }
}

fn eugate_config_load(file: &std::path::Path) -> Result<String, crate::config::ConfigError> {
    let c = crate::config::Config::load(file)?;
    let users: usize = c.tenants.values().map(|t| t.users.len()).sum();
    Ok(format!(
        "{} listen address(es), {} destination(s), {} tenant(s), {} user(s)",
        c.server.listen.len(),
        c.destinations.len(),
        c.tenants.len(),
        users
    ))
}
