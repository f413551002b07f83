//! Tenants cannot see each other: overlapping prefixes on one storage are refused by
//! `eugate config check` and by `eugate serve`, through the real binary.

mod common;

use std::process::Command;

use common::bin;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINIyhUuFCAqPw7ujMHAAWRbRQrG2RrqhuvrxbVLexvWd test";

/// Two tenants on one destination: `wide` with `wide_prefix`, `bank` with "b/".
fn config(dir: &std::path::Path, wide_prefix: &str) -> std::path::PathBuf {
    let file = dir.join("gateway.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[server]
listen = ["127.0.0.1:0"]
host_keys = ["host"]

[keys]
keyring = "k"
master_key_file = "m"

[destinations.shared]
kind = "fs"
root = "store"
country = "DE"

[tenants.wide]
route = {{ destination = "shared", prefix = "{wide_prefix}" }}

[tenants.wide.users.walter]
authorized_keys = ["{KEY}"]

[tenants.bank]
route = {{ destination = "shared", prefix = "b/" }}

[tenants.bank.users.berta]
authorized_keys = ["{KEY}"]
"#
        ),
    )
    .unwrap();
    file
}

#[test]
fn config_check_refuses_overlapping_prefixes_naming_both_tenants() {
    let dir = tempfile::tempdir().unwrap();
    let file = config(dir.path(), "");
    let out = Command::new(bin())
        .args(["config", "check"])
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("gateway.toml: tenants.wide.route.prefix: is empty, but destination `shared` is shared with tenant `bank`"),
        "{err}"
    );
    assert!(
        err.contains("tenant `wide` could list, rename and delete tenant `bank`'s objects"),
        "{err}"
    );

    // `serve` validates through the same path: it refuses to start, with the same words, and
    // creates nothing.
    let out = Command::new(bin())
        .args(["serve", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("tenants.wide.route.prefix"), "{err}");
    assert!(!dir.path().join("store").exists());

    // Disjoint prefixes pass.
    let file = config(dir.path(), "w/");
    let out = Command::new(bin())
        .args(["config", "check"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
