//! `[keys]` and `[key_providers.*]`: a master key from a provider, hold-your-own-key tenants,
//! and every mistake named by its key.

use std::path::Path;

use super::*;
use crate::config::MasterKeyConfig;
use crate::keys::provider::{ProviderKind, ProviderSettings};

fn with_providers(keys: &str, providers: &str) -> String {
    good().replacen("master_key_file = \"master.key\"", keys, 1) + providers
}

const TRANSIT: &str = r#"
[key_providers.bao]
kind = "transit"
address = "https://bao.example:8200"
key = "eugate"
token_file = "bao.token"
ca_bundle = "bao-ca.pem"
"#;

#[test]
fn a_provider_master_key_and_a_hold_your_own_key_tenant_load() {
    let text = with_providers("master = \"bao\"\nunwrap_cache_secs = 60", TRANSIT).replacen(
        "[tenants.acme]\n",
        "[tenants.acme]\nkey_provider = \"bao\"\n",
        1,
    );
    let c = Config::parse(Path::new("/etc/eugate/gateway.toml"), &text).unwrap();
    assert_eq!(c.keys.master, MasterKeyConfig::Provider("bao".into()));
    assert_eq!(c.keys.master_key_file(), None);
    assert_eq!(c.keys.cache_ttl.as_secs(), 60);
    let bao = &c.keys.providers["bao"];
    assert_eq!(bao.kind(), ProviderKind::Transit);
    assert_eq!(bao.timeout.as_secs(), 5);
    let ProviderSettings::Transit(t) = &bao.settings else {
        panic!("{bao:?}")
    };
    assert_eq!(t.mount, "transit");
    assert_eq!(t.token_file, Path::new("/etc/eugate/bao.token"));
    assert_eq!(c.tenants["acme"].key_provider.as_deref(), Some("bao"));
}

#[test]
fn provider_mistakes_are_named_by_key() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "master_key_file = \"m\"\nmaster = \"bao\"",
            TRANSIT,
            &["keys.master"],
        ),
        ("", "", &["keys"]),
        ("master = \"nope\"", "", &["keys.master"]),
        (
            "master_key_file = \"m\"",
            "[key_providers.x]\nkind = \"vault\"\n",
            &["key_providers.x.kind"],
        ),
        (
            "master_key_file = \"m\"",
            "[key_providers.x]\nkind = \"transit\"\nmodule = \"/lib/p11.so\"\n",
            &[
                "key_providers.x.address",
                "key_providers.x.key",
                "key_providers.x.token_file",
                "key_providers.x.module",
            ],
        ),
        (
            "master_key_file = \"m\"",
            "[key_providers.x]\nkind = \"pkcs11\"\nmodule = \"/lib/p11.so\"\ntoken_label = \"t\"\npin_file = \"pin\"\nkey_label = \"k\"\ntimeout_secs = 0\n",
            &["key_providers.x.timeout_secs"],
        ),
        (
            "master_key_file = \"m\"",
            "[key_providers.x]\nkind = \"aws-kms\"\nregion = \"us-east-1\"\nkey_id = \"alias/k\"\ncredentials = \"aws-chain\"\n",
            &["key_providers.x.region"],
        ),
        (
            "master_key_file = \"m\"",
            "[key_providers.x]\nkind = \"aws-kms\"\nregion = \"eu-central-1\"\nkey_id = \"alias/k\"\ncredentials = { secret_access_key = \"s\" }\n",
            &["key_providers.x.credentials"],
        ),
    ];
    for (keys, providers, expected) in cases {
        let p = problems(&with_providers(keys, providers));
        let mut got = keys_of(&p);
        got.sort();
        let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(got, want, "{keys} {providers}: {p:?}");
    }
    // A tenant naming a provider that is not configured.
    let text = good().replacen(
        "[tenants.acme]\n",
        "[tenants.acme]\nkey_provider = \"gone\"\n",
        1,
    );
    assert_eq!(keys_of(&problems(&text)), ["tenants.acme.key_provider"]);
}

#[test]
fn aws_kms_accepts_eu_and_sovereign_cloud_regions_only() {
    for (region, ok) in [
        ("eu-central-1", true),
        ("eu-west-3", true),
        ("eusc-de-east-1", true),
        ("us-east-1", false),
        ("eu-", false),
        ("cn-north-1", false),
    ] {
        let text = with_providers(
            "master_key_file = \"m\"",
            &format!(
                "[key_providers.k]\nkind = \"aws-kms\"\nregion = \"{region}\"\nkey_id = \"alias/k\"\ncredentials = \"aws-chain\"\n"
            ),
        );
        let parsed = Config::parse(Path::new("/etc/eugate/gateway.toml"), &text);
        assert_eq!(parsed.is_ok(), ok, "{region}: {parsed:?}");
    }
}
