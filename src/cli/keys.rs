//! `eugate keys …`: manage tenant key-encryption keys.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use crate::config::Config;
use crate::keys::{Keyring, MasterKey};

/// Where the keyring and its master key live: two files, or the `[keys]` section of a gateway
/// configuration (whose master key may be held by a provider). Shared by every command that
/// needs keys.
#[derive(Debug, Clone, Args)]
pub struct KeyFiles {
    /// The sealed keyring file.
    #[arg(
        long,
        env = "EUGATE_KEYRING",
        value_name = "PATH",
        required_unless_present = "config"
    )]
    pub keyring: Option<PathBuf>,
    /// The master key file that seals the keyring (keep it apart from the keyring's backups).
    #[arg(
        long,
        env = "EUGATE_MASTER_KEY_FILE",
        value_name = "PATH",
        required_unless_present = "config"
    )]
    pub master_key_file: Option<PathBuf>,
    /// A gateway configuration: its [keys] and [key_providers] say where the keys are.
    #[arg(long, env = "EUGATE_CONFIG", value_name = "FILE", conflicts_with_all = ["keyring", "master_key_file"])]
    pub config: Option<PathBuf>,
}

impl KeyFiles {
    /// The keys these flags name, with a runtime for the provider calls.
    pub fn source(&self) -> anyhow::Result<KeySource> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        match (&self.config, &self.keyring, &self.master_key_file) {
            (Some(file), _, _) => {
                let config = Config::load(file)?;
                let master = rt
                    .block_on(MasterKey::from_config(&config.keys))
                    .context("cannot set up the master key named in [keys]")?;
                Ok(KeySource {
                    keyring: config.keys.keyring.clone(),
                    master,
                    config: Some(config),
                    rt,
                })
            }
            (None, Some(keyring), Some(master)) => Ok(KeySource {
                keyring: keyring.clone(),
                master: MasterKey::File(master.clone()),
                config: None,
                rt,
            }),
            _ => bail!(
                "name the keys with --config FILE, or with both --keyring and --master-key-file"
            ),
        }
    }

    pub fn open(&self) -> anyhow::Result<Keyring> {
        self.source()?.open()
    }
}

/// An opened description of the keys: the keyring path, its master key, and (with `--config`)
/// the configuration, whose hold-your-own-key providers `decrypt` may need.
pub struct KeySource {
    pub keyring: PathBuf,
    pub master: MasterKey,
    pub config: Option<Config>,
    rt: tokio::runtime::Runtime,
}

