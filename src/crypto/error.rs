//! Every way opening or sealing an object can fail, one variant per cause.
//!
//! The variants are deliberately distinct so that an operator (and the tests) can tell a wrong
//! key from a tampered header from a cut-off upload. None of them carries secret material.

/// Errors of the object format. `Clone` so that a failed [`super::Opener`] can repeat its first
/// error instead of continuing on a corrupt stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The first bytes are not `EUGATE`: this is not an eugate object (or not its start).
    #[error("not an eugate object: the magic bytes `EUGATE` are missing at offset 0")]
    BadMagic,

    /// A format version this build does not know.
    #[error(
        "unsupported object format version {version} (this build reads versions 1 and 2); upgrade eugate"
    )]
    UnsupportedVersion { version: u8 },

    /// A cipher suite this build does not implement (0x02, ChaCha20-Poly1305, is reserved).
    #[error(
        "unsupported cipher suite 0x{suite:02x} (this build implements 0x01 = AES-256-GCM); upgrade eugate"
    )]
    UnsupportedSuite { suite: u8 },

    /// More bytes are needed before the header can be parsed; fetch at least `needed` bytes.
    #[error("object header truncated: have {have} bytes, need at least {needed}")]
    HeaderTruncated { needed: usize, have: usize },

    /// A header field has an impossible value.
    #[error("object header malformed: field `{field}` {reason}")]
    HeaderMalformed {
        field: &'static str,
        reason: &'static str,
    },

    /// A value given to the sealer cannot be encoded in a header.
    #[error("cannot seal: object context field `{field}` {reason}")]
    InvalidContext {
        field: &'static str,
        reason: &'static str,
    },

    /// The header belongs to another tenant / key / object than the caller expected.
    #[error("object header is for a different {field} than expected; refusing to open it")]
    ContextMismatch { field: &'static str },

    /// The wrapped data key did not authenticate: wrong KEK (or KEK version; for version 2, the
    /// wrong object key W), or a header byte before the wrapped key (tenant, key id, version,
    /// provider kind and blob, object id, salt...) was altered.
    #[error(
        "cannot unwrap the object's data key: wrong tenant key (or key version), or the header was altered"
    )]
    KeyUnwrapFailed,

    /// `Header::rewrap` was given a version 2 (hold-your-own-key) header: its provider blob is
    /// authenticated by the data-key wrap, so a rotation must supply the new provider-wrapped
    /// object key (`Header::rewrap_to`).
    #[error(
        "cannot rewrap a version 2 (hold-your-own-key) header without a new provider-wrapped object key; use Header::rewrap_to"
    )]
    RewrapNeedsExternalKey,

    /// The data key unwrapped but does not match the header's key commitment.
    #[error("key commitment mismatch: the header's commitment does not match its data key")]
    CommitmentMismatch,

    /// A non-final segment failed authentication: corrupted, reordered, duplicated or foreign.
    #[error("segment {index} failed authentication (corrupted, reordered or from another object)")]
    SegmentAuthFailed { index: u64 },

    /// The last bytes of the stream do not authenticate as the final segment: the final segment
    /// was altered, the object was cut inside a segment, or bytes were appended after a short
    /// final segment (a reader cannot tell these apart without the true length).
    #[error(
        "final segment {index} failed authentication (altered, cut inside a segment, or extended)"
    )]
    FinalSegmentAuthFailed { index: u64 },

    /// The stream ended without a final segment (cut at a segment boundary, or empty).
    #[error(
        "object truncated: {segments} segment(s) authenticated but the final segment is missing"
    )]
    Truncated { segments: u64 },

    /// Bytes follow the authenticated final segment.
    #[error("trailing data after the final segment {final_index}: the object was extended")]
    TrailingData { final_index: u64 },

    /// The segment counter would exceed 2^32 segments (256 TiB of plaintext).
    #[error("too many segments: an object holds at most 2^32 segments (256 TiB of plaintext)")]
    TooManySegments,

    /// A sealed segment handed to `open_segment` has a length no segment can have.
    #[error(
        "sealed segment {index} has invalid length {len} (non-final segments are exactly {} bytes, the final one 16..={})",
        crate::crypto::SEALED_SEGMENT_SIZE,
        crate::crypto::SEALED_SEGMENT_SIZE
    )]
    SegmentLength { index: u64, len: usize },

    /// A stored object's length is impossible for this format (check the object was stored whole).
    #[error("invalid sealed object length {len} for a header of {header_len} bytes")]
    InvalidObjectLength { header_len: u64, len: u64 },

    /// A segment index beyond the object's last segment was requested.
    #[error("segment {index} is beyond the object's last segment ({count} segments)")]
    SegmentOutOfRange { index: u64, count: u64 },

    /// A [`super::Sealer`] that already took plaintext cannot become a [`super::PartSealer`]
    /// (the header must open the first part).
    #[error(
        "this sealer already took plaintext; convert a fresh Sealer into a PartSealer before the first push"
    )]
    SealerAlreadyUsed,

    /// A part buffer must hold at least one segment and fit in memory.
    #[error(
        "invalid part size of {segments} segments: a part holds 1..={max} segments",
        max = crate::crypto::MAX_SEGMENTS_PER_PART
    )]
    InvalidPartSize { segments: usize },

    /// `seal_part` was called although the part is not full with more plaintext waiting, or
    /// `finish` was called right after `seal_part` without the plaintext that was announced.
    #[error("part sealer used out of order: {0}")]
    PartOutOfOrder(&'static str),

    /// The system random number generator failed; nothing was sealed.
    #[error("the system random number generator failed; cannot create a data key")]
    Random,

    /// The AEAD implementation refused an operation that the format rules should make impossible.
    #[error("internal cryptographic failure while {0}")]
    Internal(&'static str),
}
