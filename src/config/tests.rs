use std::path::Path;
use std::time::Duration;

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

fn with_s3(block: &str) -> String {
    format!("{}\n[destinations.eu]\nkind = \"s3\"\n{block}\n", good())
}

fn keys_of(p: &[Problem]) -> Vec<String> {
    p.iter().map(|p| p.key.clone()).collect()
}

#[test]
fn s3_destination_loads_with_defaults() {
    let text = with_s3(
        r#"provider = "aws"
bucket = "acme-eu"
region = "eu-central-1"
credentials = { env = "EUGATE_S3" }"#,
    );
    let c = Config::parse(Path::new("/etc/eugate/gateway.toml"), &text).unwrap();
    let DestinationKind::S3(s3) = &c.destinations["eu"].kind else {
        panic!("not s3")
    };
    assert_eq!(s3.provider, "aws");
    assert!(s3.endpoint.is_none() && s3.tls());
    assert_eq!(
        s3.credentials,
        S3Credentials::Env {
            prefix: "EUGATE_S3".into()
        }
    );
    assert_eq!(s3.verify_interval, Duration::from_secs(300));
    assert_eq!(c.storage.memory_budget, 256 << 20);
    assert_eq!(c.storage.parts_in_flight, 2);
}

#[test]
fn s3_self_hosted_needs_a_country_and_endpoint() {
    let p = problems(&with_s3(
        r#"provider = "self-hosted"
bucket = "b-1"
region = "garage"
credentials = "aws-chain""#,
    ));
    let keys = keys_of(&p);
    assert!(
        keys.contains(&"destinations.eu.country".to_string()),
        "{keys:?}"
    );
    assert!(
        keys.contains(&"destinations.eu.endpoint".to_string()),
        "{keys:?}"
    );
}

#[test]
fn s3_inline_secrets_are_refused() {
    let p = problems(&with_s3(
        r#"provider = "aws"
bucket = "acme-eu"
region = "eu-central-1"
credentials = { access_key_id = "AKIA", secret_access_key = "s3cr3t" }"#,
    ));
    assert_eq!(keys_of(&p), ["destinations.eu.credentials"]);
    assert!(p[0].message.contains("not accepted in the config file"));
    assert!(
        !p[0].message.contains("s3cr3t"),
        "the secret must not be echoed"
    );
}

#[test]
fn s3_every_bad_key_is_named() {
    let p = problems(&with_s3(
        r#"provider = "aws"
bucket = "Bad_Bucket"
region = "EU Central"
country = "DE"
endpoint = "s3.example.com"
root = "store"
credentials = { env = "lower-case" }
verify_interval_secs = 1"#,
    ));
    let keys = keys_of(&p);
    for k in [
        "bucket",
        "region",
        "country",
        "endpoint",
        "root",
        "credentials.env",
        "verify_interval_secs",
    ] {
        assert!(
            keys.contains(&format!("destinations.eu.{k}")),
            "{k}: {keys:?}"
        );
    }
}

#[test]
fn storage_limits_are_checked() {
    let text = format!(
        "{}\n[storage]\nmemory_budget = \"1MiB\"\nparts_in_flight = 0\nrequest_timeout_secs = 0\n",
        good()
    );
    let keys = keys_of(&problems(&text));
    for k in [
        "storage.memory_budget",
        "storage.parts_in_flight",
        "storage.request_timeout_secs",
    ] {
        assert!(keys.contains(&k.to_string()), "{k}: {keys:?}");
    }
}

#[test]
fn fs_destination_refuses_s3_keys() {
    let text = good().replace(
        "country = \"DE\"\n",
        "country = \"DE\"\nbucket = \"x-y-z\"\n",
    );
    assert_eq!(keys_of(&problems(&text)), ["destinations.local.bucket"]);
}

