//! The fuzzed logic, kept in a library so that it also builds and runs on stable.
//!
//! Two modes, chosen by the first input byte:
//! * raw: the rest of the input is an object; parse, unlock with the fixed KEK, open.
//! * mutate: a genuine object (plaintext from the input) is altered by input-driven edits
//!   (byte flips, truncation, appended bytes, segment splices), then opened with input-driven
//!   chunking. Opening must fail, or yield exactly the original plaintext.
#![forbid(unsafe_code)]

use eugate::crypto::{Header, ObjectContext, Opener, SEALED_SEGMENT_SIZE, Sealer};

const KEK: [u8; 32] = [0x5e; 32];

fn ctx() -> ObjectContext {
    ObjectContext {
        tenant: "fuzz".into(),
        key_id: "fuzz-key".into(),
        key_version: 1,
        object_id: [7; 16],
        external: None,
    }
}

/// Opens `object` feeding chunks of the sizes in `chunking` (cycled; 0 means 1).
fn open(object: &[u8], chunking: &[u8]) -> Option<Vec<u8>> {
    let header = Header::parse(object).ok()?;
    let _ = header.expect_context(&ctx());
    let key = header.unlock(&KEK).ok()?;
    let mut opener = Opener::new(key);
    let mut out = Vec::new();
    let mut rest = object.get(header.encoded_len()..)?;
    let mut i = 0;
    while !rest.is_empty() {
        let step = chunking
            .get(i % chunking.len().max(1))
            .map_or(rest.len(), |&b| usize::from(b).max(1) * 1031);
        let n = step.min(rest.len());
        let pushed = opener.push(&rest[..n], &mut out);
        if pushed.is_err() {
            return None;
        }
        rest = &rest[n..];
        i += 1;
    }
    opener.finish(&mut out).ok()?;
    Some(out)
}

pub fn open_object(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if (mode & 1) == 0 {
        // Raw bytes as an object: any result is fine, no panic allowed.
        let _ = open(rest, &[]);
        return;
    }
    // Mutate a genuine object. Layout of `rest`: [len_hi, len_lo, edits..., plaintext...]
    let (Some(&hi), Some(&lo)) = (rest.first(), rest.get(1)) else {
        return;
    };
    let edit_len = usize::from(lo) % 32;
    let edits = rest.get(2..2 + edit_len).unwrap_or(&[]);
    let seed = rest.get(2 + edit_len..).unwrap_or(&[]);
    // Plaintext up to ~3 segments, repeating the seed so it spans segment boundaries.
    let len = (usize::from(hi) << 10) % (3 * 65536 + 7);
    let plaintext: Vec<u8> = if seed.is_empty() {
        vec![0; len]
    } else {
        seed.iter().copied().cycle().take(len).collect()
    };
    let Ok(mut sealer) = Sealer::with_material(&KEK, &ctx(), &[1; 32], &[2; 32], &[3; 12]) else {
        return;
    };
    let mut object = sealer.header().to_vec();
    if sealer.push(&plaintext, &mut object).is_err() || sealer.finish(&mut object).is_err() {
        return;
    }
    let original = object.clone();
    for e in edits.chunks(3) {
        let (op, a, b) = (e[0], *e.get(1).unwrap_or(&0), *e.get(2).unwrap_or(&0));
        let pos = (((usize::from(a) << 8) | usize::from(b)) * 7) % object.len().max(1);
        match op % 5 {
            0 => {
                if let Some(x) = object.get_mut(pos) {
                    *x ^= op | 1;
                }
            }
            1 => object.truncate(pos),
            2 => object.extend(std::iter::repeat_n(op, usize::from(a) + 1)),
            3 => {
                // Copy a whole sealed segment-sized window from one place to another.
                let from = pos;
                let to = (usize::from(b) * 131) % object.len().max(1);
                let n = SEALED_SEGMENT_SIZE.min(object.len() - from.max(to));
                let window = object[from..from + n].to_vec();
                object[to..to + n].copy_from_slice(&window);
            }
            _ => {
                let cut = pos.min(object.len());
                object.drain(cut..(cut + SEALED_SEGMENT_SIZE).min(object.len()));
            }
        }
    }
    let chunking = rest.get(2..).unwrap_or(&[]);
    match open(&object, chunking) {
        Some(out) => assert!(
            object == original && out == plaintext,
            "an altered object opened, or the plaintext differs"
        ),
        None => assert!(object != original, "a genuine object failed to open"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn smoke() {
        super::open_object(&[]);
        super::open_object(b"\x00EUGATE\x01\x01\x00\x9e");
        for mode in 0..=255u8 {
            super::open_object(&[1, mode, 6, 0, 1, 2, mode, 9, 9, b'x', b'y']);
            super::open_object(&[1, mode, 0, b'a']);
        }
    }
}
