//! Offset arithmetic: where each segment lies, so ranged reads fetch only what they need.
//!
//! An object is `header ‖ segment_0 ‖ … ‖ segment_{n-1}`. Every segment but the last carries
//! exactly [`SEGMENT_SIZE`] plaintext bytes plus a 16-byte tag; the last carries 0..=SEGMENT_SIZE
//! (0 only when the whole object is empty). So segment `i` starts at
//! `header_len + i * SEALED_SEGMENT_SIZE`.

use std::ops::Range;

use super::CryptoError;

/// Plaintext bytes in every non-final segment.
pub const SEGMENT_SIZE: usize = 64 * 1024;
/// AES-256-GCM (and ChaCha20-Poly1305) tag length.
pub const TAG_LEN: usize = 16;
/// Bytes of a full sealed segment: plaintext plus tag.
pub const SEALED_SEGMENT_SIZE: usize = SEGMENT_SIZE + TAG_LEN;
/// The 32-bit segment counter allows 2^32 segments per object.
pub const MAX_SEGMENTS: u64 = 1 << 32;

const SEG: u64 = SEGMENT_SIZE as u64;
const SEALED_SEG: u64 = SEALED_SEGMENT_SIZE as u64;
const TAG: u64 = TAG_LEN as u64;

/// Number of segments an object of `plaintext_len` bytes has (at least one: the final one).
pub fn segment_count(plaintext_len: u64) -> u64 {
    plaintext_len.div_ceil(SEG).max(1)
}

/// Total stored length of an object. Saturates at `u64::MAX` for absurd inputs.
pub fn sealed_len(header_len: u64, plaintext_len: u64) -> u64 {
    let tags = segment_count(plaintext_len).saturating_mul(TAG);
    header_len
        .saturating_add(plaintext_len)
        .saturating_add(tags)
}

/// Plaintext length of a stored object of `sealed_len` bytes, or an error if no object of this
/// format can have that length (e.g. a cut inside a tag, or an empty segment after full ones).
pub fn plaintext_len(header_len: u64, sealed_len: u64) -> Result<u64, CryptoError> {
    let invalid = CryptoError::InvalidObjectLength {
        header_len,
        len: sealed_len,
    };
    let body = sealed_len.checked_sub(header_len).ok_or(invalid.clone())?;
    let full = body / SEALED_SEG;
    let rest = body % SEALED_SEG;
    let (segments, plaintext) = match rest {
        // Only full segments: the last of them is the final one; there must be at least one.
        0 if full > 0 => (full, full * SEG),
        // A short final segment must hold its tag; an empty final segment (rest == TAG) is only
        // allowed when it is the only segment (the empty object).
        r if r > TAG || (r == TAG && full == 0) => (full + 1, full * SEG + (r - TAG)),
        _ => return Err(invalid),
    };
    if segments > MAX_SEGMENTS {
        return Err(CryptoError::TooManySegments);
    }
    Ok(plaintext)
}

/// Index of the segment holding plaintext byte `offset`.
pub fn segment_of(offset: u64) -> u64 {
    offset / SEG
}

/// Byte range of sealed segment `index` inside the stored object, for a ranged GET.
pub fn sealed_segment_range(
    header_len: u64,
    plaintext_len: u64,
    index: u64,
) -> Result<Range<u64>, CryptoError> {
    let count = segment_count(plaintext_len);
    if index >= count {
        return Err(CryptoError::SegmentOutOfRange { index, count });
    }
    let start = header_len + index * SEALED_SEG;
    let end = if index + 1 == count {
        sealed_len(header_len, plaintext_len)
    } else {
        start + SEALED_SEG
    };
    Ok(start..end)
}

/// Plaintext byte range that segment `index` decrypts to.
pub fn plaintext_segment_range(plaintext_len: u64, index: u64) -> Result<Range<u64>, CryptoError> {
    let count = segment_count(plaintext_len);
    if index >= count {
        return Err(CryptoError::SegmentOutOfRange { index, count });
    }
    let start = index * SEG;
    Ok(start..(start + SEG).min(plaintext_len))
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: u64 = 200;

    #[test]
    fn counts_follow_the_empty_and_full_last_segment_rules() {
        assert_eq!(segment_count(0), 1);
        assert_eq!(segment_count(1), 1);
        assert_eq!(segment_count(SEG), 1);
        assert_eq!(segment_count(SEG + 1), 2);
        assert_eq!(segment_count(3 * SEG), 3);
    }

    #[test]
    fn sealed_and_plaintext_len_are_inverse() {
        for p in [0, 1, SEG - 1, SEG, SEG + 1, 2 * SEG, 5 * SEG + 17, 1 << 30] {
            let s = sealed_len(H, p);
            assert_eq!(plaintext_len(H, s), Ok(p), "plaintext {p}");
        }
    }

    #[test]
    fn impossible_lengths_are_rejected() {
        // Shorter than header + one tag.
        for s in [0, H, H + 1, H + TAG - 1] {
            assert!(plaintext_len(H, s).is_err(), "sealed {s}");
        }
        // Cut inside the tag of a short final segment after a full one.
        assert!(plaintext_len(H, H + SEALED_SEG + 5).is_err());
        // An empty final segment after full segments is never written.
        assert!(plaintext_len(H, H + SEALED_SEG + TAG).is_err());
    }

    #[test]
    fn too_many_segments_are_rejected() {
        let s = H + (MAX_SEGMENTS + 1) * SEALED_SEG;
        assert_eq!(plaintext_len(H, s), Err(CryptoError::TooManySegments));
        let s = H + MAX_SEGMENTS * SEALED_SEG;
        assert_eq!(plaintext_len(H, s), Ok(MAX_SEGMENTS * SEG));
    }

    #[test]
    fn segment_ranges_tile_the_object() {
        let p = 3 * SEG + 10;
        let mut next = H;
        for i in 0..segment_count(p) {
            let r = sealed_segment_range(H, p, i).unwrap();
            assert_eq!(r.start, next);
            next = r.end;
        }
        assert_eq!(next, sealed_len(H, p));
        assert!(sealed_segment_range(H, p, 4).is_err());
        assert_eq!(plaintext_segment_range(p, 3).unwrap(), 3 * SEG..p);
        assert_eq!(plaintext_segment_range(0, 0).unwrap(), 0..0);
        assert_eq!(segment_of(SEG), 1);
    }
}
