//! `[keys]` and `[key_providers.*]`: where the keyring's master key lives (a file, or a
//! provider: PKCS#11, Transit, AWS KMS) and the providers that hold-your-own-key tenants name.
//! Secrets (PINs, tokens, AWS keys) are never accepted inline: only paths of 0600 files.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::keys::provider::{
    AwsKmsConfig, Pkcs11Config, ProviderConfig, ProviderSettings, TransitConfig,
};

use super::raw::{RawKeyProvider, RawKeys};
use super::{Collector, valid_name};

/// How long an unwrapped object key stays cached by default (downloads of HYOK objects).
const DEFAULT_CACHE_SECS: u64 = 300;
const DEFAULT_CACHE_ENTRIES: u64 = 4096;
const DEFAULT_TIMEOUT_SECS: u64 = 5;

#[derive(Debug, Clone)]
pub struct KeysConfig {
    pub keyring: PathBuf,
    pub master: MasterKeyConfig,
    /// Every `[key_providers.NAME]`, by name.
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Unwrapped keys from providers are forgotten after this long.
    pub cache_ttl: Duration,
    /// At most this many unwrapped keys are cached.
    pub cache_entries: usize,
}

/// What seals the keyring.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeyConfig {
    /// `master_key_file = "master.key"`: a 0600 file beside the keyring.
    File(PathBuf),
    /// `master = "NAME"`: the key of `[key_providers.NAME]`; no key material on disk.
    Provider(String),
}

impl KeysConfig {
    /// The master key file, when the keyring is sealed by one.
    pub fn master_key_file(&self) -> Option<&std::path::Path> {
        match &self.master {
            MasterKeyConfig::File(p) => Some(p),
            MasterKeyConfig::Provider(_) => None,
        }
    }
}

pub(super) fn keys(
    raw: &RawKeys,
    providers_raw: &BTreeMap<String, RawKeyProvider>,
    resolve: &dyn Fn(&str) -> PathBuf,
    c: &mut Collector,
) -> KeysConfig {
    let providers: BTreeMap<String, ProviderConfig> = providers_raw
        .iter()
        .filter_map(|(name, p)| provider(name, p, resolve, c).map(|p| (name.clone(), p)))
        .collect();
    let master = match (&raw.master_key_file, &raw.master) {
        (Some(file), None) => MasterKeyConfig::File(resolve(file)),
        (None, Some(name)) => {
            if !providers_raw.contains_key(name) {
                c.push(
                    "keys.master",
                    format!(
                        "no key provider `{name}`; define [key_providers.{name}] (kind = \"pkcs11\", \"transit\" or \"aws-kms\")"
                    ),
                );
            }
            MasterKeyConfig::Provider(name.clone())
        }
        (Some(_), Some(_)) => {
            c.push(
                "keys.master",
                "set either master_key_file (a key file) or master (a key provider), not both",
            );
            MasterKeyConfig::Provider(raw.master.clone().unwrap_or_default())
        }
        (None, None) => {
            c.push(
                "keys",
                "no master key: set master_key_file = \"master.key\" or master = \"NAME\" of a [key_providers.NAME]",
            );
            MasterKeyConfig::File(PathBuf::new())
        }
    };
    let cache_ttl = c.within(
        raw.unwrap_cache_secs,
        "keys.unwrap_cache_secs",
        0..=86_400,
        DEFAULT_CACHE_SECS,
        "how long a key unwrapped by a provider may be used without asking it again",
    );
    let cache_entries = c.within(
        raw.unwrap_cache_entries,
        "keys.unwrap_cache_entries",
        0..=1_000_000,
        DEFAULT_CACHE_ENTRIES,
        "unwrapped keys kept in memory",
    );
    KeysConfig {
        keyring: resolve(&raw.keyring),
        master,
        providers,
        cache_ttl: Duration::from_secs(cache_ttl),
        cache_entries: usize::try_from(cache_entries).unwrap_or(usize::MAX),
    }
}

