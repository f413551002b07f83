//! Known-answer vectors: the object format may never drift silently.
//!
//! `tests/vectors/object-v1.json` (version 1, keyring KEK), `tests/vectors/object-v2.json`
//! (version 2, hold-your-own-key: the data key wrapped under a per-object key W that a provider
//! wrapped) and `tests/vectors/object-v3.json` (version 3: both kinds in a fixed-length header)
//! were generated once by this file and are asserted byte for byte.
//! To regenerate (only for a deliberate, reviewed change before a version is released — never for
//! a released version; a format change is a new version with its own file):
//!
//! ```sh
//! EUGATE_REGEN_VECTORS=1 cargo test --test crypto_vectors   # writes the file, then fails on purpose
//! git diff tests/vectors/                                   # review
//! cargo test --test crypto_vectors                          # passes against the new file
//! ```

use std::path::PathBuf;

use eugate::crypto::vector_internals::derive_raw;
use eugate::crypto::{
    ExternalKey, Header, Layout, ObjectContext, Opener, SEALED_SEGMENT_SIZE, SEGMENT_SIZE, Sealer,
    external_key_context,
};
use serde::{Deserialize, Serialize};

/// Vectors whose ciphertext is stored in full; larger ones store a SHA-256 and every tag.
const FULL_HEX_LIMIT: usize = 4096;

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct VectorFile {
    format: String,
    plaintext_rule: String,
    regenerate: String,
    /// What the fields mean where they differ from version 1 (version 2 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fields: Option<String>,
    vectors: Vec<Vector>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Vector {
    name: String,
    kek: String,
    data_key: String,
    salt: String,
    wrap_nonce: String,
    tenant: String,
    key_id: String,
    key_version: u32,
    // Version 2 only: provider kind byte, provider blob (hex) and the provider context (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    provider: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    blob: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    provider_context: Option<String>,
    object_id: String,
    plaintext_len: usize,
    // Key schedule outputs, for independent implementations.
    payload_key: String,
    nonce_prefix: String,
    commitment: String,
    header: String,
    sealed_len: usize,
    ciphertext_sha256: String,
    segment_tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ciphertext: Option<String>,
}

struct Input {
    name: &'static str,
    /// The tenant KEK (version 1) or the object key W (version 2).
    kek: [u8; 32],
    data_key: [u8; 32],
    salt: [u8; 32],
    wrap_nonce: [u8; 12],
    ctx: ObjectContext,
    plaintext_len: usize,
}

fn counting(start: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| start.wrapping_add(i as u8)).collect()
}

fn arr<const N: usize>(v: Vec<u8>) -> [u8; N] {
    v.try_into().unwrap()
}

fn inputs_v1() -> Vec<Input> {
    let ctx = |tenant: &str, key_id: &str, key_version, object_id: u8| ObjectContext {
        tenant: tenant.into(),
        key_id: key_id.into(),
        key_version,
        object_id: arr(counting(object_id, 16)),
        external: None,
    };
    let base = |name, plaintext_len, c: ObjectContext| Input {
        name,
        kek: arr(counting(0x00, 32)),
        data_key: arr(counting(0x20, 32)),
        salt: arr(counting(0x40, 32)),
        wrap_nonce: arr(counting(0x60, 12)),
        ctx: c,
        plaintext_len,
    };
    let acme = || ctx("acme-gmbh", "acme-kek", 1, 0x80);
    let mut v = vec![
        base("empty", 0, acme()),
        base("one-byte", 1, acme()),
        base("short", 100, acme()),
        base("segment-minus-one", SEGMENT_SIZE - 1, acme()),
        base("one-full-segment", SEGMENT_SIZE, acme()),
        base("segment-plus-one", SEGMENT_SIZE + 1, acme()),
        base("three-segments", 2 * SEGMENT_SIZE + 1000, acme()),
    ];
    // Different tenant, key id, version and key material: the header changes everywhere.
    v.push(Input {
        name: "other-tenant-unicode",
        kek: [0xff; 32],
        data_key: [0x01; 32],
        salt: [0x02; 32],
        wrap_nonce: [0x03; 12],
        ctx: ctx("bäckerei-müller", "k", 4_000_000_000, 0xf0),
        plaintext_len: 17,
    });
    v
}

