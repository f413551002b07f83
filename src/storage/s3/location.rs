//! Where a bucket really is: normalise what the store reports, check it against what the
//! configuration expects and against the provider's endpoint naming, and decide whether the
//! destination may receive data. Pure: the probing I/O lives in `probe.rs`.

use std::fmt;

/// How the store told us its region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionSource {
    /// The `x-amz-bucket-region` header of HeadBucket.
    HeadBucketHeader,
    /// The `LocationConstraint` of GetBucketLocation.
    GetBucketLocation,
    /// The `<Region>` of the store's error answer to a request signed for another region.
    ErrorResponse,
}

impl fmt::Display for RegionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RegionSource::HeadBucketHeader => "HeadBucket x-amz-bucket-region",
            RegionSource::GetBucketLocation => "GetBucketLocation",
            RegionSource::ErrorResponse => "the region named in the store's error response",
        })
    }
}

/// A region as observed at the store, already normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub region: String,
    pub source: RegionSource,
}

/// The verdict on a destination's location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Observed = expected and known: transfers may be decided by the policy.
    Verified { region: String },
    /// Anything else: every transfer to the destination is denied until a later probe verifies it.
    Quarantined { reason: String },
}

/// GetBucketLocation's legacy answers: an empty constraint means us-east-1, `EU` means eu-west-1.
pub fn normalize_location_constraint(raw: Option<&str>) -> String {
    match raw.map(str::trim) {
        None | Some("") => "us-east-1".to_string(),
        Some("EU") => "eu-west-1".to_string(),
        Some(r) => r.to_ascii_lowercase(),
    }
}

/// Does the endpoint host fit what `provider` uses for `region`? `Ok(())` when it fits or when
/// the provider has no host convention (self-hosted stores, GCS's global host).
pub fn check_endpoint_host(provider: &str, region: &str, host: &str) -> Result<(), String> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let ok = |patterns: &[String]| {
        if patterns
            .iter()
            .any(|p| host == *p || host.ends_with(&format!(".{p}")))
        {
            Ok(())
        } else {
            Err(format!(
                "endpoint host {host} does not belong to {provider} region {region} (expected {})",
                patterns.join(" or ")
            ))
        }
    };
    match provider {
        // One catalogue provider, several partitions: the DNS suffix follows the region.
        "aws" => {
            let suffix = if region.starts_with("cn-") {
                "amazonaws.com.cn"
            } else if region.starts_with("eusc-") {
                "amazonaws.eu"
            } else {
                "amazonaws.com"
            };
            let mut p = vec![
                format!("s3.{region}.{suffix}"),
                format!("s3.dualstack.{region}.{suffix}"),
                format!("s3-fips.{region}.{suffix}"),
            ];
            if region == "us-east-1" {
                p.push("s3.amazonaws.com".into());
            }
            ok(&p)
        }
        "hetzner" => ok(&[format!("{region}.your-objectstorage.com")]),
        "ovhcloud" => ok(&[
            format!("s3.{region}.io.cloud.ovh.net"),
            format!("s3.{region}.perf.cloud.ovh.net"),
            format!("s3.{region}.cloud.ovh.net"),
        ]),
        "scaleway" => ok(&[format!("s3.{region}.scw.cloud")]),
        "wasabi" => ok(&[format!("s3.{region}.wasabisys.com")]),
        "exoscale" => ok(&[format!("sos-{region}.exo.io")]),
        "ionos" => ok(&[if region == "de" {
            "s3-eu-central-1.ionoscloud.com".to_string()
        } else {
            format!("s3-{region}.ionoscloud.com")
        }]),
        "backblaze-b2" => ok(&[format!("s3.{region}.backblazeb2.com")]),
        // Alibaba region ids already carry the "oss-" prefix.
        "alibaba-oss" => ok(&[
            format!("{region}.aliyuncs.com"),
            format!("s3.{region}.aliyuncs.com"),
        ]),
        "tencent-cos" => ok(&[format!("cos.{region}.myqcloud.com")]),
        "cloudflare-r2" => match region {
            "eu" => ok(&["eu.r2.cloudflarestorage.com".to_string()]),
            "fedramp" => ok(&["fedramp.r2.cloudflarestorage.com".to_string()]),
            _ => ok(&["r2.cloudflarestorage.com".to_string()]),
        },
        // GCS uses one global host; self-hosted stores use whatever their operator chose.
        _ => Ok(()),
    }
}

