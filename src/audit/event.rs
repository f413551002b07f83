use serde::{Deserialize, Serialize};

/// One auditable fact. Strings rather than other modules' types keep the log format stable
/// when those types change, and keep `audit` free of dependencies on the rest of the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuditEvent {
    /// The gateway started or stopped; `detail` says which config and policy bundle.
    Lifecycle { action: String, detail: String },
    /// A graceful shutdown ended (written before the `stop` record): of the uploads running at
    /// the signal, how many finished within the grace period and how many were aborted;
    /// `unfinished` were still aborting when the gateway exited.
    Shutdown {
        grace_secs: u64,
        running_at_signal: u64,
        finished: u64,
        aborted: u64,
        unfinished: u64,
    },
    /// An authentication attempt and its result ("accepted", "rejected", "banned").
    Auth {
        user: String,
        tenant: Option<String>,
        source: String,
        method: String,
        outcome: String,
        /// The OpenSSH user certificate the attempt presented (absent for other methods, and
        /// in records written before this field existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        certificate: Option<CertificateRecord>,
        /// The X.509 client certificate of an FTPS login by certificate (mutual TLS).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tls_certificate: Option<TlsCertificateRecord>,
        /// Why a login was refused, where the gateway knows more than `outcome` says.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Authentication attempts from one source that were counted rather than written one by
    /// one: a banned source's refusals after the first of each interval, and failures beyond
    /// the per-source record rate (`[audit]`). `first`/`last` bound them in time; `users` is
    /// a sample of the names tried (at most a few, capped like every client field).
    AuthSummary {
        source: String,
        outcome: String,
        attempts: u64,
        first: String,
        last: String,
        users: Vec<String>,
    },
    /// A residency decision, taken before any byte or name leaves.
    Decision {
        /// What the decision was for: `upload`, `mkdir` or `rename` (records written before
        /// this field existed are uploads).
        #[serde(default = "upload_operation")]
        operation: String,
        tenant: String,
        user: String,
        destination: String,
        object: String,
        classification: String,
        allowed: bool,
        policies: Vec<String>,
        reasons: Vec<String>,
        countries: Vec<String>,
        observed_region: Option<String>,
        evidence: String,
        bundle: String,
        /// The front end the session came through (`sftp`, `ftps`); absent in records written
        /// before this field existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        protocol: Option<String>,
        /// The tenant held its own key (`context.key_held_by_tenant`); written only when true,
        /// so records of other tenants, and those written before the fact existed, read false.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        key_held_by_tenant: bool,
        /// Whose law the decision considered: `provider:US`, `operator:DE` (the countries of
        /// the provider's controlling parent and of the region's operator). Absent in records
        /// written before jurisdictions were part of the model.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        jurisdictions: Vec<String>,
        /// The day (`YYYY-MM-DD`) the dated facts were taken as of.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        as_of: Option<String>,
        /// Dated facts bearing on the decision that did not count that day, each with its date.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        lapsed: Vec<String>,
    },
    /// An upload made durable and visible.
    Committed {
        tenant: String,
        user: String,
        destination: String,
        object: String,
        object_id: String,
        key_id: String,
        key_version: u32,
        plaintext_size: u64,
        ciphertext_size: u64,
        /// BLAKE3 of the stored object, hex (`b3sum` of the object prints the same).
        ciphertext_blake3: String,
        /// The policy ids that allowed the upload, and the bundle they came from (empty in
        /// records written before these fields existed).
        #[serde(default)]
        policies: Vec<String>,
        #[serde(default)]
        bundle: String,
        /// The front end the session came through (`sftp`, `ftps`); absent in records written
        /// before this field existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        protocol: Option<String>,
    },
    /// An upload that left nothing behind, and why.
    Aborted {
        tenant: String,
        user: String,
        destination: String,
        object: String,
        cause: String,
        /// The front end the session came through (`sftp`, `ftps`); absent in records written
        /// before this field existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        protocol: Option<String>,
    },
    /// A directory created, or an entry renamed or removed, at a client's request.
    /// `outcome` is `done` or the reason it failed; `from` is set for renames.
    Namespace {
        operation: String,
        tenant: String,
        user: String,
        destination: String,
        object: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
        outcome: String,
        /// The front end the session came through (`sftp`, `ftps`); absent in records written
        /// before this field existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        protocol: Option<String>,
    },
    /// A policy bundle became active or was rejected.
    PolicyReload {
        accepted: bool,
        bundle: String,
        detail: String,
        /// The bundle in force before an accepted reload that changed it (absent otherwise, and
        /// in records written before this field existed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous: Option<String>,
    },
    /// A keyring reload: `accepted` with the `version` now in force (`previous` the one it
    /// replaced), or refused with the loaded `version` kept and `detail` saying why. Versions
    /// name keys without revealing them (`Keyring::version`).
    KeyringReload {
        accepted: bool,
        version: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous: Option<String>,
        detail: String,
    },
    /// A destination's verified location changed state (e.g. quarantined).
    Destination {
        destination: String,
        state: String,
        observed_region: Option<String>,
        detail: String,
    },
    /// An officer's act in the compliance console (a proposal, an approval, a rejection, an
    /// export, a refused request), naming the officer and the certificate they presented.
    Console {
        officer: String,
        certificate: String,
        action: String,
        /// What the act was on: a proposal id, a page, an export's selection.
        target: String,
        outcome: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        detail: String,
        /// Bundle hashes in force before and after an approval.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        old_bundle: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        new_bundle: Option<String>,
    },
}

/// An OpenSSH user certificate, as a login record names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateRecord {
    /// The key id the CA wrote into it (`ssh-keygen -I`).
    pub key_id: String,
    pub serial: u64,
    /// SHA-256 fingerprint of the signing CA's key (`SHA256:…`).
    pub ca: String,
}

/// An X.509 client certificate (FTPS mutual TLS), as a login record names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsCertificateRecord {
    /// `sha256:AB:CD:…` of the certificate's DER.
    pub sha256: String,
    /// Its subject, e.g. `O=Partner,CN=alice`.
    pub subject: String,
}

fn upload_operation() -> String {
    "upload".to_string()
}
