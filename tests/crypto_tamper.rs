//! Every tamper class fails, each with its own error, whatever the chunking of the input.

use eugate::crypto::{
    CryptoError, ExternalKey, Header, Layout, ObjectContext, ObjectKey, Opener,
    SEALED_SEGMENT_SIZE, SEGMENT_SIZE, Sealer,
};

const KEK: [u8; 32] = [0x11; 32];
const OTHER_KEK: [u8; 32] = [0x22; 32];

fn ctx(tenant: &str) -> ObjectContext {
    ObjectContext {
        tenant: tenant.into(),
        key_id: "kek-main".into(),
        key_version: 7,
        object_id: [0x5a; 16],
        external: None,
    }
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
}

fn random<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut b = [0u8; N];
    ring::rand::SystemRandom::new().fill(&mut b).unwrap();
    b
}

/// Version 1 or 2 (the compact layouts, still read everywhere), with fresh key material.
fn seal_with(kek: &[u8; 32], ctx: &ObjectContext, plaintext: &[u8]) -> Vec<u8> {
    let sealer =
        Sealer::with_layout_material(Layout::Compact, kek, ctx, &random(), &random(), &random())
            .unwrap();
    finish(sealer, plaintext)
}

/// Version 3, as every writer seals now.
fn seal_v3_with(kek: &[u8; 32], ctx: &ObjectContext, plaintext: &[u8]) -> Vec<u8> {
    finish(Sealer::new(kek, ctx).unwrap(), plaintext)
}

fn finish(mut sealer: Sealer, plaintext: &[u8]) -> Vec<u8> {
    let mut out = sealer.header().to_vec();
    sealer.push(plaintext, &mut out).unwrap();
    sealer.finish(&mut out).unwrap();
    out
}

fn seal(plaintext: &[u8]) -> Vec<u8> {
    seal_with(&KEK, &ctx("acme"), plaintext)
}

/// Opens with the given KEK, feeding the body in `chunk`-sized pieces.
fn open_chunked(object: &[u8], kek: &[u8; 32], chunk: usize) -> Result<Vec<u8>, CryptoError> {
    let header = Header::parse(object)?;
    let key = header.unlock(kek)?;
    let mut opener = Opener::new(key);
    let mut out = Vec::new();
    for piece in object[header.encoded_len()..].chunks(chunk) {
        opener.push(piece, &mut out)?;
    }
    opener.finish(&mut out)?;
    Ok(out)
}

/// The error must not depend on how the ciphertext arrives.
fn open_err(object: &[u8], kek: &[u8; 32]) -> CryptoError {
    let mut errors = [
        1,
        1000,
        SEALED_SEGMENT_SIZE,
        SEALED_SEGMENT_SIZE + 1,
        usize::MAX,
    ]
    .into_iter()
    .map(|chunk| open_chunked(object, kek, chunk).expect_err("tampered object opened"));
    let first = errors.next().unwrap();
    for e in errors {
        assert_eq!(e, first, "error depends on chunking");
    }
    first
}

fn header_len(object: &[u8]) -> usize {
    Header::parse(object).unwrap().encoded_len()
}

/// (start, end) of sealed segment `i` within an object with `n` segments.
fn seg(object: &[u8], i: usize) -> std::ops::Range<usize> {
    let h = header_len(object);
    let start = h + i * SEALED_SEGMENT_SIZE;
    start..(start + SEALED_SEGMENT_SIZE).min(object.len())
}

#[test]
fn untampered_object_opens() {
    let p = data(3 * SEGMENT_SIZE + 5);
    assert_eq!(open_chunked(&seal(&p), &KEK, 4096).unwrap(), p);
}

#[test]
fn every_header_byte_flip_fails_with_the_error_of_its_field() {
    let object = seal(&data(SEGMENT_SIZE + 10));
    let h = header_len(&object);
    let (t, k) = (4usize, 8usize); // "acme", "kek-main"
    assert_eq!(h, 156 + t + k);
    for i in 0..h {
        let mut o = object.clone();
        o[i] ^= 0x01;
        let err = open_err(&o, &KEK);
        let ok = match i {
            0..=5 => err == CryptoError::BadMagic,
            6 => err == CryptoError::UnsupportedVersion { version: 0 },
            7 => err == CryptoError::UnsupportedSuite { suite: 0 },
            // Length fields: the structure no longer adds up.
            8 | 9 => matches!(
                err,
                CryptoError::HeaderMalformed { .. } | CryptoError::HeaderTruncated { .. }
            ),
            10 => matches!(err, CryptoError::HeaderMalformed { .. }),
            x if x == 11 + t => matches!(err, CryptoError::HeaderMalformed { .. }),
            // Tenant, key id, key version, object id, salt, wrap nonce, wrapped key:
            // authenticated by the key wrap.
            x if x < 124 + t + k => err == CryptoError::KeyUnwrapFailed,
            // Commitment.
            _ => err == CryptoError::CommitmentMismatch,
        };
        assert!(ok, "header byte {i}: unexpected {err:?}");
    }
}