fn inputs_v2() -> Vec<Input> {
    let transit_blob = format!(
        "vault:v3:{}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            counting(0xd0, 60)
        )
    );
    let transit = || ObjectContext {
        tenant: "acme-gmbh".into(),
        key_id: "acme-transit".into(),
        key_version: 3,
        object_id: arr(counting(0x80, 16)),
        external: Some(ExternalKey {
            provider: 0x02,
            blob: transit_blob.clone().into_bytes(),
        }),
    };
    let base = |name, plaintext_len, c: ObjectContext| Input {
        name,
        kek: arr(counting(0xa0, 32)),
        data_key: arr(counting(0x20, 32)),
        salt: arr(counting(0x40, 32)),
        wrap_nonce: arr(counting(0x60, 12)),
        ctx: c,
        plaintext_len,
    };
    let mut v = vec![
        base("transit-empty", 0, transit()),
        base("transit-one-byte", 1, transit()),
        base("transit-short", 100, transit()),
        base("transit-one-full-segment", SEGMENT_SIZE, transit()),
        base("transit-segment-plus-one", SEGMENT_SIZE + 1, transit()),
        base("transit-three-segments", 2 * SEGMENT_SIZE + 1000, transit()),
    ];
    // A binary blob shaped like the PKCS#11 provider's (nonce ‖ ciphertext ‖ tag).
    v.push(base(
        "pkcs11-binary-blob",
        17,
        ObjectContext {
            tenant: "acme-gmbh".into(),
            key_id: "hsm".into(),
            key_version: 1,
            object_id: arr(counting(0x90, 16)),
            external: Some(ExternalKey {
                provider: 0x01,
                blob: counting(0x10, 60),
            }),
        },
    ));
    // Largest blob, other tenant, key material everywhere different.
    v.push(Input {
        name: "aws-kms-max-blob-unicode-tenant",
        kek: [0xff; 32],
        data_key: [0x01; 32],
        salt: [0x02; 32],
        wrap_nonce: [0x03; 12],
        ctx: ObjectContext {
            tenant: "bäckerei-müller".into(),
            key_id: "kms-eu".into(),
            key_version: 4_000_000_000,
            object_id: arr(counting(0xf0, 16)),
            external: Some(ExternalKey {
                provider: 0x03,
                blob: counting(0x00, 1024),
            }),
        },
        plaintext_len: 17,
    });
    v
}

/// One vector file and the inputs it was generated from.
struct Set {
    file: &'static str,
    layout: Layout,
    format: &'static str,
    fields: Option<&'static str>,
    inputs: fn() -> Vec<Input>,
}

const V1: Set = Set {
    file: "tests/vectors/object-v1.json",
    layout: Layout::Compact,
    format: "eugate object format v1 (docs/object-format.md)",
    fields: None,
    inputs: inputs_v1,
};

const V2: Set = Set {
    file: "tests/vectors/object-v2.json",
    layout: Layout::Compact,
    format: "eugate object format v2, hold-your-own-key (docs/object-format.md, Version 2)",
    fields: Some(
        "kek = the object key W (what the provider wrapped; the data key is wrapped under it); \
         provider = provider kind byte; blob = the provider's wrapped W (hex, opaque to eugate); \
         provider_context = external_key_context(tenant, object_id) (hex), the context the \
         provider bound to the blob; key_id = the provider's name; key_version = the provider \
         key's version",
    ),
    inputs: inputs_v2,
};

/// Version 3: the inputs of both earlier files, in the fixed-length header.
fn inputs_v3() -> Vec<Input> {
    inputs_v1().into_iter().chain(inputs_v2()).collect()
}

const V3: Set = Set {
    file: "tests/vectors/object-v3.json",
    layout: Layout::Fixed,
    format: "eugate object format v3, fixed-length header (docs/object-format.md, Version 3)",
    fields: Some(
        "vectors without provider: kek = the keyring KEK (provider kind 0x00 in the header, no \
         blob); with provider: as in object-v2.json (kek = the object key W, blob = the \
         provider's wrapped W, provider_context = external_key_context(tenant, object_id)). \
         Every header is 2048 bytes",
    ),
    inputs: inputs_v3,
};

const SETS: [&Set; 3] = [&V1, &V2, &V3];

/// Plaintext rule: byte i = i mod 251.
fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, b))
}

fn seal(layout: Layout, input: &Input, push: usize) -> Vec<u8> {
    let mut s = Sealer::with_layout_material(
        layout,
        &input.kek,
        &input.ctx,
        &input.data_key,
        &input.salt,
        &input.wrap_nonce,
    )
    .unwrap();
    let mut out = s.header().to_vec();
    for chunk in plaintext(input.plaintext_len).chunks(push) {
        s.push(chunk, &mut out).unwrap();
    }
    s.finish(&mut out).unwrap();
    out
}

