//! `kind = "s3"` destinations and the `[storage]` section: validated here so that `mod.rs` stays
//! about the gateway as a whole. Secrets are never accepted inline: credentials name an
//! environment prefix, a 0600 file, or the standard AWS chain.

use std::path::PathBuf;
use std::time::Duration;

use super::Collector;
use super::raw::{RawDestination, RawStorage};
use super::size::size_or;

/// Defaults for `[storage]`, also documented in the README.
pub const DEFAULT_MEMORY_BUDGET: u64 = 256 << 20;
pub const DEFAULT_PARTS_IN_FLIGHT: usize = 2;
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 30;
pub const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 5;
pub const DEFAULT_VERIFY_INTERVAL_SECS: u64 = 300;
/// Relative to the config file's directory, like every path in it.
pub const DEFAULT_UPLOAD_JOURNAL: &str = "uploads.journal";
/// The provider id for stores whose operator declares the country (Garage, MinIO, Ceph…).
pub const SELF_HOSTED: &str = "self-hosted";

/// Process-wide limits of the storage layer.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// Bytes all upload part buffers together may hold; a full budget stalls the SSH channels.
    pub memory_budget: u64,
    /// Parts of one upload sent concurrently.
    pub parts_in_flight: usize,
    /// Bound on one S3 request attempt: a frozen store fails an upload instead of hanging it.
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// The multipart uploads this instance has open, so that a restart aborts exactly those.
    pub upload_journal: PathBuf,
    /// The stores may hold objects written before format version 3 (whose header length varies),
    /// so a listing reads each file's header for its size. `false`: every object is version 3,
    /// and a listing computes sizes from the stored lengths alone (no request per file).
    pub legacy_objects: bool,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            memory_budget: DEFAULT_MEMORY_BUDGET,
            parts_in_flight: DEFAULT_PARTS_IN_FLIGHT,
            request_timeout: Duration::from_secs(DEFAULT_REQUEST_TIMEOUT_SECS),
            connect_timeout: Duration::from_secs(DEFAULT_CONNECT_TIMEOUT_SECS),
            upload_journal: PathBuf::from(DEFAULT_UPLOAD_JOURNAL),
            legacy_objects: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum S3Credentials {
    /// `<PREFIX>_ACCESS_KEY_ID` and `<PREFIX>_SECRET_ACCESS_KEY` from the environment.
    Env { prefix: String },
    /// A 0600 TOML file with `access_key_id` and `secret_access_key`.
    File(PathBuf),
    /// The standard AWS chain (environment, profile, web identity, container, instance role).
    AwsChain,
}

#[derive(Debug, Clone)]
pub struct S3DestinationConfig {
    /// Catalogue provider id (`aws`, `scaleway`, …) or [`SELF_HOSTED`].
    pub provider: String,
    /// `None`: the provider's default endpoint (AWS only).
    pub endpoint: Option<String>,
    pub bucket: String,
    /// The region the bucket must report; anything else quarantines the destination.
    pub region: String,
    /// Self-hosted stores only: the country their operator declares.
    pub country: Option<String>,
    /// Self-hosted stores only: the country whose law governs their operator (`None` =
    /// `country`). Catalogued providers' operators are in policies/providers.toml.
    pub operator_country: Option<String>,
    pub path_style: bool,
    pub credentials: S3Credentials,
    pub ca_bundle: Option<PathBuf>,
    pub verify_interval: Duration,
}

impl S3DestinationConfig {
    /// Host of the endpoint (without port), for the provider's endpoint-naming check.
    pub fn endpoint_host(&self) -> Option<String> {
        let e = self.endpoint.as_deref()?;
        let rest = e.split_once("://").map(|(_, r)| r).unwrap_or(e);
        let authority = rest.split('/').next().unwrap_or(rest);
        let host = if let Some(v6) = authority.strip_prefix('[') {
            v6.split(']').next().unwrap_or(v6)
        } else {
            authority
                .rsplit_once(':')
                .map(|(h, _)| h)
                .unwrap_or(authority)
        };
        Some(host.to_ascii_lowercase())
    }

    /// Whether requests go over TLS (AWS's default endpoint always does).
    pub fn tls(&self) -> bool {
        self.endpoint
            .as_deref()
            .is_none_or(|e| e.to_ascii_lowercase().starts_with("https://"))
    }
}

