//! `Header::rewrap`: key rotation for stored objects without touching their segments, in the
//! compact layouts (versions 1 and 2) and the fixed one (version 3) alike.

use eugate::crypto::{CryptoError, Header, Layout, ObjectContext, Opener, Sealer};

const LAYOUTS: [Layout; 2] = [Layout::Compact, Layout::Fixed];

fn sealed(layout: Layout, kek: &[u8; 32], ctx: &ObjectContext, plain: &[u8]) -> Vec<u8> {
    let mut sealer =
        Sealer::with_layout_material(layout, kek, ctx, &[0x41; 32], &[0x42; 32], &[0x43; 12])
            .unwrap();
    let mut out = sealer.header().to_vec();
    sealer.push(plain, &mut out).unwrap();
    sealer.finish(&mut out).unwrap();
    out
}

const KEK1: [u8; 32] = [1; 32];
const KEK2: [u8; 32] = [2; 32];

fn seal(layout: Layout, plain: &[u8]) -> Vec<u8> {
    let ctx = ObjectContext {
        tenant: "acme".into(),
        key_id: "k-1".into(),
        key_version: 1,
        object_id: [7; 16],
        external: None,
    };
    sealed(layout, &KEK1, &ctx, plain)
}

fn open(object: &[u8], kek: &[u8; 32]) -> Result<Vec<u8>, CryptoError> {
    let header = Header::parse(object)?;
    let mut opener = Opener::new(header.unlock(kek)?);
    let mut out = Vec::new();
    opener.push(&object[header.encoded_len()..], &mut out)?;
    opener.finish(&mut out)?;
    Ok(out)
}

#[test]
fn rewrapped_header_opens_the_unchanged_segments_under_the_new_key_only() {
    for layout in LAYOUTS {
        rewrapped_header_opens_under_the_new_key_only(layout);
    }
}

fn rewrapped_header_opens_under_the_new_key_only(layout: Layout) {
    let plain: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let object = seal(layout, &plain);
    let old = Header::parse(&object).unwrap();
    let new_header = old.rewrap(&KEK1, &KEK2, "k-1", 2).unwrap();

    let mut rotated = new_header.clone();
    rotated.extend_from_slice(&object[old.encoded_len()..]);
    assert_eq!(open(&rotated, &KEK2).unwrap(), plain);
    assert_eq!(open(&rotated, &KEK1), Err(CryptoError::KeyUnwrapFailed));

    let parsed = Header::parse(&rotated).unwrap();
    assert_eq!(parsed.context().key_version, 2);
    assert_eq!(
        parsed.version(),
        old.version(),
        "a rotation keeps the version"
    );
    // Tenant and object id are immutable across rotation.
    assert_eq!(parsed.context().tenant, "acme");
    assert_eq!(parsed.context().object_id, [7; 16]);

    // Only the holder of the old key can rotate.
    assert_eq!(
        old.rewrap(&KEK2, &KEK1, "k-1", 3).unwrap_err(),
        CryptoError::KeyUnwrapFailed
    );
}

// --- Version 2 (hold-your-own-key).

use eugate::crypto::ExternalKey;

/// Object keys W (what the provider wrapped) before and after a provider-key rotation.
const W1: [u8; 32] = [0x31; 32];
const W2: [u8; 32] = [0x32; 32];

fn transit(blob: &str) -> Option<ExternalKey> {
    Some(ExternalKey {
        provider: 0x02,
        blob: blob.as_bytes().to_vec(),
    })
}

/// Version 2 (compact) or 3 (fixed) with an external key.
fn seal_v2(layout: Layout, plain: &[u8]) -> Vec<u8> {
    let ctx = ObjectContext {
        tenant: "acme".into(),
        key_id: "vault-eu".into(),
        key_version: 1,
        object_id: [7; 16],
        external: transit("vault:v1:b2xkIHdyYXBwZWQgVw=="),
    };
    sealed(layout, &W1, &ctx, plain)
}

fn replace_header(object: &[u8], new_header: &[u8]) -> Vec<u8> {
    let old_len = Header::parse(object).unwrap().encoded_len();
    let mut o = new_header.to_vec();
    o.extend_from_slice(&object[old_len..]);
    o
}

#[test]
fn rewrap_refuses_a_v2_header_with_a_precise_error() {
    for layout in LAYOUTS {
        let object = seal_v2(layout, b"data");
        let header = Header::parse(&object).unwrap();
        assert_eq!(
            header.rewrap(&W1, &W2, "vault-eu", 2).unwrap_err(),
            CryptoError::RewrapNeedsExternalKey
        );
    }
}

