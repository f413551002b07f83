//! The admin listener's rustls configuration: the server identity from PEM files (shared with
//! FTPS, `crate::tls`), HTTP/1.1 by ALPN, and, when `client_ca` is set, client certificates
//! required and verified against it.

use std::path::Path;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use super::AdminError;
use crate::config::AdminConfig;

pub(super) fn server_config(config: &AdminConfig) -> Result<Arc<ServerConfig>, AdminError> {
    let (certs, key) = crate::tls::identity(&config.certificate, &config.private_key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| AdminError::Tls(e.to_string()))?;
    let builder = match &config.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => builder.with_client_cert_verifier(client_verifier(ca, provider)?),
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

fn client_verifier(
    ca: &Path,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, AdminError> {
    let mut roots = RootCertStore::empty();
    for cert in crate::tls::certificates(ca)? {
        roots.add(cert).map_err(|e| {
            AdminError::Tls(format!(
                "{}: not a usable CA certificate: {e}",
                ca.display()
            ))
        })?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| AdminError::Tls(format!("{}: {e}", ca.display())))
}
