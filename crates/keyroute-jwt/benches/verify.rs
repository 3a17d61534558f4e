//! Verification speed: the whole `TokenVerifier::verify` path (length cap, header, pinned
//! algorithm, signature, claims, principal) for an exchanged token with realistic
//! claims, per algorithm. Targets: HS256 ≤ 5 µs median, EdDSA ≤ 80 µs.
//!
//! The deny-list check is off except in the `hs256 + deny-list (cached)` row, which
//! verifies against a memory store's deny-list with a warm cache.
//!
//! Run with `cargo bench -p keyroute-jwt --bench verify`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use keyroute_core::{
    AuthMethod, Environment, KeyId, KeyType, Principal, Scopes, Tenant, TokenVerifier, UserId,
};
use keyroute_jwt::{JwtAlgorithm, JwtConfig, JwtService, SigningKey};
use keyroute_store::MemoryStore;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// What an API key principal looks like when it is exchanged.
fn principal() -> Principal {
    Principal::from_claims(AuthMethod::ApiKey, Environment::LIVE)
        .with_key_id(Some(KeyId::random()))
        .with_key_type(Some(KeyType::SECRET))
        .with_user_id(Some(UserId::new("user-1234").unwrap()))
        .with_tenant(Some(Tenant::new("acme").unwrap()))
        .with_scopes(Scopes::parse(["orders:read", "orders:write", "users:read"]).unwrap())
}

fn service(key: SigningKey, config: JwtConfig, store: Option<Arc<MemoryStore>>) -> JwtService {
    let mut builder = JwtService::builder(config).signing_key(key);
    if let Some(store) = store {
        builder = builder.deny_list(store);
    }
    builder.build().unwrap()
}

fn verify(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let off = || JwtConfig::default().with_deny_list_check(false);
    let mut cases: Vec<(&str, JwtService)> = vec![
        (
            "hs256",
            service(SigningKey::generate_hs256("hs").unwrap(), off(), None),
        ),
        (
            "eddsa",
            service(
                SigningKey::from_pem("ed", JwtAlgorithm::EdDsa, &fixture("ed_private.pem"))
                    .unwrap(),
                off(),
                None,
            ),
        ),
        (
            "es256",
            service(
                SigningKey::from_pem("es", JwtAlgorithm::Es256, &fixture("ec_private.pem"))
                    .unwrap(),
                off(),
                None,
            ),
        ),
        (
            "rs256 (2048-bit)",
            service(
                SigningKey::from_pem("rs", JwtAlgorithm::Rs256, &fixture("rsa_private.pem"))
                    .unwrap(),
                off(),
                None,
            ),
        ),
    ];
    cases.push((
        "hs256 + deny-list (cached)",
        service(
            SigningKey::generate_hs256("hs").unwrap(),
            JwtConfig::default().with_deny_cache(Duration::from_secs(3600), 10_000),
            Some(Arc::new(MemoryStore::new())),
        ),
    ));

    let principal = principal();
    let mut group = c.benchmark_group("verify");
    for (name, jwt) in &cases {
        let token = jwt.exchange(&principal).unwrap();
        let token = token.token.expose_secret().to_owned();
        // Warm the deny cache, and check the token is good.
        runtime.block_on(jwt.verify(&token)).unwrap();
        group.bench_function(*name, |b| {
            b.to_async(&runtime)
                .iter(|| async { jwt.verify(black_box(&token)).await.unwrap() })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("issue");
    let (_, hs) = &cases[0];
    group.bench_function("hs256 exchange", |b| {
        b.iter(|| hs.exchange(black_box(&principal)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
