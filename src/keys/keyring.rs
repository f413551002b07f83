//! The tenant keyring: every tenant's key-encryption keys (KEKs), all versions, sealed under a
//! master key that lives in a separate file and is never written into the keyring.
//!
//! Keyring file, version 1 (master key file):
//! `EUGATEKR` ‖ 0x01 ‖ 12-byte random nonce ‖ AES-256-GCM(JSON) ‖ tag.
//! The AEAD key is HKDF-SHA256(master key, info "eugate keyring v1"), so the master key itself is
//! never used directly as a cipher key. The magic and version are the AAD.
//!
//! Version 2 (master key held by a provider: PKCS#11, Transit, AWS KMS):
//! `EUGATEKR` ‖ 0x02 ‖ provider kind u8 ‖ provider key version u32 BE ‖ blob length u16 BE ‖
//! blob ‖ nonce ‖ AES-256-GCM(JSON) ‖ tag, where the blob is a random keyring key wrapped by the
//! provider (context [`KEYRING_CONTEXT`]), the AEAD key is HKDF-SHA256(keyring key,
//! "eugate keyring v2"), and everything before the nonce is the AAD. No key material is on disk
//! in plaintext; the provider is asked once per open.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::provider::{MAX_BLOB_LEN, ProviderKind, Wrapped};
use super::{KeyError, private_file};

const MAGIC: &[u8; 8] = b"EUGATEKR";
const FORMAT_VERSION: u8 = 1;
const FORMAT_VERSION_PROVIDER: u8 = 2;
/// What a provider binds to the keyring key it wraps.
pub const KEYRING_CONTEXT: &[u8] = b"eugate keyring v2";
const MASTER_PREFIX: &str = "EUGATE-MASTER-KEY-V1:";
const MAX_TENANT_LEN: usize = 64;

/// A tenant's key id and versions, without key bytes: safe to print.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    pub tenant: String,
    pub key_id: String,
    pub active_version: u32,
    pub versions: Vec<u32>,
}

/// The key new objects of a tenant are sealed with.
pub struct ActiveKey {
    pub key_id: String,
    pub version: u32,
    pub kek: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for ActiveKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActiveKey")
            .field("key_id", &self.key_id)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// A record that a tenant's keys were destroyed, so that later errors can say so precisely.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShredRecord {
    pub tenant: String,
    pub key_id: String,
    /// Seconds since the Unix epoch.
    pub shredded_at: u64,
}

struct TenantKeys {
    key_id: String,
    active: u32,
    versions: BTreeMap<u32, Zeroizing<[u8; 32]>>,
}

/// What seals the keyring file.
pub enum SealKey {
    /// Version 1: the master key from a file.
    File(Zeroizing<[u8; 32]>),
    /// Version 2: a keyring key wrapped by a provider; saves reuse the same wrap (no call).
    Provider {
        key: Zeroizing<[u8; 32]>,
        kind: ProviderKind,
        wrapped: Wrapped,
    },
}

/// A keyring file's framing before decryption: what sealed it, and (version 2) the wrapped
/// keyring key the provider must unwrap.
#[derive(Debug)]
pub struct SealedKeyring {
    pub path: PathBuf,
    /// `None`: version 1, sealed by a master key file.
    pub provider: Option<(ProviderKind, Wrapped)>,
    bytes: Zeroizing<Vec<u8>>,
    aad_len: usize,
}

