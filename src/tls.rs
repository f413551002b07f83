//! PEM files for the TLS servers (FTPS and the admin listener): a certificate chain, its
//! private key (refused if others can read it, like the SSH host keys) and CA certificates.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A PEM file that cannot serve: which file, and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct TlsFileError {
    pub path: String,
    pub reason: String,
}

fn error(path: &Path, reason: impl Into<String>) -> TlsFileError {
    TlsFileError {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// The certificates of a PEM file (a server's chain, or a set of CAs); at least one.
pub fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsFileError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| error(path, e.to_string()))?;
    if certs.is_empty() {
        return Err(error(path, "no CERTIFICATE block in the file"));
    }
    Ok(certs)
}

/// A server identity: the certificate chain and its private key, which must be private to
/// its owner (mode 0600 or tighter).
pub fn identity(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsFileError> {
    let certs = certificates(cert)?;
    private_to_owner(key)?;
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| error(key, format!("no usable private key ({e})")))?;
    Ok((certs, key_der))
}

/// Like the SSH host keys: a private key others can read is refused, not used (certs/README.md).
fn private_to_owner(key: &Path) -> Result<(), TlsFileError> {
    use std::os::unix::fs::PermissionsExt;
    let md = std::fs::metadata(key).map_err(|e| error(key, e.to_string()))?;
    let mode = md.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(error(
            key,
            format!(
                "permissions {mode:04o} let others read the private key; run `chmod 600 {}`",
                key.display()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_private_key_others_can_read_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("server.key");
        std::fs::write(&key, "not even a key").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = private_to_owner(&key).unwrap_err().to_string();
        assert!(e.contains("0644") && e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(private_to_owner(&key).is_ok());
    }

    #[test]
    fn a_file_without_certificates_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("empty.pem");
        std::fs::write(&pem, "nothing here\n").unwrap();
        let e = certificates(&pem).unwrap_err();
        assert!(
            e.path.ends_with("empty.pem") && e.reason.contains("no CERTIFICATE"),
            "{e}"
        );
    }
}
