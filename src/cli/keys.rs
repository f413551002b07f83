//! `eugate keys …`: manage tenant key-encryption keys.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use crate::keys::Keyring;

/// Where the keyring and its master key live. Shared by every command that needs keys.
#[derive(Debug, Clone, Args)]
pub struct KeyFiles {
    /// The sealed keyring file.
    #[arg(long, env = "EUGATE_KEYRING", value_name = "PATH")]
    pub keyring: PathBuf,
    /// The master key file that seals the keyring (keep it apart from the keyring's backups).
    #[arg(long, env = "EUGATE_MASTER_KEY_FILE", value_name = "PATH")]
    pub master_key_file: PathBuf,
}

impl KeyFiles {
    pub fn open(&self) -> anyhow::Result<Keyring> {
        Keyring::open(&self.keyring, &self.master_key_file).context("cannot open the keyring")
    }
}

/// [`KeyFiles`] for `keys`, where the flags may stand before or after the subcommand
/// (`eugate keys --keyring X init` and `eugate keys init --keyring X`), as the README shows them.
/// clap refuses a global argument that is also required, so both are optional here and
/// [`KeysKeyFiles::resolve`] reports a missing one as clap would.
#[derive(Debug, Clone, Args)]
struct KeysKeyFiles {
    /// The sealed keyring file.
    #[arg(long, global = true, env = "EUGATE_KEYRING", value_name = "PATH")]
    keyring: Option<PathBuf>,
    /// The master key file that seals the keyring (keep it apart from the keyring's backups).
    #[arg(
        long,
        global = true,
        env = "EUGATE_MASTER_KEY_FILE",
        value_name = "PATH"
    )]
    master_key_file: Option<PathBuf>,
}

impl KeysKeyFiles {
    /// Both paths, or clap's usage error (exit 2) naming each missing flag and its variable.
    fn resolve(self) -> KeyFiles {
        let mut missing = Vec::new();
        if self.keyring.is_none() {
            missing.push("  --keyring <PATH> (or EUGATE_KEYRING)");
        }
        if self.master_key_file.is_none() {
            missing.push("  --master-key-file <PATH> (or EUGATE_MASTER_KEY_FILE)");
        }
        match (self.keyring, self.master_key_file) {
            (Some(keyring), Some(master_key_file)) => KeyFiles {
                keyring,
                master_key_file,
            },
            _ => {
                // Built, so that the usage line names `eugate keys`.
                let mut cli = <super::Cli as clap::CommandFactory>::command();
                cli.build();
                let mut keys = cli.find_subcommand("keys").cloned().unwrap_or(cli);
                keys.error(
                    clap::error::ErrorKind::MissingRequiredArgument,
                    format!(
                        "the following required arguments were not provided:\n{}",
                        missing.join("\n")
                    ),
                )
                .exit()
            }
        }
    }
}

#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(flatten)]
    files: KeysKeyFiles,
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create the master key and an empty keyring (both 0600) where absent.
    Init,
    /// Give a new tenant its first key.
    AddTenant { tenant: String },
    /// Make a new key version active; older versions still decrypt.
    Rotate { tenant: String },
    /// Destroy every key of a tenant: its objects become undecryptable (GDPR Art. 17). Irreversible.
    Shred {
        tenant: String,
        /// Confirm that the tenant's data shall become unrecoverable.
        #[arg(long)]
        yes: bool,
    },
    /// List tenants, key ids and versions (never key bytes).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: KeysArgs) -> anyhow::Result<()> {
    let files = &args.files.resolve();
    match args.command {
        KeysCommand::Init => {
            let existed = files.keyring.exists();
            let ring = Keyring::init(&files.keyring, &files.master_key_file)
                .context("cannot initialise the keyring")?;
            if existed {
                println!(
                    "keyring {} already exists ({} tenants); nothing created",
                    files.keyring.display(),
                    ring.list().len()
                );
            } else {
                println!(
                    "created keyring {} sealed under {}",
                    files.keyring.display(),
                    files.master_key_file.display()
                );
                println!(
                    "keep the master key file apart from keyring backups: either alone reveals nothing"
                );
            }
        }
        KeysCommand::AddTenant { tenant } => {
            let mut ring = files.open()?;
            let info = ring.add_tenant(&tenant)?;
            ring.save()?;
            println!(
                "tenant {} key {} version {}",
                info.tenant, info.key_id, info.active_version
            );
        }
        KeysCommand::Rotate { tenant } => {
            let mut ring = files.open()?;
            let info = ring.rotate(&tenant)?;
            ring.save()?;
            println!(
                "tenant {} key {} active version {} (older versions still decrypt)",
                info.tenant, info.key_id, info.active_version
            );
        }
        KeysCommand::Shred { tenant, yes } => {
            if !yes {
                bail!(
                    "shredding makes every object of tenant {tenant:?} permanently undecryptable; \
                     run again with --yes to confirm"
                );
            }
            let mut ring = files.open()?;
            let info = ring.shred(&tenant)?;
            ring.save()?;
            println!(
                "tenant {} key {} shredded ({} versions destroyed); delete old keyring backups too",
                info.tenant,
                info.key_id,
                info.versions.len()
            );
        }
        KeysCommand::List { json } => {
            let ring = files.open()?;
            let keys = ring.list();
            if json {
                let out = serde_json::json!({
                    "version": ring.version(),
                    "tenants": keys,
                    "shredded": ring.shredded(),
                });
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!(
                    "{:<24} {:<20} {:>6}  versions",
                    "tenant", "key id", "active"
                );
                for k in keys {
                    let versions: Vec<String> = k.versions.iter().map(u32::to_string).collect();
                    println!(
                        "{:<24} {:<20} {:>6}  {}",
                        k.tenant,
                        k.key_id,
                        k.active_version,
                        versions.join(",")
                    );
                }
                for s in ring.shredded() {
                    println!("{:<24} {:<20} shredded", s.tenant, s.key_id);
                }
                // What a running gateway shows in /readyz once it has loaded this file.
                println!("keyring version {}", ring.version());
            }
        }
    }
    Ok(())
}