impl SealedKeyring {
    /// Reads and frames `path` (0600 required); nothing is decrypted yet.
    pub fn read(path: &Path) -> Result<SealedKeyring, KeyError> {
        let bytes = private_file::read(path)?;
        let malformed = |reason: String| KeyError::KeyringMalformed {
            path: path.to_path_buf(),
            reason,
        };
        let head = MAGIC.len() + 1;
        if bytes.len() < head + NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(malformed("file too short".into()));
        }
        if &bytes[..MAGIC.len()] != MAGIC {
            return Err(malformed("bad magic bytes".into()));
        }
        let (provider, aad_len) = match bytes[MAGIC.len()] {
            FORMAT_VERSION => (None, head),
            FORMAT_VERSION_PROVIDER => {
                let at = |i: usize| {
                    bytes
                        .get(i)
                        .copied()
                        .ok_or_else(|| malformed("file too short".into()))
                };
                let kind = ProviderKind::from_id(at(head)?)
                    .filter(|k| *k != ProviderKind::File)
                    .ok_or_else(|| {
                        malformed(format!("unknown key provider kind {}", bytes[head]))
                    })?;
                let version = u32::from_be_bytes([
                    at(head + 1)?,
                    at(head + 2)?,
                    at(head + 3)?,
                    at(head + 4)?,
                ]);
                let blob_len = usize::from(u16::from_be_bytes([at(head + 5)?, at(head + 6)?]));
                if blob_len == 0 || blob_len > MAX_BLOB_LEN {
                    return Err(malformed(format!(
                        "wrapped key length {blob_len} is not 1..={MAX_BLOB_LEN}"
                    )));
                }
                let start = head + 7;
                let end = start + blob_len;
                if bytes.len() < end + NONCE_LEN + AES_256_GCM.tag_len() {
                    return Err(malformed("file too short".into()));
                }
                let wrapped = Wrapped {
                    key_version: version,
                    blob: bytes[start..end].to_vec(),
                };
                (Some((kind, wrapped)), end)
            }
            v => return Err(malformed(format!("unsupported keyring version {v}"))),
        };
        Ok(SealedKeyring {
            path: path.to_path_buf(),
            provider,
            bytes,
            aad_len,
        })
    }

    /// How this file is sealed, for messages: `master key file` or the provider kind.
    pub fn sealed_by(&self) -> &'static str {
        match &self.provider {
            None => "a master key file",
            Some((kind, _)) => kind.as_str(),
        }
    }
}