#[test]
fn every_header_byte_matters_for_all_bit_positions() {
    // Beyond the first bit: any change of any header byte fails.
    let object = seal(b"short object");
    let h = header_len(&object);
    for i in 0..h {
        for bit in [0x02u8, 0x80] {
            let mut o = object.clone();
            o[i] ^= bit;
            assert!(open_chunked(&o, &KEK, 7).is_err(), "byte {i} bit {bit:#x}");
        }
    }
}

#[test]
fn commitment_detects_a_rewrapped_different_data_key() {
    // Someone holding the KEK wraps another data key under an otherwise identical header but
    // keeps the original commitment: the commitment no longer matches the key.
    let c = ctx("acme");
    let a = Sealer::with_material(&KEK, &c, &[1; 32], &[2; 32], &[3; 12]).unwrap();
    let b = Sealer::with_material(&KEK, &c, &[9; 32], &[2; 32], &[3; 12]).unwrap();
    let mut forged = b.header().to_vec();
    let n = forged.len();
    forged[n - 32..].copy_from_slice(&a.header()[n - 32..]);
    let header = Header::parse(&forged).unwrap();
    assert_eq!(
        header.unlock(&KEK).err(),
        Some(CryptoError::CommitmentMismatch)
    );
}

#[test]
fn every_segment_byte_region_is_authenticated() {
    let p = data(3 * SEGMENT_SIZE + 100);
    let object = seal(&p);
    let n = 4;
    for i in 0..n {
        let r = seg(&object, i);
        for at in [
            r.start,
            r.start + 1,
            (r.start + r.end) / 2,
            r.end - 17,
            r.end - 1,
        ] {
            let mut o = object.clone();
            o[at] ^= 0x40;
            let expected = if i + 1 == n {
                CryptoError::FinalSegmentAuthFailed { index: i as u64 }
            } else {
                CryptoError::SegmentAuthFailed { index: i as u64 }
            };
            assert_eq!(open_err(&o, &KEK), expected, "segment {i} byte {at}");
        }
    }
}

#[test]
fn nothing_is_released_from_a_failing_segment() {
    let p = data(3 * SEGMENT_SIZE);
    let mut object = seal(&p);
    let r = seg(&object, 1);
    object[r.start + 5] ^= 1;
    let header = Header::parse(&object).unwrap();
    let mut opener = Opener::new(header.unlock(&KEK).unwrap());
    let mut out = Vec::new();
    let err = opener
        .push(&object[header.encoded_len()..], &mut out)
        .unwrap_err();
    assert_eq!(err, CryptoError::SegmentAuthFailed { index: 1 });
    assert_eq!(out, p[..SEGMENT_SIZE], "only segment 0 was released");
    // A failed opener keeps failing and releases nothing more.
    assert_eq!(opener.push(&[0; 10], &mut out), Err(err.clone()));
    assert_eq!(opener.finish(&mut out), Err(err));
    assert_eq!(out.len(), SEGMENT_SIZE);
}

#[test]
fn truncation_at_segment_boundaries_is_reported_as_truncation() {
    // Aligned and unaligned objects; cut after k whole segments.
    for len in [4 * SEGMENT_SIZE, 3 * SEGMENT_SIZE + 9] {
        let object = seal(&data(len));
        let h = header_len(&object);
        assert_eq!(
            open_err(&object[..h], &KEK),
            CryptoError::Truncated { segments: 0 }
        );
        for k in 1..4 {
            let cut = &object[..h + k * SEALED_SEGMENT_SIZE];
            if cut.len() == object.len() {
                continue;
            }
            assert_eq!(
                open_err(cut, &KEK),
                CryptoError::Truncated { segments: k as u64 },
                "len {len} cut after {k} segments"
            );
        }
    }
}

