//! The demo's compliance officers: their own CA (`officers/ca.pem`, separate from the FTPS CA:
//! who may log in to the console is not who the server is), an editor and an approver, each a
//! certificate and key and a PKCS#12 file to import into a browser, under one password kept
//! in `officers/p12-password`. A later run reuses them all.

use std::path::Path;

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::files::{check_secret, new_hex_secret, write_public, write_secret};
use super::tls::{load_key, now, pem, set_validity};

pub const DIR: &str = "officers";
pub const CA_CERT: &str = "officers/ca.pem";
const CA_KEY: &str = "officers/ca.key";
pub const PASSWORD_FILE: &str = "officers/p12-password";
/// The demo officers: file stem, role.
pub const OFFICERS: [(&str, &str); 2] = [("editor", "editor"), ("approver", "approver")];
const CA_DAYS: u32 = 3650;
const OFFICER_DAYS: u32 = 825;

/// Makes whatever is missing.
pub fn ensure(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join(DIR)).context("creating the officers' directory")?;
    let ca_key = ca(dir)?;
    let password = password(dir)?;
    for (name, _) in OFFICERS {
        let cert = dir.join(DIR).join(format!("{name}.pem"));
        if cert.exists() {
            check_secret(&dir.join(DIR).join(format!("{name}.key")))?;
            continue;
        }
        issue(dir, name, &ca_key, &password)?;
    }
    Ok(())
}

/// The `[console]` section (with the `[policy]` directory the demo writes, so approved changes
/// have somewhere to go): one officer per role, by certificate fingerprint.
pub fn section(dir: &Path) -> anyhow::Result<String> {
    let mut out = format!(
        "# The compliance console on the admin listener; officers log in with the PKCS#12 files in {DIR}/.\n\
         [console]\nclient_ca = \"{CA_CERT}\"\nproposals_dir = \"proposals\"\n"
    );
    for (name, role) in OFFICERS {
        let pem_file = dir.join(DIR).join(format!("{name}.pem"));
        let der = CertificateDer::from_pem_file(&pem_file)
            .map_err(|e| anyhow::anyhow!("{}: not a PEM certificate ({e})", pem_file.display()))?;
        let fp = crate::auth::ClientCertificate::from_der(&der).fingerprint();
        out.push_str(&format!(
            "\n[console.officers.demo-{name}]\nroles = [\"{role}\"]\ncertificates = [\"{fp}\"]\n"
        ));
    }
    Ok(out)
}

/// How to log in, for the demo's banner.
pub fn print_on(shown: &str, url: &str) {
    println!("Compliance console: {url}/console/ (client certificate required). Import one of");
    for (name, role) in OFFICERS {
        println!("  {shown}/{DIR}/{name}.p12   ({role})");
    }
    println!(
        "into your browser (password in {shown}/{PASSWORD_FILE}), trust {shown}/ftps-ca.pem for the server, and open the URL.\n"
    );
}

fn ca_params() -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name
        .push(DnType::CommonName, "eugate demo officers CA");
    // Officers' certificates only: no intermediates, no servers.
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    set_validity(&mut p, now(), CA_DAYS);
    p
}

fn ca(dir: &Path) -> anyhow::Result<KeyPair> {
    let (cert, key) = (dir.join(CA_CERT), dir.join(CA_KEY));
    if cert.exists() && key.exists() {
        check_secret(&key)?;
        return load_key(&key);
    }
    let ca_key = KeyPair::generate().context("generating the officers' CA key")?;
    let ca_cert = ca_params()
        .self_signed(&ca_key)
        .context("signing the officers' CA certificate")?;
    write_secret(&key, pem("PRIVATE KEY", ca_key.serialized_der()).as_bytes())?;
    write_public(&cert, pem("CERTIFICATE", ca_cert.der()).as_bytes())?;
    Ok(ca_key)
}

fn password(dir: &Path) -> anyhow::Result<String> {
    let file = dir.join(PASSWORD_FILE);
    if file.exists() {
        check_secret(&file)?;
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        return Ok(text.trim().to_string());
    }
    Ok(new_hex_secret(&file, 12)?.as_str().to_owned())
}

fn issue(dir: &Path, name: &str, ca_key: &KeyPair, password: &str) -> anyhow::Result<()> {
    let mut p = CertificateParams::default();
    p.distinguished_name = DistinguishedName::new();
    p.distinguished_name
        .push(DnType::OrganizationName, "eugate demo");
    p.distinguished_name
        .push(DnType::CommonName, format!("demo {name}"));
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.use_authority_key_identifier_extension = true;
    set_validity(&mut p, now(), OFFICER_DAYS);
    let issuer = Issuer::new(ca_params(), ca_key);
    let key = KeyPair::generate().with_context(|| format!("generating {name}'s key"))?;
    let cert = p
        .signed_by(&key, &issuer)
        .with_context(|| format!("signing {name}'s certificate"))?;
    let base = dir.join(DIR);
    write_secret(
        &base.join(format!("{name}.key")),
        pem("PRIVATE KEY", key.serialized_der()).as_bytes(),
    )?;
    write_public(
        &base.join(format!("{name}.pem")),
        pem("CERTIFICATE", cert.der()).as_bytes(),
    )?;
    let p12 = pkcs12(name, key.serialized_der(), cert.der(), password)?;
    write_secret(&base.join(format!("{name}.p12")), &p12)
}

/// PBES2 (AES-256, PBKDF2-SHA256) and an HMAC-SHA256 MAC: what current browsers and NSS read.
fn pkcs12(name: &str, key_der: &[u8], cert_der: &[u8], password: &str) -> anyhow::Result<Vec<u8>> {
    use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
    let cert = Certificate::from_der(cert_der).context("reading back the officer's certificate")?;
    let local_key_id = ring::digest::digest(&ring::digest::SHA256, cert_der);
    let chain = PrivateKeyChain::new(
        local_key_id.as_ref().to_vec(),
        PrivateKey::from_der(key_der).context("reading back the officer's key")?,
        [cert],
    );
    let mut store = KeyStore::new();
    store.add_entry(
        &format!("demo {name}"),
        KeyStoreEntry::PrivateKeyChain(chain),
    );
    store
        .writer(password)
        .write()
        .context("writing the officer's PKCS#12 file")
}
