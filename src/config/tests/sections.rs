//! The per-section checks: [server] (grace, PROXY protocol), [limits], [auth], [audit].

use std::path::Path;
use std::time::Duration;

use super::*;

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
