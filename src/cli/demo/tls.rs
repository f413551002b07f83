//! The demo's FTPS certificates: a private CA made once (`ftps-ca.pem`, the file clients trust,
//! and its key `ftps-ca.key`), and a server certificate for localhost, 127.0.0.1 and ::1 signed
//! by it. The CA carries name constraints: it can vouch for loopback names only, so someone who
//! trusts it more widely than intended exposes nothing but this machine.
//!
//! A later run reuses both. The server certificate is checked against the CA with rustls (the
//! chain, the names, the dates) and issued anew only when that fails, e.g. once it expired.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    NameConstraints, SanType,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use super::files::{check_secret, check_trusted, write_public, write_secret};

pub const CA_CERT: &str = "ftps-ca.pem";
pub const CA_KEY: &str = "ftps-ca.key";
pub const SERVER_CERT: &str = "ftps-server.pem";
pub const SERVER_KEY: &str = "ftps-server.key";

const DAY: Duration = Duration::from_secs(86_400);
const CA_DAYS: u32 = 3650;
/// The longest validity Apple platforms accept for a TLS server certificate.
const SERVER_DAYS: u32 = 825;
/// What the server certificate names, and what it is checked for.
const SERVER_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Makes whatever is missing; checks what exists.
pub fn ensure(dir: &Path) -> anyhow::Result<()> {
    let ca_key = ca(dir)?;
    let (cert, key) = (dir.join(SERVER_CERT), dir.join(SERVER_KEY));
    match (cert.exists(), key.exists()) {
        (true, true) => {
            check_secret(&key)?;
            check_trusted(&cert)?;
            match verify(dir) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!(reason = %e, "the demo's FTPS server certificate does not verify against the demo CA; issuing a new one");
                    std::fs::remove_file(&cert)
                        .with_context(|| format!("removing {}", cert.display()))?;
                    std::fs::remove_file(&key)
                        .with_context(|| format!("removing {}", key.display()))?;
                }
            }
        }
        (false, false) => {}
        _ => bail!(
            "{} and {} belong together but only one exists; delete it to have the demo issue both",
            cert.display(),
            key.display()
        ),
    }
    issue_server(dir, &ca_key)?;
    verify(dir).with_context(|| {
        format!(
            "the server certificate just issued does not verify against {}: do {CA_CERT} and {CA_KEY} belong together? \
             Delete both (and the server certificate) to make a new demo CA",
            dir.join(CA_CERT).display()
        )
    })
}

/// The CA's key: read back, or made together with `ftps-ca.pem`.
fn ca(dir: &Path) -> anyhow::Result<KeyPair> {
    let (cert, key) = (dir.join(CA_CERT), dir.join(CA_KEY));
    match (cert.exists(), key.exists()) {
        (true, true) => {
            check_secret(&key)?;
            check_trusted(&cert)?;
            load_key(&key)
        }
        (false, false) => {
            let ca_key = KeyPair::generate().context("generating the demo CA key")?;
            let ca_cert = ca_params(now())?
                .self_signed(&ca_key)
                .context("signing the demo CA certificate")?;
            write_secret(&key, pem("PRIVATE KEY", ca_key.serialized_der()).as_bytes())?;
            write_public(&cert, pem("CERTIFICATE", ca_cert.der()).as_bytes())?;
            Ok(ca_key)
        }
        _ => bail!(
            "{} and {} belong together but only one exists; delete it to make a new demo CA \
             (clients must then trust the new {CA_CERT})",
            cert.display(),
            key.display()
        ),
    }
}

/// The CA's subject, usages and constraints. Issuing only needs these to be the same as when the
/// CA certificate was made (the subject and key identify the issuer), so they are rebuilt here
/// rather than parsed back.
fn ca_params(now: SystemTime) -> anyhow::Result<CertificateParams> {
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name
        .push(DnType::CommonName, "eugate demo CA (loopback only)");
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.name_constraints = Some(NameConstraints {
        permitted_subtrees: vec![
            GeneralSubtree::DnsName("localhost".into()),
            GeneralSubtree::IpAddress(CidrSubnet::from_v4_prefix([127, 0, 0, 0], 8)),
            GeneralSubtree::IpAddress(CidrSubnet::from_v6_prefix(
                std::net::Ipv6Addr::LOCALHOST.octets(),
                128,
            )),
        ],
        excluded_subtrees: Vec::new(),
    });
    set_validity(&mut p, now, CA_DAYS);
    Ok(p)
}

