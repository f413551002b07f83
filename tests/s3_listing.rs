//! Listings on a real Garage: with `[storage] legacy_objects = false` the plaintext sizes come
//! from the listed lengths (format version 3's fixed header), with `true` from each file's
//! header; both must show every size exactly, and an older (version 1) object placed in the
//! bucket shows why `true` is the default for stores that may hold one.

mod common;
#[path = "garage/mod.rs"]
mod garage;

use std::collections::BTreeMap;

use common::{Gateway, Options, data};
use eugate::crypto::{Layout, ObjectContext, SEGMENT_SIZE, Sealer};
use garage::Garage;

const BUCKET: &str = "eugate-list";

/// Plaintext sizes across the segment boundaries, the empty file included.
const SIZES: [usize; 8] = [
    0,
    1,
    100,
    SEGMENT_SIZE - 1,
    SEGMENT_SIZE,
    SEGMENT_SIZE + 1,
    3 * SEGMENT_SIZE + 7,
    1_000_000,
];

fn gateway(store: &Garage, legacy_objects: bool) -> Gateway {
    let extra = format!(
        "\n[storage]\nlegacy_objects = {legacy_objects}\n{}{}",
        garage::destination_toml("eu", &store.endpoint(), BUCKET, "eu-central-1", "DE"),
        garage::tenant_toml("eurobank", "eu", &["erin"]),
    );
    Gateway::start_with(Options {
        extra_toml: extra,
        extra_keys: vec!["erin"],
        extra_tenants: vec!["eurobank"],
        env: garage::gateway_env(),
        ..Options::default()
    })
}

/// Name -> size of every file in `/` as OpenSSH's `ls -ln` shows it (from the READDIR attrs).
fn listed(gw: &Gateway) -> BTreeMap<String, u64> {
    let out = gw.sftp_ok("erin", "ls -ln /\n");
    out.lines()
        .filter(|l| l.starts_with('-'))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let name = f.last().unwrap().trim_start_matches('/').to_string();
            (
                name,
                f[4].parse().unwrap_or_else(|_| panic!("size in {l:?}")),
            )
        })
        .collect()
}

/// A version 1 object of `len` plaintext bytes, as an older eugate wrote it. Listing needs
/// only its header to parse, so any KEK will do.
fn legacy_object(len: usize) -> Vec<u8> {
    let ctx = ObjectContext {
        tenant: "eurobank".into(),
        key_id: "eurobank".into(),
        key_version: 1,
        object_id: [9; 16],
        external: None,
    };
    let mut s = Sealer::with_layout_material(
        Layout::Compact,
        &[1; 32],
        &ctx,
        &[2; 32],
        &[3; 32],
        &[4; 12],
    )
    .unwrap();
    let mut out = s.header().to_vec();
    s.push(&vec![0x42; len], &mut out).unwrap();
    s.finish(&mut out).unwrap();
    out
}

#[test]
fn listings_show_exact_sizes_from_lengths_or_headers() {
    let store = Garage::start("eu-central-1", &[BUCKET]);
    let fast = gateway(&store, false);
    let mut puts = String::new();
    let mut want = BTreeMap::new();
    for (i, len) in SIZES.iter().enumerate() {
        let name = format!("f{i}.bin");
        std::fs::write(fast.path(&name), data(*len, i as u64)).unwrap();
        puts.push_str(&format!("put {name} /{name}\n"));
        want.insert(name, *len as u64);
    }
    fast.sftp_ok("erin", &puts);
    // Every object the gateway wrote is version 3: 2048 header bytes, however short.
    let s3 = store.store();
    for (key, len) in s3.objects(BUCKET) {
        let name = key.trim_start_matches("eurobank/");
        assert_eq!(len, eugate::crypto::sealed_len(2048, want[name]), "{key}");
    }
    assert_eq!(listed(&fast), want, "sizes from the listed lengths");
    let reading = gateway(&store, true);
    assert_eq!(listed(&reading), want, "sizes from each header");

    // An older object too short to be version 3: both read its header and agree.
    s3.put(BUCKET, "eurobank/old-short.bin", &legacy_object(100));
    // A longer one: only the header tells its size, so legacy_objects = false shows it short
    // by the difference in header length (documented in docs/object-format.md §11).
    let old = legacy_object(100_000);
    let header_gap = 2048 - eugate::crypto::Header::parse(&old).unwrap().encoded_len() as u64;
    s3.put(BUCKET, "eurobank/old-long.bin", &old);
    want.insert("old-short.bin".into(), 100);
    want.insert("old-long.bin".into(), 100_000);
    assert_eq!(listed(&reading), want, "headers read: every size exact");
    let mut short = want.clone();
    short.insert("old-long.bin".into(), 100_000 - header_gap);
    assert_eq!(listed(&fast), short);
}

/// A directory of more than one store page (ListObjectsV2 returns up to 1,000 keys): the
/// gateway lists it a page at a time as the client reads on, and every entry comes out once.
#[test]
fn a_directory_of_several_store_pages_lists_every_entry_once() {
    let store = Garage::start("eu-central-1", &[BUCKET]);
    let gw = gateway(&store, false);
    let s3 = store.store();
    // Version 3 lengths of a 10-byte file: listed from the length, no object read.
    let body = vec![0u8; eugate::crypto::sealed_len(2048, 10) as usize];
    const FILES: usize = 2_100;
    for i in 0..FILES {
        s3.put(BUCKET, &format!("eurobank/p{i:05}.bin"), &body);
    }
    s3.put(BUCKET, "eurobank/sub/inner.bin", &body);
    let names = listed(&gw);
    assert_eq!(names.len(), FILES, "every file once");
    assert!(names.values().all(|s| *s == 10), "sizes from the lengths");
    let want: Vec<String> = (0..FILES).map(|i| format!("p{i:05}.bin")).collect();
    assert_eq!(names.keys().cloned().collect::<Vec<_>>(), want);
    // The sub-directory between the pages' files is listed too.
    let out = gw.sftp_ok("erin", "ls -l /\n");
    assert_eq!(
        out.lines().filter(|l| l.starts_with('d')).count(),
        1,
        "{out}"
    );
}
