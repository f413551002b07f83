//! Zero-copy sealing: a part buffer laid out as the sealed byte stream.
//!
//! Segment `i` of a part occupies `SEALED_SEGMENT_SIZE` bytes at a fixed offset: its plaintext
//! slot (`SEGMENT_SIZE` bytes) followed by a 16-byte gap for its tag. The caller copies
//! plaintext it received straight into the slots ([`PartSealer::fill`]); sealing encrypts each
//! slot in place and writes the tag into the gap, so the buffer then *is* the stored bytes. The
//! sealed part is handed out by value, so storage can send it without copying it again. The
//! bytes are identical to [`super::Sealer`]'s output for every input and every chunking.

use zeroize::Zeroizing;

use super::schedule::SegmentKey;
use super::{CryptoError, MAX_SEGMENTS, SEALED_SEGMENT_SIZE, SEGMENT_SIZE, TAG_LEN};

/// Upper bound for [`PartSealer`]'s part size (256 MiB of plaintext per part).
pub const MAX_SEGMENTS_PER_PART: usize = 4096;

/// Seals one object into part buffers of a fixed number of segments.
///
/// Use: [`PartSealer::fill`] until it takes fewer bytes than offered (the part is full and more
/// plaintext follows), then [`PartSealer::seal_part`] and store the buffer it returns; the next
/// `fill` starts the next part in a fresh buffer. At the end, [`PartSealer::finish`] returns
/// the last part with the final segment. The first part begins with the header.
///
/// A full segment is only sealed once plaintext after it is known, because the final segment
/// carries the "last" flag. Plaintext never leaves the buffer unsealed: the buffer is zeroized
/// on drop (an aborted upload), and after a sealing error.
pub struct PartSealer {
    key: SegmentKey,
    /// Index of the first segment of the current part.
    first_index: u64,
    segments_per_part: usize,
    /// Where the part's first segment starts: after the header in the first part, else 0.
    base: usize,
    /// Room for the header plus `segments_per_part` sealed segments. Filled strictly in order
    /// (plaintext, then a tag gap after each full slot), so it is never zero-filled first, and
    /// never grows past its capacity: a reallocation would leave a plaintext copy behind.
    buf: Zeroizing<Vec<u8>>,
    /// Plaintext bytes in the current part.
    filled: usize,
    /// `fill` was offered more than the full part could take: every segment is non-final.
    more_follows: bool,
    /// The current part was sealed and handed out; the next `fill` starts a new part.
    sealed: bool,
    /// The first sealing error; a failed sealer seals nothing more.
    failed: Option<CryptoError>,
}

