//! The admin listener's rustls configuration: the server identity from PEM files (shared with
//! FTPS, `crate::tls`), HTTP/1.1 by ALPN, and client certificates: required and verified
//! against `[admin] client_ca` when it is set; with only `[console] client_ca`, optional (health
//! checks and scrapers need none) and checked again by the console for its pages.

use std::path::Path;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use super::AdminError;
use crate::config::AdminConfig;

pub(super) fn server_config(
    config: &AdminConfig,
    console_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, AdminError> {
    let (certs, key) = crate::tls::identity(&config.certificate, &config.private_key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| AdminError::Tls(e.to_string()))?;
    let cas: Vec<&Path> = config
        .client_ca
        .iter()
        .map(|p| p.as_path())
        .chain(console_ca)
        .collect();
    let builder = if cas.is_empty() {
        builder.with_no_client_auth()
    } else {
        let required = config.client_ca.is_some();
        builder.with_client_cert_verifier(client_verifier(&cas, required, provider)?)
    };
    let mut tls = builder.with_single_cert(certs, key).map_err(|e| {
        AdminError::Tls(format!(
            "{}: certificate and key do not form a usable TLS identity: {e}",
            config.certificate.display()
        ))
    })?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(tls))
}

/// A verifier trusting every CA in `cas`; `required = false` lets clients without a
/// certificate through (a certificate that is presented must still verify).
pub(crate) fn client_verifier(
    cas: &[&Path],
    required: bool,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, AdminError> {
    let mut roots = RootCertStore::empty();
    for ca in cas {
        for cert in crate::tls::certificates(ca)? {
            roots.add(cert).map_err(|e| {
                AdminError::Tls(format!(
                    "{}: not a usable CA certificate: {e}",
                    ca.display()
                ))
            })?;
        }
    }
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    let builder = if required {
        builder
    } else {
        builder.allow_unauthenticated()
    };
    builder.build().map_err(|e| {
        let names: Vec<String> = cas.iter().map(|p| p.display().to_string()).collect();
        AdminError::Tls(format!("{}: {e}", names.join(", ")))
    })
}
