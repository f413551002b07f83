//! `decide()` latency: criterion, then a plain timed loop over 100k decisions printing p50/p99.
//! Target: p99 < 50 µs.

use std::time::Instant;

use criterion::{Criterion, black_box, criterion_group};
use eugate::policy::{Classification, Evidence, Location, PolicyBundle, Request};

fn req(tenant: &str, location: Location, c: Option<Classification>) -> Request {
    Request {
        tenant: tenant.into(),
        user: "bench".into(),
        classification: c,
        destination: "bench-dest".into(),
        location,
        evidence: Evidence::Probed,
        key_held_by_tenant: false,
        operator_country: None,
    }
}

/// A mix like production: mostly single-country EU regions, some adequacy/scoped/denied ones,
/// a dual-region and a declared self-hosted store.
fn mix() -> Vec<Request> {
    use Classification::*;
    let r = |s: &str| Location::Region(s.into());
    vec![
        req("acme", r("aws:eu-central-1"), Some(Personal)),
        req("acme", r("hetzner:fsn1"), None),
        req("globex", r("ovhcloud:gra"), Some(SpecialCategory)),
        req("acme", r("aws:us-east-1"), Some(Personal)),
        req("globex", r("aws:eu-west-2"), Some(Internal)),
        req("globex", r("aws:cn-north-1"), Some(Public)),
        req("acme-health", r("aws:eu-west-1"), Some(SpecialCategory)),
        req("globex", r("gcs:eur5"), Some(Personal)),
        req(
            "globex",
            Location::Declared(vec!["DE".into(), "FR".into()]),
            Some(Personal),
        ),
        req("globex", r("aws:xx-unknown-1"), Some(Public)),
    ]
}

fn bench(c: &mut Criterion) {
    let bundle = PolicyBundle::embedded();
    let one = req(
        "acme",
        Location::Region("aws:eu-central-1".into()),
        Some(Classification::Personal),
    );
    c.bench_function("decide/single-country", |b| {
        b.iter(|| bundle.decide(black_box(&one)))
    });
    let eu = req(
        "globex",
        Location::Region("gcs:eu".into()),
        Some(Classification::Personal),
    );
    c.bench_function("decide/gcs-eu-27-countries", |b| {
        b.iter(|| bundle.decide(black_box(&eu)))
    });
    let mix = mix();
    c.bench_function("decide/mix", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % mix.len();
            bundle.decide(black_box(&mix[i]))
        })
    });
}

fn percentiles(label: &str, bundle: &PolicyBundle, reqs: &[Request], n: usize) {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let r = &reqs[i % reqs.len()];
        let t = Instant::now();
        black_box(bundle.decide(black_box(r)));
        samples.push(t.elapsed().as_nanos() as u64);
    }
    samples.sort_unstable();
    let p = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
    println!(
        "policy-decide{label}: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs over {n} decisions",
        p(0.50),
        p(0.99),
        p(1.0)
    );
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    let bundle = PolicyBundle::embedded();
    percentiles("", &bundle, &mix(), 100_000);
    let eu = [req(
        "globex",
        Location::Region("gcs:eu".into()),
        Some(Classification::Personal),
    )];
    percentiles(" (gcs:eu, 27 countries)", &bundle, &eu, 20_000);
}