#[test]
fn truncation_inside_a_segment_fails_the_final_segment() {
    let object = seal(&data(3 * SEGMENT_SIZE + 9));
    let h = header_len(&object);
    for (k, extra) in [
        (0, 1),
        (0, 16),
        (1, 100),
        (2, SEALED_SEGMENT_SIZE - 1),
        (3, 20),
    ] {
        let cut = &object[..h + k * SEALED_SEGMENT_SIZE + extra];
        assert_eq!(
            open_err(cut, &KEK),
            CryptoError::FinalSegmentAuthFailed { index: k as u64 },
            "cut {extra} bytes into segment {k}"
        );
    }
}

#[test]
fn dropping_the_last_segment_does_not_promote_a_middle_one() {
    // Final-flag confusion: without the real final segment, the new last one is non-final.
    let object = seal(&data(3 * SEGMENT_SIZE + 50));
    let dropped = &object[..seg(&object, 3).start];
    assert_eq!(
        open_err(dropped, &KEK),
        CryptoError::Truncated { segments: 3 }
    );
}

#[test]
fn appended_bytes_after_a_full_final_segment_are_trailing_data() {
    let object = seal(&data(2 * SEGMENT_SIZE));
    for extra in [&[0u8][..], &[0; 16], &object[seg(&object, 1)]] {
        let mut o = object.clone();
        o.extend_from_slice(extra);
        assert_eq!(
            open_err(&o, &KEK),
            CryptoError::TrailingData { final_index: 1 }
        );
    }
}

#[test]
fn appended_bytes_after_a_short_final_segment_fail_it() {
    // Without the true length a reader cannot find where a short final segment ended.
    let object = seal(&data(SEGMENT_SIZE + 10));
    for extra in [1usize, 16, SEALED_SEGMENT_SIZE] {
        let mut o = object.clone();
        o.extend(std::iter::repeat_n(0xee, extra));
        let err = open_err(&o, &KEK);
        assert!(
            matches!(
                err,
                CryptoError::FinalSegmentAuthFailed { index: 1 }
                    | CryptoError::SegmentAuthFailed { index: 1 }
            ),
            "{extra} appended: {err:?}"
        );
    }
}

#[test]
fn swapped_segments_fail_at_the_first_moved_one() {
    let object = seal(&data(4 * SEGMENT_SIZE + 1));
    let (a, b) = (seg(&object, 1), seg(&object, 2));
    let mut o = object.clone();
    o[a.clone()].copy_from_slice(&object[b.clone()]);
    o[b].copy_from_slice(&object[a]);
    assert_eq!(
        open_err(&o, &KEK),
        CryptoError::SegmentAuthFailed { index: 1 }
    );
}

#[test]
fn duplicated_segment_fails_at_the_copy() {
    let object = seal(&data(3 * SEGMENT_SIZE + 1));
    let s1 = seg(&object, 1);
    let mut o = object[..s1.end].to_vec();
    o.extend_from_slice(&object[s1.clone()]);
    o.extend_from_slice(&object[s1.end..]);
    assert_eq!(
        open_err(&o, &KEK),
        CryptoError::SegmentAuthFailed { index: 2 }
    );
}

#[test]
fn final_segment_moved_into_the_middle_fails() {
    let object = seal(&data(3 * SEGMENT_SIZE));
    let (s1, s2) = (seg(&object, 1), seg(&object, 2));
    let mut o = object.clone();
    o[s1.clone()].copy_from_slice(&object[s2.clone()]);
    o[s2].copy_from_slice(&object[s1]);
    assert_eq!(
        open_err(&o, &KEK),
        CryptoError::SegmentAuthFailed { index: 1 }
    );
}

#[test]
fn a_segment_from_another_object_of_the_same_tenant_fails() {
    let a = seal(&data(3 * SEGMENT_SIZE));
    let b = seal(&data(3 * SEGMENT_SIZE));
    let r = seg(&a, 1);
    let mut o = a.clone();
    o[r.clone()].copy_from_slice(&b[r]);
    assert_eq!(
        open_err(&o, &KEK),
        CryptoError::SegmentAuthFailed { index: 1 }
    );
}