/// The decrypted keyring. Key bytes stay in `Zeroizing` buffers and are wiped when dropped.
pub struct Keyring {
    path: PathBuf,
    seal: SealKey,
    tenants: BTreeMap<String, TenantKeys>,
    shredded: Vec<ShredRecord>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("path", &self.path)
            .field("tenants", &self.tenants.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

// Serialized form (only ever exists inside the sealed file and zeroized buffers).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    tenants: BTreeMap<String, StoredTenant>,
    #[serde(default)]
    shredded: Vec<ShredRecord>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredTenant {
    key_id: String,
    active: u32,
    versions: BTreeMap<u32, Zeroizing<String>>,
}

impl Keyring {
    /// Creates the master key and keyring files (0600) where absent, then opens them.
    pub fn init(keyring: &Path, master_key: &Path) -> Result<Keyring, KeyError> {
        let have_keyring = keyring.exists();
        let have_master = master_key.exists();
        if have_keyring && !have_master {
            return Err(KeyError::MasterKeyMissing {
                keyring: keyring.to_path_buf(),
                master: master_key.to_path_buf(),
            });
        }
        if !have_keyring {
            let ring = Keyring::empty(keyring, SealKey::File(Keyring::init_master(master_key)?));
            let sealed = ring.seal()?;
            private_file::create_new(keyring, &sealed)?;
        }
        Keyring::open(keyring, master_key)
    }

    /// The master key in `path`, created (0600) if absent.
    pub fn init_master(path: &Path) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        if !path.exists() {
            let key = random_key()?;
            let text = Zeroizing::new(format!("{MASTER_PREFIX}{}\n", hex::encode(&key[..])));
            private_file::create_new(path, text.as_bytes())?;
        }
        read_master(path)
    }

    /// A new keyring with no tenants, sealed by `seal` when saved.
    pub fn empty(path: &Path, seal: SealKey) -> Keyring {
        Keyring {
            path: path.to_path_buf(),
            seal,
            tenants: BTreeMap::new(),
            shredded: Vec::new(),
        }
    }

    /// Writes a new keyring file (0600); refuses to replace one.
    pub fn create(&self) -> Result<(), KeyError> {
        private_file::create_new(&self.path, &self.seal()?)
    }

    /// Opens an existing keyring; refuses files others can read and a master key that does not fit.
    pub fn open(keyring: &Path, master_key: &Path) -> Result<Keyring, KeyError> {
        let sealed = SealedKeyring::read(keyring)?;
        if sealed.provider.is_some() {
            return Err(KeyError::SealedByOther {
                path: keyring.to_path_buf(),
                sealed_by: sealed.sealed_by().to_string(),
                configured: format!("the master key file {}", master_key.display()),
            });
        }
        let master = read_master(master_key)?;
        Keyring::open_sealed(sealed, SealKey::File(master)).map_err(|e| match e {
            KeyError::WrongMasterKey { path, .. } => KeyError::WrongMasterKey {
                path,
                master: master_key.to_path_buf(),
            },
            e => e,
        })
    }

    /// Decrypts a framed file with the key that sealed it (for version 2, the keyring key the
    /// provider unwrapped).
    pub fn open_sealed(sealed: SealedKeyring, seal: SealKey) -> Result<Keyring, KeyError> {
        let SealedKeyring {
            path,
            mut bytes,
            aad_len,
            ..
        } = sealed;
        let malformed = |reason: &str| KeyError::KeyringMalformed {
            path: path.clone(),
            reason: reason.to_string(),
        };
        let (aad, rest) = bytes.split_at_mut(aad_len);
        let (nonce, body) = rest.split_at_mut(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| malformed("bad nonce"))?;
        let plain = keyring_cipher(&seal)?
            .open_in_place(nonce, Aad::from(&aad[..]), body)
            .map_err(|_| KeyError::WrongMasterKey {
                path: path.clone(),
                master: PathBuf::from("(provider)"),
            })?;
        let stored: Stored =
            serde_json::from_slice(plain).map_err(|e| KeyError::KeyringMalformed {
                path: path.clone(),
                reason: format!("contents: {e}"),
            })?;
        // The decrypted JSON is in `bytes` (opened in place): it is wiped when `bytes` drops.
        let mut tenants = BTreeMap::new();
        for (name, t) in stored.tenants {
            let mut versions = BTreeMap::new();
            for (v, hex_key) in t.versions {
                let mut key = Zeroizing::new([0u8; 32]);
                hex::decode_to_slice(hex_key.as_bytes(), &mut key[..])
                    .map_err(|_| malformed(&format!("tenant {name:?} version {v}: bad key")))?;
                versions.insert(v, key);
            }
            if !versions.contains_key(&t.active) {
                return Err(malformed(&format!(
                    "tenant {name:?}: active version {} has no key",
                    t.active
                )));
            }
            tenants.insert(
                name,
                TenantKeys {
                    key_id: t.key_id,
                    active: t.active,
                    versions,
                },
            );
        }
        Ok(Keyring {
            path,
            seal,
            tenants,
            shredded: stored.shredded,
        })
    }

    /// Seals future saves with `seal` (a master key rotation or a move to another provider);
    /// tenant keys, and so every stored object, are untouched.
    pub fn reseal(&mut self, seal: SealKey) {
        self.seal = seal;
    }

    /// What seals this keyring: `file`, or the provider kind and its key version.
    pub fn sealed_by(&self) -> (ProviderKind, Option<u32>) {
        match &self.seal {
            SealKey::File(_) => (ProviderKind::File, None),
            SealKey::Provider { kind, wrapped, .. } => (*kind, Some(wrapped.key_version)),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Gives a new tenant its first key (version 1). Call `save` to persist.
    pub fn add_tenant(&mut self, tenant: &str) -> Result<KeyInfo, KeyError> {
        validate_tenant(tenant)?;
        if self.tenants.contains_key(tenant) {
            return Err(KeyError::TenantExists(tenant.to_string()));
        }
        // A fresh key id also after a shred, so old objects can never find the new key.
        let mut id = [0u8; 8];
        fill_random(&mut id)?;
        let mut versions = BTreeMap::new();
        versions.insert(1, random_key()?);
        self.tenants.insert(
            tenant.to_string(),
            TenantKeys {
                key_id: format!("k-{}", hex::encode(id)),
                active: 1,
                versions,
            },
        );
        self.info(tenant)
    }

    /// Adds a new active version; older versions still open the objects sealed under them.
    pub fn rotate(&mut self, tenant: &str) -> Result<KeyInfo, KeyError> {
        self.tenant_keys(tenant)?; // the precise error (unknown vs shredded)
        let keys = self
            .tenants
            .get_mut(tenant)
            .ok_or_else(|| KeyError::UnknownTenant(tenant.to_string()))?;
        let next = keys
            .versions
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
            .checked_add(1)
            .ok_or_else(|| KeyError::TooManyVersions(tenant.to_string()))?;
        keys.versions.insert(next, random_key()?);
        keys.active = next;
        self.info(tenant)
    }

    /// Destroys every key of the tenant (crypto-shredding, GDPR Art. 17): its objects become
    /// undecryptable once the keyring is saved and older copies of the keyring file are gone.
    pub fn shred(&mut self, tenant: &str) -> Result<KeyInfo, KeyError> {
        let info = self.info(tenant)?;
        // Dropping the entry zeroizes every key (Zeroizing<[u8; 32]>).
        self.tenants.remove(tenant);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        self.shredded.push(ShredRecord {
            tenant: tenant.to_string(),
            key_id: info.key_id.clone(),
            shredded_at: now,
        });
        Ok(info)
    }

    /// Writes the keyring atomically (0600) under a fresh nonce.
    pub fn save(&self) -> Result<(), KeyError> {
        let sealed = self.seal()?;
        private_file::replace(&self.path, &sealed)
    }

    pub fn list(&self) -> Vec<KeyInfo> {
        self.tenants
            .keys()
            .filter_map(|t| self.info(t).ok())
            .collect()
    }

    pub fn shredded(&self) -> &[ShredRecord] {
        &self.shredded
    }

    /// A stable name for these keys (see `version.rs`): equal on every instance that loaded the
    /// same keys, different after any add, rotate or shred. Reveals no key material.
    pub fn version(&self) -> String {
        super::version::version(
            self.tenants
                .iter()
                .map(|(name, t)| super::version::TenantView {
                    tenant: name,
                    key_id: &t.key_id,
                    active: t.active,
                    versions: t.versions.iter().map(|(v, k)| (*v, &**k)).collect(),
                }),
            self.shredded
                .iter()
                .map(|r| (r.tenant.as_str(), r.key_id.as_str())),
        )
    }

    pub fn info(&self, tenant: &str) -> Result<KeyInfo, KeyError> {
        let keys = self.tenant_keys(tenant)?;
        Ok(KeyInfo {
            tenant: tenant.to_string(),
            key_id: keys.key_id.clone(),
            active_version: keys.active,
            versions: keys.versions.keys().copied().collect(),
        })
    }

    /// The key that new objects of `tenant` are sealed with.
    pub fn active(&self, tenant: &str) -> Result<ActiveKey, KeyError> {
        let keys = self.tenant_keys(tenant)?;
        let kek = keys
            .versions
            .get(&keys.active)
            .ok_or_else(|| KeyError::UnknownVersion {
                tenant: tenant.to_string(),
                key_id: keys.key_id.clone(),
                version: keys.active,
            })?;
        Ok(ActiveKey {
            key_id: keys.key_id.clone(),
            version: keys.active,
            kek: kek.clone(),
        })
    }

    /// The key a stored object names in its header (tenant, key id, version).
    pub fn kek(
        &self,
        tenant: &str,
        key_id: &str,
        version: u32,
    ) -> Result<Zeroizing<[u8; 32]>, KeyError> {
        let keys = self.tenant_keys(tenant)?;
        if keys.key_id != key_id {
            return Err(self.missing_key_id(tenant, key_id));
        }
        keys.versions
            .get(&version)
            .cloned()
            .ok_or_else(|| KeyError::UnknownVersion {
                tenant: tenant.to_string(),
                key_id: key_id.to_string(),
                version,
            })
    }

    fn tenant_keys(&self, tenant: &str) -> Result<&TenantKeys, KeyError> {
        self.tenants.get(tenant).ok_or_else(|| {
            match self.shredded.iter().rev().find(|r| r.tenant == tenant) {
                Some(r) => KeyError::Shredded {
                    tenant: tenant.to_string(),
                    key_id: r.key_id.clone(),
                },
                None => KeyError::UnknownTenant(tenant.to_string()),
            }
        })
    }

    fn missing_key_id(&self, tenant: &str, key_id: &str) -> KeyError {
        if self
            .shredded
            .iter()
            .any(|r| r.tenant == tenant && r.key_id == key_id)
        {
            KeyError::Shredded {
                tenant: tenant.to_string(),
                key_id: key_id.to_string(),
            }
        } else {
            KeyError::UnknownKeyId {
                tenant: tenant.to_string(),
                key_id: key_id.to_string(),
            }
        }
    }

    fn seal(&self) -> Result<Vec<u8>, KeyError> {
        let stored = Stored {
            tenants: self
                .tenants
                .iter()
                .map(|(name, t)| {
                    let versions = t
                        .versions
                        .iter()
                        .map(|(v, k)| (*v, Zeroizing::new(hex::encode(&k[..]))))
                        .collect();
                    (
                        name.clone(),
                        StoredTenant {
                            key_id: t.key_id.clone(),
                            active: t.active,
                            versions,
                        },
                    )
                })
                .collect(),
            shredded: self.shredded.clone(),
        };
        let mut plain = Zeroizing::new(serde_json::to_vec(&stored).map_err(|e| {
            KeyError::KeyringMalformed {
                path: self.path.clone(),
                reason: format!("cannot serialize: {e}"),
            }
        })?);
        let mut nonce = [0u8; NONCE_LEN];
        fill_random(&mut nonce)?;
        let mut header = Vec::with_capacity(MAGIC.len() + 8);
        header.extend_from_slice(MAGIC);
        match &self.seal {
            SealKey::File(_) => header.push(FORMAT_VERSION),
            SealKey::Provider { kind, wrapped, .. } => {
                let len = u16::try_from(wrapped.blob.len())
                    .ok()
                    .filter(|l| usize::from(*l) <= MAX_BLOB_LEN && *l > 0)
                    .ok_or_else(|| KeyError::KeyringMalformed {
                        path: self.path.clone(),
                        reason: format!(
                            "the provider's wrapped key is {} bytes",
                            wrapped.blob.len()
                        ),
                    })?;
                header.push(FORMAT_VERSION_PROVIDER);
                header.push(kind.id());
                header.extend_from_slice(&wrapped.key_version.to_be_bytes());
                header.extend_from_slice(&len.to_be_bytes());
                header.extend_from_slice(&wrapped.blob);
            }
        }
        let tag = keyring_cipher(&self.seal)?
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&header[..]),
                &mut plain[..],
            )
            .map_err(|_| KeyError::Random)?;
        let mut out = header;
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&plain);
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }
}

