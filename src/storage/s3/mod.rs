//! S3-compatible destinations. This first part is pure: where a bucket really is (normalising
//! what the store reports, checking it against the configuration and the provider's endpoint
//! naming) and how multipart part sizes grow. The aws-sdk-s3 client, probing and the streaming
//! multipart writer build on these (see `docs/s3-notes.md`).

pub mod location;
pub mod parts;
