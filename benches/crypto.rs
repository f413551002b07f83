//! Object-format throughput beside raw ring AES-256-GCM on the same segment size.
//!
//! `cargo bench --bench crypto` runs criterion, then its own interleaved timed loops, and ends
//! with one line: `crypto-path: seal <X> GB/s, open <Y> GB/s, ring-raw <Z> GB/s, seal/raw <R>`.
//! Under `cargo test --all-targets` it runs once on a small input as a smoke test.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use eugate::crypto::{Header, ObjectContext, Opener, SEGMENT_SIZE, Sealer};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

/// SFTP clients write 255 KiB per request once `limits@openssh.com` is advertised.
const PUSH_CHUNK: usize = 255 * 1024;
/// The transfer layer hands sealed bytes on in parts of at least 8 MiB.
const PART: usize = 8 << 20;
const KEK: [u8; 32] = [7; 32];

fn ctx() -> ObjectContext {
    ObjectContext {
        tenant: "bench-tenant".into(),
        key_id: "bench-key".into(),
        key_version: 1,
        object_id: [1; 16],
    }
}

fn input(len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for chunk in v.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    v
}

/// Seals `data` as the upload path does; `out` is a reused part buffer.
fn seal_object(data: &[u8], out: &mut Vec<u8>) -> usize {
    let mut sealer = Sealer::new(&KEK, &ctx()).expect("sealer");
    let mut total = sealer.header().len();
    out.clear();
    for chunk in data.chunks(PUSH_CHUNK) {
        sealer.push(chunk, out).expect("push");
        if out.len() >= PART {
            total += out.len();
            black_box(&out[..]);
            out.clear();
        }
    }
    sealer.finish(out).expect("finish");
    total + out.len()
}

fn open_object(object: &[u8], out: &mut Vec<u8>) -> usize {
    let header = Header::parse(object).expect("header");
    let mut opener = Opener::new(header.unlock(&KEK).expect("unlock"));
    let mut total = 0;
    out.clear();
    for chunk in object[header.encoded_len()..].chunks(PUSH_CHUNK) {
        opener.push(chunk, out).expect("open");
        if out.len() >= PART {
            total += out.len();
            black_box(&out[..]);
            out.clear();
        }
    }
    opener.finish(out).expect("finish");
    total + out.len()
}

/// Raw ring: seal each 64 KiB segment of the buffer in place, counter nonces, no format.
fn ring_raw(key: &LessSafeKey, buf: &mut [u8]) -> usize {
    let mut tags = 0u8;
    for (i, segment) in buf.chunks_mut(SEGMENT_SIZE).enumerate() {
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&(i as u64).to_be_bytes());
        let tag = key
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(n), Aad::empty(), segment)
            .expect("seal");
        tags ^= tag.as_ref()[0];
    }
    black_box(tags);
    buf.len()
}

fn gbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e9
}

fn main() {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let len = if bench_mode { 64 << 20 } else { 1 << 20 };
    let data = input(len);
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[9; 32]).expect("key"));
    let mut raw_buf = data.clone();
    let mut out = Vec::with_capacity(PART + PUSH_CHUNK + SEGMENT_SIZE);
    let mut object = Vec::new();
    {
        let mut sealer = Sealer::new(&KEK, &ctx()).expect("sealer");
        object.extend_from_slice(sealer.header());
        sealer.push(&data, &mut object).expect("push");
        sealer.finish(&mut object).expect("finish");
    }
    {
        let header = Header::parse(&object).expect("header");
        let mut opener = Opener::new(header.unlock(&KEK).expect("unlock"));
        let mut check = Vec::new();
        opener
            .push(&object[header.encoded_len()..], &mut check)
            .expect("open");
        opener.finish(&mut check).expect("finish");
        assert!(check == data, "round trip failed");
    }

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    {
        let mut g = c.benchmark_group("crypto-64MiB");
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_function("ring-raw-seal-64KiB-segments", |b| {
            b.iter(|| ring_raw(&key, &mut raw_buf))
        });
        g.bench_function("format-seal-255KiB-pushes", |b| {
            b.iter(|| seal_object(&data, &mut out))
        });
        g.bench_function("format-open-255KiB-pushes", |b| {
            b.iter(|| open_object(&object, &mut out))
        });
        g.finish();
    }
    c.final_summary();
    if !bench_mode {
        return;
    }

    // Interleaved rounds so that load from other processes hits all three alike; best of N.
    let rounds = 9;
    let (mut raw, mut seal, mut open) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        black_box(ring_raw(&key, &mut raw_buf));
        raw.push(gbps(len, t.elapsed()));
        let t = Instant::now();
        black_box(seal_object(&data, &mut out));
        seal.push(gbps(len, t.elapsed()));
        let t = Instant::now();
        black_box(open_object(&object, &mut out));
        open.push(gbps(len, t.elapsed()));
    }
    let best = |v: &[f64]| v.iter().cloned().fold(0.0, f64::max);
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (b_raw, b_seal, b_open) = (best(&raw), best(&seal), best(&open));
    println!(
        "timed loops ({rounds} interleaved rounds of 64 MiB): median seal {:.2}, open {:.2}, ring-raw {:.2} GB/s",
        median(&mut seal),
        median(&mut open),
        median(&mut raw)
    );
    println!(
        "crypto-path: seal {b_seal:.2} GB/s, open {b_open:.2} GB/s, ring-raw {b_raw:.2} GB/s, seal/raw {:.2}",
        b_seal / b_raw
    );
}
