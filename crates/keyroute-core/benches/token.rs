//! Token speed: generating a key, and the offline work done on every presented key
//! (parse + checksum + SHA-256). Target: parse + checksum + hash under 1 µs median.
//!
//! Run with `cargo bench -p keyroute-core --bench token`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use keyroute_core::{CredentialExtractor, Environment, KeyOptions, KeyType};

fn token(c: &mut Criterion) {
    let format = KeyOptions::default().token_format().unwrap();
    let key = format
        .generate(&KeyType::SECRET, &Environment::LIVE)
        .unwrap();
    let presented = key.expose_secret().to_owned();
    let mut forged = presented.clone();
    forged.replace_range(10..11, if &presented[10..11] == "A" { "B" } else { "A" });
    let header = format!("Bearer {presented}");
    let extractor = CredentialExtractor::default();

    let mut group = c.benchmark_group("token");
    group.bench_function("generate", |b| {
        b.iter(|| format.generate(black_box(&KeyType::SECRET), black_box(&Environment::LIVE)))
    });
    group.bench_function("parse+checksum+sha256", |b| {
        b.iter(|| format.parse(black_box(&presented)).unwrap())
    });
    group.bench_function("reject bad checksum", |b| {
        b.iter(|| format.parse(black_box(&forged)).unwrap_err())
    });
    group.bench_function("extract bearer header", |b| {
        b.iter(|| {
            extractor
                .from_authorization(black_box(header.as_bytes()))
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, token);
criterion_main!(benches);
