//! The shipped `policies/` directory compiled into the binary (for `eugate demo`, which must run
//! anywhere). A test asserts this list hashes equal to `PolicyBundle::load("policies")`, so a file
//! added to `policies/` without being added here fails the build's tests.

use std::collections::BTreeMap;

macro_rules! shipped {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../policies/", $name)))),*]
    };
}

const FILES: &[(&str, &str)] = shipped![
    "countries.toml",
    "jurisdictions.toml",
    "regions.toml",
    "providers.toml",
    "tenants.toml",
    "schema.cedarschema",
    "default.cedar",
    "tenant-acme-health.cedar",
    "tests/default.toml",
    "tests/jurisdiction.toml",
    "tests/tenants.toml",
];

pub fn sources() -> BTreeMap<String, String> {
    FILES
        .iter()
        .map(|(name, text)| (name.to_string(), text.to_string()))
        .collect()
}
