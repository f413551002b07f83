//! Streaming encryption: header first, then 64 KiB segments sealed in place in the output.
//! [`Sealer::into_part_sealer`] switches to [`PartSealer`], which also avoids the copy into `out`.

use zeroize::Zeroizing;

use super::header::{Header, Layout, MAGIC, ObjectContext};
use super::schedule::{self, DATA_KEY_LEN, SALT_LEN, SegmentKey, WRAP_NONCE_LEN};
use super::{CryptoError, MAX_SEGMENTS, PartSealer, SEGMENT_SIZE};

/// Seals one object. Accepts plaintext in chunks of any size and holds at most one segment.
///
/// A complete segment is sealed only once at least one more byte arrives, because a full
/// segment that ends the object must carry the "last" flag (there is never an extra empty
/// final segment).
pub struct Sealer {
    header: Vec<u8>,
    key: SegmentKey,
    /// Plaintext not yet sealed: 0..=SEGMENT_SIZE bytes.
    pending: Zeroizing<Vec<u8>>,
    /// Index of the next segment to seal.
    index: u64,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("header_len", &self.header.len())
            .field("segments_sealed", &self.index)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// Fresh random data key, salt and wrap nonce; `kek` is the tenant's key-encryption key (or
    /// the object key W of an external key). Writes version 3, the fixed-length header.
    pub fn new(kek: &[u8; 32], ctx: &ObjectContext) -> Result<Sealer, CryptoError> {
        let mut data_key = Zeroizing::new([0u8; DATA_KEY_LEN]);
        let mut salt = [0u8; SALT_LEN];
        let mut wrap_nonce = [0u8; WRAP_NONCE_LEN];
        super::random_fill(data_key.as_mut())?;
        super::random_fill(&mut salt)?;
        super::random_fill(&mut wrap_nonce)?;
        Sealer::with_material(kek, ctx, &data_key, &salt, &wrap_nonce)
    }

    /// Deterministic constructor for known-answer vectors only. Reusing a data key or salt
    /// across objects breaks the format's security: production code calls [`Sealer::new`].
    #[doc(hidden)]
    pub fn with_material(
        kek: &[u8; 32],
        ctx: &ObjectContext,
        data_key: &[u8; 32],
        salt: &[u8; 32],
        wrap_nonce: &[u8; 12],
    ) -> Result<Sealer, CryptoError> {
        Sealer::with_layout_material(Layout::Fixed, kek, ctx, data_key, salt, wrap_nonce)
    }

    /// [`Sealer::with_material`] in a chosen layout: the compact one (versions 1 and 2) is
    /// still read everywhere, and written only for its known-answer vectors.
    #[doc(hidden)]
    pub fn with_layout_material(
        layout: Layout,
        kek: &[u8; 32],
        ctx: &ObjectContext,
        data_key: &[u8; 32],
        salt: &[u8; 32],
        wrap_nonce: &[u8; 12],
    ) -> Result<Sealer, CryptoError> {
        let schedule = schedule::derive(data_key, salt)?;
        let header = Header::build(
            layout,
            kek,
            ctx,
            data_key,
            salt,
            wrap_nonce,
            &schedule.commitment,
        )?;
        Ok(Sealer {
            header,
            key: schedule.segment_key,
            pending: Zeroizing::new(Vec::with_capacity(SEGMENT_SIZE)),
            index: 0,
        })
    }

    /// Encoded header: the first bytes of the object; write it before any segment.
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// The format version of the header written (the byte after the magic).
    pub fn version(&self) -> u8 {
        self.header[MAGIC.len()]
    }

