//! `gateway.toml`: load, validate, and report every problem precisely (file, key, what to fix).
//!
//! Parsing happens in two steps: serde reads the file into `raw` structs that reject unknown keys,
//! then [`Config::from_raw`] checks meaning (addresses, paths, key lines, password hashes, routes)
//! and collects *all* problems, so an operator fixes a file in one pass.

mod admin;
mod audit;
mod console;
mod destinations;
mod ftps;
mod keys;
mod limits;
mod raw;
mod s3;
mod server;
mod size;
mod tenants;
mod users;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use admin::{AdminConfig, DEFAULT_DRAIN_DELAY_SECS};
pub use audit::AuditConfig;
pub use console::{ConsoleConfig, DEFAULT_REPLAY_DAYS, OfficerConfig, OfficerRole};
pub use destinations::{DestinationConfig, DestinationKind};
pub use ftps::{FtpsConfig, client_ca_roots};
pub use keys::{KeysConfig, MasterKeyConfig};
pub use limits::LimitsConfig;
pub use s3::{S3Credentials, S3DestinationConfig, SELF_HOSTED, StorageConfig};
pub use server::{
    Algorithms, AuthConfig, DEFAULT_IDLE_TIMEOUT_SECS, DEFAULT_MAX_OPEN_HANDLES,
    DEFAULT_MAX_SESSIONS_PER_USER, DEFAULT_REORDER_WINDOW, DEFAULT_SHUTDOWN_GRACE_SECS,
    MAX_SHUTDOWN_GRACE_SECS, ServerConfig,
};
pub use size::parse_size;
pub use tenants::TenantConfig;
pub use users::{Permissions, UserConfig, parse_authorized_key};

/// A validated gateway configuration. Paths are absolute (resolved against the config file's
/// directory).
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub keys: KeysConfig,
    pub policy: PolicyConfig,
    pub audit: AuditConfig,
    pub storage: StorageConfig,
    pub limits: LimitsConfig,
    /// `None`: no `[ftps]` section, FTPS is off.
    pub ftps: Option<FtpsConfig>,
    /// `None`: no `[admin]` section, no admin listener.
    pub admin: Option<AdminConfig>,
    /// `None`: no `[console]` section, no compliance console.
    pub console: Option<ConsoleConfig>,
    pub destinations: BTreeMap<String, DestinationConfig>,
    pub tenants: BTreeMap<String, TenantConfig>,
}

#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// `None`: the embedded default policy bundle.
    pub dir: Option<PathBuf>,
    /// Reload the directory on change / SIGHUP (default true when `dir` is set).
    pub watch: bool,
}

impl PolicyConfig {
    fn new(raw: &raw::RawPolicy, resolve: &dyn Fn(&str) -> PathBuf) -> PolicyConfig {
        PolicyConfig {
            dir: raw.dir.as_deref().map(resolve),
            watch: raw.watch.unwrap_or(true),
        }
    }
}

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted TOML key, e.g. `tenants.acme.users.alice.password`.
    pub key: String,
    /// What is wrong and what to do about it.
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: cannot read the configuration file: {source}; check the path and its permissions", file.display())]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", file.display())]
    Syntax { file: PathBuf, message: String },
    #[error("{}", render_problems(file, problems))]
    Invalid {
        file: PathBuf,
        problems: Vec<Problem>,
    },
}

fn render_problems(file: &Path, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {}: {}", file.display(), p.key, p.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Names a configuration may use for tenants, users and destinations: they appear in object
/// headers, logs and SSH user names, so keep them plain.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !name.starts_with('.')
}

struct Collector {
    problems: Vec<Problem>,
}

