//! Keys outside the gateway, in the real binary: the keyring sealed by a SoftHSM key and by an
//! OpenBao Transit key (init, use, rewrap after a rotation, migration from a master key file,
//! refusal to start when the provider is unreachable), and a hold-your-own-key tenant whose
//! uploads decrypt only while its Transit key exists, uploaded and read back with OpenSSH sftp.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::openbao::OpenBao;
use common::softhsm::{MODULE, Token};
use common::{Gateway, Options, bin};

fn eugate(args: &[&str], config: &Path) -> Output {
    Command::new(bin())
        .arg("keys")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn fails(out: Output) -> String {
    assert!(
        !out.status.success(),
        "expected failure, got success: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

fn private(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.to_path_buf()
}

/// A gateway.toml with only what `eugate keys` reads, and `provider` as the master key.
fn keys_config(dir: &Path, provider: &str) -> PathBuf {
    let path = dir.join("gateway.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[server]
listen = ["127.0.0.1:0"]
host_keys = ["host_ed25519"]

[keys]
keyring = "keyring"
master = "master"

[key_providers.master]
{provider}
"#
        ),
    )
    .unwrap();
    path
}

fn list_json(config: &Path) -> serde_json::Value {
    serde_json::from_str(&ok(eugate(&["list", "--json"], config))).unwrap()
}

/// The keyring file is format 2 with the provider's kind byte: no key material on disk.
fn assert_sealed_by(keyring: &Path, kind: u8) {
    let bytes = std::fs::read(keyring).unwrap();
    assert_eq!(&bytes[..10], [b"EUGATEKR".as_slice(), &[2, kind]].concat());
    assert_eq!(
        std::fs::metadata(keyring).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn keyring_sealed_by_a_softhsm_key() {
    // Every PKCS#11 call happens in `eugate` and pkcs11-tool processes, each loading the
    // module afresh, so this test needs no process of its own (common::softhsm::in_own_process).
    let token = Token::new("ring");
    token.keygen("eugate-master");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pin = private(&d.join("hsm.pin"), &format!("{}\n", token.pin));
    let provider = format!(
        "kind = \"pkcs11\"\nmodule = \"{MODULE}\"\ntoken_label = \"{}\"\npin_file = \"{}\"\nkey_label = \"eugate-master\"\n",
        token.label,
        pin.display()
    );
    let config = keys_config(d, &provider);

    // First a keyring under a master key file, then moved into the HSM.
    let keyring = d.join("keyring");
    let master = d.join("master.key");
    let file_keys = |args: &[&str]| {
        Command::new(bin())
            .arg("keys")
            .arg("--keyring")
            .arg(&keyring)
            .arg("--master-key-file")
            .arg(&master)
            .args(args)
            .output()
            .unwrap()
    };
    ok(file_keys(&["init"]));
    ok(file_keys(&["add-tenant", "acme"]));
    let before = ok(file_keys(&["list"]));
    // The configuration names the HSM: the file-sealed keyring is refused with the way out.
    let err = fails(eugate(&["list"], &config));
    assert!(
        err.contains("sealed by a master key file") && err.contains("rewrap"),
        "{err}"
    );
    let out = ok(eugate(
        &["rewrap", "--from-master-key-file", master.to_str().unwrap()],
        &config,
    ));
    assert!(out.contains("re-sealed by pkcs11:"), "{out}");
    assert_sealed_by(&keyring, 0x01);
    // The same tenant keys: the keyring version did not change.
    let version = |text: &str| text.lines().last().unwrap().to_string();
    let after = ok(eugate(&["list"], &config));
    assert_eq!(version(&before), version(&after), "{after}");
    assert!(
        after.contains(&format!(
            "pkcs11:token={};object=eugate-master",
            token.label
        )),
        "{after}"
    );
    // The old master key file no longer opens the re-sealed file.
    let err = fails(file_keys(&["list"]));
    assert!(err.contains("sealed by pkcs11"), "{err}");

    ok(eugate(&["add-tenant", "beta"], &config));
    ok(eugate(&["rotate", "acme"], &config));
    let listed = list_json(&config);
    assert_eq!(listed["sealed_by"]["kind"], "pkcs11");
    assert_eq!(listed["tenants"].as_array().unwrap().len(), 2);
    ok(eugate(&["probe"], &config));

    // A wrong PIN is named; the key deleted on the token makes the keyring unopenable.
    private(&pin, "000000\n");
    let err = fails(eugate(&["list"], &config));
    assert!(err.contains("access denied"), "{err}");
    private(&pin, &format!("{}\n", token.pin));
    token.delete_key("eugate-master");
    let err = fails(eugate(&["list"], &config));
    assert!(err.contains("does not exist or was deleted"), "{err}");
}

#[test]
fn keyring_sealed_by_a_transit_key_follows_its_rotation() {
    let mut bao = OpenBao::start();
    bao.create_key("eugate-master");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let token = private(&d.join("bao.token"), &bao.limited_token("eugate-master"));
    let provider = format!(
        "kind = \"transit\"\naddress = \"{}\"\nkey = \"eugate-master\"\ntoken_file = \"{}\"\ntimeout_secs = 2\n",
        bao.address,
        token.display()
    );
    let config = keys_config(d, &provider);
    let out = ok(eugate(&["init"], &config));
    assert!(
        out.contains("sealed by transit:") && out.contains("no key material on disk"),
        "{out}"
    );
    assert_sealed_by(&d.join("keyring"), 0x02);
    ok(eugate(&["add-tenant", "acme"], &config));
    let first = list_json(&config);
    assert_eq!(first["sealed_by"]["key_version"], 1);

    // Rotating the master key at the server, then rewrapping: key version 2, same tenant keys.
    bao.rotate_key("eugate-master");
    ok(eugate(&["rewrap"], &config));
    let second = list_json(&config);
    assert_eq!(second["sealed_by"]["key_version"], 2);
    assert_eq!(first["version"], second["version"]);
    assert_eq!(first["tenants"], second["tenants"]);

    // The gateway refuses to start when the provider cannot be reached.
    bao.stop();
    let out = Command::new(bin())
        .arg("serve")
        .arg("--config")
        .arg(d.join("gateway.toml"))
        .output()
        .unwrap();
    let err = fails(out);
    assert!(
        err.contains("cannot reach it") && err.contains("keyring"),
        "{err}"
    );
}

/// Config for tenant `hyok` (user `hoyt`, uploads classified `classification`) holding its key
/// in OpenBao key `acme`.
fn hyok_toml(bao: &OpenBao, token: &Path, classification: &str) -> String {
    format!(
        r#"
[key_providers.acme-bao]
kind = "transit"
address = "{}"
key = "acme"
token_file = "{}"
timeout_secs = 2

[tenants.hyok]
route = {{ destination = "local", prefix = "hyok/" }}
classification = "{classification}"
key_provider = "acme-bao"

[tenants.hyok.users.hoyt]
authorized_keys_file = "hoyt.pub"
permissions = ["read", "write"]
"#,
        bao.address,
        token.display()
    )
}

/// A gateway whose tenant `hyok` (user `hoyt`) holds its key in OpenBao key `acme`.
fn hyok_gateway(bao: &OpenBao, token: &Path) -> Gateway {
    Gateway::start_with(Options {
        extra_keys: vec!["hoyt"],
        keys_toml: "unwrap_cache_secs = 0".into(),
        extra_toml: hyok_toml(bao, token, "personal"),
        ..Default::default()
    })
}

fn decrypt_with_config(g: &Gateway, stored: &Path) -> Output {
    let out = g.dir.path().join("plain.out");
    let _ = std::fs::remove_file(&out);
    Command::new(bin())
        .arg("decrypt")
        .arg("--config")
        .arg(&g.config)
        .arg(stored)
        .arg(&out)
        .output()
        .unwrap()
}

fn aborted_causes(g: &Gateway) -> Vec<String> {
    g.events("aborted")
        .iter()
        .map(|r| r["cause"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn hold_your_own_key_uploads_decrypt_only_while_the_key_exists() {
    let mut bao = OpenBao::start();
    bao.create_key("acme");
    let tokdir = tempfile::tempdir().unwrap();
    // A token that may only encrypt/decrypt with this key: it cannot re-create a deleted one.
    let token = private(
        &tokdir.path().join("acme.token"),
        &bao.limited_token("acme"),
    );
    let g = hyok_gateway(&bao, &token);
    let plain = common::data(300_000, 17);
    std::fs::write(g.dir.path().join("in.bin"), &plain).unwrap();

    g.sftp_ok("hoyt", "put in.bin report.bin\nget report.bin back.bin\n");
    assert_eq!(std::fs::read(g.dir.path().join("back.bin")).unwrap(), plain);
    let stored = g.store.join("hyok/report.bin");
    let sealed = std::fs::read(&stored).unwrap();
    let header = eugate::crypto::Header::parse(&sealed).unwrap();
    assert_eq!(header.version(), 3, "written in format version 3");
    assert_eq!(
        header.context().external.as_ref().map(|e| e.provider),
        Some(0x02),
        "a hold-your-own-key object's key is wrapped by its provider (transit)"
    );
    common::assert_no_plaintext(&sealed, &plain);
    // The header names the provider, not a keyring key; decrypt asks the provider.
    let out = decrypt_with_config(&g, &stored);
    ok(out);
    assert_eq!(
        std::fs::read(g.dir.path().join("plain.out")).unwrap(),
        plain
    );
    // Without the configuration, decrypt says where the key is.
    let out = Command::new(bin())
        .arg("decrypt")
        .arg("--keyring")
        .arg(&g.keyring)
        .arg("--master-key-file")
        .arg(&g.master)
        .arg(&stored)
        .arg(g.dir.path().join("x.out"))
        .output()
        .unwrap();
    let err = fails(out);
    assert!(
        err.contains("acme-bao") && err.contains("--config"),
        "{err}"
    );

    // Provider paused (slow): the tenant's upload is refused at OPEN with a timeout; a keyring
    // tenant is not affected. After it answers again, uploads work again.
    bao.pause();
    let out = g.sftp("hoyt", "put in.bin slow.bin\n");
    assert!(!out.status.success());
    g.sftp_ok("alice", "put in.bin alice.bin\n");
    bao.resume();
    let causes = aborted_causes(&g);
    assert!(
        causes.iter().any(|c| c.contains("no answer within")),
        "{causes:?}"
    );
    assert!(!g.store.join("hyok/slow.bin").exists());
    g.sftp_ok("hoyt", "put in.bin again.bin\n");

    // The tenant deletes its key: new uploads fail closed, old objects no longer open (no
    // cache: unwrap_cache_secs = 0), and decrypt names the deleted key.
    bao.delete_key("acme");
    let out = g.sftp("hoyt", "put in.bin after.bin\n");
    assert!(!out.status.success());
    assert!(!g.store.join("hyok/after.bin").exists());
    let causes = aborted_causes(&g);
    assert!(
        causes
            .iter()
            .any(|c| c.contains("does not exist or was deleted") && c.contains("acme-bao")),
        "{causes:?}"
    );
    let out = g.sftp("hoyt", "get report.bin gone.bin\n");
    assert!(!out.status.success());
    assert!(!g.dir.path().join("gone.bin").exists());
    let err = fails(decrypt_with_config(&g, &stored));
    assert!(err.contains("does not exist or was deleted"), "{err}");
    assert!(!g.dir.path().join("plain.out").exists());
    // The keyring tenant still uploads and reads.
    g.sftp_ok("alice", "put in.bin alice2.bin\nget alice2.bin a2.bin\n");
    g.assert_audit_verifies();
}

/// An officer's rule: special-category (and unclassified) data only under a key the tenant
/// holds in its own KMS.
const OWN_KEY_RULE: &str = r#"
@id("special-category-needs-own-key")
@reason("Special-category data is stored only under a key its tenant holds in its own KMS.")
forbid (principal, action, resource)
when { ["special-category", "unclassified"].contains(context.classification) }
unless { context.key_held_by_tenant };
"#;

/// The same rule's expected decisions; they replace the shipped cases, which expect
/// special-category uploads under keyring keys to pass.
const OWN_KEY_CASES: &str = r#"
[[case]]
name = "special-category under the tenant's own key"
tenant = "hyok"
destination = "aws:eu-central-1"
classification = "special-category"
key_held_by_tenant = true
expect = "allow"

[[case]]
name = "special-category under a keyring key"
tenant = "acme-health"
destination = "hetzner:fsn1"
classification = "special-category"
expect = "deny"
policies = ["special-category-needs-own-key"]
"#;

fn policy_explain(pol: &Path, extra: &[&str]) -> Output {
    Command::new(bin())
        .args(["policy", "--policies"])
        .arg(pol)
        .args([
            "explain",
            "--tenant",
            "hyok",
            "--destination",
            "aws:eu-central-1",
            "--classification",
            "special-category",
        ])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn the_policy_can_require_the_tenants_own_key_for_special_category_data() {
    let pol = common::copy_policies();
    for f in ["default.toml", "tenants.toml", "jurisdiction.toml"] {
        std::fs::remove_file(pol.path().join("tests").join(f)).unwrap();
    }
    std::fs::write(pol.path().join("own-key.cedar"), OWN_KEY_RULE).unwrap();
    std::fs::write(pol.path().join("tests/own-key.toml"), OWN_KEY_CASES).unwrap();
    // The officer's tools see the fact: explain with and without it.
    let out = policy_explain(pol.path(), &[]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("special-category-needs-own-key"));
    let out = policy_explain(pol.path(), &["--key-held-by-tenant"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    let bao = OpenBao::start();
    bao.create_key("acme");
    let tokdir = tempfile::tempdir().unwrap();
    let token = private(
        &tokdir.path().join("acme.token"),
        &bao.limited_token("acme"),
    );
    let mut o = Options::acme_health();
    o.extra_keys.push("hoyt");
    o.extra_toml = format!(
        "\n[policy]\ndir = \"{}\"\n{}{}",
        pol.path().display(),
        o.extra_toml,
        hyok_toml(&bao, &token, "special-category")
    );
    let g = Gateway::start_with(o);
    let plain = common::data(50_000, 5);
    std::fs::write(g.dir.path().join("in.bin"), &plain).unwrap();

    // hyok holds its key: its special-category upload is allowed and sealed by its provider.
    g.sftp_ok("hoyt", "put in.bin record.bin\n");
    let record = std::fs::read(g.store.join("hyok/record.bin")).unwrap();
    let header = eugate::crypto::Header::parse(&record).unwrap();
    assert!(
        header.context().external.is_some(),
        "sealed by its provider"
    );
    // acme-health's keys are in the keyring: the same upload is refused, nothing stored.
    let out = g.sftp("hana", "put in.bin record.bin\n");
    assert!(!out.status.success());
    assert!(!g.store.join("acme-health/record.bin").exists());
    // Personal data of a keyring tenant is not affected by the rule.
    g.sftp_ok("alice", "put in.bin personal.bin\n");

    let decisions = g.events("decision");
    let of = |tenant: &str| {
        decisions
            .iter()
            .find(|d| d["tenant"] == tenant && d["operation"] == "upload")
            .unwrap_or_else(|| panic!("no upload decision of {tenant}: {decisions:?}"))
            .clone()
    };
    let hyok = of("hyok");
    assert_eq!(hyok["allowed"], true, "{hyok}");
    assert_eq!(hyok["key_held_by_tenant"], true, "{hyok}");
    let health = of("acme-health");
    assert_eq!(health["allowed"], false, "{health}");
    assert_eq!(
        health["policies"],
        serde_json::json!(["special-category-needs-own-key"]),
        "{health}"
    );
    assert!(health.get("key_held_by_tenant").is_none(), "{health}");
    g.assert_audit_verifies();
}