fn tags(object: &[u8], header_len: usize) -> Vec<String> {
    object[header_len..]
        .chunks(SEALED_SEGMENT_SIZE)
        .map(|s| hex::encode(&s[s.len() - 16..]))
        .collect()
}

fn generate(set: &Set) -> VectorFile {
    let vectors =
        (set.inputs)()
            .iter()
            .map(|i| {
                let object = seal(set.layout, i, 1 << 20);
                let header_len = Header::parse(&object).unwrap().encoded_len();
                let raw = derive_raw(&i.data_key, &i.salt).unwrap();
                Vector {
                    name: i.name.into(),
                    kek: hex::encode(i.kek),
                    data_key: hex::encode(i.data_key),
                    salt: hex::encode(i.salt),
                    wrap_nonce: hex::encode(i.wrap_nonce),
                    tenant: i.ctx.tenant.clone(),
                    key_id: i.ctx.key_id.clone(),
                    key_version: i.ctx.key_version,
                    provider: i.ctx.external.as_ref().map(|e| e.provider),
                    blob: i.ctx.external.as_ref().map(|e| hex::encode(&e.blob)),
                    provider_context: i.ctx.external.as_ref().map(|_| {
                        hex::encode(external_key_context(&i.ctx.tenant, &i.ctx.object_id))
                    }),
                    object_id: hex::encode(i.ctx.object_id),
                    plaintext_len: i.plaintext_len,
                    payload_key: hex::encode(*raw.payload_key),
                    nonce_prefix: hex::encode(*raw.nonce_prefix),
                    commitment: hex::encode(raw.commitment),
                    header: hex::encode(&object[..header_len]),
                    sealed_len: object.len(),
                    ciphertext_sha256: sha256_hex(&object),
                    segment_tags: tags(&object, header_len),
                    ciphertext: (object.len() <= FULL_HEX_LIMIT).then(|| hex::encode(&object)),
                }
            })
            .collect();
    VectorFile {
        format: set.format.into(),
        plaintext_rule: "plaintext byte i = i mod 251".into(),
        regenerate:
            "EUGATE_REGEN_VECTORS=1 cargo test --test crypto_vectors, then review git diff; \
                     never for a released version"
                .into(),
        fields: set.fields.map(Into::into),
        vectors,
    }
}

fn path(set: &Set) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(set.file)
}

