//! Tenant keyrings: per-tenant key-encryption keys with versions, sealed under a master key.
//!
//! The master key is a file or a key held by a provider (PKCS#11, Transit, AWS KMS; see
//! [`provider`]); hold-your-own-key tenants' object keys are wrapped by their own provider
//! ([`ExternalKeys`]).

mod error;
mod external;
mod keyring;
mod master;
mod private_file;
pub mod provider;
mod reloader;
mod store;
mod version;

pub use error::KeyError;
pub use external::{ExternalKeys, NewObjectKey};
pub use keyring::{
    ActiveKey, KEYRING_CONTEXT, KeyInfo, Keyring, SealKey, SealedKeyring, ShredRecord,
    validate_tenant,
};
pub use master::MasterKey;
pub use reloader::spawn_reloader;
pub use store::{
    KeyringObserver, KeyringReloadEvent, KeyringStore, LoadedKeyring, ReloadFailure, ReloadOutcome,
};