/// Tenant names appear in object headers, keys and paths: keep them boring.
pub fn validate_tenant(tenant: &str) -> Result<(), KeyError> {
    let ok = !tenant.is_empty()
        && tenant.len() <= MAX_TENANT_LEN
        && tenant
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && tenant
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(KeyError::InvalidTenant(tenant.to_string()))
    }
}

fn read_master(path: &Path) -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let raw = private_file::read(path)?;
    let malformed = |reason| KeyError::MasterKeyMalformed {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::str::from_utf8(&raw).map_err(|_| malformed("not text"))?;
    let hex_key = text
        .trim()
        .strip_prefix(MASTER_PREFIX)
        .ok_or(malformed("missing EUGATE-MASTER-KEY-V1 prefix"))?;
    let mut key = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(hex_key, &mut key[..])
        .map_err(|_| malformed("key is not 64 hex digits"))?;
    Ok(key)
}

fn keyring_cipher(seal: &SealKey) -> Result<LessSafeKey, KeyError> {
    let (master, info): (&[u8; 32], &[u8]) = match seal {
        SealKey::File(k) => (k, b"eugate keyring v1"),
        SealKey::Provider { key, .. } => (key, b"eugate keyring v2"),
    };
    struct Len(usize);
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            self.0
        }
    }
    let mut key = Zeroizing::new([0u8; 32]);
    hkdf::Salt::new(hkdf::HKDF_SHA256, b"")
        .extract(master)
        .expand(&[info], Len(32))
        .and_then(|okm| okm.fill(&mut key[..]))
        .map_err(|_| KeyError::Random)?;
    let unbound = UnboundKey::new(&AES_256_GCM, &key[..]).map_err(|_| KeyError::Random)?;
    Ok(LessSafeKey::new(unbound))
}

