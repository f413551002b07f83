//! The rustls server configurations: TLS 1.3 and 1.2 with the ring provider, one certificate
//! chain and key from PEM files; one for control connections and one for data connections.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;

use super::FtpsError;

/// The control and the data configuration, sharing one session cache and one ticket key, so a
/// data connection can resume the control connection's TLS session (what clients such as lftp
/// and curl do, and `require_ssl_reuse` demands). Tickets are stateless, so one ticket resumes
/// every data connection of a session. Data connections get no TLS 1.3 session tickets:
/// a client that never reads them (curl, ftplib: they only send) closes with unread data, so
/// its kernel sends a reset instead of a FIN, and the reset can destroy its last bytes and its
/// close_notify in our receive queue, which makes a complete upload look cut.
pub fn server_configs(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<(Arc<ServerConfig>, Arc<ServerConfig>), FtpsError> {
    let mut control = server_config(cert, key, client_ca)?;
    control.ticketer =
        rustls::crypto::ring::Ticketer::new().map_err(|e| FtpsError::Certificate {
            path: cert.display().to_string(),
            reason: format!("cannot make a TLS session ticket key: {e}"),
        })?;
    let control = Arc::new(control);
    let mut data = (*control).clone();
    data.send_tls13_tickets = 0;
    Ok((control, Arc::new(data)))
}

/// With a client CA, clients MAY present a certificate: one that does not chain to it, or is
/// expired, fails the handshake; none at all leaves the password login.
fn client_verifier(
    client_ca: Option<&Path>,
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, FtpsError> {
    let Some(path) = client_ca else {
        return Ok(WebPkiClientVerifier::no_client_auth());
    };
    let err = |reason: String| FtpsError::Certificate {
        path: path.display().to_string(),
        reason,
    };
    let roots = crate::config::client_ca_roots(path).map_err(err)?;
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| err(format!("unusable as a client CA: {e}")))
}

fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<ServerConfig, FtpsError> {
    let (certs, key) = crate::tls::identity(cert, key).map_err(|e| FtpsError::Certificate {
        path: e.path,
        reason: e.reason,
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = client_verifier(client_ca, &provider)?;
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .and_then(|b| {
            b.with_client_cert_verifier(verifier)
                .with_single_cert(certs, key)
        })
        .map_err(|e| FtpsError::Certificate {
            path: cert.display().to_string(),
            reason: format!("certificate and key do not form a usable TLS identity: {e}"),
        })?;
    Ok(config)
}
