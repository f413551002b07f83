//! The TOML file as written: serde structs with `deny_unknown_fields`. `super` validates them
//! into the typed [`super::Config`].

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub server: RawServer,
    #[serde(default)]
    pub auth: RawAuth,
    pub keys: RawKeys,
    #[serde(default)]
    pub policy: RawPolicy,
    #[serde(default)]
    pub audit: RawAudit,
    #[serde(default)]
    pub storage: RawStorage,
    #[serde(default)]
    pub limits: RawLimits,
    /// `[ftps]`: absent means the FTPS front end is off.
    pub ftps: Option<RawFtps>,
    /// `[admin]`: absent means no admin listener.
    pub admin: Option<RawAdmin>,
    /// `[console]`: the compliance console on the admin listener; absent means no console.
    pub console: Option<RawConsole>,
    #[serde(default)]
    pub key_providers: BTreeMap<String, RawKeyProvider>,
    #[serde(default)]
    pub destinations: BTreeMap<String, RawDestination>,
    #[serde(default)]
    pub tenants: BTreeMap<String, RawTenant>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub listen: Vec<String>,
    pub host_keys: Vec<String>,
    pub idle_timeout_secs: Option<u64>,
    pub max_sessions_per_user: Option<u32>,
    pub reorder_window: Option<RawSize>,
    pub max_open_handles: Option<u32>,
    pub shutdown_grace_secs: Option<u64>,
    /// `"modern"` (default) or `"compatible"`.
    pub algorithms: Option<String>,
    /// Names this gateway in audit records and logs; default: the host name.
    pub instance_id: Option<String>,
    /// Load balancers (addresses or CIDR networks) whose connections start with a PROXY v2
    /// header; empty: PROXY protocol off.
    #[serde(default)]
    pub proxy_protocol_from: Vec<String>,
}

/// A size written either as a string with a unit or as a plain integer of bytes.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawSize {
    Bytes(u64),
    Text(String),
}

/// `[limits]`: caps on what clients can hold (`super::limits`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub max_connections: Option<u32>,
    pub max_unauthenticated: Option<u32>,
    pub max_unauthenticated_per_source: Option<u32>,
    pub login_grace_secs: Option<u64>,
    pub max_channels_per_connection: Option<u32>,
    pub channel_buffer: Option<RawSize>,
    pub reply_timeout_secs: Option<u64>,
    pub max_handles_per_user: Option<u32>,
    pub max_handles_total: Option<u32>,
    pub max_held_writes: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    pub max_failures: Option<u32>,
    pub max_failures_per_source: Option<u32>,
    pub max_tracked: Option<u32>,
    pub base_delay_ms: Option<u64>,
    pub max_delay_ms: Option<u64>,
    pub ban_secs: Option<u64>,
    /// CA public keys (authorized_keys lines) trusted to sign OpenSSH user certificates.
    #[serde(default)]
    pub user_ca_keys: Vec<String>,
    /// A file of such lines, like sshd's `TrustedUserCAKeys`.
    pub user_ca_keys_file: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKeys {
    pub keyring: String,
    pub master_key_file: Option<String>,
    /// The name of a `[key_providers.NAME]` that seals the keyring instead of a file.
    pub master: Option<String>,
    pub unwrap_cache_secs: Option<u64>,
    pub unwrap_cache_entries: Option<u64>,
}

