//! `gateway.toml`: load, validate, and report every problem precisely (file, key, what to fix).
//!
//! Parsing happens in two steps: serde reads the file into `raw` structs that reject unknown keys,
//! then [`Config::from_raw`] checks meaning (addresses, paths, key lines, password hashes, routes)
//! and collects *all* problems, so an operator fixes a file in one pass.

mod audit;
mod ftps;
mod limits;
mod raw;
mod s3;
mod server;
mod size;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use russh::keys::PublicKey;

pub use audit::AuditConfig;
pub use ftps::FtpsConfig;
pub use limits::LimitsConfig;
pub use s3::{S3Credentials, S3DestinationConfig, SELF_HOSTED, StorageConfig};
pub use server::{
    Algorithms, AuthConfig, DEFAULT_IDLE_TIMEOUT_SECS, DEFAULT_MAX_OPEN_HANDLES,
    DEFAULT_MAX_SESSIONS_PER_USER, DEFAULT_REORDER_WINDOW, DEFAULT_SHUTDOWN_GRACE_SECS,
    MAX_SHUTDOWN_GRACE_SECS, ServerConfig,
};
pub use size::parse_size;

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
    pub destinations: BTreeMap<String, DestinationConfig>,
    pub tenants: BTreeMap<String, TenantConfig>,
}

#[derive(Debug, Clone)]
pub struct KeysConfig {
    pub keyring: PathBuf,
    pub master_key_file: PathBuf,
}

#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// `None`: the embedded default policy bundle.
    pub dir: Option<PathBuf>,
    /// Reload the directory on change / SIGHUP (default true when `dir` is set).
    pub watch: bool,
}

#[derive(Debug, Clone)]
pub struct DestinationConfig {
    pub name: String,
    pub kind: DestinationKind,
}

#[derive(Debug, Clone)]
pub enum DestinationKind {
    /// A local directory (on-premises disk). Its country is what the operator declared.
    Fs { root: PathBuf, country: String },
    /// An S3-compatible bucket whose region is probed and verified.
    S3(Box<S3DestinationConfig>),
}

#[derive(Debug, Clone)]
pub struct TenantConfig {
    pub name: String,
    pub destination: String,
    /// Object-key prefix inside the destination; empty or ending in `/`.
    pub prefix: String,
    /// Default data classification (kebab-case name understood by `policy::Classification`).
    pub classification: Option<String>,
    pub users: BTreeMap<String, UserConfig>,
}

#[derive(Clone)]
pub struct UserConfig {
    pub name: String,
    pub tenant: String,
    pub authorized_keys: Vec<PublicKey>,
    /// argon2id PHC string (never a plaintext password).
    pub password_hash: Option<String>,
    pub permissions: Permissions,
}

