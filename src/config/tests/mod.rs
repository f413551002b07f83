//! Config tests: shared fixtures (a good config, problem lists) and the whole-file checks
//! (users, credentials, names); `storage` and `sections` hold the per-section ones.

use std::path::Path;

use super::*;

pub(super) const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINIyhUuFCAqPw7ujMHAAWRbRQrG2RrqhuvrxbVLexvWd test";

pub(super) fn hash() -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    argon2::Argon2::default()
        .hash_password(b"pw", &salt)
        .unwrap()
        .to_string()
}

pub(super) fn good() -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:2222"]
host_keys = ["host_ed25519"]
reorder_window = "8MiB"

[keys]
keyring = "keyring.json"
master_key_file = "master.key"

[destinations.local]
kind = "fs"
root = "store"
country = "DE"

[tenants.acme]
route = {{ destination = "local", prefix = "acme/" }}
classification = "personal"

[tenants.acme.users.alice]
authorized_keys = ["{KEY}"]
permissions = ["read", "write", "delete"]

[tenants.acme.users.bob]
password_hash = "{}"
"#,
        hash()
    )
}

pub(super) fn problems(text: &str) -> Vec<Problem> {
    match Config::parse(Path::new("/etc/eugate/gateway.toml"), text) {
        Err(ConfigError::Invalid { problems, .. }) => problems,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn good_config_loads_and_resolves_paths() {
    let c = Config::parse(Path::new("/etc/eugate/gateway.toml"), &good()).unwrap();
    assert_eq!(c.server.reorder_window, 8 << 20);
    assert_eq!(c.server.host_keys[0], Path::new("/etc/eugate/host_ed25519"));
    assert_eq!(c.keys.keyring, Path::new("/etc/eugate/keyring.json"));
    let alice = c.user("alice").unwrap();
    assert_eq!(alice.tenant, "acme");
    assert_eq!(alice.authorized_keys.len(), 1);
    assert!(alice.permissions.delete);
    let bob = c.user("bob").unwrap();
    assert!(bob.password_hash.is_some());
    assert!(!bob.permissions.delete, "default permissions: read + write");
    assert!(c.policy.dir.is_none());
    assert_eq!(
        c.tenants["acme"].classification,
        Some(crate::policy::Classification::Personal)
    );
}

#[test]
fn unknown_classification_names_the_known_ones() {
    let p = problems(&good().replace("\"personal\"", "\"secret\""));
    assert_eq!(
        p,
        vec![Problem {
            key: "tenants.acme.classification".into(),
            message: "`secret` is unknown; use one of public, internal, personal, special-category"
                .into(),
        }]
    );
}

#[test]
fn plaintext_password_refused_with_advice() {
    let text = good().replace(
        "[tenants.acme.users.bob]",
        "[tenants.acme.users.bob]\npassword = \"hunter2\"",
    );
    let p = problems(&text);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].key, "tenants.acme.users.bob.password");
    assert!(p[0].message.contains("eugate passwd"));
    // The error output never echoes the password itself.
    let err = Config::parse(Path::new("g.toml"), &text)
        .unwrap_err()
        .to_string();
    assert!(!err.contains("hunter2"));
    assert!(err.starts_with("g.toml: tenants.acme.users.bob.password: "));
}

