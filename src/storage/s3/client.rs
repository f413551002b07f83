//! Building an S3 client the way DESIGN.md asks: rustls on ring, custom endpoint, path-style,
//! static or environment credentials (never inline secrets), an optional private CA bundle,
//! checksums only "when required" (we send an explicit CRC32C per part), bounded timeouts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_sdk_s3::config::{
    Region, RequestChecksumCalculation, ResponseChecksumValidation, StalledStreamProtectionConfig,
    retry::RetryConfig, timeout::TimeoutConfig,
};
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::S3Error;

/// Where the access key comes from. Secrets are never written in the gateway config itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// Two environment variables hold the access key id and the secret.
    Env {
        access_key_id_var: String,
        secret_access_key_var: String,
    },
    /// A 0600 TOML file with `access_key_id` and `secret_access_key`.
    File(PathBuf),
    /// The standard AWS chain (environment, profile, web identity, container, instance metadata).
    DefaultChain,
}

/// Everything needed to talk to one bucket.
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// `None`: the provider's default endpoint for the region (AWS).
    pub endpoint: Option<String>,
    pub bucket: String,
    /// Catalogue provider id (`aws`, `wasabi`, …, or `self-hosted`).
    pub provider: String,
    /// The region the configuration expects the bucket to be in.
    pub region: String,
    pub path_style: bool,
    pub credentials: CredentialSource,
    /// PEM bundle of a private CA (e.g. from `certs/`), added to the platform roots.
    pub ca_bundle: Option<PathBuf>,
    /// Bound on one request attempt; a frozen store fails uploads instead of hanging them.
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialFile {
    access_key_id: String,
    secret_access_key: Zeroizing<String>,
}

/// Builds the client. Reads credentials now so that a missing secret fails at startup.
pub async fn build_client(s: &S3Settings) -> Result<aws_sdk_s3::Client, S3Error> {
    let mut trust = TrustStore::default();
    if let Some(ca) = &s.ca_bundle {
        let pem = std::fs::read(ca)
            .map_err(|e| S3Error::Config(format!("CA bundle {}: {e}", ca.display())))?;
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            return Err(S3Error::Config(format!(
                "CA bundle {} holds no PEM certificate",
                ca.display()
            )));
        }
        trust = trust.with_pem_certificate(pem);
    }
    let tls_context = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .map_err(|e| S3Error::Config(format!("TLS settings: {e}")))?;
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .tls_context(tls_context)
        .build_https();

    let credentials = static_credentials(&s.credentials)?;

    let timeouts = TimeoutConfig::builder()
        .connect_timeout(s.connect_timeout)
        .operation_attempt_timeout(s.request_timeout)
        .build();
    let mut builder = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(s.region.clone()))
        .http_client(http.clone())
        .force_path_style(s.path_style)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
        .timeout_config(timeouts)
        .stalled_stream_protection(stalled_stream_protection())
        .retry_config(RetryConfig::standard().with_max_attempts(3));
    if let Some(endpoint) = &s.endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    builder = match credentials {
        Some(c) => builder.credentials_provider(c),
        None => builder.credentials_provider(
            chain_credentials(http, &s.region)
                .await
                .map_err(S3Error::Config)?,
        ),
    };
    Ok(aws_sdk_s3::Client::from_conf(builder.build()))
}

/// The SDK's stalled-stream protection, for response bodies only. On an upload it gives up on
/// an attempt whose body the store has not read for 5 s, and the retry sends the part again
/// while the first attempt may still be alive at the store. Garage stamps each attempt when its
/// first block arrives and completes a multipart upload with the latest stamp of each part, so
/// a stalled first attempt that fails after the retry succeeded made the commit fail with
/// `InvalidPart` (2 of 64 concurrent uploads in one benchmark run, docs/benchmarks.md). The
/// attempt timeout bounds an upload attempt as a whole, stalls included.
fn stalled_stream_protection() -> StalledStreamProtectionConfig {
    StalledStreamProtectionConfig::enabled()
        .upload_enabled(false)
        // The SDK's default grace, kept for response bodies.
        .grace_period(Duration::from_secs(5))
        .build()
}

/// The standard AWS credential chain's provider (environment, profile, IMDS…), resolved over
/// `http` in `region`. Shared with the `aws-kms` key provider.
pub(crate) async fn chain_credentials(
    http: impl aws_sdk_s3::config::HttpClient + 'static,
    region: &str,
) -> Result<aws_sdk_s3::config::SharedCredentialsProvider, String> {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .region(Region::new(region.to_string()))
        .load()
        .await
        .credentials_provider()
        .ok_or_else(|| "the standard AWS credential chain found no credentials provider".into())
}

/// The credentials `source` names, read now (a missing variable or an open file fails here);
/// `None` for the standard AWS chain. Shared with the `aws-kms` key provider.
pub(crate) fn static_credentials(
    source: &CredentialSource,
) -> Result<Option<Credentials>, S3Error> {
    Ok(match source {
        CredentialSource::Env {
            access_key_id_var,
            secret_access_key_var,
        } => {
            let get = |var: &str| {
                std::env::var(var).map_err(|_| {
                    S3Error::Config(format!(
                        "environment variable {var} (named in the destination's credentials) is not set"
                    ))
                })
            };
            let secret = Zeroizing::new(get(secret_access_key_var)?);
            Some(Credentials::new(
                get(access_key_id_var)?,
                secret.as_str(),
                None,
                None,
                "eugate-env",
            ))
        }
        CredentialSource::File(path) => Some(read_credential_file(path)?),
        CredentialSource::DefaultChain => None,
    })
}

fn read_credential_file(path: &Path) -> Result<Credentials, S3Error> {
    use std::os::unix::fs::PermissionsExt;
    let err =
        |what: String| S3Error::Config(format!("credentials file {}: {what}", path.display()));
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
    let mode = meta.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(err(format!(
            "permissions {:04o} let others read it; run `chmod 600 {}`",
            mode & 0o7777,
            path.display()
        )));
    }
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?);
    let parsed: CredentialFile = toml::from_str(&text).map_err(|e| {
        err(format!(
            "expected access_key_id and secret_access_key: {}",
            e.message()
        ))
    })?;
    Ok(Credentials::new(
        parsed.access_key_id,
        parsed.secret_access_key.as_str(),
        None,
        None,
        "eugate-file",
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_stalled_upload_attempt_is_left_to_the_attempt_timeout() {
        let c = super::stalled_stream_protection();
        assert!(!c.upload_enabled());
        assert!(c.is_enabled() && c.download_enabled());
        assert_eq!(c.grace_period(), super::Duration::from_secs(5));
    }
}