impl fmt::Debug for UserConfig {
    // The hash is not a secret in the strict sense, but it has no business in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserConfig")
            .field("name", &self.name)
            .field("tenant", &self.tenant)
            .field("authorized_keys", &self.authorized_keys.len())
            .field("password", &self.password_hash.is_some())
            .field("permissions", &self.permissions)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Permissions {
    pub read: bool,
    pub write: bool,
    pub delete: bool,
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

const CLASSIFICATIONS: &[&str] = &["public", "internal", "personal", "special-category"];

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
        let auth = server::auth(&raw.auth, c);

        let keys = KeysConfig {
            keyring: resolve(&raw.keys.keyring),
            master_key_file: resolve(&raw.keys.master_key_file),
        };
        let policy = PolicyConfig {
            dir: raw.policy.dir.as_deref().map(resolve),
            watch: raw.policy.watch.unwrap_or(true),
        };
        let audit = audit::audit(&raw.audit, &resolve, c);

        let storage = s3::storage(&raw.storage, c);
        let limits = limits::limits(&raw.limits, c);
        let ftps = raw.ftps.as_ref().map(|f| ftps::ftps(f, &resolve, c));

        // [destinations.*]
        let mut destinations = BTreeMap::new();
        for (name, d) in raw.destinations {
            let key = format!("destinations.{name}");
            if !valid_name(&name) {
                c.push(
                    &key,
                    "destination names use letters, digits, `-`, `_`, `.` (at most 64)",
                );
            }
            match d.kind.as_str() {
                "s3" => {
                    let s3 = s3::destination(&key, &d, &resolve, c);
                    destinations.insert(
                        name.clone(),
                        DestinationConfig {
                            name,
                            kind: DestinationKind::S3(Box::new(s3)),
                        },
                    );
                }
                "fs" => {
                    s3::reject_s3_keys(&key, &d, c);
                    let root = match &d.root {
                        Some(r) => resolve(r),
                        None => {
                            c.push(
                                format!("{key}.root"),
                                "missing; an fs destination needs the directory that holds the sealed objects",
                            );
                            PathBuf::new()
                        }
                    };
                    let country = match &d.country {
                        Some(cc) if cc.len() == 2 && cc.bytes().all(|b| b.is_ascii_uppercase()) => {
                            cc.clone()
                        }
                        Some(cc) => {
                            c.push(
                                format!("{key}.country"),
                                format!(
                                    "`{cc}` is not an ISO 3166-1 alpha-2 code; write e.g. \"DE\""
                                ),
                            );
                            String::new()
                        }
                        None => {
                            c.push(
                                format!("{key}.country"),
                                "missing; declare where the disk is, e.g. country = \"DE\" (the policy treats it as attested, not probed)",
                            );
                            String::new()
                        }
                    };
                    destinations.insert(
                        name.clone(),
                        DestinationConfig {
                            name,
                            kind: DestinationKind::Fs { root, country },
                        },
                    );
                }
                other => c.push(
                    format!("{key}.kind"),
                    format!("unknown destination kind `{other}`; supported: \"s3\", \"fs\""),
                ),
            }
        }

        // [tenants.*]
        let mut tenants = BTreeMap::new();
        let mut user_owner: BTreeMap<String, String> = BTreeMap::new();
        for (tname, t) in raw.tenants {
            let key = format!("tenants.{tname}");
            if !valid_name(&tname) {
                c.push(
                    &key,
                    "tenant names use letters, digits, `-`, `_`, `.` (at most 64)",
                );
            }
            if !destinations.contains_key(&t.route.destination) {
                c.push(
                    format!("{key}.route.destination"),
                    format!(
                        "no destination `{}`; define [destinations.{}] or pick one of: {}",
                        t.route.destination,
                        t.route.destination,
                        destinations.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                );
            }
            let prefix = t.route.prefix.clone();
            if !prefix.is_empty()
                && (!prefix.ends_with('/')
                    || prefix.starts_with('/')
                    || prefix
                        .split('/')
                        .any(|s| s == ".." || s == "." || s.starts_with('.'))
                    || prefix.contains("//")
                    || prefix.contains('\0'))
            {
                c.push(
                    format!("{key}.route.prefix"),
                    format!(
                        "`{prefix}` must be relative, end with `/` and contain no `.`/`..` or hidden segments, e.g. \"{tname}/\""
                    ),
                );
            }
            let classification = match t.classification {
                Some(cl) if CLASSIFICATIONS.contains(&cl.as_str()) => Some(cl),
                Some(cl) => {
                    c.push(
                        format!("{key}.classification"),
                        format!(
                            "`{cl}` is unknown; use one of {}",
                            CLASSIFICATIONS.join(", ")
                        ),
                    );
                    None
                }
                None => None,
            };
            let mut users = BTreeMap::new();
            for (uname, u) in t.users {
                let ukey = format!("{key}.users.{uname}");
                if !valid_name(&uname) {
                    c.push(
                        &ukey,
                        "user names use letters, digits, `-`, `_`, `.` (at most 64)",
                    );
                }
                if let Some(other) = user_owner.insert(uname.clone(), tname.clone()) {
                    c.push(
                        &ukey,
                        format!(
                            "user `{uname}` also exists in tenant `{other}`; SSH user names must be unique across tenants"
                        ),
                    );
                }
                if u.password.is_some() {
                    c.push(
                        format!("{ukey}.password"),
                        "plaintext passwords are refused; run `eugate passwd` and put its output in password_hash",
                    );
                }
                let password_hash = u.password_hash.clone();
                if let Some(h) = &password_hash
                    && let Err(e) = check_password_hash(h)
                {
                    c.push(format!("{ukey}.password_hash"), e);
                }
                let mut authorized_keys = Vec::new();
                for (i, line) in u.authorized_keys.iter().enumerate() {
                    match parse_authorized_key(line) {
                        Ok(Some(k)) => authorized_keys.push(k),
                        Ok(None) => {}
                        Err(e) => c.push(format!("{ukey}.authorized_keys[{i}]"), e),
                    }
                }
                if let Some(f) = &u.authorized_keys_file {
                    let path = resolve(f);
                    match std::fs::read_to_string(&path) {
                        Ok(text) => {
                            for (n, line) in text.lines().enumerate() {
                                match parse_authorized_key(line) {
                                    Ok(Some(k)) => authorized_keys.push(k),
                                    Ok(None) => {}
                                    Err(e) => c.push(
                                        format!("{ukey}.authorized_keys_file"),
                                        format!("{} line {}: {e}", path.display(), n + 1),
                                    ),
                                }
                            }
                        }
                        Err(e) => c.push(
                            format!("{ukey}.authorized_keys_file"),
                            format!("cannot read {}: {e}; fix the path", path.display()),
                        ),
                    }
                }
                if authorized_keys.is_empty() && password_hash.is_none() {
                    c.push(
                        &ukey,
                        "no way to log in; add authorized_keys, authorized_keys_file or password_hash",
                    );
                }
                let permissions = match &u.permissions {
                    None => Permissions {
                        read: true,
                        write: true,
                        delete: false,
                    },
                    Some(list) => {
                        let mut p = Permissions::default();
                        for perm in list {
                            match perm.as_str() {
                                "read" => p.read = true,
                                "write" => p.write = true,
                                "delete" => p.delete = true,
                                other => c.push(
                                    format!("{ukey}.permissions"),
                                    format!("unknown permission `{other}`; use \"read\", \"write\", \"delete\""),
                                ),
                            }
                        }
                        p
                    }
                };
                users.insert(
                    uname.clone(),
                    UserConfig {
                        name: uname,
                        tenant: tname.clone(),
                        authorized_keys,
                        password_hash,
                        permissions,
                    },
                );
            }
            tenants.insert(
                tname.clone(),
                TenantConfig {
                    name: tname,
                    destination: t.route.destination,
                    prefix,
                    classification,
                    users,
                },
            );
        }
        check_isolation(&destinations, &tenants, c);
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
            destinations,
            tenants,
        }
    }

