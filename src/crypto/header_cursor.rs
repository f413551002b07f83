//! Reading a header's fields (`header.rs`): a cursor that names the field it fails on.

use super::*;

/// A cursor over the header bytes that cannot read past `header_len`.
pub(super) struct Reader<'a> {
    pub(super) bytes: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], CryptoError> {
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

    pub(super) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], CryptoError> {
        let s = self.take(N, field)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(super) fn name(&mut self, field: &'static str) -> Result<String, CryptoError> {
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
    pub(super) fn external(&mut self) -> Result<ExternalKey, CryptoError> {
        let [provider] = self.array::<1>("provider")?;
        if !is_external_provider(provider) {
            return Err(CryptoError::HeaderMalformed {
                field: "provider",
                reason: "is not a key provider kind of version 2 (0x01 pkcs11, 0x02 transit, 0x03 aws-kms)",
            });
        }
        self.blob(provider)
    }

    /// Provider kind, blob length and blob of a version 3 header: `None` for a keyring KEK.
    pub(super) fn key_source(&mut self) -> Result<Option<ExternalKey>, CryptoError> {
        let [provider] = self.array::<1>("provider")?;
        if provider == KEYRING_PROVIDER {
            if self.array::<2>("blob_len")? != [0, 0] {
                return Err(CryptoError::HeaderMalformed {
                    field: "blob_len",
                    reason: "is not 0 for a keyring key (provider 0x00)",
                });
            }
            return Ok(None);
        }
        if !is_external_provider(provider) {
            return Err(CryptoError::HeaderMalformed {
                field: "provider",
                reason: "is not a key provider kind (0x00 keyring, 0x01 pkcs11, 0x02 transit, 0x03 aws-kms)",
            });
        }
        self.blob(provider).map(Some)
    }

    fn blob(&mut self, provider: u8) -> Result<ExternalKey, CryptoError> {
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

    /// A version 3 header's zero padding, up to the fixed-position tail.
    pub(super) fn padding(&mut self) -> Result<(), CryptoError> {
        let len = (HEADER_FIXED_LEN - TAIL_LEN).saturating_sub(self.pos);
        if self.take(len, "padding")?.iter().any(|&b| b != 0) {
            return Err(CryptoError::HeaderMalformed {
                field: "padding",
                reason: "is not all zero",
            });
        }
        Ok(())
    }
}

pub(super) fn is_known_version(version: u8) -> bool {
    matches!(
        version,
        FORMAT_VERSION | FORMAT_VERSION_HYOK | FORMAT_VERSION_FIXED
    )
}

/// The header lengths a version allows, and the error's reason outside them.
pub(super) fn header_len_range(version: u8) -> (std::ops::RangeInclusive<usize>, &'static str) {
    match version {
        FORMAT_VERSION_HYOK => (V2_MIN_LEN..=V2_MAX_LEN, "is outside 162..=1693 (version 2)"),
        FORMAT_VERSION_FIXED => (
            HEADER_FIXED_LEN..=HEADER_FIXED_LEN,
            "is not 2048 (version 3)",
        ),
        _ => (V1_MIN_LEN..=V1_MAX_LEN, "is outside 158..=666 (version 1)"),
    }
}
