//! The object header: encoding, parsing, and unlocking the data key.
//!
//! ```text
//! off        len  field
//! 0          6    magic "EUGATE"
//! 6          1    version = 0x01
//! 7          1    suite   = 0x01 (AES-256-GCM); 0x02 reserved for ChaCha20-Poly1305
//! 8          2    header_len, u16 BE: total header bytes, 158..=666
//! 10         1    T = tenant length, 1..=255
//! 11         T    tenant, UTF-8
//! 11+T       1    K = key id length, 1..=255
//! 12+T       K    key id, UTF-8
//! 12+T+K     4    key version (KEK version), u32 BE
//! 16+T+K     16   object id
//! 32+T+K     32   HKDF salt
//! 64+T+K     12   wrap nonce
//! 76+T+K     48   wrapped data key (AES-256-GCM ciphertext 32 ‖ tag 16), AAD = bytes [0, 64+T+K)
//! 124+T+K    32   key commitment
//! 156+T+K         end of header = header_len
//! ```

use subtle::ConstantTimeEq;

use super::schedule::{
    self, COMMITMENT_LEN, DATA_KEY_LEN, SALT_LEN, WRAP_NONCE_LEN, WRAPPED_KEY_LEN,
};
use super::{CryptoError, ObjectKey};

/// Magic bytes at offset 0 of every object.
pub const MAGIC: &[u8; 6] = b"EUGATE";
/// The one format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// Bytes needed to learn `header_len` (magic, version, suite, header_len).
pub const HEADER_PREFIX_LEN: usize = 10;
/// Header bytes besides the tenant and key id strings.
const FIXED_LEN: usize = HEADER_PREFIX_LEN
    + 1
    + 1
    + 4
    + 16
    + SALT_LEN
    + WRAP_NONCE_LEN
    + WRAPPED_KEY_LEN
    + COMMITMENT_LEN;
/// Shortest possible header (one-byte tenant and key id).
pub const HEADER_MIN_LEN: usize = FIXED_LEN + 2;
/// Longest possible header (255-byte tenant and key id); fetching this many bytes always suffices.
pub const HEADER_MAX_LEN: usize = FIXED_LEN + 255 + 255;

/// Cipher suite of the segments and the key wrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Suite {
    /// 0x01: AES-256-GCM via ring.
    Aes256Gcm,
}

impl Suite {
    pub fn id(self) -> u8 {
        match self {
            Suite::Aes256Gcm => 0x01,
        }
    }

    fn from_id(id: u8) -> Result<Suite, CryptoError> {
        match id {
            0x01 => Ok(Suite::Aes256Gcm),
            // 0x02 is reserved for ChaCha20-Poly1305 (hosts without AES-NI); not implemented yet.
            suite => Err(CryptoError::UnsupportedSuite { suite }),
        }
    }
}

/// Everything the header binds besides the key material.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectContext {
    pub tenant: String,
    /// Tenant key id from the keyring.
    pub key_id: String,
    /// KEK version.
    pub key_version: u32,
    /// Immutable object id (random, chosen by the caller; also kept in object metadata).
    pub object_id: [u8; 16],
}

fn check_name(field: &'static str, value: &str) -> Result<u8, CryptoError> {
    if value.is_empty() {
        return Err(CryptoError::InvalidContext {
            field,
            reason: "is empty",
        });
    }
    u8::try_from(value.len()).map_err(|_| CryptoError::InvalidContext {
        field,
        reason: "is longer than 255 bytes",
    })
}

/// Encodes the header bytes covered by the key wrap's AAD: everything before the wrap nonce.
pub(crate) fn encode_bound_prefix(
    ctx: &ObjectContext,
    salt: &[u8; SALT_LEN],
) -> Result<Vec<u8>, CryptoError> {
    let t = check_name("tenant", &ctx.tenant)?;
    let k = check_name("key_id", &ctx.key_id)?;
    let header_len = FIXED_LEN + usize::from(t) + usize::from(k);
    let header_len_u16 =
        u16::try_from(header_len).map_err(|_| CryptoError::Internal("encoding header_len"))?;
    let mut h = Vec::with_capacity(header_len);
    h.extend_from_slice(MAGIC);
    h.push(FORMAT_VERSION);
    h.push(Suite::Aes256Gcm.id());
    h.extend_from_slice(&header_len_u16.to_be_bytes());
    h.push(t);
    h.extend_from_slice(ctx.tenant.as_bytes());
    h.push(k);
    h.extend_from_slice(ctx.key_id.as_bytes());
    h.extend_from_slice(&ctx.key_version.to_be_bytes());
    h.extend_from_slice(&ctx.object_id);
    h.extend_from_slice(salt);
    Ok(h)
}

