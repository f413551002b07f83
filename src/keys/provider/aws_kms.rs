//! `kind = "aws-kms"`: AWS KMS Encrypt/Decrypt of the 32-byte key under a KMS key.
//!
//! The context is bound as `EncryptionContext = {"eugate": base64(context)}`; the blob is KMS's
//! CiphertextBlob as returned (it names the key and its backing version itself, so
//! `key_version` is always 1). The client is built like the S3 client (rustls on ring, bounded
//! timeouts, credentials from the environment, a 0600 file or the AWS chain).

use crate::config::S3Credentials;
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_sdk_kms::config::{Region, retry::RetryConfig, timeout::TimeoutConfig};
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use base64::Engine;
use zeroize::Zeroizing;

use super::{
    KeyProvider, MAX_BLOB_LEN, ProviderConfig, ProviderError, ProviderKind, ProviderSettings,
    WRAPPED_KEY_LEN, Wrapped,
};
use crate::storage::s3::CredentialSource;

/// The encryption-context key the wrap context is bound to.
pub const CONTEXT_KEY: &str = "eugate";

/// One KMS key. `Debug` shows the key reference only.
pub struct AwsKmsProvider {
    client: aws_sdk_kms::Client,
    key_id: String,
    key_ref: String,
    timeout: Duration,
}

impl std::fmt::Debug for AwsKmsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsKmsProvider")
            .field("key_ref", &self.key_ref)
            .finish_non_exhaustive()
    }
}

/// The same three sources as S3 destinations (`config` validated them).
fn credential_source(credentials: &S3Credentials) -> CredentialSource {
    match credentials {
        S3Credentials::Env { prefix } => CredentialSource::Env {
            access_key_id_var: format!("{prefix}_ACCESS_KEY_ID"),
            secret_access_key_var: format!("{prefix}_SECRET_ACCESS_KEY"),
        },
        S3Credentials::File(p) => CredentialSource::File(p.clone()),
        S3Credentials::AwsChain => CredentialSource::DefaultChain,
    }
}

impl AwsKmsProvider {
    /// Builds the client; credentials are read now, so a missing secret fails here. No call is
    /// made to KMS (use [`KeyProvider::probe`]).
    pub async fn connect(cfg: &ProviderConfig) -> Result<AwsKmsProvider, ProviderError> {
        let ProviderSettings::AwsKms(k) = &cfg.settings else {
            return Err(cfg.wrong_kind(ProviderKind::AwsKms));
        };
        let key_ref = match &k.endpoint {
            Some(e) => format!("aws-kms:{e}/{}/{}", k.region, k.key_id),
            None => format!("aws-kms:{}/{}", k.region, k.key_id),
        };
        let config_err = |reason: String| ProviderError::Config {
            key_ref: key_ref.clone(),
            reason,
        };
        let source = credential_source(&k.credentials);
        let credentials = crate::storage::s3::static_credentials(&source)
            .map_err(|e| config_err(e.to_string()))?;

        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(cfg.timeout)
            .operation_attempt_timeout(cfg.timeout)
            .operation_timeout(cfg.timeout)
            .build();
        let mut builder = aws_sdk_kms::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(k.region.clone()))
            .http_client(http.clone())
            .timeout_config(timeouts)
            .retry_config(RetryConfig::standard().with_max_attempts(2));
        if let Some(endpoint) = &k.endpoint {
            builder = builder.endpoint_url(endpoint);
        }
        builder = match credentials {
            Some(c) => builder.credentials_provider(c),
            None => builder.credentials_provider(
                crate::storage::s3::chain_credentials(http, &k.region)
                    .await
                    .map_err(config_err)?,
            ),
        };
        Ok(AwsKmsProvider {
            client: aws_sdk_kms::Client::from_conf(builder.build()),
            key_id: k.key_id.clone(),
            key_ref,
            timeout: cfg.timeout,
        })
    }

    fn context_value(context: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(context)
    }

    /// Runs one KMS call under the provider's timeout (the SDK's own timeouts bound each
    /// attempt; this bounds the whole call including retries and credential loading).
    async fn bounded<T, E>(
        &self,
        fut: impl std::future::Future<Output = Result<T, SdkError<E>>>,
    ) -> Result<T, ProviderError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(e)) => Err(map_sdk_error(&self.key_ref, self.timeout, e)),
            Err(_) => Err(ProviderError::Timeout {
                key_ref: self.key_ref.clone(),
                after: self.timeout,
            }),
        }
    }
}