#[test]
fn endpoint_host_is_extracted() {
    let text = with_s3(
        r#"provider = "scaleway"
endpoint = "https://S3.fr-par.scw.cloud:443/"
bucket = "acme-eu"
region = "fr-par"
credentials = { file = "s3.toml" }"#,
    );
    let c = Config::parse(Path::new("/etc/eugate/gateway.toml"), &text).unwrap();
    let DestinationKind::S3(s3) = &c.destinations["eu"].kind else {
        panic!("not s3")
    };
    assert_eq!(s3.endpoint_host().as_deref(), Some("s3.fr-par.scw.cloud"));
    assert_eq!(
        s3.credentials,
        S3Credentials::File("/etc/eugate/s3.toml".into())
    );
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

/// `good()` plus tenant `other` (user `olga`) routed to `destination` under `prefix`.
fn with_tenant(base: &str, destination: &str, prefix: &str) -> String {
    format!(
        "{base}\n[tenants.other]\nroute = {{ destination = \"{destination}\", prefix = \"{prefix}\" }}\n[tenants.other.users.olga]\nauthorized_keys = [\"{KEY}\"]\n"
    )
}

#[test]
fn tenants_on_one_destination_must_not_overlap() {
    // acme has "acme/"; (other's prefix, the tenant whose space holds the other's, words).
    let cases = [
        // Equal: reported once, on the first tenant by name.
        ("acme/", "acme", "\"acme/\" is also tenant `other`'s prefix"),
        (
            "",
            "other",
            "is empty, but destination `local` is shared with tenant `acme`",
        ),
        (
            "acme/b/",
            "acme",
            "\"acme/\" contains tenant `other`'s prefix \"acme/b/\"",
        ),
    ];
    for (prefix, outer, words) in cases {
        let p = problems(&with_tenant(&good(), "local", prefix));
        assert_eq!(p.len(), 1, "{prefix:?}: {p:?}");
        assert_eq!(
            p[0].key,
            format!("tenants.{outer}.route.prefix"),
            "{prefix:?}"
        );
        assert!(p[0].message.contains(words), "{prefix:?}: {}", p[0].message);
        assert!(
            p[0].message
                .contains("could list, rename and delete tenant")
                && p[0].message.contains("its own prefix"),
            "{}",
            p[0].message
        );
    }
    // The case from the issue: "" and "b/" on one destination.
    let text = good().replace("prefix = \"acme/\"", "prefix = \"b/\"");
    let p = problems(&with_tenant(&text, "local", ""));
    assert_eq!(keys_of(&p), ["tenants.other.route.prefix"]);
    assert!(
        p[0].message.contains("tenant `acme` (prefix \"b/\")"),
        "{}",
        p[0].message
    );
    // Disjoint prefixes are fine, including one that merely starts with the same letters.
    for prefix in ["other/", "acme2/", "acmе/"] {
        Config::parse(
            Path::new("/etc/eugate/gateway.toml"),
            &with_tenant(&good(), "local", prefix),
        )
        .unwrap_or_else(|e| panic!("{prefix:?}: {e}"));
    }
}

#[test]
fn destinations_on_the_same_storage_count_as_one() {
    // A second fs destination whose root lies inside the first's: "store/acme" is acme's space
    // (equal spaces: reported on the first tenant by name).
    let inner = format!(
        "{}\n[destinations.inner]\nkind = \"fs\"\nroot = \"./x/../store/acme\"\ncountry = \"DE\"\n",
        good()
    );
    let p = problems(&with_tenant(&inner, "inner", ""));
    assert_eq!(keys_of(&p), ["tenants.acme.route.prefix"], "{p:?}");
    assert!(
        p[0].message
            .contains("both destinations point at the same storage")
    );
    Config::parse(
        Path::new("/etc/eugate/gateway.toml"),
        &with_tenant(&inner, "inner", "other/"),
    )
    .unwrap_err();
    // Two S3 destinations on one bucket: the same rule as one destination.
    let s3 = r#"provider = "aws"
bucket = "shared"
region = "eu-central-1"
credentials = { env = "EUGATE_S3" }"#;
    let text = format!(
        "{}\n[destinations.eu2]\nkind = \"s3\"\n{s3}\n",
        with_s3(s3).replace("destination = \"local\"", "destination = \"eu\"")
    );
    let p = problems(&with_tenant(&text, "eu2", "acme/"));
    assert_eq!(keys_of(&p), ["tenants.acme.route.prefix"], "{p:?}");
    let ok = with_tenant(&text, "eu2", "other/");
    Config::parse(Path::new("/etc/eugate/gateway.toml"), &ok).unwrap();
    // Another bucket is another storage.
    let other_bucket = text.replacen("bucket = \"shared\"", "bucket = \"elsewhere\"", 1);
    Config::parse(
        Path::new("/etc/eugate/gateway.toml"),
        &with_tenant(&other_bucket, "eu2", "acme/"),
    )
    .unwrap();
}

#[test]
fn limits_default_and_load() {
    let c = Config::parse(Path::new("/etc/eugate/gateway.toml"), &good()).unwrap();
    assert_eq!(c.limits, LimitsConfig::default());
    let text = format!(
        "{}\n[limits]\nmax_unauthenticated = 50\nmax_unauthenticated_per_source = 5\nchannel_buffer = \"1MiB\"\nlogin_grace_secs = 10\nmax_held_writes = 64\n",
        good()
    );
    let c = Config::parse(Path::new("/etc/eugate/gateway.toml"), &text).unwrap();
    assert_eq!(c.limits.max_unauthenticated, 50);
    assert_eq!(c.limits.max_unauthenticated_per_source, 5);
    assert_eq!(c.limits.channel_buffer, 1 << 20);
    assert_eq!(c.limits.login_grace, Duration::from_secs(10));
    assert_eq!(c.limits.max_held_writes, 64);
}

#[test]
fn limits_out_of_range_are_named() {
    let text = format!(
        "{}\n[limits]\nmax_unauthenticated = 10\nmax_unauthenticated_per_source = 11\nchannel_buffer = \"1KiB\"\nlogin_grace_secs = 0\nmax_handles_total = 10\nmax_handles_per_user = 20\nmax_channels_per_connection = 0\nreply_timeout_secs = 0\nmax_held_writes = 0\n",
        good()
    );
    let keys = keys_of(&problems(&text));
    for k in [
        "limits.max_unauthenticated_per_source",
        "limits.channel_buffer",
        "limits.login_grace_secs",
        "limits.max_handles_per_user",
        "limits.max_channels_per_connection",
        "limits.reply_timeout_secs",
        "limits.max_held_writes",
    ] {
        assert!(keys.iter().any(|x| x == k), "{k} not in {keys:?}");
    }
    let text = format!("{}\n[limits]\nmax_handle = 3\n", good());
    assert!(Config::parse(Path::new("/etc/eugate/gateway.toml"), &text).is_err());
}

#[test]
fn auth_defaults_and_load() {
    let c = Config::parse(Path::new("/etc/eugate/gateway.toml"), &good()).unwrap();
    assert_eq!(c.auth.max_failures, 5);
    assert_eq!(c.auth.max_failures_per_source, 10, "twice max_failures");
    assert_eq!(c.auth.max_tracked, 10_000);
    let text = format!("{}\n[auth]\nmax_failures = 3\n", good());
    let c = Config::parse(Path::new("/etc/eugate/gateway.toml"), &text).unwrap();
    assert_eq!(c.auth.max_failures_per_source, 6);
    let text = format!(
        "{}\n[auth]\nmax_failures = 3\nmax_failures_per_source = 4\nmax_tracked = 16\nban_secs = 20\n",
        good()
    );
    let c = Config::parse(Path::new("/etc/eugate/gateway.toml"), &text).unwrap();
    assert_eq!(c.auth.max_failures_per_source, 4);
    assert_eq!(c.auth.max_tracked, 16);
    assert_eq!(c.auth.ban, Duration::from_secs(20));
}

#[test]
fn auth_out_of_range_is_named() {
    let text = format!(
        "{}\n[auth]\nmax_failures = 0\nmax_failures_per_source = 0\nmax_tracked = 0\nban_secs = 0\n",
        good()
    );
    let keys = keys_of(&problems(&text));
    for k in [
        "auth.max_failures",
        "auth.max_failures_per_source",
        "auth.max_tracked",
        "auth.ban_secs",
    ] {
        assert!(keys.iter().any(|x| x == k), "{k} not in {keys:?}");
    }
    let text = format!("{}\n[auth]\nmax_tracked = 2000000\n", good());
    assert!(
        keys_of(&problems(&text))
            .iter()
            .any(|x| x == "auth.max_tracked")
    );
}

#[test]
fn user_ca_keys_load_from_the_list_and_the_file() {
    let c = Config::parse(Path::new("/etc/eugate/gateway.toml"), &good()).unwrap();
    assert!(c.auth.user_ca_keys.is_empty(), "no CA unless configured");
    const OTHER: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIQnTize5Y0iEVOD/9tAq2D4l8BwXjRUs/9R5l/8OEQp ca2";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("user_ca.pub");
    std::fs::write(&file, format!("# corporate CA\n\n{OTHER}\n")).unwrap();
    let text = format!(
        "{}\n[auth]\nuser_ca_keys = [\"{KEY}\"]\nuser_ca_keys_file = \"{}\"\n",
        good(),
        file.display()
    );
    let c = Config::parse(Path::new("/etc/eugate/gateway.toml"), &text).unwrap();
    let got: Vec<String> = c
        .auth
        .user_ca_keys
        .iter()
        .map(|k| k.to_openssh().unwrap())
        .collect();
    let want: Vec<String> = [KEY, OTHER]
        .iter()
        .map(|l| {
            russh::keys::PublicKey::from_openssh(l)
                .unwrap()
                .to_openssh()
                .unwrap()
        })
        .collect();
    assert_eq!(got, want);
}

#[test]
fn bad_user_ca_keys_are_named() {
    let text = format!(
        "{}\n[auth]\nuser_ca_keys = [\"{KEY}\", \"ssh-ed25519 AAAAnotbase64\", \"cert-authority {KEY}\"]\nuser_ca_keys_file = \"missing/ca.pub\"\n",
        good()
    );
    let keys = keys_of(&problems(&text));
    for k in [
        "auth.user_ca_keys[1]",
        "auth.user_ca_keys[2]",
        "auth.user_ca_keys_file",
    ] {
        assert!(keys.iter().any(|x| x == k), "{k} not in {keys:?}");
    }
    assert!(
        !keys.iter().any(|x| x == "auth.user_ca_keys[0]"),
        "{keys:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ca.pub");
    std::fs::write(&file, format!("{KEY}\nnot a key\n")).unwrap();
    let text = format!(
        "{}\n[auth]\nuser_ca_keys_file = \"{}\"\n",
        good(),
        file.display()
    );
    let keys = keys_of(&problems(&text));
    assert!(
        keys.iter()
            .any(|k| k.starts_with("auth.user_ca_keys_file") && k.ends_with("line 2)")),
        "{keys:?}"
    );
}

#[test]
fn audit_defaults_and_load() {
    let c = Config::parse(Path::new("/etc/eugate/gateway.toml"), &good()).unwrap();
    assert_eq!(
        c.audit,
        AuditConfig::defaults(PathBuf::from("/etc/eugate/audit.jsonl"))
    );
    let text = format!(
        "{}\n[audit]\nfile = \"/var/log/eugate/audit.jsonl\"\nmax_field_bytes = 1024\nauth_records_per_sec = 5\nauth_records_burst = 50\nsummary_interval_secs = 10\nmax_tracked_sources = 100\n",
        good()
    );
    let c = Config::parse(Path::new("/etc/eugate/gateway.toml"), &text).unwrap();
    assert_eq!(c.audit.file, PathBuf::from("/var/log/eugate/audit.jsonl"));
    assert_eq!(c.audit.max_field_bytes, 1024);
    assert_eq!(c.audit.auth_records_per_sec, 5);
    assert_eq!(c.audit.auth_records_burst, 50);
    assert_eq!(c.audit.summary_interval, Duration::from_secs(10));
    assert_eq!(c.audit.max_tracked_sources, 100);
}

#[test]
fn audit_out_of_range_are_named() {
    let text = format!(
        "{}\n[audit]\nmax_field_bytes = 8\nauth_records_per_sec = 0\nauth_records_burst = 0\nsummary_interval_secs = 0\nmax_tracked_sources = 2\n",
        good()
    );
    let keys = keys_of(&problems(&text));
    for k in [
        "audit.max_field_bytes",
        "audit.auth_records_per_sec",
        "audit.auth_records_burst",
        "audit.summary_interval_secs",
        "audit.max_tracked_sources",
    ] {
        assert!(keys.iter().any(|x| x == k), "{k} not in {keys:?}");
    }
    let text = format!("{}\n[audit]\nmax_fields = 3\n", good());
    assert!(Config::parse(Path::new("/etc/eugate/gateway.toml"), &text).is_err());
}

#[test]
fn proxy_protocol_from_is_off_by_default_and_takes_addresses_and_networks() {
    let c = Config::parse(Path::new("/etc/eugate/gateway.toml"), &good()).unwrap();
    assert!(c.server.proxy_protocol_from.is_empty());
    let with = |v: &str| {
        good().replacen(
            "reorder_window = \"8MiB\"",
            &format!("reorder_window = \"8MiB\"\nproxy_protocol_from = {v}"),
            1,
        )
    };
    let c = Config::parse(
        Path::new("/etc/eugate/gateway.toml"),
        &with(r#"["10.0.0.5", "192.168.0.0/16", "fd00::/8"]"#),
    )
    .unwrap();
    let from = &c.server.proxy_protocol_from;
    assert_eq!(from.len(), 3);
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    assert!(from.iter().any(|r| r.contains(ip("10.0.0.5"))));
    assert!(!from.iter().any(|r| r.contains(ip("10.0.0.6"))));
    assert!(from.iter().any(|r| r.contains(ip("192.168.7.1"))));
    assert!(from.iter().any(|r| r.contains(ip("::ffff:192.168.7.1"))));
    assert!(from.iter().any(|r| r.contains(ip("fd12::1"))));
    let p = problems(&with(
        r#"["10.0.0.5", "lb.example.com", "10.0.0.0/33", "10.0.0.5:8443"]"#,
    ));
    let keys: Vec<_> = p.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "server.proxy_protocol_from[1]",
            "server.proxy_protocol_from[2]",
            "server.proxy_protocol_from[3]"
        ],
        "{p:?}"
    );
    assert!(p[0].message.contains("`lb.example.com`"), "{p:?}");
    assert!(p[2].message.contains("no ports"), "{p:?}");
}