/// `[key_providers.NAME]`: one key held outside the gateway (`super::keys`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKeyProvider {
    pub kind: String,
    pub timeout_secs: Option<u64>,
    // pkcs11
    pub module: Option<String>,
    pub token_label: Option<String>,
    pub pin_file: Option<String>,
    pub key_label: Option<String>,
    // transit
    pub address: Option<String>,
    pub mount: Option<String>,
    pub key: Option<String>,
    pub token_file: Option<String>,
    pub ca_bundle: Option<String>,
    pub namespace: Option<String>,
    // aws-kms
    pub region: Option<String>,
    pub key_id: Option<String>,
    pub endpoint: Option<String>,
    pub credentials: Option<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub dir: Option<String>,
    #[serde(default)]
    pub watch: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    pub file: Option<String>,
    pub max_field_bytes: Option<u64>,
    pub auth_records_per_sec: Option<u32>,
    pub auth_records_burst: Option<u32>,
    pub summary_interval_secs: Option<u64>,
    pub max_tracked_sources: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDestination {
    pub kind: String,
    pub root: Option<String>,
    pub country: Option<String>,
    /// Self-hosted stores: the country of whoever operates the store (default: `country`).
    pub operator_country: Option<String>,
    pub provider: Option<String>,
    pub endpoint: Option<String>,
    pub bucket: Option<String>,
    pub region: Option<String>,
    pub path_style: Option<bool>,
    /// `{ env = "PREFIX" }`, `{ file = "path" }` or `"aws-chain"`.
    pub credentials: Option<toml::Value>,
    pub ca_bundle: Option<String>,
    pub verify_interval_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    pub memory_budget: Option<RawSize>,
    pub parts_in_flight: Option<u32>,
    pub request_timeout_secs: Option<u64>,
    pub connect_timeout_secs: Option<u64>,
    /// The file of multipart uploads this instance has open (`storage::s3::journal`).
    pub upload_journal: Option<String>,
    /// Whether the stores may hold objects of format versions 1 and 2 (compact headers).
    pub legacy_objects: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTenant {
    pub route: RawRoute,
    pub classification: Option<String>,
    /// Hold-your-own-key: the `[key_providers.NAME]` that wraps each object's key.
    pub key_provider: Option<String>,
    #[serde(default)]
    pub users: BTreeMap<String, RawUser>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub destination: String,
    #[serde(default)]
    pub prefix: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    #[serde(default)]
    pub authorized_keys: Vec<String>,
    pub authorized_keys_file: Option<String>,
    pub password_hash: Option<String>,
    /// Accepted only to refuse it with a useful message: plaintext passwords never live in config.
    pub password: Option<toml::Value>,
    pub permissions: Option<Vec<String>>,
    /// FTPS client certificates (mutual TLS) that log this user in: `sha256:AB:CD:…`.
    #[serde(default)]
    pub ftps_client_certificates: Vec<String>,
    /// ... or by subject, `CN=alice,O=Partner` (attributes in any order).
    #[serde(default)]
    pub ftps_client_subjects: Vec<String>,
}

/// `[ftps]`: the FTPS front end, explicit and implicit (`super::ftps`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFtps {
    #[serde(default)]
    pub listen: Vec<String>,
    pub certificate: String,
    pub private_key: String,
    /// `"50000-50100"`.
    pub passive_ports: Option<String>,
    pub passive_address: Option<String>,
    pub data_timeout_secs: Option<u64>,
    /// Implicit FTPS (TLS from the first byte) listen addresses, e.g. `["0.0.0.0:990"]`.
    #[serde(default)]
    pub implicit_listen: Vec<String>,
    /// PEM bundle of the CAs whose client certificates may log users in (mutual TLS).
    pub client_ca: Option<String>,
    /// Data connections must resume the control connection's TLS session (vsftpd's option).
    pub require_ssl_reuse: Option<bool>,
}

/// `[admin]`: the HTTPS admin listener (`super::admin`); absent means no admin listener.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub listen: Vec<String>,
    pub certificate: String,
    pub private_key: String,
    /// PEM CA certificates: when set, clients must present a certificate they signed.
    pub client_ca: Option<String>,
    pub drain_delay_secs: Option<u64>,
}

/// `[console]`: the compliance console, served by the admin listener to officers with a client
/// certificate from `client_ca`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConsole {
    pub client_ca: String,
    /// Where proposed bundles wait for approval.
    pub proposals_dir: Option<String>,
    /// Other instances' audit logs, read beside this gateway's own.
    #[serde(default)]
    pub audit_logs: Vec<String>,
    pub replay_days: Option<u64>,
    #[serde(default)]
    pub officers: BTreeMap<String, RawOfficer>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOfficer {
    pub roles: Vec<String>,
    #[serde(default)]
    pub certificates: Vec<String>,
    #[serde(default)]
    pub subjects: Vec<String>,
}
