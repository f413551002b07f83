//! `eugate config check` and `eugate passwd` through the real binary.

mod common;

use std::process::Command;

use common::{bin, run_with_stdin};

fn passwd(input: &[u8]) -> std::process::Output {
    run_with_stdin(Command::new(bin()).arg("passwd"), input)
}

#[test]
fn passwd_prints_an_argon2id_hash() {
    let out = passwd(b"s3cret\n");
    assert!(out.status.success());
    let hash = String::from_utf8(out.stdout).unwrap();
    assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
    assert!(!hash.contains("s3cret"));
    // Random salt: two hashes of one password differ.
    let again = String::from_utf8(passwd(b"s3cret\n").stdout).unwrap();
    assert_ne!(hash, again);
    assert!(!passwd(b"\n").status.success(), "empty password refused");
}

#[test]
fn config_check_reports_file_key_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.toml");
    std::fs::write(
        &file,
        r#"
[server]
listen = ["127.0.0.1:2222"]
host_keys = ["host"]

[keys]
keyring = "k"
master_key_file = "m"

[destinations.local]
kind = "fs"
root = "store"
country = "DE"

[tenants.acme]
route = { destination = "local", prefix = "acme/" }

[tenants.acme.users.alice]
password = "hunter2"
"#,
    )
    .unwrap();
    let out = Command::new(bin())
        .args(["config", "check"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "gateway.toml: tenants.acme.users.alice.password: plaintext passwords are refused"
        ),
        "{err}"
    );
    assert!(err.contains("eugate passwd"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");

    let text = std::fs::read_to_string(&file).unwrap().replace(
        "password = \"hunter2\"",
        &format!(
            "password_hash = \"{}\"",
            String::from_utf8(passwd(b"pw\n").stdout).unwrap().trim()
        ),
    );
    std::fs::write(&file, text).unwrap();
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
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok"));
}
