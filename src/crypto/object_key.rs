//! An unlocked object's payload key: opens any single segment (ranged reads).

use super::schedule::SegmentKey;
use super::{CryptoError, SEALED_SEGMENT_SIZE, TAG_LEN};

/// The payload key of one object, obtained from [`super::Header::unlock`] after the key
/// commitment matched. Our copies of key bytes are zeroized on drop.
pub struct ObjectKey {
    pub(crate) key: SegmentKey,
}

impl std::fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ObjectKey { .. }")
    }
}

impl ObjectKey {
    pub(crate) fn new(key: SegmentKey) -> ObjectKey {
        ObjectKey { key }
    }

    /// Opens sealed segment `index` (0-based) and appends its plaintext to `out`; `last` says it
    /// must be the final segment. Nothing is appended unless the segment authenticates.
    pub fn open_segment(
        &self,
        index: u64,
        last: bool,
        sealed: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        let len = sealed.len();
        let valid = if last {
            (TAG_LEN..=SEALED_SEGMENT_SIZE).contains(&len)
        } else {
            len == SEALED_SEGMENT_SIZE
        };
        if !valid {
            return Err(CryptoError::SegmentLength { index, len });
        }
        if self.key.open_into(index, last, &[sealed], out)? {
            Ok(())
        } else if last {
            Err(CryptoError::FinalSegmentAuthFailed { index })
        } else {
            Err(CryptoError::SegmentAuthFailed { index })
        }
    }
}