/// A parsed object header. Parsing checks structure only; [`Header::unlock`] authenticates it.
#[derive(Debug, Clone)]
pub struct Header {
    encoded: Vec<u8>,
    ctx: ObjectContext,
    suite: Suite,
    /// Offset of the wrap nonce = length of the wrap AAD.
    bound_len: usize,
    salt: [u8; SALT_LEN],
    wrap_nonce: [u8; WRAP_NONCE_LEN],
    wrapped_key: [u8; WRAPPED_KEY_LEN],
    commitment: [u8; COMMITMENT_LEN],
}

/// A cursor over the header bytes that cannot read past `header_len`.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], CryptoError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(CryptoError::HeaderMalformed {
                field,
                reason: "runs past header_len",
            })?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], CryptoError> {
        let s = self.take(N, field)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn name(&mut self, field: &'static str) -> Result<String, CryptoError> {
        let [len] = self.array::<1>(field)?;
        if len == 0 {
            return Err(CryptoError::HeaderMalformed {
                field,
                reason: "is empty",
            });
        }
        let s = self.take(usize::from(len), field)?;
        String::from_utf8(s.to_vec()).map_err(|_| CryptoError::HeaderMalformed {
            field,
            reason: "is not valid UTF-8",
        })
    }
}

impl Header {
    /// Parses the header at the start of `bytes` (trailing segment bytes are ignored).
    /// `Err(HeaderTruncated { needed, .. })` asks for at least `needed` bytes.
    pub fn parse(bytes: &[u8]) -> Result<Header, CryptoError> {
        let have = bytes.len();
        // Reject foreign data as early as possible, even from a short prefix.
        let m = have.min(MAGIC.len());
        if bytes[..m] != MAGIC[..m] {
            return Err(CryptoError::BadMagic);
        }
        if have < HEADER_PREFIX_LEN {
            if have > MAGIC.len() && bytes[6] != FORMAT_VERSION {
                return Err(CryptoError::UnsupportedVersion { version: bytes[6] });
            }
            return Err(CryptoError::HeaderTruncated {
                needed: HEADER_PREFIX_LEN,
                have,
            });
        }
        if bytes[6] != FORMAT_VERSION {
            return Err(CryptoError::UnsupportedVersion { version: bytes[6] });
        }
        let suite = Suite::from_id(bytes[7])?;
        let header_len = usize::from(u16::from_be_bytes([bytes[8], bytes[9]]));
        if !(HEADER_MIN_LEN..=HEADER_MAX_LEN).contains(&header_len) {
            return Err(CryptoError::HeaderMalformed {
                field: "header_len",
                reason: "is outside 158..=666",
            });
        }
        if have < header_len {
            return Err(CryptoError::HeaderTruncated {
                needed: header_len,
                have,
            });
        }
        let encoded = &bytes[..header_len];
        let mut r = Reader {
            bytes: encoded,
            pos: HEADER_PREFIX_LEN,
        };
        let tenant = r.name("tenant")?;
        let key_id = r.name("key_id")?;
        let key_version = u32::from_be_bytes(r.array("key_version")?);
        let object_id = r.array("object_id")?;
        let salt = r.array("salt")?;
        let bound_len = r.pos;
        let wrap_nonce = r.array("wrap_nonce")?;
        let wrapped_key = r.array("wrapped_key")?;
        let commitment = r.array("commitment")?;
        if r.pos != header_len {
            return Err(CryptoError::HeaderMalformed {
                field: "header_len",
                reason: "does not match the lengths of tenant and key_id",
            });
        }
        Ok(Header {
            encoded: encoded.to_vec(),
            ctx: ObjectContext {
                tenant,
                key_id,
                key_version,
                object_id,
            },
            suite,
            bound_len,
            salt,
            wrap_nonce,
            wrapped_key,
            commitment,
        })
    }

