//! The object header: encoding, parsing, and unlocking the data key.
//!
//! Version 1 (the tenant's KEK is in the keyring):
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
//!
//! Version 2 (hold-your-own-key: the tenant's KEK is held by an external key provider, which
//! wraps a random per-object key W; the data key is wrapped under W exactly as v1 wraps it under
//! the KEK). With E = 3 + B:
//!
//! ```text
//! off          len  field
//! 0            6    magic "EUGATE"
//! 6            1    version = 0x02
//! 7            1    suite   = 0x01
//! 8            2    header_len, u16 BE: 159 + T + K + B, so 162..=1693
//! 10           1    T; tenant (T bytes)
//! 11+T         1    K; key id (K bytes) = the key provider's name
//! 12+T+K       4    key version = the provider key's version that wrapped W
//! 16+T+K       1    provider kind, 0x01 pkcs11, 0x02 transit, 0x03 aws-kms
//! 17+T+K       2    B = provider blob length, u16 BE, 1..=1024
//! 19+T+K       B    provider blob: W wrapped by the provider
//! 16+T+K+E     16   object id, then salt 32, wrap nonce 12, wrapped data key 48 (under W,
//!                   AAD = bytes [0, 64+T+K+E)), commitment 32
//! 156+T+K+E         end of header = header_len
//! ```

use subtle::ConstantTimeEq;

use super::schedule::{
    self, COMMITMENT_LEN, DATA_KEY_LEN, SALT_LEN, WRAP_NONCE_LEN, WRAPPED_KEY_LEN,
};
use super::{CryptoError, ObjectKey};

/// Magic bytes at offset 0 of every object.
pub const MAGIC: &[u8; 6] = b"EUGATE";
/// Version 1: written when the tenant's KEK is in the keyring (`ObjectContext::external` is
/// `None`).
pub const FORMAT_VERSION: u8 = 1;
/// Version 2 (hold-your-own-key): written when the tenant's KEK is held by an external key
/// provider (`ObjectContext::external` is `Some`). Readers accept both versions.
pub const FORMAT_VERSION_HYOK: u8 = 2;
/// Bytes needed to learn `header_len` (magic, version, suite, header_len).
pub const HEADER_PREFIX_LEN: usize = 10;
/// Header bytes besides the tenant and key id strings (version 1).
const FIXED_LEN: usize = HEADER_PREFIX_LEN
    + 1
    + 1
    + 4
    + 16
    + SALT_LEN
    + WRAP_NONCE_LEN
    + WRAPPED_KEY_LEN
    + COMMITMENT_LEN;
/// Version 2 adds the provider kind (1) and the blob length (2) before the blob itself.
const EXTERNAL_FIXED_LEN: usize = 1 + 2;
/// The longest provider blob a version 2 header holds (`keys::provider::MAX_BLOB_LEN`).
pub const EXTERNAL_BLOB_MAX_LEN: usize = 1024;
/// Shortest possible header of any version (a version 1 header with one-byte tenant and key id).
pub const HEADER_MIN_LEN: usize = V1_MIN_LEN;
/// Longest possible header of any version (version 2, 255-byte tenant and key id, 1024-byte
/// provider blob); fetching this many bytes always suffices.
pub const HEADER_MAX_LEN: usize = V2_MAX_LEN;

const V1_MIN_LEN: usize = FIXED_LEN + 2;
const V1_MAX_LEN: usize = FIXED_LEN + 255 + 255;
const V2_MIN_LEN: usize = FIXED_LEN + 2 + EXTERNAL_FIXED_LEN + 1;
const V2_MAX_LEN: usize = FIXED_LEN + 255 + 255 + EXTERNAL_FIXED_LEN + EXTERNAL_BLOB_MAX_LEN;

/// Label of the provider context, see [`external_key_context`].
const EXTERNAL_CONTEXT_LABEL: &[u8] = b"eugate object v2 key";

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

/// The per-object key W of a version 2 object as an external key provider wrapped it.
/// Not secret (only the provider can unwrap it), but bound into the header's authenticated bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ExternalKey {
    /// The provider kind (`keys::provider::ProviderKind::id`): 0x01 pkcs11, 0x02 transit,
    /// 0x03 aws-kms. 0x00 (the master-key file) is not valid here.
    pub provider: u8,
    /// The provider's wrapped W, 1..=[`EXTERNAL_BLOB_MAX_LEN`] bytes.
    pub blob: Vec<u8>,
}

