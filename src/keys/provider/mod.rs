//! Key providers: where a key-encryption key lives when it is not in the keyring file.
//!
//! A provider wraps and unwraps 32-byte keys and nothing else: the keyring's data key (the
//! master-key role, one call at start and at each reload) or one object's key (the
//! hold-your-own-key role, one call per object). Segments never reach a provider. The wrapping
//! key itself never leaves the provider (an HSM object, a Transit key, a KMS key).
//!
//! `context` is bound to the wrap (AAD, or the provider's equivalent): unwrapping with another
//! context fails as [`ProviderError::WrongKey`], so a blob cannot be moved to another object or
//! keyring.

mod aws_kms;
mod config;
mod error;
mod pkcs11;
mod transit;

pub use aws_kms::AwsKmsProvider;
pub use config::{
    AwsKmsConfig, Pkcs11Config, ProviderConfig, ProviderKind, ProviderSettings, TransitConfig,
};
pub use error::ProviderError;
pub use pkcs11::Pkcs11Provider;
pub use transit::TransitProvider;

use zeroize::Zeroizing;

/// Length of every key a provider wraps.
pub const WRAPPED_KEY_LEN: usize = 32;

/// The largest blob any provider may return (it is stored in object headers).
pub const MAX_BLOB_LEN: usize = 1024;

/// A key wrapped by a provider: opaque bytes only that provider (and key) can unwrap.
#[derive(Clone, PartialEq, Eq)]
pub struct Wrapped {
    /// The provider key's version that wrapped it (Transit's `vault:vN`; 1 where the provider
    /// has no versions).
    pub key_version: u32,
    /// What `unwrap` needs back, at most [`MAX_BLOB_LEN`] bytes. Not secret.
    pub blob: Vec<u8>,
}

impl std::fmt::Debug for Wrapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wrapped")
            .field("key_version", &self.key_version)
            .field("blob_len", &self.blob.len())
            .finish()
    }
}

/// One configured provider key. Implementations keep credentials (PINs, tokens) to themselves:
/// `Debug` and `key_ref` never show them.
#[async_trait::async_trait]
pub trait KeyProvider: Send + Sync + std::fmt::Debug {
    fn kind(&self) -> ProviderKind;

    /// A printable reference to the wrapping key, e.g. `transit:http://127.0.0.1:8200/transit/keys/acme`
    /// or `pkcs11:token=eugate;object=master`: enough to find it, nothing secret.
    fn key_ref(&self) -> String;

    /// Wraps `key` under the provider's current key version, bound to `context`.
    async fn wrap(
        &self,
        key: &Zeroizing<[u8; WRAPPED_KEY_LEN]>,
        context: &[u8],
    ) -> Result<Wrapped, ProviderError>;

    /// Unwraps a blob `wrap` returned with the same `context`.
    async fn unwrap(
        &self,
        blob: &[u8],
        context: &[u8],
    ) -> Result<Zeroizing<[u8; WRAPPED_KEY_LEN]>, ProviderError>;

    /// Checks the key exists and can be used (start-up, `config check`, `/readyz`), by a
    /// wrap and unwrap of a random key; an error says why not.
    async fn probe(&self) -> Result<(), ProviderError> {
        let mut key = Zeroizing::new([0u8; WRAPPED_KEY_LEN]);
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key[..])
            .map_err(|_| ProviderError::Random)?;
        let wrapped = self.wrap(&key, b"eugate probe").await?;
        let back = self.unwrap(&wrapped.blob, b"eugate probe").await?;
        if bool::from(subtle::ConstantTimeEq::ct_eq(&back[..], &key[..])) {
            Ok(())
        } else {
            Err(ProviderError::WrongKey {
                key_ref: self.key_ref(),
                reason: "a probe key came back different".into(),
            })
        }
    }
}

/// Connects to the provider `cfg` describes (reads its PIN or token file; asks the provider
/// nothing that wraps or unwraps).
pub async fn connect(
    cfg: &ProviderConfig,
) -> Result<std::sync::Arc<dyn KeyProvider>, ProviderError> {
    match cfg.kind() {
        ProviderKind::Transit => Ok(std::sync::Arc::new(TransitProvider::connect(cfg).await?)),
        ProviderKind::Pkcs11 => Ok(std::sync::Arc::new(Pkcs11Provider::connect(cfg).await?)),
        ProviderKind::AwsKms => Ok(std::sync::Arc::new(AwsKmsProvider::connect(cfg).await?)),
        kind => Err(ProviderError::Config {
            key_ref: cfg.name.clone(),
            reason: format!("provider kind {} is not built in", kind.as_str()),
        }),
    }
}