/// Maps an SDK failure to the provider's error kinds.
fn map_sdk_error<E>(key_ref: &str, timeout: Duration, e: SdkError<E>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let key_ref = key_ref.to_string();
    match &e {
        // The SDK's attempt timeout, which is the configured one.
        SdkError::TimeoutError(_) => ProviderError::Timeout {
            key_ref,
            after: timeout,
        },
        SdkError::DispatchFailure(d) if d.is_timeout() => ProviderError::Unreachable {
            key_ref,
            reason: format!(
                "connection timed out: {}",
                aws_sdk_kms::error::DisplayErrorContext(&e)
            ),
        },
        SdkError::DispatchFailure(_) => ProviderError::Unreachable {
            key_ref,
            reason: aws_sdk_kms::error::DisplayErrorContext(&e).to_string(),
        },
        SdkError::ServiceError(_) => {
            map_service_code(key_ref, e.code(), e.message().unwrap_or("no message"))
        }
        SdkError::ResponseError(_) => ProviderError::Protocol {
            key_ref,
            reason: format!(
                "unreadable KMS response: {}",
                aws_sdk_kms::error::DisplayErrorContext(&e)
            ),
        },
        _ => ProviderError::Protocol {
            key_ref,
            reason: aws_sdk_kms::error::DisplayErrorContext(&e).to_string(),
        },
    }
}

/// KMS's error codes (the same for Encrypt and Decrypt) to the provider's error kinds.
fn map_service_code(key_ref: String, code: Option<&str>, message: &str) -> ProviderError {
    let reason = format!("{}: {message}", code.unwrap_or("KMS error"));
    match code {
        Some("NotFoundException") => ProviderError::KeyNotFound { key_ref, reason },
        Some("DisabledException" | "KMSInvalidStateException") => {
            ProviderError::Revoked { key_ref, reason }
        }
        Some("KeyUnavailableException" | "DependencyTimeoutException" | "KMSInternalException") => {
            ProviderError::Unreachable { key_ref, reason }
        }
        Some(
            "AccessDeniedException"
            | "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "ExpiredTokenException"
            | "IncompleteSignature",
        ) => ProviderError::Denied { key_ref, reason },
        Some("InvalidCiphertextException" | "IncorrectKeyException") => {
            ProviderError::WrongKey { key_ref, reason }
        }
        Some("InvalidKeyUsageException") => ProviderError::Config {
            key_ref,
            reason: format!("{reason}; the KMS key must be a symmetric ENCRYPT_DECRYPT key"),
        },
        _ => ProviderError::Protocol { key_ref, reason },
    }
}

#[async_trait::async_trait]
impl KeyProvider for AwsKmsProvider {
    fn kind(&self) -> ProviderKind {
        ProviderKind::AwsKms
    }

    fn key_ref(&self) -> String {
        self.key_ref.clone()
    }

    async fn wrap(
        &self,
        key: &Zeroizing<[u8; WRAPPED_KEY_LEN]>,
        context: &[u8],
    ) -> Result<Wrapped, ProviderError> {
        let out = self
            .bounded(
                self.client
                    .encrypt()
                    .key_id(&self.key_id)
                    .plaintext(Blob::new(key.to_vec()))
                    .encryption_context(CONTEXT_KEY, Self::context_value(context))
                    .send(),
            )
            .await?;
        let blob = out
            .ciphertext_blob
            .map(Blob::into_inner)
            .filter(|b| !b.is_empty())
            .ok_or_else(|| ProviderError::Protocol {
                key_ref: self.key_ref.clone(),
                reason: "Encrypt returned no CiphertextBlob".into(),
            })?;
        if blob.len() > MAX_BLOB_LEN {
            return Err(ProviderError::Protocol {
                key_ref: self.key_ref.clone(),
                reason: format!(
                    "Encrypt returned a {}-byte CiphertextBlob, more than {MAX_BLOB_LEN}",
                    blob.len()
                ),
            });
        }
        Ok(Wrapped {
            key_version: 1,
            blob,
        })
    }