impl std::fmt::Debug for ExternalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalKey")
            .field("provider", &format_args!("0x{:02x}", self.provider))
            .field("blob_len", &self.blob.len())
            .finish()
    }
}

/// Whether `provider` is a kind byte a version 2 header may carry.
fn is_external_provider(provider: u8) -> bool {
    (0x01..=0x03).contains(&provider)
}

/// The bytes a caller passes as the key provider's `context` when wrapping or unwrapping W for
/// the object `object_id` of `tenant`:
/// `"eugate object v2 key" ‖ 0x00 ‖ T (u8) ‖ tenant ‖ object_id`.
///
/// A tenant longer than 255 bytes cannot be sealed at all (`InvalidContext`); its T byte would
/// saturate at 255, and the encoding stays unambiguous because the object id has a fixed length.
pub fn external_key_context(tenant: &str, object_id: &[u8; 16]) -> Vec<u8> {
    let t = u8::try_from(tenant.len()).unwrap_or(u8::MAX);
    let mut c =
        Vec::with_capacity(EXTERNAL_CONTEXT_LABEL.len() + 2 + tenant.len() + object_id.len());
    c.extend_from_slice(EXTERNAL_CONTEXT_LABEL);
    c.push(0x00);
    c.push(t);
    c.extend_from_slice(tenant.as_bytes());
    c.extend_from_slice(object_id);
    c
}

/// Everything the header binds besides the key material.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectContext {
    pub tenant: String,
    /// Tenant key id from the keyring (version 1), or the key provider's name (version 2,
    /// `[key_providers.NAME]`).
    pub key_id: String,
    /// KEK version (version 1), or the provider key's version that wrapped W (version 2).
    pub key_version: u32,
    /// Immutable object id (random, chosen by the caller; also kept in object metadata).
    pub object_id: [u8; 16],
    /// `None`: version 1, the data key is wrapped under the tenant's KEK. `Some`: version 2, the
    /// data key is wrapped under a per-object key W, and this is W as the provider wrapped it.
    pub external: Option<ExternalKey>,
}

