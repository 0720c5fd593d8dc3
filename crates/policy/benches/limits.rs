//! The cost of a rate-limit check and of a budget reservation on the request path: admit or
//! reserve, then settle and release.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use switchyard_policy::{Budget, BudgetScope, Budgets, Limiter, Limits, Owner, Period, nanos};

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

fn budgets(c: &mut Criterion) {
    let books = Budgets::default();
    let scope = |owner, name: &str| BudgetScope {
        owner,
        name: name.to_string(),
        budget: Budget { max: nanos(1e9), period: Period::Monthly, alerts: vec![0.5, 0.8] },
    };
    let scopes = [scope(Owner::Key, "key-500"), scope(Owner::Team, "team-5")];
    for i in 0..1000 {
        drop(books.reserve(&[scope(Owner::Key, &format!("key-{i}"))], 1, 0));
    }
    let now = 1_764_000_000_000_000;
    c.bench_function("budget_reserve_settle_key_and_team", |b| {
        b.iter(|| {
            let mut r = books.reserve(&scopes, nanos(0.013), now).unwrap();
            r.settle(nanos(0.010), now);
        })
    });
}

criterion_group!(benches, limits, budgets);
criterion_main!(benches);
