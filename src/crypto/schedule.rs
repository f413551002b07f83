//! Key schedule and the per-segment AEAD: HKDF-SHA256 from the data key, the STREAM nonce,
//! and the AES-256-GCM wrap of the data key under the tenant KEK.

use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf;
use zeroize::Zeroizing;

use super::CryptoError;

pub(crate) const DATA_KEY_LEN: usize = 32;
pub(crate) const SALT_LEN: usize = 32;
pub(crate) const WRAP_NONCE_LEN: usize = 12;
pub(crate) const WRAPPED_KEY_LEN: usize = DATA_KEY_LEN + super::TAG_LEN;
pub(crate) const COMMITMENT_LEN: usize = 32;
pub(crate) const NONCE_PREFIX_LEN: usize = 7;

// Distinct HKDF info labels: the commitment is an output independent of the payload key, so
// publishing it in the header reveals nothing about the key that encrypts the segments.
const PAYLOAD_KEY_INFO: &[u8] = b"eugate object v1 payload key";
const NONCE_PREFIX_INFO: &[u8] = b"eugate object v1 nonce prefix";
const COMMITMENT_INFO: &[u8] = b"eugate object v1 key commitment";

/// HKDF output length for `ring::hkdf` (which wants a `KeyType`).
struct OkmLen(usize);

impl hkdf::KeyType for OkmLen {
    fn len(&self) -> usize {
        self.0
    }
}

fn expand(prk: &hkdf::Prk, info: &'static [u8], out: &mut [u8]) -> Result<(), CryptoError> {
    prk.expand(&[info], OkmLen(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| CryptoError::Internal("expanding an HKDF output"))
}

/// Everything derived from one data key and salt.
pub(crate) struct Schedule {
    pub(crate) segment_key: SegmentKey,
    pub(crate) commitment: [u8; COMMITMENT_LEN],
}

pub(crate) fn derive(
    data_key: &[u8; DATA_KEY_LEN],
    salt: &[u8; SALT_LEN],
) -> Result<Schedule, CryptoError> {
    let raw = derive_raw(data_key, salt)?;
    Ok(Schedule {
        segment_key: SegmentKey {
            aead: aes_key(&raw.payload_key)?,
            nonce_prefix: raw.nonce_prefix,
        },
        commitment: raw.commitment,
    })
}

/// The key schedule's raw outputs (published in the known-answer vectors so that independent
/// implementations can check each step).
#[doc(hidden)]
pub struct RawSchedule {
    pub payload_key: Zeroizing<[u8; 32]>,
    pub nonce_prefix: Zeroizing<[u8; NONCE_PREFIX_LEN]>,
    pub commitment: [u8; COMMITMENT_LEN],
}

#[doc(hidden)]
pub fn derive_raw(
    data_key: &[u8; DATA_KEY_LEN],
    salt: &[u8; SALT_LEN],
) -> Result<RawSchedule, CryptoError> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(data_key);
    let mut payload_key = Zeroizing::new([0u8; 32]);
    expand(&prk, PAYLOAD_KEY_INFO, payload_key.as_mut())?;
    let mut nonce_prefix = Zeroizing::new([0u8; NONCE_PREFIX_LEN]);
    expand(&prk, NONCE_PREFIX_INFO, nonce_prefix.as_mut())?;
    let mut commitment = [0u8; COMMITMENT_LEN];
    expand(&prk, COMMITMENT_INFO, &mut commitment)?;
    Ok(RawSchedule {
        payload_key,
        nonce_prefix,
        commitment,
    })
}

fn aes_key(key: &[u8; 32]) -> Result<LessSafeKey, CryptoError> {
    UnboundKey::new(&aead::AES_256_GCM, key)
        .map(LessSafeKey::new)
        .map_err(|_| CryptoError::Internal("creating an AES-256-GCM key"))
}

