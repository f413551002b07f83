//! What seals the keyring: a master key file (format version 1) or a provider key (version 2),
//! and the async steps that need the provider: open, create and re-wrap.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::keyring::{KEYRING_CONTEXT, SealKey, SealedKeyring, random_key};
use super::provider::{KeyProvider, ProviderError};
use super::{KeyError, Keyring};

/// The master key of one keyring.
#[derive(Debug, Clone)]
pub enum MasterKey {
    File(PathBuf),
    Provider(Arc<dyn KeyProvider>),
}

impl MasterKey {
    /// For messages and `eugate keys list`: `file:PATH` or the provider's key reference.
    pub fn describe(&self) -> String {
        match self {
            MasterKey::File(p) => format!("file:{}", p.display()),
            MasterKey::Provider(p) => p.key_ref(),
        }
    }

    /// Opens the keyring at `path`, asking the provider (once) for the keyring key.
    pub async fn open(&self, path: &Path) -> Result<Keyring, KeyError> {
        match self {
            MasterKey::File(master) => Keyring::open(path, master),
            MasterKey::Provider(provider) => {
                let sealed = SealedKeyring::read(path)?;
                let Some((kind, wrapped)) = sealed.provider.clone() else {
                    return Err(KeyError::SealedByOther {
                        path: path.to_path_buf(),
                        sealed_by: sealed.sealed_by().to_string(),
                        configured: provider.key_ref(),
                    });
                };
                if kind != provider.kind() {
                    return Err(KeyError::SealedByOther {
                        path: path.to_path_buf(),
                        sealed_by: format!("a {} key", kind.as_str()),
                        configured: provider.key_ref(),
                    });
                }
                let key = provider
                    .unwrap(&wrapped.blob, KEYRING_CONTEXT)
                    .await
                    .map_err(|e| provider_error(path, e))?;
                let seal = SealKey::Provider { key, kind, wrapped };
                Keyring::open_sealed(sealed, seal).map_err(|e| match e {
                    KeyError::WrongMasterKey { path, .. } => KeyError::WrongMasterKey {
                        path,
                        master: PathBuf::from(provider.key_ref()),
                    },
                    e => e,
                })
            }
        }
    }

    /// Creates what is absent (the master key file; the keyring), then opens the keyring.
    pub async fn init(&self, path: &Path) -> Result<Keyring, KeyError> {
        match self {
            MasterKey::File(master) => Keyring::init(path, master),
            MasterKey::Provider(_) if path.exists() => self.open(path).await,
            MasterKey::Provider(_) => {
                let ring = Keyring::empty(path, self.new_seal(path).await?);
                ring.create()?;
                self.open(path).await
            }
        }
    }

    /// A fresh sealing key: for a provider, a new random keyring key wrapped under the
    /// provider key's current version (one call).
    pub async fn new_seal(&self, path: &Path) -> Result<SealKey, KeyError> {
        match self {
            MasterKey::File(master) => {
                // The file's key: opening an existing keyring checks it fits.
                let probe = Keyring::init_master(master)?;
                Ok(SealKey::File(probe))
            }
            MasterKey::Provider(provider) => {
                let key = random_key()?;
                let wrapped = provider
                    .wrap(&key, KEYRING_CONTEXT)
                    .await
                    .map_err(|e| provider_error(path, e))?;
                Ok(SealKey::Provider {
                    key,
                    kind: provider.kind(),
                    wrapped,
                })
            }
        }
    }
}

fn provider_error(path: &Path, source: ProviderError) -> KeyError {
    KeyError::Provider {
        path: path.to_path_buf(),
        source,
    }
}

impl MasterKey {
    /// The master key `[keys]` names; a provider is connected (not yet asked anything).
    pub async fn from_config(keys: &crate::config::KeysConfig) -> Result<MasterKey, KeyError> {
        use crate::config::MasterKeyConfig;
        match &keys.master {
            MasterKeyConfig::File(path) => Ok(MasterKey::File(path.clone())),
            MasterKeyConfig::Provider(name) => {
                let cfg = keys.providers.get(name).ok_or_else(|| {
                    KeyError::NoProvider(format!(
                        "[keys] master = \"{name}\" but there is no [key_providers.{name}]"
                    ))
                })?;
                let provider = super::provider::connect(cfg)
                    .await
                    .map_err(|e| provider_error(&keys.keyring, e))?;
                Ok(MasterKey::Provider(provider))
            }
        }
    }
}
