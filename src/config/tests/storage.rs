//! Destinations and tenants: S3 and fs keys, storage limits, tenants sharing a bucket.

use std::path::Path;
use std::time::Duration;

use super::*;

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