/// One `[key_providers.NAME]`; `None` (with problems recorded) when its kind is unknown.
fn provider(
    name: &str,
    p: &RawKeyProvider,
    resolve: &dyn Fn(&str) -> PathBuf,
    c: &mut Collector,
) -> Option<ProviderConfig> {
    let key = format!("key_providers.{name}");
    if !valid_name(name) {
        c.push(
            &key,
            "key provider names use letters, digits, `-`, `_`, `.` (at most 64)",
        );
    }
    let required = |c: &mut Collector, field: &str, value: &Option<String>, hint: &str| -> String {
        match value {
            Some(v) if !v.trim().is_empty() => v.clone(),
            _ => {
                c.push(format!("{key}.{field}"), format!("missing; {hint}"));
                String::new()
            }
        }
    };
    let settings = match p.kind.as_str() {
        "pkcs11" => ProviderSettings::Pkcs11(Pkcs11Config {
            module: resolve(&required(
                c,
                "module",
                &p.module,
                "the PKCS#11 library, e.g. \"/usr/lib/softhsm/libsofthsm2.so\"",
            )),
            token_label: required(c, "token_label", &p.token_label, "the token's label"),
            pin_file: resolve(&required(
                c,
                "pin_file",
                &p.pin_file,
                "the path of a 0600 file holding the user PIN",
            )),
            key_label: required(
                c,
                "key_label",
                &p.key_label,
                "the CKA_LABEL of the AES-256 key on the token",
            ),
        }),
        "transit" => ProviderSettings::Transit(TransitConfig {
            address: required(
                c,
                "address",
                &p.address,
                "the server, e.g. \"https://bao.example:8200\"",
            ),
            mount: p.mount.clone().unwrap_or_else(|| "transit".into()),
            key: required(c, "key", &p.key, "the Transit key's name"),
            token_file: resolve(&required(
                c,
                "token_file",
                &p.token_file,
                "the path of a 0600 file holding the token",
            )),
            ca_bundle: p.ca_bundle.as_deref().map(resolve),
            namespace: p.namespace.clone(),
        }),
        "aws-kms" => {
            let region = required(
                c,
                "region",
                &p.region,
                "an EU region, e.g. \"eu-central-1\"",
            );
            if !region.is_empty() && !eu_region(&region) {
                c.push(
                    format!("{key}.region"),
                    format!(
                        "`{region}` is not an EU region; the key that seals EU data must stay in the EU (eu-central-1, eu-west-1, eu-north-1, ...)"
                    ),
                );
            }
            ProviderSettings::AwsKms(AwsKmsConfig {
                region,
                key_id: required(c, "key_id", &p.key_id, "the key id, ARN or alias/NAME"),
                endpoint: p.endpoint.clone(),
                credentials: super::s3::credentials(&key, p.credentials.as_ref(), resolve, c),
            })
        }
        other => {
            c.push(
                format!("{key}.kind"),
                format!("unknown key provider kind `{other}`; supported: \"pkcs11\", \"transit\", \"aws-kms\""),
            );
            return None;
        }
    };
    reject_foreign_fields(&key, p, &settings, c);
    let timeout = c.within(
        p.timeout_secs,
        &format!("{key}.timeout_secs"),
        1..=120,
        DEFAULT_TIMEOUT_SECS,
        "every call to the provider is abandoned after this long",
    );
    Some(ProviderConfig {
        name: name.to_string(),
        timeout: Duration::from_secs(timeout),
        settings,
    })
}

/// AWS regions in the EU (and the European Sovereign Cloud's `eusc-*`).
fn eu_region(region: &str) -> bool {
    let rest = region
        .strip_prefix("eu-")
        .or_else(|| region.strip_prefix("eusc-"));
    rest.is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

/// A field that belongs to another kind is a typo or a copy-paste: name it.
fn reject_foreign_fields(
    key: &str,
    p: &RawKeyProvider,
    settings: &ProviderSettings,
    c: &mut Collector,
) {
    let fields: [(&str, bool, &[&str]); 14] = [
        ("module", p.module.is_some(), &["pkcs11"]),
        ("token_label", p.token_label.is_some(), &["pkcs11"]),
        ("pin_file", p.pin_file.is_some(), &["pkcs11"]),
        ("key_label", p.key_label.is_some(), &["pkcs11"]),
        ("address", p.address.is_some(), &["transit"]),
        ("mount", p.mount.is_some(), &["transit"]),
        ("key", p.key.is_some(), &["transit"]),
        ("token_file", p.token_file.is_some(), &["transit"]),
        ("ca_bundle", p.ca_bundle.is_some(), &["transit"]),
        ("namespace", p.namespace.is_some(), &["transit"]),
        ("region", p.region.is_some(), &["aws-kms"]),
        ("key_id", p.key_id.is_some(), &["aws-kms"]),
        ("endpoint", p.endpoint.is_some(), &["aws-kms"]),
        ("credentials", p.credentials.is_some(), &["aws-kms"]),
    ];
    let kind = match settings {
        ProviderSettings::Pkcs11(_) => "pkcs11",
        ProviderSettings::Transit(_) => "transit",
        ProviderSettings::AwsKms(_) => "aws-kms",
    };
    for (field, set, kinds) in fields {
        if set && !kinds.contains(&kind) {
            c.push(
                format!("{key}.{field}"),
                format!(
                    "not a setting of kind = \"{kind}\" (it belongs to \"{}\")",
                    kinds.join("\", \"")
                ),
            );
        }
    }
}

/// Every tenant's `key_provider` names a defined provider.
pub(super) fn check_tenant_providers(
    keys: &KeysConfig,
    tenants: &BTreeMap<String, super::TenantConfig>,
    c: &mut Collector,
) {
    for (tname, t) in tenants {
        if let Some(p) = t
            .key_provider
            .as_ref()
            .filter(|p| !keys.providers.contains_key(*p))
        {
            c.push(
                format!("tenants.{tname}.key_provider"),
                format!("no key provider `{p}`; define [key_providers.{p}]"),
            );
        }
    }
}