#[test]
fn unknown_keys_rejected() {
    let text = good().replace("reorder_window", "reorder_windw");
    match Config::parse(Path::new("g.toml"), &text) {
        Err(ConfigError::Syntax { message, .. }) => assert!(message.contains("reorder_windw")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn many_problems_reported_at_once() {
    let text = good()
        .replace("127.0.0.1:2222", "localhost")
        .replace("\"DE\"", "\"Germany\"")
        .replace("destination = \"local\"", "destination = \"nowhere\"")
        .replace("\"personal\"", "\"secret\"")
        .replace("\"delete\"", "\"admin\"");
    let keys: Vec<String> = problems(&text).into_iter().map(|p| p.key).collect();
    assert!(keys.contains(&"server.listen[0]".to_string()), "{keys:?}");
    assert!(keys.contains(&"destinations.local.country".to_string()));
    assert!(keys.contains(&"tenants.acme.route.destination".to_string()));
    assert!(keys.contains(&"tenants.acme.classification".to_string()));
    assert!(keys.contains(&"tenants.acme.users.alice.permissions".to_string()));
}

#[test]
fn bad_hashes_and_keys_refused() {
    let text = good()
        .replace(&hash(), "$2b$12$abcdefghijklmnopqrstuv")
        .replace(KEY, "from=10.0.0.1 ssh-ed25519 AAAA");
    let p = problems(&text);
    assert!(
        p.iter()
            .any(|p| p.key == "tenants.acme.users.bob.password_hash")
    );
    assert!(
        p.iter()
            .any(|p| p.key == "tenants.acme.users.alice.authorized_keys[0]"
                && p.message.contains("options"))
    );
}

#[test]
fn prefix_and_names_checked() {
    let text = good().replace("prefix = \"acme/\"", "prefix = \"../acme/\"");
    assert!(
        problems(&text)
            .iter()
            .any(|p| p.key == "tenants.acme.route.prefix")
    );
    let text = good().replace("prefix = \"acme/\"", "prefix = \"acme\"");
    assert!(
        problems(&text)
            .iter()
            .any(|p| p.key == "tenants.acme.route.prefix")
    );
}

#[test]
fn users_unique_across_tenants_and_need_a_credential() {
    let text = format!(
        "{}\n[tenants.other]\nroute = {{ destination = \"local\", prefix = \"other/\" }}\n[tenants.other.users.alice]\nauthorized_keys = [\"{KEY}\"]\n[tenants.other.users.nobody]\n",
        good()
    );
    let p = problems(&text);
    assert!(
        p.iter()
            .any(|p| p.key == "tenants.other.users.alice" && p.message.contains("unique"))
    );
    assert!(
        p.iter().any(
            |p| p.key == "tenants.other.users.nobody" && p.message.contains("no way to log in")
        )
    );
}

#[test]
fn a_user_without_key_or_password_may_log_in_by_certificate_when_a_ca_is_trusted() {
    let user = "[tenants.other]\nroute = { destination = \"local\", prefix = \"other/\" }\n[tenants.other.users.nobody]\n";
    let without_ca = format!("{}\n{user}", good());
    assert!(
        problems(&without_ca)
            .iter()
            .any(|p| p.key == "tenants.other.users.nobody" && p.message.contains("user_ca_keys"))
    );
    let with_ca = format!("{}\n[auth]\nuser_ca_keys = [\"{KEY}\"]\n{user}", good());
    let c = Config::parse(Path::new("/etc/eugate/gateway.toml"), &with_ca).unwrap();
    assert!(c.user("nobody").is_some());
}

#[test]
fn authorized_key_lines() {
    assert!(parse_authorized_key("").unwrap().is_none());
    assert!(parse_authorized_key("# comment").unwrap().is_none());
    assert!(parse_authorized_key(KEY).unwrap().is_some());
    assert!(parse_authorized_key("ssh-ed25519 !!!").is_err());
}

pub(super) fn with_s3(block: &str) -> String {
    format!("{}\n[destinations.eu]\nkind = \"s3\"\n{block}\n", good())
}

pub(super) fn keys_of(p: &[Problem]) -> Vec<String> {
    p.iter().map(|p| p.key.clone()).collect()
}

mod keys;
mod sections;
mod storage;

#[test]
fn a_certificate_is_not_taken_for_a_key() {
    use russh::keys::PrivateKey;
    use russh::keys::ssh_key::certificate::{Builder, CertType};
    use russh::keys::ssh_key::private::Ed25519Keypair;
    let ca = PrivateKey::from(Ed25519Keypair::from_seed(&[1; 32]));
    let subject = PrivateKey::from(Ed25519Keypair::from_seed(&[2; 32]));
    let mut b = Builder::new(
        [7; 16],
        subject.public_key().key_data().clone(),
        0,
        u64::MAX,
    )
    .unwrap();
    b.cert_type(CertType::User).unwrap();
    b.all_principals_valid().unwrap();
    let line = b.sign(&ca).unwrap().to_openssh().unwrap();
    assert!(
        line.starts_with("ssh-ed25519-cert-v01@openssh.com "),
        "{line}"
    );
    let e = parse_authorized_key(&line).unwrap_err();
    assert!(e.contains("a certificate") && e.contains(".pub"), "{e}");
    // In [auth] user_ca_keys too: a certificate is never a CA key (OpenSSH has no chains).
    let toml = format!("{}\n[auth]\nuser_ca_keys = [\"{line}\"]\n", good());
    assert_eq!(keys_of(&problems(&toml)), ["auth.user_ca_keys[0]"]);
}
