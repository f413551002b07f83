//! The rustls server configurations: TLS 1.3 and 1.2 with the ring provider, one certificate
//! chain and key from PEM files; one for control connections and one for data connections.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;

use super::FtpsError;

/// The control and the data configuration. Data connections get no TLS 1.3 session tickets:
/// a client that never reads them (curl, ftplib: they only send) closes with unread data, so
/// its kernel sends a reset instead of a FIN, and the reset can destroy its last bytes and its
/// close_notify in our receive queue, which makes a complete upload look cut.
pub fn server_configs(
    cert: &Path,
    key: &Path,
) -> Result<(Arc<ServerConfig>, Arc<ServerConfig>), FtpsError> {
    let control = server_config(cert, key)?;
    let mut data = (*control).clone();
    data.send_tls13_tickets = 0;
    Ok((control, Arc::new(data)))
}

fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, FtpsError> {
    let (certs, key) = crate::tls::identity(cert, key).map_err(|e| FtpsError::Certificate {
        path: e.path,
        reason: e.reason,
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| FtpsError::Certificate {
            path: cert.display().to_string(),
            reason: format!("certificate and key do not form a usable TLS identity: {e}"),
        })?;
    Ok(Arc::new(config))
}
