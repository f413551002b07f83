//! The encrypted object format (`docs/object-format.md`): a header that wraps a fresh data key
//! and commits to it, followed by 64 KiB AES-256-GCM segments with STREAM nonces
//! (prefix ‖ counter ‖ last flag). Version 1 wraps the data key under the tenant's KEK; version 2
//! (hold-your-own-key) under a per-object key W that an external key provider wraps
//! ([`ObjectContext::external`], [`external_key_context`]); version 3, what writers write, holds
//! either in a header of fixed length ([`HEADER_FIXED_LEN`]), so a listing knows every plaintext
//! size from the stored sizes alone.
//!
//! Pure: no I/O besides the system random number generator.
//!
//! Writing: [`Sealer::new`], write [`Sealer::header`], then [`Sealer::push`] / [`Sealer::finish`];
//! or, without copying sealed bytes again, [`Sealer::into_part_sealer`] and the [`PartSealer`]
//! part buffer (the upload path).
//! Reading: [`Header::parse`], check [`Header::context`] / [`Header::expect_context`],
//! [`Header::unlock`] with the KEK, then [`Opener`] (sequential) or
//! [`ObjectKey::open_segment`] (ranged, offsets from [`sealed_segment_range`]).

mod error;
mod header;
mod layout;
mod object_key;
mod open;
mod part;
mod schedule;
mod seal;
mod wipe;

pub use error::CryptoError;
pub use header::{
    EXTERNAL_BLOB_MAX_LEN, ExternalKey, FORMAT_VERSION, FORMAT_VERSION_FIXED, FORMAT_VERSION_HYOK,
    HEADER_FIXED_LEN, HEADER_MAX_LEN, HEADER_MIN_LEN, HEADER_PREFIX_LEN, Header, Layout, MAGIC,
    ObjectContext, Suite, external_key_context,
};
pub use layout::{
    MAX_SEGMENTS, SEALED_SEGMENT_SIZE, SEGMENT_SIZE, TAG_LEN, plaintext_len,
    plaintext_segment_range, sealed_len, sealed_segment_range, segment_count, segment_of,
};
pub use object_key::ObjectKey;
pub use open::Opener;
pub use part::{MAX_SEGMENTS_PER_PART, PartSealer};
pub use seal::Sealer;
pub use wipe::{wipe, wipe_vec};

/// Key-schedule internals for the known-answer vectors only.
#[doc(hidden)]
pub mod vector_internals {
    pub use super::schedule::{RawSchedule, derive_raw};
}

fn random_fill(buf: &mut [u8]) -> Result<(), CryptoError> {
    use ring::rand::SecureRandom;
    ring::rand::SystemRandom::new()
        .fill(buf)
        .map_err(|_| CryptoError::Random)
}