pub(super) fn storage(
    raw: &RawStorage,
    resolve: &dyn Fn(&str) -> PathBuf,
    c: &mut Collector,
) -> StorageConfig {
    let d = StorageConfig::default();
    let memory_budget = size_or(
        &raw.memory_budget,
        "storage.memory_budget",
        d.memory_budget,
        "256MiB",
        c,
    );
    // One upload needs at least one 8 MiB part buffer; below that nothing could move.
    if !(16 << 20..=64 << 30).contains(&memory_budget) {
        c.push(
            "storage.memory_budget",
            "must lie between 16MiB and 64GiB (each upload holds 8 MiB part buffers); the default is \"256MiB\"",
        );
    }
    let parts_in_flight = raw.parts_in_flight.unwrap_or(d.parts_in_flight as u32) as usize;
    if !(1..=64).contains(&parts_in_flight) {
        c.push(
            "storage.parts_in_flight",
            "must lie between 1 and 64; the default 2 keeps a link busy without hoarding memory",
        );
    }
    let request_timeout = raw
        .request_timeout_secs
        .unwrap_or(DEFAULT_REQUEST_TIMEOUT_SECS);
    if !(1..=3600).contains(&request_timeout) {
        c.push(
            "storage.request_timeout_secs",
            "must lie between 1 and 3600 seconds (an 8 MiB part must fit in it)",
        );
    }
    let connect_timeout = raw
        .connect_timeout_secs
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT_SECS);
    if !(1..=600).contains(&connect_timeout) {
        c.push(
            "storage.connect_timeout_secs",
            "must lie between 1 and 600 seconds",
        );
    }
    StorageConfig {
        memory_budget,
        parts_in_flight,
        request_timeout: Duration::from_secs(request_timeout),
        connect_timeout: Duration::from_secs(connect_timeout),
        upload_journal: resolve(
            raw.upload_journal
                .as_deref()
                .unwrap_or(DEFAULT_UPLOAD_JOURNAL),
        ),
        legacy_objects: raw.legacy_objects.unwrap_or(d.legacy_objects),
    }
}

/// Validates one `kind = "s3"` destination; `resolve` makes paths absolute.
pub(super) fn destination(
    key: &str,
    d: &RawDestination,
    resolve: &dyn Fn(&str) -> PathBuf,
    c: &mut Collector,
) -> S3DestinationConfig {
    if d.root.is_some() {
        c.push(
            format!("{key}.root"),
            "belongs to fs destinations; an s3 destination names endpoint and bucket",
        );
    }
    let provider = match d.provider.as_deref() {
        Some(p) if !p.is_empty() => p.to_ascii_lowercase(),
        _ => {
            c.push(
                format!("{key}.provider"),
                "missing; name the catalogue provider (e.g. \"aws\", \"scaleway\") or \"self-hosted\" for Garage, MinIO, Ceph",
            );
            String::new()
        }
    };
    let self_hosted = provider == SELF_HOSTED;
    let endpoint = d.endpoint.clone();
    match &endpoint {
        Some(e) => {
            let lower = e.to_ascii_lowercase();
            let host_ok = lower
                .split_once("://")
                .map(|(_, r)| !r.is_empty() && !r.starts_with('/'))
                .unwrap_or(false);
            if !(lower.starts_with("https://") || lower.starts_with("http://")) || !host_ok {
                c.push(
                    format!("{key}.endpoint"),
                    format!(
                        "`{e}` is not an http(s) URL; write e.g. \"https://s3.fr-par.scw.cloud\""
                    ),
                );
            }
        }
        None if provider == "aws" => {}
        None => c.push(
            format!("{key}.endpoint"),
            "missing; only provider \"aws\" has a default endpoint",
        ),
    }
    let bucket = d.bucket.clone().unwrap_or_default();
    if !valid_bucket(&bucket) {
        c.push(
            format!("{key}.bucket"),
            if bucket.is_empty() {
                "missing; name the bucket".to_string()
            } else {
                format!("`{bucket}` is not an S3 bucket name (3–63 of a-z, 0-9, `.`, `-`, starting and ending with a letter or digit)")
            },
        );
    }
    let region = d.region.clone().unwrap_or_default();
    if region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        c.push(
            format!("{key}.region"),
            if region.is_empty() {
                "missing; the region the bucket must report, e.g. \"eu-central-1\"".to_string()
            } else {
                format!("`{region}` is not a region name (lowercase letters, digits, `-`)")
            },
        );
    }
    let country = match (&d.country, self_hosted) {
        (Some(cc), true) if cc.len() == 2 && cc.bytes().all(|b| b.is_ascii_uppercase()) => {
            Some(cc.clone())
        }
        (Some(cc), true) => {
            c.push(
                format!("{key}.country"),
                format!("`{cc}` is not an ISO 3166-1 alpha-2 code; write e.g. \"DE\""),
            );
            None
        }
        (None, true) => {
            c.push(
                format!("{key}.country"),
                "missing; a self-hosted store needs the country its operator declares (the policy treats it as attested)",
            );
            None
        }
        (Some(_), false) => {
            c.push(
                format!("{key}.country"),
                "only self-hosted stores declare a country; for a catalogued provider the country comes from policies/regions.toml",
            );
            None
        }
        (None, false) => None,
    };
    let operator_country = if self_hosted {
        super::destinations::operator_country(key, d.operator_country.as_deref(), c)
    } else {
        if d.operator_country.is_some() {
            c.push(
                format!("{key}.operator_country"),
                "only self-hosted stores declare an operator country; a catalogued provider's comes from policies/providers.toml",
            );
        }
        None
    };
    let credentials = credentials(key, d.credentials.as_ref(), resolve, c);
    let verify = d
        .verify_interval_secs
        .unwrap_or(DEFAULT_VERIFY_INTERVAL_SECS);
    if !(10..=86_400).contains(&verify) {
        c.push(
            format!("{key}.verify_interval_secs"),
            "must lie between 10 and 86400 seconds; the default 300 re-checks the bucket's region every 5 minutes",
        );
    }
    S3DestinationConfig {
        provider,
        endpoint,
        bucket,
        region,
        country,
        operator_country,
        path_style: d.path_style.unwrap_or(false),
        credentials,
        ca_bundle: d.ca_bundle.as_deref().map(resolve),
        verify_interval: Duration::from_secs(verify),
    }
}