    /// The user called `name` (SSH user names are unique across tenants).
    pub fn user(&self, name: &str) -> Option<&UserConfig> {
        self.tenants.values().find_map(|t| t.users.get(name))
    }
}

/// Where a tenant's objects live, `/`-terminated: tenants overlap when one's space begins with
/// the other's. Destinations that point at the same storage (one fs root inside another, one
/// bucket on one endpoint) share a space, so two of them cannot be used to get around the check.
fn tenant_space(d: &DestinationConfig, prefix: &str) -> String {
    let base = match &d.kind {
        DestinationKind::Fs { root, .. } => {
            // Lexical: `..` and `.` are resolved, symbolic links are not.
            let mut parts: Vec<String> = Vec::new();
            for comp in root.components() {
                match comp {
                    std::path::Component::Normal(n) => parts.push(n.to_string_lossy().into()),
                    std::path::Component::ParentDir => {
                        parts.pop();
                    }
                    _ => {}
                }
            }
            format!("fs:/{}", parts.join("/"))
        }
        DestinationKind::S3(s3) => format!(
            "s3:{}/{}",
            s3.endpoint
                .as_deref()
                .map(|e| e.trim_end_matches('/').to_ascii_lowercase())
                .unwrap_or_else(|| "aws".into()),
            s3.bucket
        ),
    };
    let base = base.trim_end_matches('/');
    format!("{base}/{prefix}")
}

