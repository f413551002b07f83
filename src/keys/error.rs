use std::path::PathBuf;

/// Everything that can go wrong with tenant keys. Each variant says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: permissions {mode:04o} let group or others read it; run `chmod 600 {path}` (key files must be private to their owner)"
    )]
    TooOpen { path: PathBuf, mode: u32 },
    #[error(
        "{path}: not an eugate master key file ({reason}); point --master-key-file at the file `eugate keys init` created"
    )]
    MasterKeyMalformed { path: PathBuf, reason: &'static str },
    #[error("{path}: not an eugate keyring ({reason})")]
    KeyringMalformed { path: PathBuf, reason: String },
    #[error(
        "{path}: the keyring does not open with master key {master}; it was sealed under another master key, or it was altered"
    )]
    WrongMasterKey { path: PathBuf, master: PathBuf },
    #[error(
        "{keyring} exists but the master key file {master} does not; restore the master key (a new one cannot open the old keyring)"
    )]
    MasterKeyMissing { keyring: PathBuf, master: PathBuf },
    #[error(
        "tenant name {0:?} is invalid: use 1-64 characters from a-z, 0-9, '.', '_', '-', starting with a letter or digit"
    )]
    InvalidTenant(String),
    #[error("tenant {0:?} already has keys (use `eugate keys rotate {0}` for a new version)")]
    TenantExists(String),
    #[error("tenant {0:?} has no keys in this keyring (add it with `eugate keys add-tenant {0}`)")]
    UnknownTenant(String),
    #[error(
        "tenant {tenant:?} has no key {key_id:?} (it may have been shredded or belong to another keyring)"
    )]
    UnknownKeyId { tenant: String, key_id: String },
    #[error("key {key_id:?} of tenant {tenant:?} has no version {version}")]
    UnknownVersion {
        tenant: String,
        key_id: String,
        version: u32,
    },
    #[error(
        "key {key_id:?} of tenant {tenant:?} was shredded: objects sealed under it can no longer be decrypted"
    )]
    Shredded { tenant: String, key_id: String },
    #[error("tenant {0:?} has reached the maximum number of key versions")]
    TooManyVersions(String),
    #[error("the system random number generator failed")]
    Random,
    #[error(
        "{path} is sealed by {sealed_by}, but the configuration names {configured}; point [keys] at the key that sealed it, or move it with `eugate keys rewrap`"
    )]
    SealedByOther {
        path: PathBuf,
        sealed_by: String,
        configured: String,
    },
    #[error("{path}: {source}")]
    Provider {
        path: PathBuf,
        #[source]
        source: super::provider::ProviderError,
    },
    #[error("{0}")]
    NoProvider(String),
    #[error("tenant {tenant:?} holds its own key in [key_providers.{provider}]: {source}")]
    TenantProvider {
        tenant: String,
        provider: String,
        #[source]
        source: super::provider::ProviderError,
    },
    #[error(
        "the new keyring no longer holds key {key_id:?} version {version} of tenant {tenant:?}, and does not record it as shredded: objects sealed under it would become undecryptable, so the loaded keyring stays in force (an older copy of the keyring file? restart the gateway to load this file anyway)"
    )]
    ReloadDropsKey {
        tenant: String,
        key_id: String,
        version: u32,
    },
    #[error(
        "the new keyring has other key bytes for key {key_id:?} version {version} of tenant {tenant:?}: objects sealed under the loaded key would become undecryptable, so the loaded keyring stays in force (was the keyring rotated on two machines separately? copy one keyring to every instance)"
    )]
    ReloadChangesKey {
        tenant: String,
        key_id: String,
        version: u32,
    },
}

impl KeyError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        KeyError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
