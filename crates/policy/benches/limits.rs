//! The cost of a rate-limit check on the request path: admit, then release.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use switchyard_policy::{Limiter, Limits};

fn limits(c: &mut Criterion) {
    let limiter = Limiter::default();
    let limits = Limits { rpm: Some(u64::MAX / 2), tpm: Some(u64::MAX / 2), concurrency: Some(1_000_000) };
    // A realistic number of keys, so the scope lookup is not a one-entry map.
    for i in 0..1000 {
        drop(limiter.admit(&format!("key-{i}"), &limits, 1));
    }
    c.bench_function("limiter_admit_settle_release", |b| {
        b.iter(|| {
            let mut a = limiter.admit("key-500", &limits, 1200).unwrap();
            a.settle(900);
        })
    });
}

criterion_group!(benches, limits);
criterion_main!(benches);