    /// Builds the header for freshly chosen key material (the sealer's side).
    pub(crate) fn build(
        kek: &[u8; 32],
        ctx: &ObjectContext,
        data_key: &[u8; DATA_KEY_LEN],
        salt: &[u8; SALT_LEN],
        wrap_nonce: &[u8; WRAP_NONCE_LEN],
        commitment: &[u8; COMMITMENT_LEN],
    ) -> Result<Vec<u8>, CryptoError> {
        let mut h = encode_bound_prefix(ctx, salt)?;
        let wrapped = schedule::wrap(kek, wrap_nonce, &h, data_key)?;
        h.extend_from_slice(wrap_nonce);
        h.extend_from_slice(&wrapped);
        h.extend_from_slice(commitment);
        Ok(h)
    }

    /// Length of the encoded header: segment 0 starts at this offset.
    pub fn encoded_len(&self) -> usize {
        self.encoded.len()
    }

    /// The encoded header bytes exactly as stored.
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }

    /// Tenant, key id, key version and object id recorded in the header. They are only
    /// authenticated once [`Header::unlock`] succeeds with the tenant's KEK.
    pub fn context(&self) -> &ObjectContext {
        &self.ctx
    }

    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// Refuses a header whose context differs from what the caller expects (e.g. a header of
    /// tenant A presented in tenant B's session). Names the first differing field.
    pub fn expect_context(&self, expected: &ObjectContext) -> Result<(), CryptoError> {
        let c = &self.ctx;
        let field = if c.tenant != expected.tenant {
            "tenant"
        } else if c.key_id != expected.key_id {
            "key_id"
        } else if c.key_version != expected.key_version {
            "key_version"
        } else if c.object_id != expected.object_id {
            "object_id"
        } else {
            return Ok(());
        };
        Err(CryptoError::ContextMismatch { field })
    }

    /// Unwraps the data key (authenticating every header byte before it) and verifies the key
    /// commitment in constant time before any segment can be opened.
    pub fn unlock(&self, kek: &[u8; 32]) -> Result<ObjectKey, CryptoError> {
        let (_, schedule) = self.committed_data_key(kek)?;
        Ok(ObjectKey::new(schedule.segment_key))
    }

    /// The data key and its schedule, only once the wrap authenticated and the commitment matched.
    fn committed_data_key(
        &self,
        kek: &[u8; 32],
    ) -> Result<(zeroize::Zeroizing<[u8; DATA_KEY_LEN]>, schedule::Schedule), CryptoError> {
        let data_key = schedule::unwrap(
            kek,
            &self.wrap_nonce,
            &self.encoded[..self.bound_len],
            &self.wrapped_key,
        )?;
        let schedule = schedule::derive(&data_key, &self.salt)?;
        if !bool::from(schedule.commitment.ct_eq(&self.commitment)) {
            return Err(CryptoError::CommitmentMismatch);
        }
        Ok((data_key, schedule))
    }

    /// Re-wraps the data key under another KEK (key rotation) without touching the segments:
    /// returns a new header with `key_id` / `key_version` replaced and a fresh wrap nonce.
    /// Segment offsets shift by the difference in header length.
    pub fn rewrap(
        &self,
        old_kek: &[u8; 32],
        new_kek: &[u8; 32],
        key_id: &str,
        key_version: u32,
    ) -> Result<Vec<u8>, CryptoError> {
        let (data_key, _) = self.committed_data_key(old_kek)?;
        let mut wrap_nonce = [0u8; WRAP_NONCE_LEN];
        super::random_fill(&mut wrap_nonce)?;
        let ctx = ObjectContext {
            key_id: key_id.to_owned(),
            key_version,
            ..self.ctx.clone()
        };
        Header::build(
            new_kek,
            &ctx,
            &data_key,
            &self.salt,
            &wrap_nonce,
            &self.commitment,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ObjectContext {
        ObjectContext {
            tenant: "acme".into(),
            key_id: "k1".into(),
            key_version: 3,
            object_id: [0xab; 16],
        }
    }

    fn header() -> Vec<u8> {
        Header::build(&[1; 32], &ctx(), &[2; 32], &[3; 32], &[4; 12], &[5; 32]).unwrap()
    }

    #[test]
    fn layout_matches_the_documented_offsets() {
        let h = header();
        let (t, k) = (4, 2);
        assert_eq!(h.len(), 156 + t + k);
        assert_eq!(&h[..6], b"EUGATE");
        assert_eq!(h[6..8], [1, 1]);
        assert_eq!(u16::from_be_bytes([h[8], h[9]]) as usize, h.len());
        assert_eq!(&h[11..11 + t], b"acme");
        assert_eq!(&h[12 + t + k..16 + t + k], &3u32.to_be_bytes());
        assert_eq!(&h[16 + t + k..32 + t + k], &[0xab; 16]);
        assert_eq!(&h[32 + t + k..64 + t + k], &[3; 32]);
        assert_eq!(&h[64 + t + k..76 + t + k], &[4; 12]);
        assert_eq!(&h[124 + t + k..], &[5; 32]);
        let parsed = Header::parse(&h).unwrap();
        assert_eq!(parsed.context(), &ctx());
        assert_eq!(parsed.encoded(), &h[..]);
        assert_eq!(HEADER_MIN_LEN, 158);
        assert_eq!(HEADER_MAX_LEN, 666);
    }

    #[test]
    fn every_prefix_asks_for_more_or_fails_structurally() {
        let h = header();
        for n in 0..h.len() {
            match Header::parse(&h[..n]) {
                Err(CryptoError::HeaderTruncated { needed, have }) => {
                    assert_eq!(have, n);
                    assert!(needed > n);
                }
                other => panic!("prefix {n}: {other:?}"),
            }
        }
    }

    #[test]
    fn structural_errors_name_the_field() {
        let mut h = header();
        h[0] = b'X';
        assert_eq!(Header::parse(&h).err(), Some(CryptoError::BadMagic));
        let mut h = header();
        h[6] = 2;
        assert_eq!(
            Header::parse(&h).err(),
            Some(CryptoError::UnsupportedVersion { version: 2 })
        );
        let mut h = header();
        h[7] = 2;
        assert_eq!(
            Header::parse(&h).err(),
            Some(CryptoError::UnsupportedSuite { suite: 2 })
        );
        let mut h = header();
        h[10] = 0;
        assert!(matches!(
            Header::parse(&h),
            Err(CryptoError::HeaderMalformed {
                field: "tenant",
                ..
            })
        ));
        let mut h = header();
        h[11] = 0xff;
        assert!(matches!(
            Header::parse(&h),
            Err(CryptoError::HeaderMalformed {
                field: "tenant",
                reason: "is not valid UTF-8"
            })
        ));
        let mut h = header();
        h[9] = h[9].wrapping_add(1);
        h.push(0);
        assert!(matches!(
            Header::parse(&h),
            Err(CryptoError::HeaderMalformed {
                field: "header_len",
                ..
            })
        ));
    }

    #[test]
    fn invalid_contexts_are_refused_when_sealing() {
        let mut c = ctx();
        c.tenant = String::new();
        assert!(matches!(
            encode_bound_prefix(&c, &[0; 32]),
            Err(CryptoError::InvalidContext {
                field: "tenant",
                ..
            })
        ));
        let mut c = ctx();
        c.key_id = "x".repeat(256);
        assert!(matches!(
            encode_bound_prefix(&c, &[0; 32]),
            Err(CryptoError::InvalidContext {
                field: "key_id",
                ..
            })
        ));
        let mut c = ctx();
        c.tenant = "t".repeat(255);
        c.key_id = "k".repeat(255);
        let h = Header::build(&[1; 32], &c, &[2; 32], &[3; 32], &[4; 12], &[5; 32]).unwrap();
        assert_eq!(h.len(), HEADER_MAX_LEN);
        assert_eq!(Header::parse(&h).unwrap().context(), &c);
    }
}