fn valid_bucket(b: &str) -> bool {
    let bytes = b.as_bytes();
    (3..=63).contains(&b.len())
        && bytes
            .iter()
            .all(|&x| x.is_ascii_lowercase() || x.is_ascii_digit() || x == b'.' || x == b'-')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[b.len() - 1].is_ascii_alphanumeric()
}

/// Used by fs destinations too: s3-only keys in an fs block are mistakes worth naming.
pub(super) fn reject_s3_keys(key: &str, d: &RawDestination, c: &mut Collector) {
    let s3_only = [
        ("provider", d.provider.is_some()),
        ("endpoint", d.endpoint.is_some()),
        ("bucket", d.bucket.is_some()),
        ("region", d.region.is_some()),
        ("path_style", d.path_style.is_some()),
        ("credentials", d.credentials.is_some()),
        ("ca_bundle", d.ca_bundle.is_some()),
        ("verify_interval_secs", d.verify_interval_secs.is_some()),
    ];
    for (name, present) in s3_only {
        if present {
            c.push(
                format!("{key}.{name}"),
                "belongs to s3 destinations; an fs destination has root, country and operator_country",
            );
        }
    }
}

/// `credentials = { env = "PREFIX" } | { file = "s3.toml" } | "aws-chain"` at `key`; secrets
/// inline are refused. Shared by S3 destinations and the AWS KMS key provider.
pub(super) fn credentials(
    key: &str,
    value: Option<&toml::Value>,
    resolve: &dyn Fn(&str) -> PathBuf,
    c: &mut Collector,
) -> S3Credentials {
    match value {
        None => {
            c.push(
                format!("{key}.credentials"),
                "missing; write credentials = { env = \"PREFIX\" }, { file = \"s3.toml\" } or \"aws-chain\"",
            );
            S3Credentials::AwsChain
        }
        Some(toml::Value::String(s)) if s == "aws-chain" => S3Credentials::AwsChain,
        Some(toml::Value::Table(t)) if t.len() == 1 && t.contains_key("env") => {
            match t.get("env").and_then(toml::Value::as_str) {
                Some(p)
                    if !p.is_empty()
                        && p.bytes()
                            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') =>
                {
                    S3Credentials::Env {
                        prefix: p.to_string(),
                    }
                }
                _ => {
                    c.push(
                        format!("{key}.credentials.env"),
                        "must be an environment variable prefix of A-Z, 0-9, `_` (it reads PREFIX_ACCESS_KEY_ID and PREFIX_SECRET_ACCESS_KEY)",
                    );
                    S3Credentials::AwsChain
                }
            }
        }
        Some(toml::Value::Table(t)) if t.len() == 1 && t.contains_key("file") => {
            match t.get("file").and_then(toml::Value::as_str) {
                Some(p) if !p.is_empty() => S3Credentials::File(resolve(p)),
                _ => {
                    c.push(
                        format!("{key}.credentials.file"),
                        "must be the path of a 0600 TOML file with access_key_id and secret_access_key",
                    );
                    S3Credentials::AwsChain
                }
            }
        }
        Some(toml::Value::Table(t))
            if t.contains_key("secret_access_key") || t.contains_key("access_key_id") =>
        {
            c.push(
                format!("{key}.credentials"),
                "secrets are not accepted in the config file; move them to a 0600 file and write credentials = { file = \"s3.toml\" }",
            );
            S3Credentials::AwsChain
        }
        Some(_) => {
            c.push(
                format!("{key}.credentials"),
                "must be { env = \"PREFIX\" }, { file = \"s3.toml\" } or \"aws-chain\"",
            );
            S3Credentials::AwsChain
        }
    }
}
