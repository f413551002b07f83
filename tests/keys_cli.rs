//! `eugate keys …` driven through the real binary.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn eugate(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eugate"))
        .args(args)
        .env("EUGATE_KEYRING", dir.join("keyring"))
        .env("EUGATE_MASTER_KEY_FILE", dir.join("master.key"))
        .env_remove("RUST_LOG")
        .output()
        .expect("run eugate")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn fails(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "expected exit 1: {out:?}");
    String::from_utf8(out.stderr.clone()).unwrap()
}

#[test]
fn keys_lifecycle_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&eugate(d, &["keys", "init"]));
    for f in ["keyring", "master.key"] {
        let mode = std::fs::metadata(d.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f}");
    }
    assert!(ok(&eugate(d, &["keys", "init"])).contains("already exists"));

    let added = ok(&eugate(d, &["keys", "add-tenant", "acme"]));
    assert!(
        added.contains("tenant acme key k-") && added.contains("version 1"),
        "{added}"
    );
    assert!(fails(&eugate(d, &["keys", "add-tenant", "acme"])).contains("already has keys"));
    assert!(fails(&eugate(d, &["keys", "add-tenant", "Bad/Name"])).contains("invalid"));
    assert!(ok(&eugate(d, &["keys", "rotate", "acme"])).contains("active version 2"));
    assert!(fails(&eugate(d, &["keys", "rotate", "nobody"])).contains("add-tenant nobody"));

    let list = ok(&eugate(d, &["keys", "list", "--json"]));
    let mut json: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(json["tenants"][0]["tenant"], "acme");
    assert_eq!(json["tenants"][0]["versions"], serde_json::json!([1, 2]));
    // The keyring version (a hash, as /readyz shows it) is the one long hex value, and the
    // table names the same one.
    let version = json["version"].as_str().unwrap().to_string();
    assert!(
        version.starts_with("sha256:") && version.len() == 71,
        "{version}"
    );
    assert!(ok(&eugate(d, &["keys", "list"])).contains(&format!("keyring version {version}")));
    json.as_object_mut().unwrap().remove("version");
    let list = json.to_string();
    // Listing shows ids, never key material: nothing hex-like of key length appears.
    assert!(
        !list
            .chars()
            .collect::<String>()
            .split(|c: char| !c.is_ascii_hexdigit())
            .any(|w| w.len() >= 32)
    );

    assert!(fails(&eugate(d, &["keys", "shred", "acme"])).contains("--yes"));
    assert!(ok(&eugate(d, &["keys", "list"])).contains("acme"));
    assert!(ok(&eugate(d, &["keys", "shred", "acme", "--yes"])).contains("shredded"));
    let list = ok(&eugate(d, &["keys", "list"]));
    assert!(list.contains("shredded"), "{list}");
    assert!(fails(&eugate(d, &["keys", "rotate", "acme"])).contains("shredded"));
}

#[test]
fn readable_key_files_are_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&eugate(d, &["keys", "init"]));
    for f in ["keyring", "master.key"] {
        std::fs::set_permissions(d.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = fails(&eugate(d, &["keys", "list"]));
        assert!(err.contains("chmod 600") && err.contains(f), "{err}");
        std::fs::set_permissions(d.join(f), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

#[test]
fn a_foreign_master_key_does_not_open_the_keyring() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&eugate(d, &["keys", "init"]));
    let other = tempfile::tempdir().unwrap();
    ok(&eugate(other.path(), &["keys", "init"]));
    std::fs::copy(other.path().join("master.key"), d.join("master.key")).unwrap();
    let err = fails(&eugate(d, &["keys", "list"]));
    assert!(err.contains("does not open with master key"), "{err}");
}

#[test]
fn missing_key_options_are_reported() {
    let out = Command::new(env!("CARGO_BIN_EXE_eugate"))
        .args(["keys", "list"])
        .env_remove("EUGATE_KEYRING")
        .env_remove("EUGATE_MASTER_KEY_FILE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--keyring") && err.contains("--master-key-file"),
        "{err}"
    );
}

/// `eugate` with the key files given as flags only (no environment), in the order `args` puts them.
fn eugate_flags(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eugate"))
        .args(args)
        .env_remove("EUGATE_KEYRING")
        .env_remove("EUGATE_MASTER_KEY_FILE")
        .env_remove("RUST_LOG")
        .output()
        .expect("run eugate")
}

/// The README shows `--keyring`/`--master-key-file` with every `keys` command: they are accepted
/// after the subcommand as well as before it, and a missing one is named.
#[test]
fn key_file_flags_are_accepted_before_and_after_the_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let keyring = dir.path().join("keyring");
    let master = dir.path().join("master.key");
    let (k, m) = (keyring.to_str().unwrap(), master.to_str().unwrap());

    // After the subcommand.
    let out = ok(&eugate_flags(&[
        "keys",
        "init",
        "--keyring",
        k,
        "--master-key-file",
        m,
    ]));
    assert!(out.contains("created keyring"), "{out}");
    assert!(keyring.is_file() && master.is_file());
    // Before it.
    let out = ok(&eugate_flags(&[
        "keys",
        "--keyring",
        k,
        "--master-key-file",
        m,
        "add-tenant",
        "acme",
    ]));
    assert!(out.contains("tenant acme key k-"), "{out}");
    // One on each side, after the subcommand's own flag.
    let out = ok(&eugate_flags(&[
        "keys",
        "--keyring",
        k,
        "list",
        "--json",
        "--master-key-file",
        m,
    ]));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["tenants"][0]["tenant"], "acme", "{out}");

    // Without the master key file: a usage error naming the flag and its variable.
    let out = eugate_flags(&["keys", "list", "--keyring", k]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--master-key-file") && err.contains("EUGATE_MASTER_KEY_FILE"),
        "{err}"
    );
    assert!(
        !err.contains("--keyring <PATH> (or"),
        "only the missing flag: {err}"
    );
}
