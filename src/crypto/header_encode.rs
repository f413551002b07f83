//! Encoding a header's fields (`header.rs`): the bytes the key wrap authenticates.

use super::*;

pub(super) fn check_name(field: &'static str, value: &str) -> Result<u8, CryptoError> {
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

pub(super) fn check_external(ext: &ExternalKey) -> Result<u16, CryptoError> {
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
    layout: Layout,
    ctx: &ObjectContext,
    salt: &[u8; SALT_LEN],
) -> Result<Vec<u8>, CryptoError> {
    let t = check_name("tenant", &ctx.tenant)?;
    let k = check_name("key_id", &ctx.key_id)?;
    let external = match &ctx.external {
        Some(ext) => Some((ext, check_external(ext)?)),
        None => None,
    };
    // Version 3 records the key's source even for a keyring KEK (kind 0x00, no blob).
    let key_source = match (layout, external) {
        (_, Some((ext, b))) => Some((ext.provider, b, ext.blob.as_slice())),
        (Layout::Fixed, None) => Some((KEYRING_PROVIDER, 0, &[][..])),
        (Layout::Compact, None) => None,
    };
    let header_len = match layout {
        Layout::Fixed => HEADER_FIXED_LEN,
        Layout::Compact => {
            let source_len = key_source.map_or(0, |(_, b, _)| EXTERNAL_FIXED_LEN + usize::from(b));
            FIXED_LEN + usize::from(t) + usize::from(k) + source_len
        }
    };
    let header_len_u16 =
        u16::try_from(header_len).map_err(|_| CryptoError::Internal("encoding header_len"))?;
    let mut h = Vec::with_capacity(header_len);
    h.extend_from_slice(MAGIC);
    h.push(layout.version(ctx));
    h.push(Suite::Aes256Gcm.id());
    h.extend_from_slice(&header_len_u16.to_be_bytes());
    h.push(t);
    h.extend_from_slice(ctx.tenant.as_bytes());
    h.push(k);
    h.extend_from_slice(ctx.key_id.as_bytes());
    h.extend_from_slice(&ctx.key_version.to_be_bytes());
    if let Some((provider, b, blob)) = key_source {
        h.push(provider);
        h.extend_from_slice(&b.to_be_bytes());
        h.extend_from_slice(blob);
    }
    if layout == Layout::Fixed {
        h.resize(HEADER_FIXED_LEN - TAIL_LEN, 0);
    }
    h.extend_from_slice(&ctx.object_id);
    h.extend_from_slice(salt);
    Ok(h)
}
