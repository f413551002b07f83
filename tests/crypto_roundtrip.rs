//! Round trips of the object format at the boundary sizes and with arbitrary chunkings.

use eugate::crypto::{
    Header, ObjectContext, ObjectKey, Opener, SEALED_SEGMENT_SIZE, SEGMENT_SIZE, Sealer,
    plaintext_len, plaintext_segment_range, sealed_len, sealed_segment_range, segment_count,
};
use proptest::prelude::*;

const KEK: [u8; 32] = [0x42; 32];

fn ctx() -> ObjectContext {
    ObjectContext {
        tenant: "acme-gmbh".into(),
        key_id: "acme-kek".into(),
        key_version: 2,
        object_id: *b"0123456789abcdef",
        external: None,
    }
}

fn plaintext(len: usize) -> Vec<u8> {
    // Cheap deterministic non-repeating pattern, so swapped segments would differ.
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1])
        .collect()
}

/// Seals `data` pushing chunks of the given sizes (cycled).
fn seal(data: &[u8], chunks: &[usize]) -> Vec<u8> {
    let mut sealer = Sealer::new(&KEK, &ctx()).unwrap();
    let mut out = sealer.header().to_vec();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let n = chunks[i % chunks.len()].clamp(1, rest.len());
        let before = out.len();
        sealer.push(&rest[..n], &mut out).unwrap();
        assert_eq!(
            (out.len() - before) % SEALED_SEGMENT_SIZE,
            0,
            "only whole segments"
        );
        rest = &rest[n..];
        i += 1;
    }
    sealer.finish(&mut out).unwrap();
    out
}

fn unlock(object: &[u8]) -> (Header, ObjectKey) {
    let header = Header::parse(object).unwrap();
    let key = header.unlock(&KEK).unwrap();
    (header, key)
}

/// Opens `object` feeding the body in chunks of the given sizes (cycled).
fn open(object: &[u8], chunks: &[usize]) -> Vec<u8> {
    let (header, key) = unlock(object);
    let mut opener = Opener::new(key);
    let mut out = Vec::new();
    let mut rest = &object[header.encoded_len()..];
    let mut i = 0;
    while !rest.is_empty() {
        let n = chunks[i % chunks.len()].clamp(1, rest.len());
        opener.push(&rest[..n], &mut out).unwrap();
        rest = &rest[n..];
        i += 1;
    }
    opener.finish(&mut out).unwrap();
    out
}

#[test]
fn boundary_sizes_round_trip() {
    for len in [
        0,
        1,
        SEGMENT_SIZE - 1,
        SEGMENT_SIZE,
        SEGMENT_SIZE + 1,
        2 * SEGMENT_SIZE,
        3 * SEGMENT_SIZE + 7,
    ] {
        let data = plaintext(len);
        for chunks in [&[len.max(1)][..], &[1000], &[SEGMENT_SIZE], &[255 * 1024]] {
            let object = seal(&data, chunks);
            let header_len = Header::parse(&object).unwrap().encoded_len() as u64;
            assert_eq!(object.len() as u64, sealed_len(header_len, len as u64));
            assert_eq!(
                plaintext_len(header_len, object.len() as u64),
                Ok(len as u64)
            );
            assert_eq!(open(&object, &[SEALED_SEGMENT_SIZE]), data, "len {len}");
            assert_eq!(open(&object, &[777]), data, "len {len}");
        }
    }
}

#[test]
fn empty_object_is_exactly_one_empty_final_segment() {
    let object = seal(&[], &[1]);
    let header = Header::parse(&object).unwrap();
    assert_eq!(object.len(), header.encoded_len() + 16);
}

#[test]
fn full_last_segment_is_not_followed_by_an_empty_one() {
    let object = seal(&plaintext(2 * SEGMENT_SIZE), &[SEGMENT_SIZE]);
    let header = Header::parse(&object).unwrap();
    assert_eq!(object.len(), header.encoded_len() + 2 * SEALED_SEGMENT_SIZE);
}

#[test]
fn header_context_is_recorded() {
    let object = seal(b"hello", &[5]);
    let header = Header::parse(&object).unwrap();
    assert_eq!(header.context(), &ctx());
    header.expect_context(&ctx()).unwrap();
}

