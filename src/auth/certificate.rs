//! OpenSSH user certificates (PROTOCOL.certkeys), checked the way OpenSSH's
//! `TrustedUserCAKeys` does: a trusted CA, a user certificate, inside its validity window,
//! naming the user among its principals, with no critical option the gateway cannot honour.

use std::net::IpAddr;

use russh::keys::ssh_key::Fingerprint;
use russh::keys::{Certificate, HashAlg, PublicKey};

use super::source_address;

/// What a certificate says about itself, for the audit record (accepted or refused).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    pub key_id: String,
    pub serial: u64,
    /// SHA-256 fingerprint of the key that signed it (`SHA256:…`, as `ssh-keygen -l` prints).
    pub ca: String,
}

impl CertificateInfo {
    pub fn of(cert: &Certificate) -> CertificateInfo {
        CertificateInfo {
            key_id: cert.key_id().to_string(),
            serial: cert.serial(),
            ca: cert
                .signature_key()
                .fingerprint(HashAlg::Sha256)
                .to_string(),
        }
    }
}

/// Why a certificate does not log its holder in. The text goes to the audit log and the
/// gateway log, never to the client (which only learns that the method failed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateRefusal {
    #[error("certificate signed by a CA that is not in [auth] user_ca_keys")]
    UntrustedCa,
    #[error("certificate signature does not verify")]
    BadSignature,
    #[error("host certificate, not a user certificate")]
    NotUserCertificate,
    #[error("certificate not yet valid")]
    NotYetValid,
    #[error("certificate expired")]
    Expired,
    #[error("certificate names no principals")]
    NoPrincipals,
    #[error("user not among the certificate's principals")]
    PrincipalNotListed,
    #[error("certificate has force-command, which a file gateway cannot honour")]
    ForceCommand,
    #[error("certificate has the unknown critical option `{0}`")]
    UnknownCriticalOption(String),
    #[error("client address not allowed by the certificate's source-address")]
    SourceAddress,
    #[error("certificate's source-address cannot be read: {0}")]
    BadSourceAddress(String),
    #[error("no such user")]
    UnknownUser,
}

/// The CAs whose user certificates are trusted, by fingerprint of their public key.
#[derive(Debug, Clone, Default)]
pub struct TrustedCas {
    fingerprints: Vec<Fingerprint>,
}

impl TrustedCas {
    pub fn new(keys: &[PublicKey]) -> TrustedCas {
        TrustedCas {
            fingerprints: keys
                .iter()
                .map(|k| k.fingerprint(HashAlg::Sha256))
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.fingerprints.is_empty()
    }

    /// Checks `cert` for `user`, connecting from `client`, at `now` (Unix seconds). The
    /// holder's possession of the certified key is the SSH layer's check, done before this.
    pub fn check(
        &self,
        cert: &Certificate,
        user: &str,
        client: Option<IpAddr>,
        now: u64,
    ) -> Result<(), CertificateRefusal> {
        let ca = cert.signature_key().fingerprint(HashAlg::Sha256);
        if !self.fingerprints.contains(&ca) {
            return Err(CertificateRefusal::UntrustedCa);
        }
        // The SSH layer verified it too; a certificate is cheap to check twice and this check
        // must not depend on which front end called.
        if cert.verify_signature().is_err() {
            return Err(CertificateRefusal::BadSignature);
        }
        if !cert.cert_type().is_user() {
            return Err(CertificateRefusal::NotUserCertificate);
        }
        check_validity(cert, now)?;
        check_principals(cert, user)?;
        check_critical_options(cert, client)
    }
}

/// `valid_after <= now < valid_before`, as OpenSSH has it.
fn check_validity(cert: &Certificate, now: u64) -> Result<(), CertificateRefusal> {
    if now < cert.valid_after() {
        return Err(CertificateRefusal::NotYetValid);
    }
    if now >= cert.valid_before() {
        return Err(CertificateRefusal::Expired);
    }
    Ok(())
}

/// An empty principal list means "anyone" in the format; like sshd with TrustedUserCAKeys,
/// the gateway requires the user's name to be listed.
fn check_principals(cert: &Certificate, user: &str) -> Result<(), CertificateRefusal> {
    let principals = cert.valid_principals();
    if principals.is_empty() {
        return Err(CertificateRefusal::NoPrincipals);
    }
    if !principals.iter().any(|p| p == user) {
        return Err(CertificateRefusal::PrincipalNotListed);
    }
    Ok(())
}

/// Critical options must be understood or the certificate refused (PROTOCOL.certkeys).
/// `force-command` restricts what the holder may run; a gateway that serves files instead
/// would widen it, so it is refused rather than ignored.
fn check_critical_options(
    cert: &Certificate,
    client: Option<IpAddr>,
) -> Result<(), CertificateRefusal> {
    for (name, value) in cert.critical_options().iter() {
        match name.as_str() {
            "source-address" => match source_address::permits(value, client) {
                Ok(true) => {}
                Ok(false) => return Err(CertificateRefusal::SourceAddress),
                Err(e) => return Err(CertificateRefusal::BadSourceAddress(e.0)),
            },
            "force-command" => return Err(CertificateRefusal::ForceCommand),
            other => {
                return Err(CertificateRefusal::UnknownCriticalOption(
                    other.chars().take(64).collect(),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "certificate_tests.rs"]
mod tests;