/// Compares what the configuration expects with what the store reported.
///
/// `known` says whether `provider:region` is in the policy catalogue (self-hosted stores are
/// "known" when their operator declared a country for them).
pub fn assess(
    provider: &str,
    expected: &str,
    observed: Option<&Observed>,
    endpoint_host: Option<&str>,
    known: bool,
) -> Verdict {
    let Some(observed) = observed else {
        return Verdict::Quarantined {
            reason: format!(
                "the store did not report a region (expected {expected}); the location cannot be verified"
            ),
        };
    };
    if !observed.region.eq_ignore_ascii_case(expected) {
        return Verdict::Quarantined {
            reason: format!(
                "configured region {expected} but the store reports {} (via {})",
                observed.region, observed.source
            ),
        };
    }
    if !known {
        return Verdict::Quarantined {
            reason: format!(
                "region {provider}:{} is not in the residency catalogue; add it to policies/ with its country",
                observed.region
            ),
        };
    }
    if let Some(Err(reason)) =
        endpoint_host.map(|h| check_endpoint_host(provider, &observed.region, h))
    {
        return Verdict::Quarantined { reason };
    }
    Verdict::Verified {
        region: observed.region.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(r: &str) -> Observed {
        Observed {
            region: r.into(),
            source: RegionSource::GetBucketLocation,
        }
    }

    #[test]
    fn legacy_location_constraints() {
        assert_eq!(normalize_location_constraint(None), "us-east-1");
        assert_eq!(normalize_location_constraint(Some("")), "us-east-1");
        assert_eq!(normalize_location_constraint(Some("EU")), "eu-west-1");
        assert_eq!(
            normalize_location_constraint(Some("eu-central-1")),
            "eu-central-1"
        );
    }

    #[test]
    fn verified_only_when_observed_equals_expected_and_is_known() {
        let ok = assess(
            "aws",
            "eu-central-1",
            Some(&seen("eu-central-1")),
            None,
            true,
        );
        assert_eq!(
            ok,
            Verdict::Verified {
                region: "eu-central-1".into()
            }
        );

        let v = assess("aws", "eu-central-1", Some(&seen("us-east-1")), None, true);
        match v {
            Verdict::Quarantined { reason } => {
                assert!(
                    reason.contains("eu-central-1") && reason.contains("us-east-1"),
                    "{reason}"
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            assess("aws", "eu-central-1", None, None, true),
            Verdict::Quarantined { .. }
        ));
        assert!(matches!(
            assess(
                "aws",
                "xx-nowhere-1",
                Some(&seen("xx-nowhere-1")),
                None,
                false
            ),
            Verdict::Quarantined { .. }
        ));
    }

    #[test]
    fn endpoint_host_must_match_the_provider_region() {
        check_endpoint_host("aws", "eu-central-1", "s3.eu-central-1.amazonaws.com").unwrap();
        check_endpoint_host(
            "aws",
            "eu-central-1",
            "bucket.s3.eu-central-1.amazonaws.com",
        )
        .unwrap();
        check_endpoint_host("aws", "us-east-1", "s3.amazonaws.com").unwrap();
        assert!(check_endpoint_host("aws", "eu-central-1", "s3.us-east-1.amazonaws.com").is_err());
        // A look-alike domain must not pass as a suffix match.
        assert!(
            check_endpoint_host("aws", "eu-central-1", "evil-s3.eu-central-1.amazonaws.com")
                .is_err()
        );
        assert!(
            check_endpoint_host(
                "aws",
                "eu-central-1",
                "s3.eu-central-1.amazonaws.com.evil.net"
            )
            .is_err()
        );
        check_endpoint_host("wasabi", "eu-central-1", "s3.eu-central-1.wasabisys.com").unwrap();
        check_endpoint_host("hetzner", "fsn1", "fsn1.your-objectstorage.com").unwrap();
        assert!(check_endpoint_host("hetzner", "fsn1", "hel1.your-objectstorage.com").is_err());
        check_endpoint_host("cloudflare-r2", "eu", "acct.eu.r2.cloudflarestorage.com").unwrap();
        assert!(
            check_endpoint_host("cloudflare-r2", "eu", "acct.r2.cloudflarestorage.com").is_err()
        );
        check_endpoint_host("aws", "eusc-de-east-1", "s3.eusc-de-east-1.amazonaws.eu").unwrap();
        check_endpoint_host("aws", "cn-north-1", "s3.cn-north-1.amazonaws.com.cn").unwrap();
        assert!(check_endpoint_host("aws", "cn-north-1", "s3.cn-north-1.amazonaws.com").is_err());
        check_endpoint_host(
            "alibaba-oss",
            "oss-eu-central-1",
            "oss-eu-central-1.aliyuncs.com",
        )
        .unwrap();
        check_endpoint_host("self-hosted", "garage", "127.0.0.1").unwrap();

        let v = assess(
            "aws",
            "eu-central-1",
            Some(&seen("eu-central-1")),
            Some("s3.us-east-1.amazonaws.com"),
            true,
        );
        assert!(matches!(v, Verdict::Quarantined { .. }));
    }
}
