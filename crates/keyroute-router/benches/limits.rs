//! What a usage limit costs on the request path, against the `governor` crate (the
//! keyed GCRA limiter Rust services reach for) on the same workload.
//!
//! - `limit_check/local_one` vs `limit_check/governor_one`: one limit, one hot key
//!   (target: at most 100 ns per limit).
//! - `limit_check/local_10k` vs `limit_check/governor_10k`: one limit over 10 000 keys
//!   in a scattered order (each key checked once per 10 000 checks).
//! - `pipeline/admit_one_limit` vs `pipeline/admit_no_limit`: the limiter step of the
//!   request pipeline with one default limit (choosing the limits, naming the counter,
//!   checking), against the same step when no limit applies.
//!
//! Run with `cargo bench -p keyroute-router --bench limits`.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::hint::black_box;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use criterion::Criterion;
use governor::{Quota, RateLimiter};
use keyroute_core::limits::{Gcra, RateLimit};
use keyroute_core::{ApiKey, Environment, KeyHash, KeyId, KeyType, Principal};
use keyroute_router::limits::{Check, DefaultLimit, Limiter, LimitsConfig, LocalLimiter};
use keyroute_store::MemoryStore;
use keyroute_testing::bench::{criterion_dir, ratio_line};

/// A limit nobody reaches in a benchmark: every check is admitted, as most are.
const PER_SECOND: u32 = 1_000_000_000;

fn keys(n: usize) -> Vec<String> {
    // A scattered order: consecutive checks land on unrelated keys.
    let mut keys: Vec<String> = (0..n)
        .map(|i| format!("key:live:{i:08}:requests"))
        .collect();
    keys.sort_by_key(|k| k.bytes().rev().collect::<Vec<_>>());
    keys
}

fn bench_checks(c: &mut Criterion) {
    let quota = Quota::per_second(NonZeroU32::new(PER_SECOND).unwrap());
    let gcra = Gcra::new(
        u64::from(PER_SECOND),
        Duration::from_secs(1),
        u64::from(PER_SECOND),
    );
    let mut group = c.benchmark_group("limit_check");
    let local = LocalLimiter::new(100_000);
    let one = "key:live:k1:requests";
    group.bench_function("local_one", |b| {
        b.iter(|| {
            black_box(local.check(
                &[Check {
                    subject: black_box(one),
                    gcra,
                }],
                1,
            ))
        });
    });
    let governor = RateLimiter::keyed(quota);
    let one_owned = one.to_owned();
    group.bench_function("governor_one", |b| {
        b.iter(|| black_box(governor.check_key(black_box(&one_owned)).is_ok()));
    });
    let many = keys(10_000);
    let mut i = 0;
    group.bench_function("local_10k", |b| {
        b.iter(|| {
            i = (i + 1) % many.len();
            black_box(local.check(
                &[Check {
                    subject: &many[i],
                    gcra,
                }],
                1,
            ))
        });
    });
    let governor = RateLimiter::keyed(quota);
    let mut j = 0;
    group.bench_function("governor_10k", |b| {
        b.iter(|| {
            j = (j + 1) % many.len();
            black_box(governor.check_key(&many[j]).is_ok())
        });
    });
    group.finish();
}

fn bench_pipeline(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = ApiKey::new(
        KeyId::random(),
        KeyType::SECRET,
        Environment::LIVE,
        KeyHash::of("bench"),
        "sk_live_…",
        chrono::Utc::now(),
    );
    let caller = Principal::from_api_key(Arc::new(key), None);
    let store = MemoryStore::new();
    let mut config = LimitsConfig::default();
    let none = Limiter::in_process(&config);
    let limit = RateLimit::new("requests", u64::from(PER_SECOND), Duration::from_secs(1)).unwrap();
    config.default.push(DefaultLimit::new(limit));
    let one = Limiter::in_process(&config);
    let now = chrono::Utc::now();
    let mut group = c.benchmark_group("pipeline");
    group.bench_function("admit_no_limit", |b| {
        b.iter(|| {
            rt.block_on(none.admit(&store, caller.clone(), 1, now))
                .unwrap()
        });
    });
    group.bench_function("admit_one_limit", |b| {
        b.iter(|| {
            rt.block_on(one.admit(&store, caller.clone(), 1, now))
                .unwrap()
        });
    });
    group.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_checks(&mut c);
    bench_pipeline(&mut c);
    c.final_summary();
    let dir = criterion_dir(env!("CARGO_TARGET_TMPDIR"));
    println!("\nratios (criterion medians of this run):");
    for (label, what, base) in [
        ("one hot key", "local_one", "governor_one"),
        ("10 000 keys", "local_10k", "governor_10k"),
    ] {
        println!(
            "  {}",
            ratio_line(&dir, label, ("limit_check", what), ("limit_check", base))
        );
    }
    println!(
        "  {}",
        ratio_line(
            &dir,
            "limiter step",
            ("pipeline", "admit_one_limit"),
            ("pipeline", "admit_no_limit")
        )
    );
    match keyroute_testing::bench::median(&dir, "limit_check", "local_one") {
        Some(m) => println!("  in-process check, one limit: {m:?} (target: at most 100 ns)"),
        None => println!("  in-process check: no estimate"),
    }
}