/// Tenants must not see each other: on one storage, no tenant's prefix may begin with another's
/// (equal prefixes and an empty prefix included), or the outer tenant could list, rename and
/// delete the inner one's objects.
fn check_isolation(
    destinations: &BTreeMap<String, DestinationConfig>,
    tenants: &BTreeMap<String, TenantConfig>,
    c: &mut Collector,
) {
    let spaces: Vec<(&TenantConfig, String)> = tenants
        .values()
        .filter_map(|t| {
            let d = destinations.get(&t.destination)?;
            Some((t, tenant_space(d, &t.prefix)))
        })
        .collect();
    for (i, (a, sa)) in spaces.iter().enumerate() {
        for (b, sb) in &spaces[i + 1..] {
            // `outer` is the tenant whose space holds the other's.
            let ((outer, _), (inner, _)) = if sb.starts_with(sa.as_str()) {
                ((a, sa), (b, sb))
            } else if sa.starts_with(sb.as_str()) {
                ((b, sb), (a, sa))
            } else {
                continue;
            };
            let (on, ip) = (&outer.name, &inner.name);
            let (op, pp) = (
                format!("\"{}\"", outer.prefix),
                format!("\"{}\"", inner.prefix),
            );
            let what = if outer.destination != inner.destination {
                format!(
                    "{op} on destination `{}` holds tenant `{ip}`'s prefix {pp} on destination `{}`: both destinations point at the same storage",
                    outer.destination, inner.destination
                )
            } else if outer.prefix.is_empty() {
                format!(
                    "is empty, but destination `{}` is shared with tenant `{ip}` (prefix {pp}): an empty prefix is the whole destination",
                    outer.destination
                )
            } else if outer.prefix == inner.prefix {
                format!(
                    "{op} is also tenant `{ip}`'s prefix on destination `{}`",
                    outer.destination
                )
            } else {
                format!(
                    "{op} contains tenant `{ip}`'s prefix {pp} on destination `{}`",
                    outer.destination
                )
            };
            c.push(
                format!("tenants.{on}.route.prefix"),
                format!(
                    "{what}, so tenant `{on}` could list, rename and delete tenant `{ip}`'s objects; \
                     give each tenant sharing a storage its own prefix, neither beginning with the other, \
                     e.g. \"{on}/\" and \"{ip}/\""
                ),
            );
        }
    }
}

/// Accepts only argon2id PHC strings.
fn check_password_hash(h: &str) -> Result<(), String> {
    match argon2::PasswordHash::new(h) {
        Ok(p) if p.algorithm.as_str() == "argon2id" => Ok(()),
        Ok(p) => Err(format!(
            "uses `{}`; only argon2id hashes are accepted; create one with `eugate passwd`",
            p.algorithm
        )),
        Err(_) => Err(
            "is not an argon2id PHC string ($argon2id$v=19$...); create one with `eugate passwd`"
                .to_string(),
        ),
    }
}

/// One authorized_keys line: `ALGO BASE64 [comment]`. Blank lines and `#` comments give `None`.
/// Options (`from=`, `command=`...) are refused: the gateway would not honour them.
pub fn parse_authorized_key(line: &str) -> Result<Option<PublicKey>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let first = line.split_whitespace().next().unwrap_or_default();
    let known = first.starts_with("ssh-")
        || first.starts_with("ecdsa-sha2-")
        || first.starts_with("sk-")
        || first.starts_with("rsa-");
    if !known {
        return Err(format!(
            "starts with `{}`: authorized_keys options are not supported; keep only `ALGORITHM BASE64 [comment]`",
            first.chars().take(40).collect::<String>()
        ));
    }
    PublicKey::from_openssh(line).map(Some).map_err(|e| {
        format!("not a valid OpenSSH public key ({e}); paste the line of the .pub file")
    })
}

#[cfg(test)]
mod tests;