#[test]
fn header_of_another_tenant_is_refused_by_context_check() {
    let object = seal_with(&KEK, &ctx("tenant-a"), b"for a only");
    let header = Header::parse(&object).unwrap();
    assert_eq!(
        header.expect_context(&ctx("tenant-b")),
        Err(CryptoError::ContextMismatch { field: "tenant" })
    );
    let mut other_object = ctx("tenant-a");
    other_object.object_id[0] ^= 1;
    assert_eq!(
        header.expect_context(&other_object),
        Err(CryptoError::ContextMismatch { field: "object_id" })
    );
    // Tenant B's KEK cannot open it either.
    assert_eq!(open_err(&object, &OTHER_KEK), CryptoError::KeyUnwrapFailed);
}

#[test]
fn edited_tenant_bytes_fail_the_key_unwrap() {
    let object = seal_with(&KEK, &ctx("tenant-a"), b"for a only");
    // Same length.
    let mut o = object.clone();
    let at = 11 + "tenant-".len();
    o[at] = b'b';
    assert_eq!(Header::parse(&o).unwrap().context().tenant, "tenant-b");
    assert_eq!(open_err(&o, &KEK), CryptoError::KeyUnwrapFailed);
    // Different length, with header_len and the length byte fixed up consistently.
    let h = header_len(&object);
    let mut o = object[..10].to_vec();
    o.push(b"tenant-bb".len() as u8);
    o.extend_from_slice(b"tenant-bb");
    o.extend_from_slice(&object[11 + 8..]);
    let new_len = (h + 1) as u16;
    o[8..10].copy_from_slice(&new_len.to_be_bytes());
    assert_eq!(Header::parse(&o).unwrap().context().tenant, "tenant-bb");
    assert_eq!(open_err(&o, &KEK), CryptoError::KeyUnwrapFailed);
}

#[test]
fn wrong_kek_and_wrong_kek_version_fail_the_key_unwrap() {
    let object = seal(b"payload");
    assert_eq!(open_err(&object, &OTHER_KEK), CryptoError::KeyUnwrapFailed);
    // Claiming another version in the header (e.g. to make a reader pick another KEK).
    let h = header_len(&object);
    let mut o = object.clone();
    let v = 12 + 4 + 8;
    o[v..v + 4].copy_from_slice(&8u32.to_be_bytes());
    assert_eq!(Header::parse(&o).unwrap().context().key_version, 8);
    assert_eq!(open_err(&o, &KEK), CryptoError::KeyUnwrapFailed);
    assert!(h > v + 4);
}

#[test]
fn open_segment_checks_index_flag_and_length() {
    let p = data(2 * SEGMENT_SIZE + 3);
    let object = seal(&p);
    let key = Header::parse(&object).unwrap().unlock(&KEK).unwrap();
    let s0 = &object[seg(&object, 0)];
    let s2 = &object[seg(&object, 2)];
    let mut out = Vec::new();
    assert_eq!(
        key.open_segment(1, false, s0, &mut out),
        Err(CryptoError::SegmentAuthFailed { index: 1 })
    );
    assert_eq!(
        key.open_segment(0, true, s0, &mut out),
        Err(CryptoError::FinalSegmentAuthFailed { index: 0 })
    );
    assert_eq!(
        key.open_segment(2, false, s2, &mut out),
        Err(CryptoError::SegmentLength {
            index: 2,
            len: s2.len()
        })
    );
    assert_eq!(
        key.open_segment(0, false, &s0[1..], &mut out),
        Err(CryptoError::SegmentLength {
            index: 0,
            len: SEALED_SEGMENT_SIZE - 1
        })
    );
    assert_eq!(
        key.open_segment(2, true, &s2[..15], &mut out),
        Err(CryptoError::SegmentLength { index: 2, len: 15 })
    );
    assert_eq!(
        key.open_segment(1 << 32, false, s0, &mut out),
        Err(CryptoError::TooManySegments)
    );
    assert!(out.is_empty());
    key.open_segment(2, true, s2, &mut out).unwrap();
    assert_eq!(out, p[2 * SEGMENT_SIZE..]);
}

#[test]
fn garbage_and_foreign_files_are_not_objects() {
    assert_eq!(
        Header::parse(b"PK\x03\x04zip").err(),
        Some(CryptoError::BadMagic)
    );
    assert_eq!(
        Header::parse(b"EUG").err(),
        Some(CryptoError::HeaderTruncated {
            needed: 10,
            have: 3
        })
    );
    assert_eq!(
        Header::parse(b"").err(),
        Some(CryptoError::HeaderTruncated {
            needed: 10,
            have: 0
        })
    );
}