/// Wraps the data key under the KEK; `aad` is the header up to the wrap nonce.
pub(crate) fn wrap(
    kek: &[u8; 32],
    wrap_nonce: &[u8; WRAP_NONCE_LEN],
    aad: &[u8],
    data_key: &[u8; DATA_KEY_LEN],
) -> Result<[u8; WRAPPED_KEY_LEN], CryptoError> {
    let key = aes_key(kek)?;
    let mut out = [0u8; WRAPPED_KEY_LEN];
    let (body, tag_out) = out.split_at_mut(DATA_KEY_LEN);
    body.copy_from_slice(data_key);
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(*wrap_nonce),
            Aad::from(aad),
            body,
        )
        .map_err(|_| CryptoError::Internal("wrapping the data key"))?;
    tag_out.copy_from_slice(tag.as_ref());
    Ok(out)
}

/// Unwraps the data key; any wrong KEK or altered AAD byte gives `KeyUnwrapFailed`.
pub(crate) fn unwrap(
    kek: &[u8; 32],
    wrap_nonce: &[u8; WRAP_NONCE_LEN],
    aad: &[u8],
    wrapped: &[u8; WRAPPED_KEY_LEN],
) -> Result<Zeroizing<[u8; DATA_KEY_LEN]>, CryptoError> {
    let key = aes_key(kek)?;
    let mut buf = Zeroizing::new(*wrapped);
    let plain = key
        .open_in_place(
            Nonce::assume_unique_for_key(*wrap_nonce),
            Aad::from(aad),
            buf.as_mut(),
        )
        .map_err(|_| CryptoError::KeyUnwrapFailed)?;
    let mut data_key = Zeroizing::new([0u8; DATA_KEY_LEN]);
    data_key.copy_from_slice(plain);
    Ok(data_key)
}

/// The per-object payload key with its nonce prefix. ring keeps its expanded AES key schedule
/// internally and offers no way to wipe it; our own copies of key bytes are zeroized.
pub(crate) struct SegmentKey {
    aead: LessSafeKey,
    nonce_prefix: Zeroizing<[u8; NONCE_PREFIX_LEN]>,
}

impl SegmentKey {
    /// STREAM nonce: prefix(7) ‖ segment index u32 BE ‖ last flag (0x00 / 0x01).
    pub(crate) fn nonce(&self, index: u64, last: bool) -> Result<Nonce, CryptoError> {
        let counter = u32::try_from(index).map_err(|_| CryptoError::TooManySegments)?;
        let mut n = [0u8; 12];
        n[..NONCE_PREFIX_LEN].copy_from_slice(self.nonce_prefix.as_ref());
        n[NONCE_PREFIX_LEN..11].copy_from_slice(&counter.to_be_bytes());
        n[11] = u8::from(last);
        Ok(Nonce::assume_unique_for_key(n))
    }

    /// Appends the concatenation of `parts` to `out` and seals it there in place.
    pub(crate) fn seal_into(
        &self,
        index: u64,
        last: bool,
        parts: &[&[u8]],
        out: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        let nonce = self.nonce(index, last)?;
        let start = out.len();
        let len: usize = parts.iter().map(|p| p.len()).sum();
        out.reserve(len + super::TAG_LEN);
        for p in parts {
            out.extend_from_slice(p);
        }
        match self
            .aead
            .seal_in_place_separate_tag(nonce, Aad::empty(), &mut out[start..])
        {
            Ok(tag) => {
                out.extend_from_slice(tag.as_ref());
                Ok(())
            }
            Err(_) => {
                // Never leave plaintext behind in the caller's buffer.
                zeroize::Zeroize::zeroize(&mut out[start..]);
                out.truncate(start);
                Err(CryptoError::Internal("sealing a segment"))
            }
        }
    }

