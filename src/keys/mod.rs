//! Tenant keyrings: per-tenant key-encryption keys with versions, sealed under a master key.
//!
//! A file-based provider for now; a KMS provider can implement the same surface later.

mod error;
mod keyring;
mod private_file;
pub mod provider;
mod reloader;
mod store;
mod version;

pub use error::KeyError;
pub use keyring::{ActiveKey, KeyInfo, Keyring, ShredRecord, validate_tenant};
pub use reloader::spawn_reloader;
pub use store::{
    KeyringObserver, KeyringReloadEvent, KeyringStore, LoadedKeyring, ReloadFailure, ReloadOutcome,
};