#[test]
fn rewrap_to_rotates_a_v2_header_to_a_new_object_key_and_blob() {
    for layout in LAYOUTS {
        rewrap_to_rotates_an_external_key(layout);
    }
}

fn rewrap_to_rotates_an_external_key(layout: Layout) {
    let plain: Vec<u8> = (0..150_000u32).map(|i| (i % 251) as u8).collect();
    let object = seal_v2(layout, &plain);
    let old = Header::parse(&object).unwrap();
    let new_header = old
        .rewrap_to(
            &W1,
            &W2,
            "vault-eu",
            2,
            transit("vault:v2:bmV3IHdyYXBwZWQgVw=="),
        )
        .unwrap();
    let rotated = replace_header(&object, &new_header);
    assert_eq!(open(&rotated, &W2).unwrap(), plain);
    assert_eq!(open(&rotated, &W1), Err(CryptoError::KeyUnwrapFailed));
    let parsed = Header::parse(&rotated).unwrap();
    assert_eq!(parsed.version(), old.version());
    assert_eq!(parsed.context().key_version, 2);
    assert_eq!(
        parsed.context().external,
        transit("vault:v2:bmV3IHdyYXBwZWQgVw==")
    );
    assert_eq!(parsed.context().object_id, [7; 16]);
    // Segments untouched.
    assert_eq!(
        &rotated[parsed.encoded_len()..],
        &object[old.encoded_len()..]
    );
    // The provider re-wrapped the same W (e.g. Transit's rewrap): also fine.
    let same_w = old
        .rewrap_to(&W1, &W1, "vault-eu", 2, transit("vault:v2:c2FtZSBX"))
        .unwrap();
    assert_eq!(open(&replace_header(&object, &same_w), &W1).unwrap(), plain);
    // Only the holder of the old W can rotate.
    assert_eq!(
        old.rewrap_to(&W2, &W2, "vault-eu", 2, transit("x"))
            .unwrap_err(),
        CryptoError::KeyUnwrapFailed
    );
    // An invalid new external key is refused before anything is written.
    assert!(matches!(
        old.rewrap_to(
            &W1,
            &W2,
            "vault-eu",
            2,
            Some(ExternalKey {
                provider: 0x00,
                blob: b"x".to_vec()
            })
        ),
        Err(CryptoError::InvalidContext {
            field: "external.provider",
            ..
        })
    ));
}

#[test]
fn rewrap_to_moves_a_tenant_into_and_out_of_hold_your_own_key() {
    // Compact: version 1 <-> 2, the header length changes; fixed: version 3 throughout.
    for (layout, external, keyring) in [(Layout::Compact, 2, 1), (Layout::Fixed, 3, 3)] {
        moves_into_and_out_of_hold_your_own_key(layout, external, keyring);
    }
}

fn moves_into_and_out_of_hold_your_own_key(layout: Layout, external: u8, keyring: u8) {
    let plain: Vec<u8> = (0..70_000u32).map(|i| (i % 13) as u8).collect();
    let v1 = seal(layout, &plain);
    let h1 = Header::parse(&v1).unwrap();
    // Keyring KEK → provider: v1 becomes v2, segments unchanged.
    let to_v2 = h1
        .rewrap_to(&KEK1, &W1, "vault-eu", 5, transit("vault:v5:VzE="))
        .unwrap();
    let v2 = replace_header(&v1, &to_v2);
    let h2 = Header::parse(&v2).unwrap();
    assert_eq!(h2.version(), external);
    assert_eq!(open(&v2, &W1).unwrap(), plain);
    assert_eq!(open(&v2, &KEK1), Err(CryptoError::KeyUnwrapFailed));
    // And back: provider → keyring KEK.
    let back = h2.rewrap_to(&W1, &KEK2, "k-2", 1, None).unwrap();
    let v1_again = replace_header(&v2, &back);
    let h = Header::parse(&v1_again).unwrap();
    assert_eq!(h.version(), keyring);
    assert_eq!(h.context().external, None);
    if layout == Layout::Fixed {
        assert_eq!((to_v2.len(), back.len()), (2048, 2048), "no segment moves");
    }
    assert_eq!(open(&v1_again, &KEK2).unwrap(), plain);
}