#[test]
fn every_segment_opens_alone_for_ranged_reads() {
    let len = 5 * SEGMENT_SIZE + 1234;
    let data = plaintext(len);
    let object = seal(&data, &[255 * 1024]);
    let (header, key) = unlock(&object);
    let h = header.encoded_len() as u64;
    let count = segment_count(len as u64);
    assert_eq!(count, 6);
    for i in (0..count).rev() {
        let sealed = sealed_segment_range(h, len as u64, i).unwrap();
        let plain = plaintext_segment_range(len as u64, i).unwrap();
        let mut out = Vec::new();
        key.open_segment(
            i,
            i + 1 == count,
            &object[sealed.start as usize..sealed.end as usize],
            &mut out,
        )
        .unwrap();
        assert_eq!(
            out,
            data[plain.start as usize..plain.end as usize],
            "segment {i}"
        );
    }
}

#[test]
fn several_mib_with_sftp_sized_writes() {
    let data = plaintext(5 * 1024 * 1024 + 333);
    let object = seal(&data, &[255 * 1024]);
    assert_eq!(open(&object, &[1 << 20]), data);
}

#[test]
fn two_objects_of_the_same_plaintext_differ() {
    let data = plaintext(100);
    assert_ne!(seal(&data, &[100]), seal(&data, &[100]));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn any_chunking_round_trips(
        len in prop_oneof![0usize..3 * SEGMENT_SIZE, Just(4 * SEGMENT_SIZE), (2usize << 20)..(3usize << 20)],
        push in proptest::collection::vec(1usize..200_000, 1..8),
        feed in proptest::collection::vec(1usize..200_000, 1..8),
    ) {
        let data = plaintext(len);
        let object = seal(&data, &push);
        prop_assert_eq!(open(&object, &feed), data);
    }

    /// The zero-copy part path writes exactly the bytes of `Sealer::push`/`finish`, for any
    /// length, part size and chunking on either side.
    #[test]
    fn part_sealing_matches_push_sealing(
        len in prop_oneof![0usize..3 * SEGMENT_SIZE, (3 * SEGMENT_SIZE - 2)..(3 * SEGMENT_SIZE + 2), (1usize << 20)..(2usize << 20)],
        segments_per_part in 1usize..5,
        push in proptest::collection::vec(1usize..200_000, 1..8),
        fill in proptest::collection::vec(1usize..200_000, 1..8),
    ) {
        let data = plaintext(len);
        let material = || Sealer::with_material(&KEK, &ctx(), &[5; 32], &[6; 32], &[7; 12]).unwrap();
        let mut sealer = material();
        let mut expected = sealer.header().to_vec();
        for chunk in chunks(&data, &push) {
            sealer.push(chunk, &mut expected).unwrap();
        }
        sealer.finish(&mut expected).unwrap();

        let mut parts = material().into_part_sealer(segments_per_part).unwrap();
        let mut got = Vec::new();
        for chunk in chunks(&data, &fill) {
            let mut rest = chunk;
            while !rest.is_empty() {
                let n = parts.fill(rest);
                rest = &rest[n..];
                if !rest.is_empty() {
                    let part = parts.seal_part(Vec::new()).unwrap();
                    // Every part but the last is the same size: the header plus whole segments.
                    prop_assert_eq!(part.len() % SEALED_SEGMENT_SIZE, if got.is_empty() { sealer_header_len() % SEALED_SEGMENT_SIZE } else { 0 });
                    got.extend_from_slice(&part);
                }
            }
        }
        got.extend_from_slice(&parts.finish().unwrap());
        prop_assert!(got == expected, "len {} differs", len);
    }
}

/// Splits `data` into chunks of the given sizes (cycled).
fn chunks<'a>(data: &'a [u8], sizes: &'a [usize]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = data;
    let mut i = 0;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = sizes[i % sizes.len()].clamp(1, rest.len());
        i += 1;
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Some(head)
    })
}

fn sealer_header_len() -> usize {
    Sealer::new(&KEK, &ctx()).unwrap().header().len()
}
