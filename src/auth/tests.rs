//! The users table as the config builds it: each way in finds the right account, and only it.

use std::path::Path;
use std::time::{Duration, SystemTime};

use russh::keys::PrivateKey;
use russh::keys::ssh_key::certificate::{Builder, CertType};
use russh::keys::ssh_key::private::Ed25519Keypair;

use super::*;

fn key(seed: u8) -> PrivateKey {
    PrivateKey::from(Ed25519Keypair::from_seed(&[seed; 32]))
}

fn line(k: &PrivateKey) -> String {
    k.public_key().to_openssh().unwrap()
}

/// alice (key 2) in acme, read-only; erin (key 3) in beta; CA key 1 trusted.
fn users() -> Users {
    let text = format!(
        r#"
[server]
listen = ["127.0.0.1:2222"]
host_keys = ["host"]
[auth]
user_ca_keys = ["{ca}"]
[keys]
keyring = "k"
master_key_file = "m"
[destinations.local]
kind = "fs"
root = "store"
country = "DE"
[tenants.acme]
route = {{ destination = "local", prefix = "acme/" }}
[tenants.acme.users.alice]
authorized_keys = ["{alice}"]
permissions = ["read"]
[tenants.beta]
route = {{ destination = "local", prefix = "beta/" }}
[tenants.beta.users.erin]
authorized_keys = ["{erin}"]
"#,
        ca = line(&key(1)),
        alice = line(&key(2)),
        erin = line(&key(3)),
    );
    let config = Config::parse(Path::new("/etc/eugate/gateway.toml"), &text).unwrap();
    Users::from_config(&config)
}

/// A user certificate for `principal` on key 9, signed by `ca`, valid for the next hour.
fn cert(ca: u8, principal: &str) -> Certificate {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut b = Builder::new(
        [1u8; 16],
        key(9).public_key().key_data().clone(),
        now - 60,
        now + 3600,
    )
    .unwrap();
    b.cert_type(CertType::User).unwrap();
    b.valid_principal(principal).unwrap();
    b.sign(&key(ca)).unwrap()
}

#[test]
fn a_key_logs_in_its_own_user_with_their_tenant_and_permissions() {
    let u = users();
    let a = u.by_key("alice", key(2).public_key()).unwrap();
    assert_eq!((a.tenant(), a.user()), ("acme", "alice"));
    assert!(a.permissions().read && !a.permissions().write);
    assert!(u.by_key("erin", key(2).public_key()).is_none());
    assert!(u.by_key("nobody", key(2).public_key()).is_none());
    assert!(!u.has_password("alice"));
}

#[test]
fn a_certificate_logs_in_an_existing_user_it_names() {
    let u = users();
    assert!(u.trusts_certificates());
    let now = SystemTime::now();
    let a = u
        .by_certificate("erin", &cert(1, "erin"), None, now)
        .unwrap();
    assert_eq!((a.tenant(), a.user()), ("beta", "erin"));
    assert_eq!(
        u.by_certificate("ghost", &cert(1, "ghost"), None, now)
            .unwrap_err(),
        CertificateRefusal::UnknownUser
    );
    assert_eq!(
        u.by_certificate("alice", &cert(1, "erin"), None, now)
            .unwrap_err(),
        CertificateRefusal::PrincipalNotListed
    );
    assert_eq!(
        u.by_certificate("erin", &cert(4, "erin"), None, now)
            .unwrap_err(),
        CertificateRefusal::UntrustedCa
    );
    // The clock the caller passes is the one checked.
    assert_eq!(
        u.by_certificate(
            "erin",
            &cert(1, "erin"),
            None,
            now + Duration::from_secs(7200)
        )
        .unwrap_err(),
        CertificateRefusal::Expired
    );
}