impl Collector {
    fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }

    /// The socket addresses of `raw` (key `key[i]`); a problem for each that is not one, with
    /// `example` as the fix.
    fn addresses(&mut self, key: &str, raw: &[String], example: &str) -> Vec<std::net::SocketAddr> {
        let mut out = Vec::new();
        for (i, addr) in raw.iter().enumerate() {
            match addr.parse() {
                Ok(a) => out.push(a),
                Err(_) => self.push(
                    format!("{key}[{i}]"),
                    format!("`{addr}` is not an IP:port socket address; write e.g. \"{example}\""),
                ),
            }
        }
        out
    }

    /// `value` (or `default` if absent) if it lies in `range`; else a problem naming `key`, its
    /// range and `why`, and `default` is used.
    fn within(
        &mut self,
        value: Option<u64>,
        key: &str,
        range: std::ops::RangeInclusive<u64>,
        default: u64,
        why: &str,
    ) -> u64 {
        let v = value.unwrap_or(default);
        if range.contains(&v) {
            return v;
        }
        self.push(
            key,
            format!(
                "must lie between {} and {} ({why}); the default is {default}",
                range.start(),
                range.end()
            ),
        );
        default
    }
}

impl Config {
    /// Reads and validates `file`.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
            file: file.to_path_buf(),
            source,
        })?;
        Config::parse(file, &text)
    }

    /// Validates `text` as if read from `file` (relative paths resolve against its directory).
    pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: raw::RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            file: file.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', "\n  "),
        })?;
        let base = file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let base = if base.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            base
        };
        let base = std::path::absolute(&base).unwrap_or(base);
        let mut c = Collector {
            problems: Vec::new(),
        };
        let config = Config::from_raw(file, &base, raw, &mut c);
        if c.problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Invalid {
                file: file.to_path_buf(),
                problems: c.problems,
            })
        }
    }

    fn from_raw(file: &Path, base: &Path, raw: raw::RawConfig, c: &mut Collector) -> Config {
        let resolve = |p: &str| -> PathBuf {
            let path = Path::new(p);
            if path.is_absolute() {
                path.to_path_buf()
            } else {
                base.join(path)
            }
        };

        let server = server::server(&raw.server, &resolve, c);
        let auth = server::auth(&raw.auth, &resolve, c);
        let keys = keys::keys(&raw.keys, &raw.key_providers, &resolve, c);
        let policy = PolicyConfig::new(&raw.policy, &resolve);
        let audit = audit::audit(&raw.audit, &resolve, c);
        let storage = s3::storage(&raw.storage, &resolve, c);
        let limits = limits::limits(&raw.limits, c);
        let ftps = raw.ftps.as_ref().map(|f| ftps::ftps(f, &resolve, c));
        let admin = raw.admin.as_ref().map(|a| admin::admin(a, &resolve, c));
        let console = raw
            .console
            .as_ref()
            .map(|k| console::console(k, &resolve, c));
        if let Some(k) = &console {
            console::check_unique(k, c);
            if admin.is_none() {
                c.push(
                    "console",
                    "the console is served by the admin listener; add an [admin] section",
                );
            }
        }
        let destinations = destinations::destinations(raw.destinations, &resolve, c);
        let tenants = tenants::tenants(raw.tenants, &destinations, &resolve, c);
        keys::check_tenant_providers(&keys, &tenants, c);
        let client_ca = ftps.as_ref().is_some_and(|f| f.client_ca.is_some());
        users::check_login_methods(&tenants, !auth.user_ca_keys.is_empty(), client_ca, c);
        Config {
            file: file.to_path_buf(),
            server,
            auth,
            keys,
            policy,
            audit,
            storage,
            limits,
            ftps,
            admin,
            console,
            destinations,
            tenants,
        }
    }

    /// The user called `name` (SSH user names are unique across tenants).
    pub fn user(&self, name: &str) -> Option<&UserConfig> {
        self.tenants.values().find_map(|t| t.users.get(name))
    }
}

#[cfg(test)]
mod tests;

/// A minimal valid config (as if at /etc/eugate/gateway.toml) followed by `section`, for the
/// tests of one section.
#[cfg(test)]
fn parse_beside_minimal(section: &str) -> Result<Config, ConfigError> {
    const MINIMAL: &str = r#"
[server]
listen = ["127.0.0.1:2222"]
host_keys = ["host_ed25519"]

[keys]
keyring = "keyring.json"
master_key_file = "master.key"
"#;
    Config::parse(
        Path::new("/etc/eugate/gateway.toml"),
        &format!("{MINIMAL}\n{section}"),
    )
}