    /// Appends to `out` every segment that `plaintext` completes.
    pub fn push(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
        let mut input = plaintext;
        if input.is_empty() {
            return Ok(());
        }
        if !self.pending.is_empty() {
            if self.pending.len() + input.len() <= SEGMENT_SIZE {
                self.pending.extend_from_slice(input);
                return Ok(());
            }
            // The pending segment completes and more bytes follow, so it is not the last.
            let (head, rest) = input.split_at(SEGMENT_SIZE - self.pending.len());
            seal_segment(
                &self.key,
                &mut self.index,
                false,
                &[&self.pending, head],
                out,
            )?;
            self.pending.clear();
            input = rest;
        }
        // Straight from the caller's slice into `out`: one copy, sealed in place.
        while input.len() > SEGMENT_SIZE {
            let (segment, rest) = input.split_at(SEGMENT_SIZE);
            seal_segment(&self.key, &mut self.index, false, &[segment], out)?;
            input = rest;
        }
        self.pending.extend_from_slice(input);
        Ok(())
    }

    /// Seals the final segment (possibly empty) into `out`.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<(), CryptoError> {
        let pending = std::mem::take(&mut self.pending);
        seal_segment(&self.key, &mut self.index, true, &[&pending], out)
    }

    /// Switches to zero-copy sealing into part buffers of `segments_per_part` segments (see
    /// [`PartSealer`]); the first part begins with the header. Only a fresh sealer converts.
    pub fn into_part_sealer(self, segments_per_part: usize) -> Result<PartSealer, CryptoError> {
        self.into_part_sealer_in(segments_per_part, Vec::new())
    }

    /// [`Sealer::into_part_sealer`], with `buf` (e.g. a recycled one) as the first part's buffer.
    pub fn into_part_sealer_in(
        self,
        segments_per_part: usize,
        buf: Vec<u8>,
    ) -> Result<PartSealer, CryptoError> {
        if self.index > 0 || !self.pending.is_empty() {
            return Err(CryptoError::SealerAlreadyUsed);
        }
        PartSealer::new(self.key, &self.header, segments_per_part, buf)
    }

    #[cfg(test)]
    pub(crate) fn skip_to_segment(&mut self, index: u64) {
        self.index = index;
    }
}

/// Seals one segment into `out` and advances the counter.
fn seal_segment(
    key: &SegmentKey,
    index: &mut u64,
    last: bool,
    parts: &[&[u8]],
    out: &mut Vec<u8>,
) -> Result<(), CryptoError> {
    // A non-final segment must leave room for the final one within 2^32 segments.
    let limit = if last { MAX_SEGMENTS } else { MAX_SEGMENTS - 1 };
    if *index >= limit {
        return Err(CryptoError::TooManySegments);
    }
    key.seal_into(*index, last, parts, out)?;
    *index += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer() -> Sealer {
        let ctx = ObjectContext {
            tenant: "t".into(),
            key_id: "k".into(),
            key_version: 1,
            object_id: [0; 16],
            external: None,
        };
        Sealer::with_material(&[1; 32], &ctx, &[2; 32], &[3; 32], &[4; 12]).unwrap()
    }

    #[test]
    fn a_full_segment_waits_for_the_next_byte() {
        let mut s = sealer();
        let mut out = Vec::new();
        s.push(&vec![7; SEGMENT_SIZE], &mut out).unwrap();
        assert!(out.is_empty(), "a full segment may still be the last one");
        s.push(&[7], &mut out).unwrap();
        assert_eq!(out.len(), super::super::SEALED_SEGMENT_SIZE);
        s.finish(&mut out).unwrap();
        assert_eq!(out.len(), super::super::SEALED_SEGMENT_SIZE + 1 + 16);
    }

    #[test]
    fn the_segment_counter_cannot_wrap() {
        let mut s = sealer();
        s.skip_to_segment(MAX_SEGMENTS - 1);
        let mut out = Vec::new();
        s.push(&vec![0; SEGMENT_SIZE + 1], &mut out).unwrap_err();
        assert!(out.is_empty());
        let mut s = sealer();
        s.skip_to_segment(MAX_SEGMENTS - 1);
        s.finish(&mut out).unwrap();
        let mut s = sealer();
        s.skip_to_segment(MAX_SEGMENTS);
        assert_eq!(s.finish(&mut out), Err(CryptoError::TooManySegments));
    }
}