impl KeySource {
    pub fn open(&self) -> anyhow::Result<Keyring> {
        self.block_on(self.master.open(&self.keyring))
            .context("cannot open the keyring")
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}

/// [`KeyFiles`] for `keys`, where the flags may stand before or after the subcommand
/// (`eugate keys --keyring X init` and `eugate keys init --keyring X`), as the README shows them.
/// clap refuses a global argument that is also required, so all are optional here and
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
    /// A gateway configuration whose [keys] section names the keyring and its master key
    /// (a file or a key provider), instead of --keyring and --master-key-file.
    #[arg(long, global = true, env = "EUGATE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

impl KeysKeyFiles {
    /// The config, or both paths, or clap's usage error (exit 2) naming each missing flag.
    fn resolve(self) -> KeyFiles {
        if self.config.is_some() {
            return KeyFiles {
                keyring: None,
                master_key_file: None,
                config: self.config,
            };
        }
        let mut missing = Vec::new();
        if self.keyring.is_none() {
            missing.push("  --keyring <PATH> (or EUGATE_KEYRING)");
        }
        if self.master_key_file.is_none() {
            missing.push("  --master-key-file <PATH> (or EUGATE_MASTER_KEY_FILE)");
        }
        if missing.is_empty() {
            return KeyFiles {
                keyring: self.keyring,
                master_key_file: self.master_key_file,
                config: None,
            };
        }
        missing.push("  or --config <FILE> (or EUGATE_CONFIG) instead of both");
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

#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(flatten)]
    files: KeysKeyFiles,
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create the master key (a file; with a provider, a new wrapped keyring key) and an empty
    /// keyring (0600) where absent.
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
    /// List what seals the keyring, tenants, key ids and versions, and (with --config) the
    /// hold-your-own-key tenants' providers (never key bytes).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Seal the keyring under a fresh keyring key wrapped by the configured master key's
    /// current version (after rotating it at the provider), or move it from a master key file
    /// to the configured provider. Tenant keys, and so every stored object, are untouched.
    Rewrap {
        /// The master key file that seals the keyring now (moving it to a provider).
        #[arg(long, value_name = "PATH")]
        from_master_key_file: Option<PathBuf>,
    },
    /// Ask every configured key provider (the master key's and the tenants') to wrap and unwrap
    /// a random key; exits 1 if any fails (needs --config).
    Probe {
        /// Time this many wraps and unwraps per provider and print their median and 90th
        /// percentile (what a hold-your-own-key upload adds at OPEN, a download at open).
        #[arg(long, default_value_t = 1, value_name = "N")]
        repeat: u32,
    },
}

pub fn run(args: KeysArgs) -> anyhow::Result<()> {
    let files = args.files.resolve();
    let keys = files.source()?;
    match args.command {
        KeysCommand::Init => init(&keys)?,
        KeysCommand::AddTenant { tenant } => {
            let mut ring = keys.open()?;
            let info = ring.add_tenant(&tenant)?;
            ring.save()?;
            println!(
                "tenant {} key {} version {}",
                info.tenant, info.key_id, info.active_version
            );
        }
        KeysCommand::Rotate { tenant } => {
            let mut ring = keys.open()?;
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
            let mut ring = keys.open()?;
            let info = ring.shred(&tenant)?;
            ring.save()?;
            println!(
                "tenant {} key {} shredded ({} versions destroyed); delete old keyring backups too",
                info.tenant,
                info.key_id,
                info.versions.len()
            );
        }
        KeysCommand::List { json } => super::keys_list::list(&keys, json)?,
        KeysCommand::Rewrap {
            from_master_key_file,
        } => rewrap(&keys, from_master_key_file)?,
        KeysCommand::Probe { repeat } => super::keys_list::probe(&keys, repeat)?,
    }
    Ok(())
}

fn init(keys: &KeySource) -> anyhow::Result<()> {
    let existed = keys.keyring.exists();
    let ring = keys
        .block_on(keys.master.init(&keys.keyring))
        .context("cannot initialise the keyring")?;
    if existed {
        println!(
            "keyring {} already exists ({} tenants); nothing created",
            keys.keyring.display(),
            ring.list().len()
        );
        return Ok(());
    }
    match &keys.master {
        MasterKey::File(master) => {
            println!(
                "created keyring {} sealed under {}",
                keys.keyring.display(),
                master.display()
            );
            println!(
                "keep the master key file apart from keyring backups: either alone reveals nothing"
            );
        }
        MasterKey::Provider(p) => println!(
            "created keyring {} sealed by {} (no key material on disk)",
            keys.keyring.display(),
            p.key_ref()
        ),
    }
    Ok(())
}

fn rewrap(keys: &KeySource, from: Option<PathBuf>) -> anyhow::Result<()> {
    let mut ring = match &from {
        Some(file) => Keyring::open(&keys.keyring, file)
            .with_context(|| format!("cannot open the keyring with {}", file.display()))?,
        None => keys.open()?,
    };
    let before = ring.version();
    let seal = keys
        .block_on(keys.master.new_seal(&keys.keyring))
        .context("cannot wrap a new keyring key")?;
    ring.reseal(seal);
    ring.save()?;
    // The proof: it opens again with the configured master key, holding the same keys.
    let again = keys.open()?;
    if again.version() != before {
        bail!("the re-sealed keyring does not hold the same keys; restore it from a backup");
    }
    let (kind, version) = again.sealed_by();
    println!(
        "keyring {} re-sealed by {} ({}{}); tenant keys unchanged (keyring version {})",
        keys.keyring.display(),
        keys.master.describe(),
        kind.as_str(),
        version
            .map(|v| format!(" key version {v}"))
            .unwrap_or_default(),
        before
    );
    if from.is_some() {
        println!(
            "the old master key file no longer opens this keyring's new copies; keep it only as long as older keyring backups"
        );
    }
    Ok(())
}
