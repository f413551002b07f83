//! `Header::rewrap`: key rotation for stored objects without touching their segments.

use eugate::crypto::{CryptoError, Header, ObjectContext, Opener, Sealer};

const KEK1: [u8; 32] = [1; 32];
const KEK2: [u8; 32] = [2; 32];

fn seal(plain: &[u8]) -> Vec<u8> {
    let ctx = ObjectContext {
        tenant: "acme".into(),
        key_id: "k-1".into(),
        key_version: 1,
        object_id: [7; 16],
        external: None,
    };
    let mut sealer = Sealer::new(&KEK1, &ctx).unwrap();
    let mut out = sealer.header().to_vec();
    sealer.push(plain, &mut out).unwrap();
    sealer.finish(&mut out).unwrap();
    out
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
    let plain: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let object = seal(&plain);
    let old = Header::parse(&object).unwrap();
    let new_header = old.rewrap(&KEK1, &KEK2, "k-1", 2).unwrap();

    let mut rotated = new_header.clone();
    rotated.extend_from_slice(&object[old.encoded_len()..]);
    assert_eq!(open(&rotated, &KEK2).unwrap(), plain);
    assert_eq!(open(&rotated, &KEK1), Err(CryptoError::KeyUnwrapFailed));

    let parsed = Header::parse(&rotated).unwrap();
    assert_eq!(parsed.context().key_version, 2);
    // Tenant and object id are immutable across rotation.
    assert_eq!(parsed.context().tenant, "acme");
    assert_eq!(parsed.context().object_id, [7; 16]);

    // Only the holder of the old key can rotate.
    assert_eq!(
        old.rewrap(&KEK2, &KEK1, "k-1", 3).unwrap_err(),
        CryptoError::KeyUnwrapFailed
    );
}