    /// Seals a segment slot in place: `slot` is the plaintext followed by [`super::TAG_LEN`]
    /// bytes of room, into which the tag is written. The part buffer of
    /// [`super::PartSealer`] is laid out this way, so sealing there copies nothing.
    pub(crate) fn seal_slot(
        &self,
        index: u64,
        last: bool,
        slot: &mut [u8],
    ) -> Result<(), CryptoError> {
        let nonce = self.nonce(index, last)?;
        let split = slot
            .len()
            .checked_sub(super::TAG_LEN)
            .ok_or(CryptoError::Internal(
                "sealing a segment slot without room for its tag",
            ))?;
        let (body, tag_out) = slot.split_at_mut(split);
        match self
            .aead
            .seal_in_place_separate_tag(nonce, Aad::empty(), body)
        {
            Ok(tag) => {
                tag_out.copy_from_slice(tag.as_ref());
                Ok(())
            }
            Err(_) => {
                zeroize::Zeroize::zeroize(body);
                Err(CryptoError::Internal("sealing a segment"))
            }
        }
    }

    /// Appends the concatenation of `parts` (ciphertext ‖ tag) to `out` and opens it in place.
    /// On failure `out` is restored to its old length and `false` is returned; ring has already
    /// zeroed the unauthenticated plaintext.
    pub(crate) fn open_into(
        &self,
        index: u64,
        last: bool,
        parts: &[&[u8]],
        out: &mut Vec<u8>,
    ) -> Result<bool, CryptoError> {
        let nonce = self.nonce(index, last)?;
        let start = out.len();
        for p in parts {
            out.extend_from_slice(p);
        }
        match self
            .aead
            .open_in_place(nonce, Aad::empty(), &mut out[start..])
        {
            Ok(plain) => {
                let n = plain.len();
                out.truncate(start + n);
                Ok(true)
            }
            Err(_) => {
                out.truncate(start);
                Ok(false)
            }
        }
    }

    /// Whether `parts` authenticate as segment `index` with flag `last`, releasing nothing.
    pub(crate) fn authenticates(
        &self,
        index: u64,
        last: bool,
        parts: &[&[u8]],
    ) -> Result<bool, CryptoError> {
        let mut scratch = Zeroizing::new(Vec::new());
        self.open_into(index, last, parts, &mut scratch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_outputs_are_independent() {
        let s = derive(&[7; 32], &[9; 32]).unwrap();
        let t = derive(&[7; 32], &[10; 32]).unwrap();
        assert_ne!(
            s.commitment, t.commitment,
            "salt must change the commitment"
        );
        assert_ne!(s.commitment[..7], s.segment_key.nonce_prefix[..]);
    }

    #[test]
    fn nonce_layout_is_prefix_counter_flag() {
        let s = derive(&[1; 32], &[2; 32]).unwrap();
        let n = s.segment_key.nonce(0x0102_0304, true).unwrap();
        let b = n.as_ref();
        assert_eq!(&b[..7], &s.segment_key.nonce_prefix[..]);
        assert_eq!(&b[7..11], &[1, 2, 3, 4]);
        assert_eq!(b[11], 1);
        assert_eq!(
            s.segment_key.nonce(1 << 32, false).err(),
            Some(CryptoError::TooManySegments)
        );
        assert!(s.segment_key.nonce(u64::from(u32::MAX), true).is_ok());
    }

    #[test]
    fn wrap_round_trips_and_binds_aad() {
        let wrapped = wrap(&[3; 32], &[4; 12], b"aad", &[5; 32]).unwrap();
        assert_eq!(
            *unwrap(&[3; 32], &[4; 12], b"aad", &wrapped).unwrap(),
            [5; 32]
        );
        assert_eq!(
            unwrap(&[3; 32], &[4; 12], b"aae", &wrapped).err(),
            Some(CryptoError::KeyUnwrapFailed)
        );
        assert_eq!(
            unwrap(&[6; 32], &[4; 12], b"aad", &wrapped).err(),
            Some(CryptoError::KeyUnwrapFailed)
        );
    }
}
