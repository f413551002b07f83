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
//!
//! Version 3 (what writers write): the fields of either version above in a header of fixed
//! length, so that a listing computes every object's plaintext size from its stored size alone.
//! With E = 3 + B (B = 0 for a keyring KEK) and the padding Z = 2048 − 156 − T − K − E:
//!
//! ```text
//! off          len  field
//! 0            6    magic "EUGATE"
//! 6            1    version = 0x03
//! 7            1    suite   = 0x01
//! 8            2    header_len, u16 BE: always 2048
//! 10           1    T; tenant (T bytes)
//! 11+T         1    K; key id (K bytes): the keyring key id, or the key provider's name
//! 12+T+K       4    key version
//! 16+T+K       1    provider kind: 0x00 keyring KEK, 0x01 pkcs11, 0x02 transit, 0x03 aws-kms
//! 17+T+K       2    B = provider blob length, u16 BE: 0 for 0x00, else 1..=1024
//! 19+T+K       B    provider blob: W wrapped by the provider
//! 16+T+K+E     Z    padding, all zero (inside the wrap's AAD, so authenticated)
//! 1908         16   object id, then salt 32, wrap nonce 12, wrapped data key 48 (under the KEK
//!                   or W, AAD = bytes [0, 1956)), commitment 32
//! 2048              end of header
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
/// Version 3 (fixed length): written for every new object, keyring or external KEK alike, so the
/// plaintext size follows from the stored size ([`HEADER_FIXED_LEN`]). Readers accept 1, 2, 3.
pub const FORMAT_VERSION_FIXED: u8 = 3;
/// The length of every version 3 header.
pub const HEADER_FIXED_LEN: usize = 2048;
/// The provider kind a version 3 header records for a KEK from the keyring.
const KEYRING_PROVIDER: u8 = 0x00;
/// The fields after a version 3 header's padding: object id, salt, wrap nonce, wrapped key,
/// commitment.
const TAIL_LEN: usize = 16 + SALT_LEN + WRAP_NONCE_LEN + WRAPPED_KEY_LEN + COMMITMENT_LEN;
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
/// Longest possible header of any version (version 3; the longest compact one, version 2 with
/// 255-byte tenant and key id and a 1024-byte provider blob, is 1693); fetching this many bytes
/// always suffices.
pub const HEADER_MAX_LEN: usize = HEADER_FIXED_LEN;
const _: () = assert!(V2_MAX_LEN + EXTERNAL_FIXED_LEN <= HEADER_FIXED_LEN);

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

/// How long a written header is: which format version a writer produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Versions 1 (keyring KEK) and 2 (external key): as long as the names and blob need.
    /// Still read everywhere; written only for the known-answer vectors and tests.
    Compact,
    /// Version 3: a fixed [`HEADER_FIXED_LEN`]-byte header for either kind of key.
    Fixed,
}

impl Layout {
    /// The version byte a header of this layout has for `ctx`.
    pub fn version(self, ctx: &ObjectContext) -> u8 {
        match (self, ctx.external.is_some()) {
            (Layout::Fixed, _) => FORMAT_VERSION_FIXED,
            (Layout::Compact, false) => FORMAT_VERSION,
            (Layout::Compact, true) => FORMAT_VERSION_HYOK,
        }
    }

    fn of_version(version: u8) -> Layout {
        if version == FORMAT_VERSION_FIXED {
            Layout::Fixed
        } else {
            Layout::Compact
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

// Writing and reading the fields, each in its own file.
#[path = "header_cursor.rs"]
mod cursor;
#[path = "header_encode.rs"]
mod encode;

use cursor::{Reader, header_len_range, is_known_version};
pub(crate) use encode::encode_bound_prefix;

/// A parsed object header. Parsing checks structure only; [`Header::unlock`] authenticates it.
#[derive(Debug, Clone)]
pub struct Header {
    encoded: Vec<u8>,
    version: u8,
    ctx: ObjectContext,
    suite: Suite,
    /// Offset of the wrap nonce = length of the wrap AAD.
    bound_len: usize,
    salt: [u8; SALT_LEN],
    wrap_nonce: [u8; WRAP_NONCE_LEN],
    wrapped_key: [u8; WRAPPED_KEY_LEN],
    commitment: [u8; COMMITMENT_LEN],
}

impl Header {
    /// Parses the header at the start of `bytes` (trailing segment bytes are ignored); accepts
    /// versions 1, 2 and 3. `Err(HeaderTruncated { needed, .. })` asks for at least `needed` bytes.
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
        let suite = Suite::from_id(bytes[7])?;
        let header_len = usize::from(u16::from_be_bytes([bytes[8], bytes[9]]));
        let (range, reason) = header_len_range(version);
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
        let external = match version {
            FORMAT_VERSION_HYOK => Some(r.external()?),
            FORMAT_VERSION_FIXED => {
                let source = r.key_source()?;
                r.padding()?;
                source
            }
            _ => None,
        };
        let object_id = r.array("object_id")?;
        let salt = r.array("salt")?;
        let bound_len = r.pos;
        let wrap_nonce = r.array("wrap_nonce")?;
        let wrapped_key = r.array("wrapped_key")?;
        let commitment = r.array("commitment")?;
        if r.pos != header_len {
            return Err(CryptoError::HeaderMalformed {
                field: "header_len",
                reason: if version == FORMAT_VERSION {
                    "does not match the lengths of tenant and key_id"
                } else {
                    "does not match the lengths of tenant, key_id and blob"
                },
            });
        }
        Ok(Header {
            encoded: encoded.to_vec(),
            version,
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
    /// tenant's KEK or, when `ctx.external` is `Some`, the object key W.
    pub(crate) fn build(
        layout: Layout,
        kek: &[u8; 32],
        ctx: &ObjectContext,
        data_key: &[u8; DATA_KEY_LEN],
        salt: &[u8; SALT_LEN],
        wrap_nonce: &[u8; WRAP_NONCE_LEN],
        commitment: &[u8; COMMITMENT_LEN],
    ) -> Result<Vec<u8>, CryptoError> {
        let mut h = encode_bound_prefix(layout, ctx, salt)?;
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

    /// The format version: [`FORMAT_VERSION`] (1), [`FORMAT_VERSION_HYOK`] (2) or
    /// [`FORMAT_VERSION_FIXED`] (3).
    pub fn version(&self) -> u8 {
        self.version
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
    /// or W for an external key); `new_kek` and `external` say what the new header is — `None`:
    /// under the keyring KEK `new_kek`; `Some`: whose W is `new_kek`, wrapped by the provider as
    /// `external` (with [`external_key_context`] of this header's tenant and object id). The new
    /// header keeps this one's layout: compact (version 1 or 2, as `external` says) or fixed
    /// (version 3, whose length never changes). Rotating a provider key, moving a tenant into or out of
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
            Layout::of_version(self.version),
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
#[path = "header_tests.rs"]
mod tests;