fn load(set: &Set) -> VectorFile {
    let file = path(set);
    if std::env::var_os("EUGATE_REGEN_VECTORS").is_some_and(|v| v == "1") {
        // Tests run in parallel: write every file, once.
        static WRITTEN: std::sync::OnceLock<()> = std::sync::OnceLock::new();
        WRITTEN.get_or_init(|| {
            for set in SETS {
                let json = serde_json::to_string_pretty(&generate(set)).unwrap() + "\n";
                std::fs::write(path(set), json).unwrap();
            }
        });
        panic!(
            "EUGATE_REGEN_VECTORS=1: rewrote tests/vectors/object-v*.json (this was {}); review `git diff tests/vectors/` and rerun \
             without the variable (this test fails on purpose so it never passes while regenerating)",
            file.display()
        );
    }
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; generate it once with EUGATE_REGEN_VECTORS=1",
            file.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

#[test]
fn sealing_reproduces_the_stored_vectors_byte_for_byte() {
    for set in SETS {
        let stored = load(set);
        let fresh = generate(set);
        assert_eq!(stored, fresh, "{}: header fields drifted", set.file);
        assert_eq!(stored.vectors.len(), fresh.vectors.len());
        for (s, f) in stored.vectors.iter().zip(&fresh.vectors) {
            assert_eq!(s, f, "vector `{}` drifted", s.name);
        }
    }
}

#[test]
fn the_stored_files_are_exactly_what_the_generator_writes() {
    // Byte for byte, not only as parsed JSON: old versions' files never change.
    for set in SETS {
        load(set); // fails on purpose while regenerating
        let stored = std::fs::read_to_string(path(set)).unwrap();
        let fresh = serde_json::to_string_pretty(&generate(set)).unwrap() + "\n";
        assert!(stored == fresh, "{} differs from the generator", set.file);
    }
}

#[test]
fn each_file_holds_only_its_version() {
    for (set, version) in [(&V1, 1u8), (&V2, 2u8), (&V3, 3u8)] {
        for v in load(set).vectors {
            let header = hex::decode(&v.header).unwrap();
            assert_eq!(header[6], version, "{}", v.name);
            match version {
                1 => assert!(v.provider.is_none(), "{}", v.name),
                2 => assert!(v.provider.is_some(), "{}", v.name),
                _ => assert_eq!(header.len(), 2048, "{}", v.name),
            }
        }
    }
}

#[test]
fn push_chunking_does_not_change_the_bytes() {
    for set in SETS {
        let stored = load(set);
        for (input, v) in (set.inputs)().iter().zip(&stored.vectors) {
            for push in [1, 7, SEGMENT_SIZE, SEGMENT_SIZE + 1, 255 * 1024] {
                if push == 1 && input.plaintext_len > 2 * SEGMENT_SIZE {
                    continue; // byte-at-a-time over 130 KiB is covered by the smaller vectors
                }
                let object = seal(set.layout, input, push);
                assert_eq!(
                    sha256_hex(&object),
                    v.ciphertext_sha256,
                    "{} push {push}",
                    v.name
                );
            }
        }
    }
}

#[test]
fn stored_ciphertexts_open_to_the_plaintext_rule() {
    for set in SETS {
        stored_ciphertexts_open(set);
    }
}

fn stored_ciphertexts_open(set: &Set) {
    for v in load(set).vectors {
        let input = (set.inputs)()
            .into_iter()
            .find(|i| i.name == v.name)
            .unwrap();
        let object = match &v.ciphertext {
            Some(hex) => hex::decode(hex).unwrap(),
            None => seal(set.layout, &input, 1 << 20),
        };
        assert_eq!(sha256_hex(&object), v.ciphertext_sha256);
        assert_eq!(object.len(), v.sealed_len);
        let header = Header::parse(&object).unwrap();
        assert_eq!(header.encoded(), hex::decode(&v.header).unwrap());
        assert_eq!(header.context(), &input.ctx);
        if let Some(ext) = &header.context().external {
            assert_eq!(Some(ext.provider), v.provider);
            assert_eq!(Some(hex::encode(&ext.blob)), v.blob);
            assert_eq!(
                Some(hex::encode(external_key_context(
                    &header.context().tenant,
                    &header.context().object_id
                ))),
                v.provider_context
            );
        }
        let kek: [u8; 32] = arr(hex::decode(&v.kek).unwrap());
        let mut wrong = kek;
        wrong[0] ^= 1;
        assert!(header.unlock(&wrong).is_err(), "{}", v.name);
        let mut opener = Opener::new(header.unlock(&kek).unwrap());
        let mut out = Vec::new();
        opener
            .push(&object[header.encoded_len()..], &mut out)
            .unwrap();
        opener.finish(&mut out).unwrap();
        assert_eq!(out, plaintext(v.plaintext_len), "{}", v.name);
    }
}

/// Seals through the zero-copy part buffer (the upload path), `push` bytes per fill call.
fn seal_by_parts(layout: Layout, input: &Input, segments_per_part: usize, push: usize) -> Vec<u8> {
    let s = Sealer::with_layout_material(
        layout,
        &input.kek,
        &input.ctx,
        &input.data_key,
        &input.salt,
        &input.wrap_nonce,
    )
    .unwrap();
    let mut parts = s.into_part_sealer(segments_per_part).unwrap();
    let mut out = Vec::new();
    for chunk in plaintext(input.plaintext_len).chunks(push) {
        let mut rest = chunk;
        while !rest.is_empty() {
            let n = parts.fill(rest);
            rest = &rest[n..];
            if !rest.is_empty() {
                out.extend_from_slice(&parts.seal_part(Vec::new()).unwrap());
            }
        }
    }
    out.extend_from_slice(&parts.finish().unwrap());
    out
}

#[test]
fn part_sealing_reproduces_the_stored_vectors() {
    for set in SETS {
        let stored = load(set);
        for (input, v) in (set.inputs)().iter().zip(&stored.vectors) {
            for segments in [1, 2, 16] {
                for push in [7, SEGMENT_SIZE, SEGMENT_SIZE + 1, 255 * 1024] {
                    let object = seal_by_parts(set.layout, input, segments, push);
                    assert_eq!(
                        sha256_hex(&object),
                        v.ciphertext_sha256,
                        "{}: {segments} segments per part, fill {push}",
                        v.name
                    );
                }
            }
        }
    }
}
