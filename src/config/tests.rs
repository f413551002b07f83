use std::path::Path;

use super::*;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINIyhUuFCAqPw7ujMHAAWRbRQrG2RrqhuvrxbVLexvWd test";

fn hash() -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    argon2::Argon2::default()
        .hash_password(b"pw", &salt)
        .unwrap()
        .to_string()
}

fn good() -> String {
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

fn problems(text: &str) -> Vec<Problem> {
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
fn authorized_key_lines() {
    assert!(parse_authorized_key("").unwrap().is_none());
    assert!(parse_authorized_key("# comment").unwrap().is_none());
    assert!(parse_authorized_key(KEY).unwrap().is_some());
    assert!(parse_authorized_key("ssh-ed25519 !!!").is_err());
}

#[test]
fn shutdown_grace_defaults_accepts_zero_and_refuses_nonsense() {
    let c = Config::parse(Path::new("/etc/eugate/gateway.toml"), &good()).unwrap();
    assert_eq!(
        c.server.shutdown_grace,
        std::time::Duration::from_secs(DEFAULT_SHUTDOWN_GRACE_SECS)
    );
    let with = |v: &str| {
        good().replacen(
            "reorder_window = \"8MiB\"",
            &format!("reorder_window = \"8MiB\"\nshutdown_grace_secs = {v}"),
            1,
        )
    };
    let c = Config::parse(Path::new("/etc/eugate/gateway.toml"), &with("0")).unwrap();
    assert!(c.server.shutdown_grace.is_zero());
    let p = problems(&with("30000000"));
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].key, "server.shutdown_grace_secs");
    assert!(p[0].message.contains("in seconds"), "{p:?}");
    for bad in ["-1", "\"30s\"", "1.5"] {
        match Config::parse(Path::new("/etc/eugate/gateway.toml"), &with(bad)) {
            Err(ConfigError::Syntax { message, .. }) => {
                assert!(message.contains("shutdown_grace_secs"), "{bad}: {message}")
            }
            other => panic!("{bad}: expected a syntax error, got {other:?}"),
        }
    }
}
