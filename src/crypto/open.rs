//! Streaming decryption after the header: verifies segments in order and detects truncation,
//! extension and reordering.

use super::{CryptoError, ObjectKey, SEALED_SEGMENT_SIZE, TAG_LEN};

/// Opens the segments of one object in order. Plaintext is appended to `out` only after its
/// segment authenticated; ciphertext is held back at most one sealed segment, because a full
/// segment is known to be non-final only once a byte follows it.
pub struct Opener {
    key: ObjectKey,
    /// Sealed bytes not yet opened: 0..=SEALED_SEGMENT_SIZE.
    pending: Vec<u8>,
    /// Index of the next segment to open.
    index: u64,
    /// The first error; a failed opener never releases more plaintext.
    failed: Option<CryptoError>,
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opener")
            .field("segments_opened", &self.index)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl Opener {
    pub fn new(key: ObjectKey) -> Opener {
        Opener {
            key,
            pending: Vec::with_capacity(SEALED_SEGMENT_SIZE),
            index: 0,
            failed: None,
        }
    }

    /// Number of segments authenticated so far.
    pub fn segments_opened(&self) -> u64 {
        self.index
    }

    /// Feeds sealed bytes (any chunking); appends the plaintext of every segment they complete.
    pub fn push(&mut self, sealed: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = self.push_inner(sealed, out);
        if let Err(e) = &result {
            self.failed = Some(e.clone());
        }
        result
    }

    fn push_inner(&mut self, sealed: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
        let mut input = sealed;
        if input.is_empty() {
            return Ok(());
        }
        if !self.pending.is_empty() {
            if self.pending.len() + input.len() <= SEALED_SEGMENT_SIZE {
                self.pending.extend_from_slice(input);
                return Ok(());
            }
            let (head, rest) = input.split_at(SEALED_SEGMENT_SIZE - self.pending.len());
            let pending = std::mem::take(&mut self.pending);
            let r = self.open_middle(&[&pending, head], out);
            self.pending = pending;
            self.pending.clear();
            r?;
            input = rest;
        }
        while input.len() > SEALED_SEGMENT_SIZE {
            let (segment, rest) = input.split_at(SEALED_SEGMENT_SIZE);
            self.open_middle(&[segment], out)?;
            input = rest;
        }
        self.pending.extend_from_slice(input);
        Ok(())
    }

    /// A full segment followed by more bytes: it must authenticate as non-final.
    fn open_middle(&mut self, parts: &[&[u8]], out: &mut Vec<u8>) -> Result<(), CryptoError> {
        let index = self.index;
        if self.key.key.open_into(index, false, parts, out)? {
            self.index += 1;
            return Ok(());
        }
        // Diagnose: a genuine final segment with bytes after it means the object was extended.
        if self.key.key.authenticates(index, true, parts)? {
            return Err(CryptoError::TrailingData { final_index: index });
        }
        Err(CryptoError::SegmentAuthFailed { index })
    }

    /// Opens the final segment; errors if the stream did not end with one.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<(), CryptoError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let index = self.index;
        let pending = std::mem::take(&mut self.pending);
        if pending.is_empty() {
            return Err(CryptoError::Truncated { segments: index });
        }
        if pending.len() >= TAG_LEN && self.key.key.open_into(index, true, &[&pending], out)? {
            return Ok(());
        }
        // A full segment that authenticates as non-final: the stream was cut at a boundary.
        if pending.len() == SEALED_SEGMENT_SIZE
            && self.key.key.authenticates(index, false, &[&pending])?
        {
            return Err(CryptoError::Truncated {
                segments: index + 1,
            });
        }
        Err(CryptoError::FinalSegmentAuthFailed { index })
    }
}