pub(crate) fn random_key() -> Result<Zeroizing<[u8; 32]>, KeyError> {
    let mut key = Zeroizing::new([0u8; 32]);
    fill_random(&mut key[..])?;
    Ok(key)
}

fn fill_random(buf: &mut [u8]) -> Result<(), KeyError> {
    SystemRandom::new().fill(buf).map_err(|_| KeyError::Random)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn paths() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let ring = dir.path().join("keyring");
        let master = dir.path().join("master.key");
        (dir, ring, master)
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn init_creates_private_files_and_is_idempotent() {
        let (_d, ring, master) = paths();
        let mut k = Keyring::init(&ring, &master).unwrap();
        assert_eq!((mode(&ring), mode(&master)), (0o600, 0o600));
        k.add_tenant("acme").unwrap();
        k.save().unwrap();
        let master_before = std::fs::read(&master).unwrap();
        // A second init opens what exists and creates nothing.
        let again = Keyring::init(&ring, &master).unwrap();
        assert_eq!(again.list().len(), 1);
        assert_eq!(std::fs::read(&master).unwrap(), master_before);
    }

    #[test]
    fn master_key_never_appears_in_keyring() {
        let (_d, ring, master) = paths();
        let mut k = Keyring::init(&ring, &master).unwrap();
        let info = k.add_tenant("acme").unwrap();
        k.save().unwrap();
        let master_text = std::fs::read_to_string(&master).unwrap();
        let master_hex = master_text.trim().strip_prefix(MASTER_PREFIX).unwrap();
        let sealed = std::fs::read(&ring).unwrap();
        let kek_hex = hex::encode(&k.active("acme").unwrap().kek[..]);
        for needle in [
            master_hex.as_bytes(),
            kek_hex.as_bytes(),
            info.key_id.as_bytes(),
        ] {
            assert!(!sealed.windows(needle.len()).any(|w| w == needle));
        }
    }

    #[test]
    fn keyring_without_master_key_is_refused_not_recreated() {
        let (_d, ring, master) = paths();
        Keyring::init(&ring, &master).unwrap();
        std::fs::remove_file(&master).unwrap();
        assert!(matches!(
            Keyring::init(&ring, &master),
            Err(KeyError::MasterKeyMissing { .. })
        ));
        assert!(!master.exists());
    }

    #[test]
    fn wrong_master_key_and_tampering_are_detected() {
        let (d, ring, master) = paths();
        Keyring::init(&ring, &master).unwrap();
        let other = d.path().join("other.key");
        Keyring::init(&d.path().join("other-ring"), &other).unwrap();
        assert!(matches!(
            Keyring::open(&ring, &other),
            Err(KeyError::WrongMasterKey { .. })
        ));

        let good = std::fs::read(&ring).unwrap();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            std::fs::write(&ring, &bad).unwrap();
            let err = Keyring::open(&ring, &master).unwrap_err();
            match i {
                // magic and version bytes: named as malformed before any decryption is tried
                0..=8 => assert!(
                    matches!(err, KeyError::KeyringMalformed { .. }),
                    "{i}: {err}"
                ),
                _ => assert!(matches!(err, KeyError::WrongMasterKey { .. }), "{i}: {err}"),
            }
        }
        std::fs::write(&ring, &good[..10]).unwrap();
        assert!(matches!(
            Keyring::open(&ring, &master),
            Err(KeyError::KeyringMalformed { .. })
        ));
    }

    #[test]
    fn malformed_master_key_files_are_named() {
        let (_d, ring, master) = paths();
        Keyring::init(&ring, &master).unwrap();
        for bad in [
            &b"hello"[..],
            b"EUGATE-MASTER-KEY-V1:abcd",
            &[0xff, 0xfe][..],
        ] {
            std::fs::write(&master, bad).unwrap();
            assert!(matches!(
                Keyring::open(&ring, &master),
                Err(KeyError::MasterKeyMalformed { .. })
            ));
        }
    }

    #[test]
    fn rotate_keeps_old_versions_and_shred_destroys_all() {
        let (_d, ring, master) = paths();
        let mut k = Keyring::init(&ring, &master).unwrap();
        let first = k.add_tenant("acme").unwrap();
        let v1 = k.active("acme").unwrap();
        assert_eq!((v1.version, first.active_version), (1, 1));
        let rotated = k.rotate("acme").unwrap();
        assert_eq!((rotated.active_version, rotated.versions), (2, vec![1, 2]));
        let v2 = k.active("acme").unwrap();
        assert_ne!(v1.kek, v2.kek);
        k.save().unwrap();

        let mut k = Keyring::open(&ring, &master).unwrap();
        assert_eq!(k.kek("acme", &first.key_id, 1).unwrap(), v1.kek);
        assert_eq!(k.kek("acme", &first.key_id, 2).unwrap(), v2.kek);
        assert!(matches!(
            k.kek("acme", &first.key_id, 3),
            Err(KeyError::UnknownVersion { version: 3, .. })
        ));
        assert!(matches!(
            k.kek("acme", "k-0000000000000000", 1),
            Err(KeyError::UnknownKeyId { .. })
        ));
        assert!(matches!(
            k.add_tenant("acme"),
            Err(KeyError::TenantExists(_))
        ));

        k.shred("acme").unwrap();
        k.save().unwrap();
        let mut k = Keyring::open(&ring, &master).unwrap();
        assert!(matches!(
            k.kek("acme", &first.key_id, 1),
            Err(KeyError::Shredded { .. })
        ));
        assert!(matches!(k.active("acme"), Err(KeyError::Shredded { .. })));
        // Re-adding the tenant gives a new key id; the old objects still find nothing.
        let again = k.add_tenant("acme").unwrap();
        assert_ne!(again.key_id, first.key_id);
        assert!(matches!(
            k.kek("acme", &first.key_id, 1),
            Err(KeyError::Shredded { .. })
        ));
        assert!(matches!(
            k.rotate("nobody"),
            Err(KeyError::UnknownTenant(_))
        ));
    }

    #[test]
    fn version_survives_resealing_and_follows_every_change() {
        let (_d, ring, master) = paths();
        let mut k = Keyring::init(&ring, &master).unwrap();
        let empty = k.version();
        k.add_tenant("acme").unwrap();
        let added = k.version();
        k.save().unwrap();
        // A fresh nonce on every save: the file differs, the version does not.
        let first_file = std::fs::read(&ring).unwrap();
        k.save().unwrap();
        assert_ne!(std::fs::read(&ring).unwrap(), first_file);
        assert_eq!(Keyring::open(&ring, &master).unwrap().version(), added);
        k.rotate("acme").unwrap();
        let rotated = k.version();
        k.shred("acme").unwrap();
        let shredded = k.version();
        let all = [&empty, &added, &rotated, &shredded];
        let unique: std::collections::BTreeSet<_> = all.iter().collect();
        assert_eq!(unique.len(), all.len(), "{all:?}");
        // Another keyring with a tenant of the same name has other keys: another version.
        let (_d2, ring2, master2) = paths();
        let mut other = Keyring::init(&ring2, &master2).unwrap();
        other.add_tenant("acme").unwrap();
        assert_ne!(other.version(), added);
    }

    #[test]
    fn tenant_names_are_validated() {
        for ok in ["acme", "a", "acme-corp.eu_1", "0day"] {
            validate_tenant(ok).unwrap();
        }
        let long = "a".repeat(65);
        for bad in [
            "",
            "Acme",
            "-acme",
            ".",
            "a/b",
            "a b",
            "ü",
            long.as_str(),
            "a\0",
        ] {
            assert!(
                matches!(validate_tenant(bad), Err(KeyError::InvalidTenant(_))),
                "{bad:?}"
            );
        }
    }
}