    async fn unwrap(
        &self,
        blob: &[u8],
        context: &[u8],
    ) -> Result<Zeroizing<[u8; WRAPPED_KEY_LEN]>, ProviderError> {
        if blob.is_empty() || blob.len() > MAX_BLOB_LEN {
            return Err(ProviderError::WrongKey {
                key_ref: self.key_ref.clone(),
                reason: format!(
                    "the wrapped key is {} bytes, a KMS CiphertextBlob is 1..={MAX_BLOB_LEN}",
                    blob.len()
                ),
            });
        }
        let out = self
            .bounded(
                self.client
                    .decrypt()
                    // Pinning the key: a blob of another KMS key is refused (IncorrectKeyException).
                    .key_id(&self.key_id)
                    .ciphertext_blob(Blob::new(blob.to_vec()))
                    .encryption_context(CONTEXT_KEY, Self::context_value(context))
                    .send(),
            )
            .await?;
        let plain = Zeroizing::new(out.plaintext.map(Blob::into_inner).unwrap_or_default());
        if plain.len() != WRAPPED_KEY_LEN {
            return Err(ProviderError::Protocol {
                key_ref: self.key_ref.clone(),
                reason: format!(
                    "Decrypt returned {} bytes, expected {WRAPPED_KEY_LEN}",
                    plain.len()
                ),
            });
        }
        let mut key = Zeroizing::new([0u8; WRAPPED_KEY_LEN]);
        key.copy_from_slice(&plain);
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(code: &str) -> ProviderError {
        map_service_code("aws-kms:eu-west-1/k".into(), Some(code), "m")
    }

    #[test]
    fn service_codes_map_to_their_kinds() {
        assert!(matches!(
            kind("NotFoundException"),
            ProviderError::KeyNotFound { .. }
        ));
        assert!(matches!(
            kind("DisabledException"),
            ProviderError::Revoked { .. }
        ));
        assert!(matches!(
            kind("KMSInvalidStateException"),
            ProviderError::Revoked { .. }
        ));
        assert!(matches!(
            kind("AccessDeniedException"),
            ProviderError::Denied { .. }
        ));
        assert!(matches!(
            kind("UnrecognizedClientException"),
            ProviderError::Denied { .. }
        ));
        assert!(matches!(
            kind("InvalidCiphertextException"),
            ProviderError::WrongKey { .. }
        ));
        assert!(matches!(
            kind("IncorrectKeyException"),
            ProviderError::WrongKey { .. }
        ));
        assert!(kind("KeyUnavailableException").is_unavailable());
        assert!(matches!(kind("Whatever"), ProviderError::Protocol { .. }));
        let msg = kind("DisabledException").to_string();
        assert!(msg.contains("DisabledException: m"), "{msg}");
    }

    #[test]
    fn credential_sources_match_s3() {
        assert_eq!(
            credential_source(&S3Credentials::AwsChain),
            CredentialSource::DefaultChain
        );
        assert_eq!(
            credential_source(&S3Credentials::Env {
                prefix: "KMS".into()
            }),
            CredentialSource::Env {
                access_key_id_var: "KMS_ACCESS_KEY_ID".into(),
                secret_access_key_var: "KMS_SECRET_ACCESS_KEY".into(),
            }
        );
        assert_eq!(
            credential_source(&S3Credentials::File("/etc/k.toml".into())),
            CredentialSource::File("/etc/k.toml".into())
        );
    }
}