impl ObjectContext {
    /// The format version a header for this context has: 1 without, 2 with an external key.
    pub fn format_version(&self) -> u8 {
        if self.external.is_some() {
            FORMAT_VERSION_HYOK
        } else {
            FORMAT_VERSION
        }
    }
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

fn check_external(ext: &ExternalKey) -> Result<u16, CryptoError> {
    if !is_external_provider(ext.provider) {
        return Err(CryptoError::InvalidContext {
            field: "external.provider",
            reason: "is not a key provider kind of version 2 (0x01 pkcs11, 0x02 transit, 0x03 aws-kms)",
        });
    }
    if ext.blob.is_empty() {
        return Err(CryptoError::InvalidContext {
            field: "external.blob",
            reason: "is empty",
        });
    }
    if ext.blob.len() > EXTERNAL_BLOB_MAX_LEN {
        return Err(CryptoError::InvalidContext {
            field: "external.blob",
            reason: "is longer than 1024 bytes",
        });
    }
    u16::try_from(ext.blob.len()).map_err(|_| CryptoError::Internal("encoding the blob length"))
}

/// Encodes the header bytes covered by the key wrap's AAD: everything before the wrap nonce.
pub(crate) fn encode_bound_prefix(
    ctx: &ObjectContext,
    salt: &[u8; SALT_LEN],
) -> Result<Vec<u8>, CryptoError> {
    let t = check_name("tenant", &ctx.tenant)?;
    let k = check_name("key_id", &ctx.key_id)?;
    let external = match &ctx.external {
        Some(ext) => Some((ext, check_external(ext)?)),
        None => None,
    };
    let external_len = external.map_or(0, |(_, b)| EXTERNAL_FIXED_LEN + usize::from(b));
    let header_len = FIXED_LEN + usize::from(t) + usize::from(k) + external_len;
    let header_len_u16 =
        u16::try_from(header_len).map_err(|_| CryptoError::Internal("encoding header_len"))?;
    let mut h = Vec::with_capacity(header_len);
    h.extend_from_slice(MAGIC);
    h.push(ctx.format_version());
    h.push(Suite::Aes256Gcm.id());
    h.extend_from_slice(&header_len_u16.to_be_bytes());
    h.push(t);
    h.extend_from_slice(ctx.tenant.as_bytes());
    h.push(k);
    h.extend_from_slice(ctx.key_id.as_bytes());
    h.extend_from_slice(&ctx.key_version.to_be_bytes());
    if let Some((ext, b)) = external {
        h.push(ext.provider);
        h.extend_from_slice(&b.to_be_bytes());
        h.extend_from_slice(&ext.blob);
    }
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

    /// Provider kind, blob length and blob of a version 2 header.
    fn external(&mut self) -> Result<ExternalKey, CryptoError> {
        let [provider] = self.array::<1>("provider")?;
        if !is_external_provider(provider) {
            return Err(CryptoError::HeaderMalformed {
                field: "provider",
                reason: "is not a key provider kind of version 2 (0x01 pkcs11, 0x02 transit, 0x03 aws-kms)",
            });
        }
        let blob_len = usize::from(u16::from_be_bytes(self.array("blob_len")?));
        if blob_len == 0 {
            return Err(CryptoError::HeaderMalformed {
                field: "blob_len",
                reason: "is 0 (a provider blob is 1..=1024 bytes)",
            });
        }
        if blob_len > EXTERNAL_BLOB_MAX_LEN {
            return Err(CryptoError::HeaderMalformed {
                field: "blob_len",
                reason: "exceeds 1024 (a provider blob is 1..=1024 bytes)",
            });
        }
        let blob = self.take(blob_len, "blob")?.to_vec();
        Ok(ExternalKey { provider, blob })
    }
}

fn is_known_version(version: u8) -> bool {
    version == FORMAT_VERSION || version == FORMAT_VERSION_HYOK
}

impl Header {
    /// Parses the header at the start of `bytes` (trailing segment bytes are ignored); accepts
    /// versions 1 and 2. `Err(HeaderTruncated { needed, .. })` asks for at least `needed` bytes.
    pub fn parse(bytes: &[u8]) -> Result<Header, CryptoError> {
        let have = bytes.len();
        // Reject foreign data as early as possible, even from a short prefix.
        let m = have.min(MAGIC.len());
        if bytes[..m] != MAGIC[..m] {
            return Err(CryptoError::BadMagic);
        }
        if have < HEADER_PREFIX_LEN {
            if have > MAGIC.len() && !is_known_version(bytes[6]) {
                return Err(CryptoError::UnsupportedVersion { version: bytes[6] });
            }
            return Err(CryptoError::HeaderTruncated {
                needed: HEADER_PREFIX_LEN,
                have,
            });
        }
        let version = bytes[6];
        if !is_known_version(version) {
            return Err(CryptoError::UnsupportedVersion { version });
        }
        let v2 = version == FORMAT_VERSION_HYOK;
        let suite = Suite::from_id(bytes[7])?;
        let header_len = usize::from(u16::from_be_bytes([bytes[8], bytes[9]]));
        let (range, reason) = if v2 {
            (V2_MIN_LEN..=V2_MAX_LEN, "is outside 162..=1693 (version 2)")
        } else {
            (V1_MIN_LEN..=V1_MAX_LEN, "is outside 158..=666 (version 1)")
        };
        if !range.contains(&header_len) {
            return Err(CryptoError::HeaderMalformed {
                field: "header_len",
                reason,
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
        let external = if v2 { Some(r.external()?) } else { None };
        let object_id = r.array("object_id")?;
        let salt = r.array("salt")?;
        let bound_len = r.pos;
        let wrap_nonce = r.array("wrap_nonce")?;
        let wrapped_key = r.array("wrapped_key")?;
        let commitment = r.array("commitment")?;
        if r.pos != header_len {
            return Err(CryptoError::HeaderMalformed {
                field: "header_len",
                reason: if v2 {
                    "does not match the lengths of tenant, key_id and blob"
                } else {
                    "does not match the lengths of tenant and key_id"
                },
            });
        }
        Ok(Header {
            encoded: encoded.to_vec(),
            ctx: ObjectContext {
                tenant,
                key_id,
                key_version,
                object_id,
                external,
            },
            suite,
            bound_len,
            salt,
            wrap_nonce,
            wrapped_key,
            commitment,
        })
    }

    /// Builds the header for freshly chosen key material (the sealer's side). `kek` is the
    /// tenant's KEK (version 1) or the object key W (version 2, `ctx.external` is `Some`).
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

    /// The format version: [`FORMAT_VERSION`] (1) or [`FORMAT_VERSION_HYOK`] (2).
    pub fn version(&self) -> u8 {
        self.ctx.format_version()
    }

    /// Tenant, key id, key version, object id and (version 2) the provider-wrapped object key
    /// recorded in the header. They are only authenticated once [`Header::unlock`] succeeds.
    pub fn context(&self) -> &ObjectContext {
        &self.ctx
    }

    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// Refuses a header whose context differs from what the caller expects (e.g. a header of
    /// tenant A presented in tenant B's session). Names the first differing field. The provider
    /// blob (`external`) is not compared: a caller cannot know it in advance, and
    /// [`Header::unlock`] authenticates it.
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
    /// commitment in constant time before any segment can be opened. `kek` is the tenant's KEK
    /// for version 1, and for version 2 the object key W that the provider unwrapped from
    /// `context().external` (with [`external_key_context`]).
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

    /// Re-wraps the data key of a version 1 header under another KEK (key rotation) without
    /// touching the segments: returns a new header with `key_id` / `key_version` replaced and a
    /// fresh wrap nonce. Segment offsets shift by the difference in header length.
    ///
    /// A version 2 header is refused (`RewrapNeedsExternalKey`): its provider blob is
    /// authenticated by the wrap, so rotating it needs the new blob, see [`Header::rewrap_to`].
    pub fn rewrap(
        &self,
        old_kek: &[u8; 32],
        new_kek: &[u8; 32],
        key_id: &str,
        key_version: u32,
    ) -> Result<Vec<u8>, CryptoError> {
        if self.ctx.external.is_some() {
            return Err(CryptoError::RewrapNeedsExternalKey);
        }
        self.rewrap_to(old_kek, new_kek, key_id, key_version, None)
    }

    /// Re-wraps the data key for any version: `old_kek` is what unlocks this header (the KEK,
    /// or W for version 2); `new_kek` and `external` say what the new header is — `None`: a
    /// version 1 header under the keyring KEK `new_kek`; `Some`: a version 2 header whose W is
    /// `new_kek`, wrapped by the provider as `external` (with [`external_key_context`] of this
    /// header's tenant and object id). Rotating a provider key, moving a tenant into or out of
    /// hold-your-own-key: the segments stay as they are, the salt and commitment too.
    pub fn rewrap_to(
        &self,
        old_kek: &[u8; 32],
        new_kek: &[u8; 32],
        key_id: &str,
        key_version: u32,
        external: Option<ExternalKey>,
    ) -> Result<Vec<u8>, CryptoError> {
        let (data_key, _) = self.committed_data_key(old_kek)?;
        let mut wrap_nonce = [0u8; WRAP_NONCE_LEN];
        super::random_fill(&mut wrap_nonce)?;
        let ctx = ObjectContext {
            key_id: key_id.to_owned(),
            key_version,
            external,
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
            external: None,
        }
    }

    fn header() -> Vec<u8> {
        Header::build(&[1; 32], &ctx(), &[2; 32], &[3; 32], &[4; 12], &[5; 32]).unwrap()
    }

    fn ctx2() -> ObjectContext {
        ObjectContext {
            key_id: "vault".into(),
            external: Some(ExternalKey {
                provider: 0x02,
                blob: b"vault:v3:blob".to_vec(),
            }),
            ..ctx()
        }
    }

    fn header2() -> Vec<u8> {
        Header::build(&[1; 32], &ctx2(), &[2; 32], &[3; 32], &[4; 12], &[5; 32]).unwrap()
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
        assert_eq!(parsed.version(), 1);
        assert_eq!(HEADER_MIN_LEN, 158);
        assert_eq!(V1_MAX_LEN, 666);
    }

    #[test]
    fn v2_layout_matches_the_documented_offsets() {
        let h = header2();
        let (t, k, b) = (4, 5, 13);
        let e = 3 + b;
        assert_eq!(h.len(), 156 + t + k + e);
        assert_eq!(&h[..6], b"EUGATE");
        assert_eq!(h[6..8], [2, 1]);
        assert_eq!(u16::from_be_bytes([h[8], h[9]]) as usize, h.len());
        assert_eq!(h[10], 4);
        assert_eq!(&h[11..11 + t], b"acme");
        assert_eq!(h[11 + t], 5);
        assert_eq!(&h[12 + t..12 + t + k], b"vault");
        assert_eq!(&h[12 + t + k..16 + t + k], &3u32.to_be_bytes());
        assert_eq!(h[16 + t + k], 0x02);
        assert_eq!(&h[17 + t + k..19 + t + k], &13u16.to_be_bytes());
        assert_eq!(&h[19 + t + k..19 + t + k + b], b"vault:v3:blob");
        assert_eq!(&h[16 + t + k + e..32 + t + k + e], &[0xab; 16]);
        assert_eq!(&h[32 + t + k + e..64 + t + k + e], &[3; 32]);
        assert_eq!(&h[64 + t + k + e..76 + t + k + e], &[4; 12]);
        assert_eq!(&h[124 + t + k + e..], &[5; 32]);
        let parsed = Header::parse(&h).unwrap();
        assert_eq!(parsed.context(), &ctx2());
        assert_eq!(parsed.version(), 2);
        assert_eq!(parsed.bound_len, 64 + t + k + e);
        assert_eq!(parsed.encoded(), &h[..]);
        assert_eq!((V2_MIN_LEN, V2_MAX_LEN), (162, 1693));
        assert_eq!(HEADER_MAX_LEN, 1693);
    }

    #[test]
    fn v2_length_limits_are_the_largest_and_smallest_encodable() {
        let mut c = ctx2();
        c.tenant = "t".repeat(255);
        c.key_id = "k".repeat(255);
        c.external = Some(ExternalKey {
            provider: 0x03,
            blob: vec![0xee; EXTERNAL_BLOB_MAX_LEN],
        });
        let h = Header::build(&[1; 32], &c, &[2; 32], &[3; 32], &[4; 12], &[5; 32]).unwrap();
        assert_eq!(h.len(), HEADER_MAX_LEN);
        assert_eq!(Header::parse(&h).unwrap().context(), &c);
        c.tenant = "t".into();
        c.key_id = "k".into();
        c.external = Some(ExternalKey {
            provider: 0x01,
            blob: vec![0xee],
        });
        let h = Header::build(&[1; 32], &c, &[2; 32], &[3; 32], &[4; 12], &[5; 32]).unwrap();
        assert_eq!(h.len(), V2_MIN_LEN);
        assert_eq!(Header::parse(&h).unwrap().context(), &c);
    }

    #[test]
    fn the_blob_limit_and_provider_kinds_agree_with_the_provider_interface() {
        use crate::keys::provider::{MAX_BLOB_LEN, ProviderKind};
        assert_eq!(EXTERNAL_BLOB_MAX_LEN, MAX_BLOB_LEN);
        for id in 0..=u8::MAX {
            let expected = matches!(
                ProviderKind::from_id(id),
                Some(ProviderKind::Pkcs11 | ProviderKind::Transit | ProviderKind::AwsKms)
            );
            assert_eq!(is_external_provider(id), expected, "kind 0x{id:02x}");
        }
    }

    #[test]
    fn external_key_context_is_label_tenant_and_object_id() {
        let c = external_key_context("acme", &[0xab; 16]);
        let mut expected = b"eugate object v2 key\x00\x04acme".to_vec();
        expected.extend_from_slice(&[0xab; 16]);
        assert_eq!(c, expected);
        assert_ne!(c, external_key_context("acmf", &[0xab; 16]));
        assert_ne!(c, external_key_context("acme", &[0xac; 16]));
        // Longer than any sealable tenant: no panic, still distinct.
        let long = external_key_context(&"x".repeat(300), &[0; 16]);
        assert_eq!(long.len(), 20 + 2 + 300 + 16);
        assert_eq!(long[21], 255);
    }

    #[test]
    fn every_prefix_asks_for_more_or_fails_structurally() {
        for h in [header(), header2()] {
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
    }

    #[test]
    fn structural_errors_name_the_field() {
        let mut h = header();
        h[0] = b'X';
        assert_eq!(Header::parse(&h).err(), Some(CryptoError::BadMagic));
        for version in [0, 3, 0xff] {
            for mut h in [header(), header2()] {
                h[6] = version;
                assert_eq!(
                    Header::parse(&h).err(),
                    Some(CryptoError::UnsupportedVersion { version })
                );
                assert_eq!(
                    Header::parse(&h[..7]).err(),
                    Some(CryptoError::UnsupportedVersion { version })
                );
            }
        }
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

    fn malformed(h: &[u8]) -> (&'static str, &'static str) {
        match Header::parse(h) {
            Err(CryptoError::HeaderMalformed { field, reason }) => (field, reason),
            other => panic!("expected HeaderMalformed, got {other:?}"),
        }
    }

    #[test]
    fn v2_structural_errors_name_the_field() {
        let (t, k) = (4, 5);
        let kind = 16 + t + k;
        let blob_len = kind + 1;
        for bad in [0x00, 0x04, 0xff] {
            let mut h = header2();
            h[kind] = bad;
            assert_eq!(malformed(&h).0, "provider", "kind 0x{bad:02x}");
        }
        let mut h = header2();
        h[blob_len..blob_len + 2].copy_from_slice(&0u16.to_be_bytes());
        assert_eq!(
            malformed(&h),
            ("blob_len", "is 0 (a provider blob is 1..=1024 bytes)")
        );
        let mut h = header2();
        h[blob_len..blob_len + 2].copy_from_slice(&1025u16.to_be_bytes());
        assert_eq!(
            malformed(&h),
            (
                "blob_len",
                "exceeds 1024 (a provider blob is 1..=1024 bytes)"
            )
        );
        // A blob length that runs past header_len.
        let mut h = header2();
        h[blob_len..blob_len + 2].copy_from_slice(&1000u16.to_be_bytes());
        assert_eq!(malformed(&h), ("blob", "runs past header_len"));
        // A shorter blob length than encoded: the fields no longer add up to header_len.
        let mut h = header2();
        h[blob_len..blob_len + 2].copy_from_slice(&12u16.to_be_bytes());
        assert_eq!(
            malformed(&h),
            (
                "header_len",
                "does not match the lengths of tenant, key_id and blob"
            )
        );
        // header_len one larger than the fields (and a byte to cover it).
        let mut h = header2();
        h[9] = h[9].wrapping_add(1);
        h.push(0);
        assert_eq!(
            malformed(&h),
            (
                "header_len",
                "does not match the lengths of tenant, key_id and blob"
            )
        );
        // header_len outside the version's range.
        let mut h = header2();
        h[8..10].copy_from_slice(&161u16.to_be_bytes());
        assert_eq!(
            malformed(&h),
            ("header_len", "is outside 162..=1693 (version 2)")
        );
        let mut h = header2();
        h[8..10].copy_from_slice(&1694u16.to_be_bytes());
        assert_eq!(
            malformed(&h),
            ("header_len", "is outside 162..=1693 (version 2)")
        );
        let mut h = header();
        h[8..10].copy_from_slice(&667u16.to_be_bytes());
        assert_eq!(
            malformed(&h),
            ("header_len", "is outside 158..=666 (version 1)")
        );
    }

    #[test]
    fn invalid_external_keys_are_refused_when_sealing() {
        for (provider, blob, field) in [
            (0x00, vec![1], "external.provider"),
            (0x04, vec![1], "external.provider"),
            (0x02, vec![], "external.blob"),
            (0x02, vec![1; EXTERNAL_BLOB_MAX_LEN + 1], "external.blob"),
        ] {
            let mut c = ctx2();
            c.external = Some(ExternalKey { provider, blob });
            match encode_bound_prefix(&c, &[0; 32]) {
                Err(CryptoError::InvalidContext { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn external_key_debug_shows_no_blob_bytes() {
        let d = format!("{:?}", ctx2());
        assert!(
            d.contains("provider: 0x02") && d.contains("blob_len: 13"),
            "{d}"
        );
        assert!(!d.contains("vault:v3"), "{d}");
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
        assert_eq!(h.len(), V1_MAX_LEN);
        assert_eq!(Header::parse(&h).unwrap().context(), &c);
    }
}