impl std::fmt::Debug for PartSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartSealer")
            .field("segments_per_part", &self.segments_per_part)
            .field("first_index", &self.first_index)
            .field("filled", &self.filled)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl PartSealer {
    /// Takes over a fresh sealer's key and header.
    /// `buf` becomes the first part's buffer: a recycled one saves an allocation (any contents
    /// are discarded; it is grown if too small), `Vec::new()` will do.
    pub(crate) fn new(
        key: SegmentKey,
        header: &[u8],
        segments_per_part: usize,
        buf: Vec<u8>,
    ) -> Result<PartSealer, CryptoError> {
        if !(1..=MAX_SEGMENTS_PER_PART).contains(&segments_per_part) {
            return Err(CryptoError::InvalidPartSize {
                segments: segments_per_part,
            });
        }
        let mut buf = Zeroizing::new(buf);
        buf.clear();
        // Grown while empty, so no plaintext is ever left behind in a reallocation.
        buf.reserve_exact(header.len() + segments_per_part * SEALED_SEGMENT_SIZE);
        buf.extend_from_slice(header);
        Ok(PartSealer {
            key,
            first_index: 0,
            segments_per_part,
            base: header.len(),
            buf,
            filled: 0,
            more_follows: false,
            sealed: false,
            failed: None,
        })
    }

    /// Plaintext bytes one part holds.
    pub fn part_plaintext_capacity(&self) -> usize {
        self.segments_per_part * SEGMENT_SIZE
    }

    /// Copies plaintext into the part's free slots (skipping the tag gaps) and returns how many
    /// bytes it took. Taking fewer than offered means the part is full and, since more plaintext
    /// follows, ready for [`PartSealer::seal_part`]. Takes nothing after a sealing error.
    pub fn fill(&mut self, plaintext: &[u8]) -> usize {
        if plaintext.is_empty() || self.failed.is_some() {
            return 0;
        }
        if self.sealed {
            self.start_next_part();
        }
        let capacity = self.part_plaintext_capacity();
        let mut input = plaintext;
        while !input.is_empty() && self.filled < capacity {
            let offset = self.filled % SEGMENT_SIZE;
            let n = (SEGMENT_SIZE - offset).min(input.len());
            let (head, rest) = input.split_at(n);
            self.buf.extend_from_slice(head);
            self.filled += n;
            if offset + n == SEGMENT_SIZE {
                // The slot is full: its tag gap follows, so the next slot starts where it must.
                self.buf.extend_from_slice(&[0; TAG_LEN]);
            }
            input = rest;
        }
        debug_assert_eq!(
            self.buf.len(),
            self.base + self.filled + self.filled / SEGMENT_SIZE * TAG_LEN
        );
        if !input.is_empty() {
            self.more_follows = true;
        }
        plaintext.len() - input.len()
    }

    /// Seals the full part in place (all its segments are non-final, since plaintext follows)
    /// and returns it: the bytes to store next, ciphertext only. The first part includes the
    /// header. `next` becomes the buffer of the following part: a recycled one saves an
    /// allocation (any contents are discarded; it is grown if too small), `Vec::new()` will do.
    pub fn seal_part(&mut self, next: Vec<u8>) -> Result<Vec<u8>, CryptoError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.sealed || self.filled < self.part_plaintext_capacity() || !self.more_follows {
            return Err(CryptoError::PartOutOfOrder(
                "seal_part needs a full part and plaintext beyond it (fill took fewer bytes than offered); at the end of the object call finish",
            ));
        }
        self.seal_segments(self.segments_per_part, None)?;
        self.sealed = true;
        let mut next = next;
        next.clear();
        // Grown while empty, so no plaintext is ever left behind in a reallocation.
        next.reserve_exact(self.segments_per_part * SEALED_SEGMENT_SIZE);
        Ok(std::mem::replace(&mut *self.buf, next))
    }

    /// Seals what the part holds, the last segment with the "last" flag (an empty object gets
    /// one empty final segment), and returns the last part to store (ciphertext only).
    pub fn finish(mut self) -> Result<Vec<u8>, CryptoError> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        if self.sealed {
            return Err(CryptoError::PartOutOfOrder(
                "finish right after seal_part: that part was sealed as non-final because more plaintext was offered; fill it before finishing",
            ));
        }
        // Segments before the final one are full; the final one holds 0..=SEGMENT_SIZE bytes
        // (0 only in the first part of an empty object: a new part starts only with data).
        let full = self.filled.saturating_sub(1) / SEGMENT_SIZE;
        let last_len = self.filled - full * SEGMENT_SIZE;
        // The final slot's tag gap (already there if the final segment is a full one).
        let end = self.base + full * SEALED_SEGMENT_SIZE + last_len + TAG_LEN;
        self.buf.resize(end, 0);
        self.seal_segments(full, Some(last_len))?;
        Ok(std::mem::take(&mut *self.buf))
    }

    /// Seals `full` non-final segments of the current part, then the final one of `last_len`
    /// bytes if given. On error wipes the buffer and remembers the error.
    fn seal_segments(&mut self, full: usize, last_len: Option<usize>) -> Result<(), CryptoError> {
        let result = self.seal_segments_inner(full, last_len);
        if let Err(e) = &result {
            zeroize::Zeroize::zeroize(&mut self.buf[..]);
            self.failed = Some(e.clone());
        }
        result
    }

    fn seal_segments_inner(
        &mut self,
        full: usize,
        last_len: Option<usize>,
    ) -> Result<(), CryptoError> {
        // Same bounds as `Sealer`: a non-final segment must leave room for the final one.
        let after_full = self.first_index.saturating_add(full as u64);
        // Segments `first_index..after_full` are non-final and `after_full` is the final one (if
        // any): both rules come down to `after_full < MAX_SEGMENTS`.
        if after_full >= MAX_SEGMENTS {
            return Err(CryptoError::TooManySegments);
        }
        for (i, slot) in self.buf[self.base..]
            .chunks_exact_mut(SEALED_SEGMENT_SIZE)
            .take(full)
            .enumerate()
        {
            self.key
                .seal_slot(self.first_index + i as u64, false, slot)?;
        }
        if let Some(len) = last_len {
            let at = self.base + full * SEALED_SEGMENT_SIZE;
            self.key
                .seal_slot(after_full, true, &mut self.buf[at..at + len + TAG_LEN])?;
        }
        Ok(())
    }

    /// The next part fills the fresh buffer `seal_part` left behind.
    fn start_next_part(&mut self) {
        self.first_index += self.segments_per_part as u64;
        self.base = 0;
        self.filled = 0;
        self.more_follows = false;
        self.sealed = false;
    }

    #[cfg(test)]
    pub(crate) fn skip_to_segment(&mut self, index: u64) {
        self.first_index = index;
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ObjectContext, Sealer};
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

    fn reference(data: &[u8]) -> Vec<u8> {
        let mut s = sealer();
        let mut out = s.header().to_vec();
        s.push(data, &mut out).unwrap();
        s.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn recycled_first_buffer_changes_nothing() {
        let data: Vec<u8> = (0..3 * SEGMENT_SIZE + 77).map(|i| i as u8).collect();
        // Dirty and too small, then dirty and big enough: both are cleared and (re)sized.
        for dirty in [vec![0xee; 100], vec![0xee; 4 * SEALED_SEGMENT_SIZE + 4096]] {
            let mut p = sealer().into_part_sealer_in(2, dirty).unwrap();
            let mut out = Vec::new();
            let mut input = &data[..];
            while !input.is_empty() {
                let n = p.fill(input);
                input = &input[n..];
                if !input.is_empty() {
                    out.extend_from_slice(&p.seal_part(vec![0xdd; 10]).unwrap());
                }
            }
            out.extend_from_slice(&p.finish().unwrap());
            assert_eq!(out, reference(&data));
        }
    }

    /// Seals `data` in parts of `k` segments, pushing `chunk` bytes at a time.
    fn by_parts(data: &[u8], k: usize, chunk: usize) -> (Vec<u8>, Vec<usize>) {
        let mut p = sealer().into_part_sealer(k).unwrap();
        let (mut out, mut sizes) = (Vec::new(), Vec::new());
        for c in data.chunks(chunk.max(1)) {
            let mut input = c;
            while !input.is_empty() {
                let n = p.fill(input);
                input = &input[n..];
                if !input.is_empty() {
                    let part = p.seal_part(Vec::new()).unwrap();
                    sizes.push(part.len());
                    out.extend_from_slice(&part);
                }
            }
        }
        let last = p.finish().unwrap();
        sizes.push(last.len());
        out.extend_from_slice(&last);
        (out, sizes)
    }

    #[test]
    fn boundary_sizes_match_the_streaming_sealer() {
        let data: Vec<u8> = (0..3 * SEGMENT_SIZE + 5).map(|i| (i % 253) as u8).collect();
        for len in [
            0,
            1,
            SEGMENT_SIZE - 1,
            SEGMENT_SIZE,
            SEGMENT_SIZE + 1,
            2 * SEGMENT_SIZE,
            3 * SEGMENT_SIZE + 5,
        ] {
            for k in [1, 2, 3] {
                let (out, _) = by_parts(&data[..len], k, 1000);
                assert!(
                    out == reference(&data[..len]),
                    "len {len}, {k} segments per part"
                );
            }
        }
    }

    #[test]
    fn parts_are_whole_sealed_segments_and_the_first_carries_the_header() {
        let header_len = sealer().header().len();
        let (_, sizes) = by_parts(&vec![9; 2 * SEGMENT_SIZE + 1], 1, 4096);
        assert_eq!(
            sizes,
            [
                header_len + SEALED_SEGMENT_SIZE,
                SEALED_SEGMENT_SIZE,
                1 + TAG_LEN
            ]
        );
        // Exactly one full part: it is the final part, sealed by finish with the last flag.
        let (_, sizes) = by_parts(&vec![9; 2 * SEGMENT_SIZE], 2, 4096);
        assert_eq!(sizes, [header_len + 2 * SEALED_SEGMENT_SIZE]);
    }

    #[test]
    fn out_of_order_calls_are_refused() {
        let mut p = sealer().into_part_sealer(1).unwrap();
        assert!(matches!(
            p.seal_part(Vec::new()),
            Err(CryptoError::PartOutOfOrder(_))
        ));
        assert_eq!(p.fill(&vec![1; SEGMENT_SIZE]), SEGMENT_SIZE);
        // Full, but nothing follows yet: it may still be the final segment.
        assert!(matches!(
            p.seal_part(Vec::new()),
            Err(CryptoError::PartOutOfOrder(_))
        ));
        assert_eq!(p.fill(&[1]), 0);
        p.seal_part(Vec::new()).unwrap();
        assert!(matches!(
            p.seal_part(Vec::new()),
            Err(CryptoError::PartOutOfOrder(_))
        ));
        // The announced byte never came: finishing would need an empty final segment.
        assert!(matches!(p.finish(), Err(CryptoError::PartOutOfOrder(_))));
        assert_eq!(
            sealer().into_part_sealer(0).unwrap_err(),
            CryptoError::InvalidPartSize { segments: 0 }
        );
        assert!(
            sealer()
                .into_part_sealer(MAX_SEGMENTS_PER_PART + 1)
                .is_err()
        );
        let mut used = sealer();
        used.push(&[1], &mut Vec::new()).unwrap();
        assert_eq!(
            used.into_part_sealer(1).unwrap_err(),
            CryptoError::SealerAlreadyUsed
        );
    }

    #[test]
    fn the_segment_counter_cannot_wrap_and_failure_sticks() {
        let mut p = sealer().into_part_sealer(1).unwrap();
        p.skip_to_segment(MAX_SEGMENTS - 1);
        p.fill(&vec![5; SEGMENT_SIZE + 1]);
        assert_eq!(
            p.seal_part(Vec::new()).unwrap_err(),
            CryptoError::TooManySegments
        );
        assert!(
            p.buf.iter().all(|&b| b == 0),
            "plaintext wiped after the error"
        );
        assert_eq!(p.fill(&[1]), 0, "a failed sealer takes nothing");
        assert_eq!(p.finish().unwrap_err(), CryptoError::TooManySegments);
        // The final segment may use the last index.
        let mut p = sealer().into_part_sealer(1).unwrap();
        p.skip_to_segment(MAX_SEGMENTS - 1);
        p.fill(&[5; 10]);
        p.finish().unwrap();
        let mut p = sealer().into_part_sealer(1).unwrap();
        p.skip_to_segment(MAX_SEGMENTS);
        assert_eq!(p.finish().unwrap_err(), CryptoError::TooManySegments);
    }
}