fn issue_server(dir: &Path, ca_key: &KeyPair) -> anyhow::Result<()> {
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name.push(DnType::CommonName, "localhost");
    p.subject_alt_names = vec![
        SanType::DnsName("localhost".try_into().context("SAN localhost")?),
        SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
        SanType::IpAddress(std::net::Ipv6Addr::LOCALHOST.into()),
    ];
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.use_authority_key_identifier_extension = true;
    set_validity(&mut p, now(), SERVER_DAYS);
    let issuer = Issuer::new(ca_params(now())?, ca_key);
    let key = KeyPair::generate().context("generating the demo FTPS server key")?;
    let cert = p
        .signed_by(&key, &issuer)
        .context("signing the demo FTPS server certificate")?;
    write_secret(
        &dir.join(SERVER_KEY),
        pem("PRIVATE KEY", key.serialized_der()).as_bytes(),
    )?;
    write_public(
        &dir.join(SERVER_CERT),
        pem("CERTIFICATE", cert.der()).as_bytes(),
    )
}

/// From a day ago (clocks differ a little) for `days`.
pub(super) fn set_validity(p: &mut CertificateParams, now: SystemTime, days: u32) {
    let since_epoch = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    p.not_before = epoch + since_epoch.saturating_sub(DAY);
    p.not_after = epoch + since_epoch + DAY * days;
}

pub(super) fn now() -> SystemTime {
    SystemTime::now()
}

pub(super) fn load_key(path: &Path) -> anyhow::Result<KeyPair> {
    let der = PrivateKeyDer::from_pem_file(path)
        .map_err(|e| anyhow::anyhow!("{}: not a PEM private key ({e})", path.display()))?;
    KeyPair::try_from(&der)
        .map_err(|e| anyhow::anyhow!("{}: unusable private key ({e})", path.display()))
}

/// Whether `ftps-server.pem` is valid now, for every name it must carry, under `ftps-ca.pem`
/// alone, as a client that trusts only that file would check it.
fn verify(dir: &Path) -> anyhow::Result<()> {
    let ca = CertificateDer::from_pem_file(dir.join(CA_CERT))
        .map_err(|e| anyhow::anyhow!("{CA_CERT}: {e}"))?;
    let server = CertificateDer::from_pem_file(dir.join(SERVER_CERT))
        .map_err(|e| anyhow::anyhow!("{SERVER_CERT}: {e}"))?;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(ca)
        .map_err(|e| anyhow::anyhow!("{CA_CERT}: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| anyhow::anyhow!("{CA_CERT}: {e}"))?;
    for name in SERVER_NAMES {
        let server_name = ServerName::try_from(name).context("server name")?;
        verifier
            .verify_server_cert(&server, &[], &server_name, &[], UnixTime::now())
            .map_err(|e| anyhow::anyhow!("{SERVER_CERT} for {name}: {e}"))?;
    }
    Ok(())
}

/// PEM with 64-column lines (RFC 7468).
pub(super) fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn made_once_then_reused_and_reissued_when_the_server_certificate_breaks() {
        let dir = tempfile::tempdir().unwrap();
        ensure(dir.path()).unwrap();
        let read = |n: &str| std::fs::read(dir.path().join(n)).unwrap();
        let (ca, server) = (read(CA_CERT), read(SERVER_CERT));
        for key in [CA_KEY, SERVER_KEY] {
            let mode = std::fs::metadata(dir.path().join(key))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
        ensure(dir.path()).unwrap();
        assert_eq!(
            (read(CA_CERT), read(SERVER_CERT)),
            (ca.clone(), server.clone())
        );

        // A server certificate from another CA no longer verifies: a new one from our CA.
        let other = tempfile::tempdir().unwrap();
        ensure(other.path()).unwrap();
        std::fs::write(
            dir.path().join(SERVER_CERT),
            std::fs::read(other.path().join(SERVER_CERT)).unwrap(),
        )
        .unwrap();
        assert!(verify(dir.path()).is_err());
        ensure(dir.path()).unwrap();
        assert_eq!(read(CA_CERT), ca);
        assert_ne!(read(SERVER_CERT), server);
        verify(dir.path()).unwrap();
    }

    #[test]
    fn a_ca_key_that_does_not_match_its_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        ensure(other.path()).unwrap();
        std::fs::copy(other.path().join(CA_CERT), dir.path().join(CA_CERT)).unwrap();
        let key = KeyPair::generate().unwrap();
        write_secret(
            &dir.path().join(CA_KEY),
            pem("PRIVATE KEY", key.serialized_der()).as_bytes(),
        )
        .unwrap();
        let e = format!("{:#}", ensure(dir.path()).unwrap_err());
        assert!(e.contains("belong together"), "{e}");
    }

    #[test]
    fn a_lone_half_or_a_readable_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        ensure(dir.path()).unwrap();
        let key = dir.path().join(CA_KEY);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = ensure(dir.path()).unwrap_err().to_string();
        assert!(e.contains("ftps-ca.key") && e.contains("0644"), "{e}");
        std::fs::remove_file(&key).unwrap();
        let e = ensure(dir.path()).unwrap_err().to_string();
        assert!(e.contains("only one exists"), "{e}");
    }
}