// --- Version 2 (hold-your-own-key): KEK is the object key W, the provider blob is in the header.

/// W of the version 2 objects below (the key the provider wrapped).
const OBJECT_KEK: [u8; 32] = [0x33; 32];
const TRANSIT_BLOB: &[u8] = b"vault:v2:c2VhbGVkIGJ5IHRyYW5zaXQ=";

fn ctx_v2(provider: u8, blob: &[u8]) -> ObjectContext {
    ObjectContext {
        tenant: "acme".into(),
        key_id: "acme-vault".into(),
        key_version: 2,
        object_id: [0x5a; 16],
        external: Some(ExternalKey {
            provider,
            blob: blob.to_vec(),
        }),
    }
}

fn seal_v2(plaintext: &[u8]) -> Vec<u8> {
    seal_with(&OBJECT_KEK, &ctx_v2(0x02, TRANSIT_BLOB), plaintext)
}

#[test]
fn v2_round_trips_and_only_its_object_key_opens_it() {
    for len in [0, 1, SEGMENT_SIZE, 2 * SEGMENT_SIZE + 3] {
        let p = data(len);
        let object = seal_v2(&p);
        let header = Header::parse(&object).unwrap();
        assert_eq!(header.version(), 2);
        assert_eq!(header.context(), &ctx_v2(0x02, TRANSIT_BLOB));
        for chunk in [1, 1000, SEALED_SEGMENT_SIZE + 1] {
            assert_eq!(open_chunked(&object, &OBJECT_KEK, chunk).unwrap(), p);
        }
        assert_eq!(open_err(&object, &KEK), CryptoError::KeyUnwrapFailed);
        let mut near = OBJECT_KEK;
        near[31] ^= 0x80;
        assert_eq!(open_err(&object, &near), CryptoError::KeyUnwrapFailed);
    }
}

#[test]
fn v1_objects_still_open_next_to_v2_ones() {
    let p = data(SEGMENT_SIZE + 1);
    let v1 = seal(&p);
    let v2 = seal_v2(&p);
    assert_eq!(Header::parse(&v1).unwrap().version(), 1);
    assert_eq!(open_chunked(&v1, &KEK, 4096).unwrap(), p);
    assert_eq!(open_chunked(&v2, &OBJECT_KEK, 4096).unwrap(), p);
    // Same plaintext, different versions: each opens only with its own key.
    assert_eq!(open_err(&v1, &OBJECT_KEK), CryptoError::KeyUnwrapFailed);
}

#[test]
fn every_v2_header_byte_flip_fails_with_the_error_of_its_field() {
    let object = seal_v2(&data(SEGMENT_SIZE + 10));
    let h = header_len(&object);
    let (t, k, b) = (4usize, 10usize, TRANSIT_BLOB.len());
    let e = 3 + b;
    assert_eq!(h, 156 + t + k + e);
    let kind = 16 + t + k;
    for i in 0..h {
        let mut o = object.clone();
        o[i] ^= 0x01;
        let err = open_err(&o, &OBJECT_KEK);
        let ok = match i {
            0..=5 => err == CryptoError::BadMagic,
            // 2 ^ 1 = 3: a compact header is never the 2048 bytes version 3 needs.
            6 => matches!(
                err,
                CryptoError::HeaderMalformed {
                    field: "header_len",
                    ..
                }
            ),
            7 => err == CryptoError::UnsupportedSuite { suite: 0 },
            8 | 9 => matches!(
                err,
                CryptoError::HeaderMalformed { .. } | CryptoError::HeaderTruncated { .. }
            ),
            10 => matches!(err, CryptoError::HeaderMalformed { .. }),
            x if x == 11 + t => matches!(err, CryptoError::HeaderMalformed { .. }),
            // 0x02 (transit) ^ 1 = 0x03 (aws-kms): structurally valid, so the wrap must catch it.
            x if x == kind => err == CryptoError::KeyUnwrapFailed,
            x if x == kind + 1 || x == kind + 2 => {
                matches!(err, CryptoError::HeaderMalformed { .. })
            }
            // Tenant, key id, key version, blob, object id, salt, wrap nonce, wrapped key.
            x if x < 124 + t + k + e => err == CryptoError::KeyUnwrapFailed,
            _ => err == CryptoError::CommitmentMismatch,
        };
        assert!(ok, "v2 header byte {i}: unexpected {err:?}");
    }
}

