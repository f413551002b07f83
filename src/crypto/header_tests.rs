//! Unit tests of the header layouts (`header.rs`).

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
    build(Layout::Compact, &ctx())
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

/// A header of `layout` for `c` with fixed key material (the commitment is not derived: these
/// tests parse, they do not unlock).
fn build(layout: Layout, c: &ObjectContext) -> Vec<u8> {
    Header::build(layout, &[1; 32], c, &[2; 32], &[3; 32], &[4; 12], &[5; 32]).unwrap()
}

fn build3(c: &ObjectContext) -> Vec<u8> {
    build(Layout::Fixed, c)
}

fn header2() -> Vec<u8> {
    build(Layout::Compact, &ctx2())
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
    assert_eq!(HEADER_MAX_LEN, 2048);
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
    let h = build(Layout::Compact, &c);
    assert_eq!(h.len(), V2_MAX_LEN);
    assert_eq!(Header::parse(&h).unwrap().context(), &c);
    // The same context in version 3: the longest fields still leave padding.
    let h3 = build3(&c);
    assert_eq!(h3.len(), HEADER_FIXED_LEN);
    assert_eq!(Header::parse(&h3).unwrap().context(), &c);
    c.tenant = "t".into();
    c.key_id = "k".into();
    c.external = Some(ExternalKey {
        provider: 0x01,
        blob: vec![0xee],
    });
    let h = build(Layout::Compact, &c);
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
    for h in [header(), header2(), build3(&ctx()), build3(&ctx2())] {
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
    for version in [0, 4, 0xff] {
        for mut h in [header(), header2(), build3(&ctx())] {
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
        match encode_bound_prefix(Layout::Compact, &c, &[0; 32]) {
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
        encode_bound_prefix(Layout::Fixed, &c, &[0; 32]),
        Err(CryptoError::InvalidContext {
            field: "tenant",
            ..
        })
    ));
    let mut c = ctx();
    c.key_id = "x".repeat(256);
    assert!(matches!(
        encode_bound_prefix(Layout::Fixed, &c, &[0; 32]),
        Err(CryptoError::InvalidContext {
            field: "key_id",
            ..
        })
    ));
    let mut c = ctx();
    c.tenant = "t".repeat(255);
    c.key_id = "k".repeat(255);
    let h = build(Layout::Compact, &c);
    assert_eq!(h.len(), V1_MAX_LEN);
    assert_eq!(Header::parse(&h).unwrap().context(), &c);
}

#[test]
fn v3_layout_matches_the_documented_offsets() {
    for (c, e) in [(ctx(), 3), (ctx2(), 3 + 13)] {
        let h = build3(&c);
        let (t, k) = (4, c.key_id.len());
        assert_eq!(h.len(), 2048);
        assert_eq!(&h[..8], b"EUGATE\x03\x01");
        assert_eq!(u16::from_be_bytes([h[8], h[9]]), 2048);
        assert_eq!(&h[11..11 + t], b"acme");
        assert_eq!(&h[12 + t..12 + t + k], c.key_id.as_bytes());
        assert_eq!(&h[12 + t + k..16 + t + k], &3u32.to_be_bytes());
        let kind = c.external.as_ref().map_or(0, |x| x.provider);
        assert_eq!(h[16 + t + k], kind);
        assert_eq!(
            usize::from(u16::from_be_bytes([h[17 + t + k], h[18 + t + k]])),
            e - 3
        );
        assert!(h[16 + t + k + e..1908].iter().all(|&b| b == 0), "padding");
        assert_eq!(&h[1908..1924], &[0xab; 16]);
        assert_eq!(&h[1924..1956], &[3; 32]);
        assert_eq!(&h[1956..1968], &[4; 12]);
        assert_eq!(&h[2016..], &[5; 32]);
        let parsed = Header::parse(&h).unwrap();
        assert_eq!(parsed.context(), &c);
        assert_eq!((parsed.version(), parsed.bound_len), (3, 1956));
        assert_eq!(parsed.encoded_len(), HEADER_FIXED_LEN);
    }
}

#[test]
fn v3_unlocks_like_the_compact_layouts_and_rewraps_in_place() {
    // Real key material this time: the commitment must match the data key.
    let commitment = schedule::derive(&[2; 32], &[3; 32]).unwrap().commitment;
    let unlockable = |layout, c: &ObjectContext| {
        let h = Header::build(
            layout,
            &[1; 32],
            c,
            &[2; 32],
            &[3; 32],
            &[4; 12],
            &commitment,
        );
        Header::parse(&h.unwrap()).unwrap()
    };
    for c in [ctx(), ctx2()] {
        let h = unlockable(Layout::Fixed, &c);
        let compact = unlockable(Layout::Compact, &c);
        // Same data key and schedule: both open the same segments.
        let (a, _) = h.committed_data_key(&[1; 32]).unwrap();
        let (b, _) = compact.committed_data_key(&[1; 32]).unwrap();
        assert_eq!(*a, *b);
        assert_eq!(h.unlock(&[9; 32]).err(), Some(CryptoError::KeyUnwrapFailed));
        // A rotation keeps version 3, so the length (and every segment offset) stays.
        let rotated = h.rewrap_to(&[1; 32], &[7; 32], "k2", 4, None).unwrap();
        assert_eq!(rotated.len(), HEADER_FIXED_LEN);
        let r = Header::parse(&rotated).unwrap();
        assert_eq!((r.version(), r.context().key_version), (3, 4));
        assert!(r.context().external.is_none());
        r.unlock(&[7; 32]).unwrap();
    }
}

#[test]
fn every_v3_byte_before_the_wrap_nonce_is_authenticated() {
    let h = build3(&ctx());
    // Padding, provider kind and blob length included: a flip either fails parsing or the unwrap.
    for i in 0..1956 {
        let mut bad = h.clone();
        bad[i] ^= 0x01;
        if let Ok(p) = Header::parse(&bad) {
            assert_eq!(
                p.unlock(&[1; 32]).err(),
                Some(CryptoError::KeyUnwrapFailed),
                "byte {i}"
            );
        }
    }
}

#[test]
fn v3_structural_errors_name_the_field() {
    let (t, k) = (4, 2);
    let mut h = build3(&ctx());
    h[9] = h[9].wrapping_sub(1);
    assert_eq!(malformed(&h), ("header_len", "is not 2048 (version 3)"));
    let mut h = build3(&ctx());
    h[1000] = 1;
    assert_eq!(malformed(&h), ("padding", "is not all zero"));
    let mut h = build3(&ctx());
    h[18 + t + k] = 1;
    assert_eq!(
        malformed(&h),
        ("blob_len", "is not 0 for a keyring key (provider 0x00)")
    );
    let mut h = build3(&ctx());
    h[16 + t + k] = 0x04;
    assert_eq!(
        malformed(&h),
        (
            "provider",
            "is not a key provider kind (0x00 keyring, 0x01 pkcs11, 0x02 transit, 0x03 aws-kms)"
        )
    );
    // An external kind with no blob.
    let mut h = build3(&ctx());
    h[16 + t + k] = 0x02;
    assert_eq!(
        malformed(&h),
        ("blob_len", "is 0 (a provider blob is 1..=1024 bytes)")
    );
    let mut h = build3(&ctx2());
    let at = 17 + t + "vault".len();
    h[at..at + 2].copy_from_slice(&1025u16.to_be_bytes());
    assert_eq!(
        malformed(&h),
        (
            "blob_len",
            "exceeds 1024 (a provider blob is 1..=1024 bytes)"
        )
    );
}
