//! Asking the store where the bucket is: HeadBucket's `x-amz-bucket-region` when present (AWS
//! sends it, also on a 301 redirect), else GetBucketLocation (Garage and most others).

use super::S3Error;
use super::location::{Observed, RegionSource, normalize_location_constraint};

pub async fn probe_region(client: &aws_sdk_s3::Client, bucket: &str) -> Result<Observed, S3Error> {
    match client.head_bucket().bucket(bucket).send().await {
        Ok(out) => {
            if let Some(region) = out.bucket_region().filter(|r| !r.is_empty()) {
                return Ok(Observed {
                    region: region.to_ascii_lowercase(),
                    source: RegionSource::HeadBucketHeader,
                });
            }
        }
        Err(err) => {
            // A bucket in another region answers 301 with the header: still an observation.
            let header = err
                .raw_response()
                .and_then(|r| r.headers().get("x-amz-bucket-region"))
                .map(str::to_string);
            match header {
                Some(region) if !region.is_empty() => {
                    return Ok(Observed {
                        region: region.to_ascii_lowercase(),
                        source: RegionSource::HeadBucketHeader,
                    });
                }
                // No header (Garage, or a 400 for a request signed for another region):
                // GetBucketLocation below asks, and its error body may name the region.
                _ => tracing::debug!(error = %super::describe(&err), "HeadBucket gave no region"),
            }
        }
    }
    match client.get_bucket_location().bucket(bucket).send().await {
        Ok(out) => Ok(Observed {
            region: normalize_location_constraint(out.location_constraint().map(|c| c.as_str())),
            source: RegionSource::GetBucketLocation,
        }),
        Err(err) => match super::region_in_error_body(err.raw_response()) {
            // Signed for the configured region, answered with the real one.
            Some(region) => Ok(Observed {
                region,
                source: RegionSource::ErrorResponse,
            }),
            None => Err(S3Error::request("GetBucketLocation", err)),
        },
    }
}