#[test]
fn every_v2_header_byte_matters_for_all_bit_positions() {
    let object = seal_v2(b"short object");
    for i in 0..header_len(&object) {
        for bit in [0x02u8, 0x04, 0x80] {
            let mut o = object.clone();
            o[i] ^= bit;
            assert!(
                open_chunked(&o, &OBJECT_KEK, 7).is_err(),
                "byte {i} bit {bit:#x}"
            );
        }
    }
}

#[test]
fn the_provider_kind_and_blob_are_authenticated() {
    let object = seal_v2(b"payload");
    let h = header_len(&object);
    let body = &object[h..];
    let kind_at = 16 + 4 + 10;
    // Every other valid provider kind: parses, but the wrap no longer authenticates.
    for other in [0x01u8, 0x03] {
        let mut o = object.clone();
        o[kind_at] = other;
        let header = Header::parse(&o).unwrap();
        assert_eq!(header.context().external.as_ref().unwrap().provider, other);
        assert_eq!(open_err(&o, &OBJECT_KEK), CryptoError::KeyUnwrapFailed);
    }
    // The blob of another object (same length, same W even): refused.
    let other_blob = b"vault:v2:YW5vdGhlciBvYmplY3Qncw==";
    assert_eq!(other_blob.len(), TRANSIT_BLOB.len());
    let other = seal_with(&OBJECT_KEK, &ctx_v2(0x02, other_blob), b"payload");
    let mut spliced = other[..h].to_vec();
    spliced[kind_at + 3..kind_at + 3 + TRANSIT_BLOB.len()].copy_from_slice(TRANSIT_BLOB);
    spliced.extend_from_slice(&other[h..]);
    assert_eq!(
        open_err(&spliced, &OBJECT_KEK),
        CryptoError::KeyUnwrapFailed
    );
    // A shorter or longer blob with header_len adjusted to match: the wrap fails too.
    for blob in [
        &TRANSIT_BLOB[..TRANSIT_BLOB.len() - 1],
        b"vault:v2:c2VhbGVkIGJ5IHRyYW5zaXQ==",
    ] {
        let mut h2 = object[..kind_at + 1].to_vec();
        h2.extend_from_slice(&(blob.len() as u16).to_be_bytes());
        h2.extend_from_slice(blob);
        h2.extend_from_slice(&object[kind_at + 3 + TRANSIT_BLOB.len()..h]);
        let len = h2.len() as u16;
        h2[8..10].copy_from_slice(&len.to_be_bytes());
        h2.extend_from_slice(body);
        assert_eq!(open_err(&h2, &OBJECT_KEK), CryptoError::KeyUnwrapFailed);
    }
}

#[test]
fn relabelling_the_version_byte_never_opens() {
    // Any header read as any other version: the version byte is authenticated, and the
    // structures differ; whatever the parser makes of it, nothing opens.
    let objects = [
        seal(b"payload"),
        seal_v2(b"payload"),
        seal_v3_with(&KEK, &ctx("acme"), b"payload"),
        seal_v3_with(&OBJECT_KEK, &ctx_v2(0x02, TRANSIT_BLOB), b"payload"),
    ];
    for object in objects {
        for version in [1u8, 2, 3] {
            if version == object[6] {
                continue;
            }
            let mut o = object.clone();
            o[6] = version;
            assert!(open_chunked(&o, &KEK, 7).is_err());
            assert!(open_chunked(&o, &OBJECT_KEK, 7).is_err());
        }
    }
}

/// What flipping the lowest bit of byte `i` of a version 3 header must fail with; `t`, `k` are
/// the tenant and key id lengths, `e` the provider kind, length and blob (3 + blob length).
fn v3_flip_fails_as_expected(i: usize, t: usize, k: usize, e: usize, err: &CryptoError) -> bool {
    let kind = 16 + t + k;
    let malformed = matches!(err, CryptoError::HeaderMalformed { .. });
    match i {
        0..=5 => *err == CryptoError::BadMagic,
        // 3 ^ 1 = 2: a 2048-byte header is too long for version 2.
        6 => malformed,
        7 => *err == CryptoError::UnsupportedSuite { suite: 0 },
        8 | 9 => malformed,
        // A length byte: the fields shift; the parser refuses the result, or the wrap does.
        10 => malformed || *err == CryptoError::KeyUnwrapFailed,
        x if x == 11 + t => malformed || *err == CryptoError::KeyUnwrapFailed,
        // Keyring 0x00 -> 0x01 needs a blob; transit 0x02 -> 0x03 (aws-kms) is structurally
        // valid, so the wrap must catch it.
        x if x == kind => {
            if e == 3 {
                malformed
            } else {
                *err == CryptoError::KeyUnwrapFailed
            }
        }
        // The blob length: a keyring key has none; an external blob that grows into the padding
        // parses, and then the wrap refuses it.
        x if x == kind + 1 || x == kind + 2 => {
            malformed || (e > 3 && *err == CryptoError::KeyUnwrapFailed)
        }
        x if x >= kind + e && x < 1908 => {
            matches!(
                err,
                CryptoError::HeaderMalformed {
                    field: "padding",
                    ..
                }
            )
        }
        // Tenant, key id, key version, blob, object id, salt, wrap nonce, wrapped key.
        x if x < 2016 => *err == CryptoError::KeyUnwrapFailed,
        _ => *err == CryptoError::CommitmentMismatch,
    }
}

#[test]
fn every_v3_header_byte_flip_fails_with_the_error_of_its_field() {
    let keyring = (KEK, ctx("acme"), 8, 3);
    let transit = (
        OBJECT_KEK,
        ctx_v2(0x02, TRANSIT_BLOB),
        10,
        3 + TRANSIT_BLOB.len(),
    );
    for (kek, c, k, e) in [keyring, transit] {
        let object = seal_v3_with(&kek, &c, &data(SEGMENT_SIZE + 10));
        assert_eq!(header_len(&object), 2048);
        assert_eq!(Header::parse(&object).unwrap().version(), 3);
        assert_eq!(
            open_chunked(&object, &kek, 4096).unwrap(),
            data(SEGMENT_SIZE + 10)
        );
        for i in 0..2048 {
            let mut o = object.clone();
            o[i] ^= 0x01;
            let err = open_err(&o, &kek);
            assert!(
                v3_flip_fails_as_expected(i, 4, k, e, &err),
                "v3 ({}) header byte {i}: unexpected {err:?}",
                c.key_id
            );
        }
    }
}

#[test]
fn a_v3_object_opens_only_with_its_own_key_and_its_segments_alone() {
    let p = data(2 * SEGMENT_SIZE + 5);
    let object = seal_v3_with(&OBJECT_KEK, &ctx_v2(0x01, b"hsm-wrapped"), &p);
    assert_eq!(open_err(&object, &KEK), CryptoError::KeyUnwrapFailed);
    let header = Header::parse(&object).unwrap();
    let key: ObjectKey = header.unlock(&OBJECT_KEK).unwrap();
    let plain_len = eugate::crypto::plaintext_len(2048, object.len() as u64).unwrap();
    assert_eq!(plain_len, p.len() as u64);
    let n = eugate::crypto::segment_count(plain_len);
    for i in 0..n {
        let r = eugate::crypto::sealed_segment_range(2048, plain_len, i).unwrap();
        let mut got = Vec::new();
        key.open_segment(
            i,
            i + 1 == n,
            &object[r.start as usize..r.end as usize],
            &mut got,
        )
        .unwrap();
        let pr = eugate::crypto::plaintext_segment_range(plain_len, i).unwrap();
        assert_eq!(got[..], p[pr.start as usize..pr.end as usize]);
    }
}

#[test]
fn v2_segments_open_alone_for_ranged_reads() {
    let p = data(2 * SEGMENT_SIZE + 5);
    let object = seal_v2(&p);
    let header = Header::parse(&object).unwrap();
    let key: ObjectKey = header.unlock(&OBJECT_KEK).unwrap();
    let h = header.encoded_len() as u64;
    let plain_len = eugate::crypto::plaintext_len(h, object.len() as u64).unwrap();
    assert_eq!(plain_len, p.len() as u64);
    let n = eugate::crypto::segment_count(plain_len);
    for i in 0..n {
        let r = eugate::crypto::sealed_segment_range(h, plain_len, i).unwrap();
        let seg = &object[r.start as usize..r.end as usize];
        let mut got = Vec::new();
        key.open_segment(i, i + 1 == n, seg, &mut got).unwrap();
        let pr = eugate::crypto::plaintext_segment_range(plain_len, i).unwrap();
        assert_eq!(got[..], p[pr.start as usize..pr.end as usize]);
    }
}
