//! What keyroute adds to a request, measured against what a request costs anyway.
//!
//! - `cached/resolve`: a cached API key resolved to a principal (target: at most
//!   400 ns); `cached/resolve_10k`: the same over 10 000 cached keys in a scattered
//!   order.
//! - `<db>_<check>/connect` vs `<db>_<check>/pool_get`: authenticate (cached) + route +
//!   take a connection, against a bare `get()` on the very same pool (target: at most
//!   5 % more), with the default `Verified` checkout check and with `Fast`.
//! - `postgres_uncached/resolve` vs `postgres_uncached/indexed_select`: a resolve with
//!   no cache (one lookup, which also loads the owner) against a bare diesel
//!   `SELECT id ... WHERE hash = $1` through the same pool (target: at most 1.3 x).
//!
//! Run with `bash scripts/bench router` (brings up Docker for PostgreSQL).
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::Criterion;
use diesel_async::RunQueryDsl;
use http::HeaderMap;
use keyroute_core::{Environment, KeyOptions, KeyService, KeyType, NewUser, PlaintextKey};
use keyroute_router::{ConnectionRouter, Gateway, IncomingRequest, KeyResolver};
use keyroute_store::{Backend, MemoryStore, PoolSettings, RecyclingCheck};
use keyroute_testing::TestDatabase;
use keyroute_testing::bench::{criterion_dir, ratio_line};
use tokio::runtime::Runtime;

fn options(cache: bool) -> KeyOptions {
    let mut options = KeyOptions::default();
    options.session_cache_duration = cache.then(|| Duration::from_secs(600));
    options
}

fn bearer(key: &PlaintextKey) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {}", key.expose_secret()).parse().unwrap(),
    );
    headers
}

/// A user and their live key in `store`.
async fn live_key<S: keyroute_core::Store + Clone>(store: S, cache: bool) -> (S, PlaintextKey) {
    let service = KeyService::new(store, options(cache)).unwrap();
    let ada = service.register_user(NewUser::named("ada")).await.unwrap();
    let key = ada
        .key(&KeyType::SECRET, &Environment::LIVE)
        .unwrap()
        .plaintext
        .clone();
    (service.store().clone(), key)
}

fn bench_cached_resolve(c: &mut Criterion, rt: &Runtime) {
    let (store, key) = rt.block_on(live_key(Arc::new(MemoryStore::new()), true));
    let resolver = rt.block_on(async {
        KeyResolver::builder(store, options(true))
            .dangerous_cache_without_feed()
            .build()
            .unwrap()
    });
    rt.block_on(resolver.resolve(key.expose_secret())).unwrap();
    // 10 000 keys in the cache, resolved in a scattered order: what a service with
    // many callers sees (a cache's bookkeeping and memory misses show here, not above).
    let (many_store, many) = rt.block_on(many_live_keys(10_000));
    let many_resolver = rt.block_on(async {
        KeyResolver::builder(many_store, options(true))
            .dangerous_cache_without_feed()
            .build()
            .unwrap()
    });
    for key in &many {
        rt.block_on(many_resolver.resolve(key.expose_secret()))
            .unwrap();
    }
    let mut g = c.benchmark_group("cached");
    g.bench_function("resolve", |b| {
        b.to_async(rt)
            .iter(|| resolver.resolve(black_box(key.expose_secret())))
    });
    let mut next = 0usize;
    g.bench_function("resolve_10k", |b| {
        b.to_async(rt).iter(|| {
            // A stride coprime with 10 000 visits every key, far from the last one.
            next = (next + 7_919) % many.len();
            many_resolver.resolve(black_box(many[next].expose_secret()))
        })
    });
    g.finish();
}

/// `count` users' live keys in one memory store.
async fn many_live_keys(count: usize) -> (Arc<MemoryStore>, Vec<PlaintextKey>) {
    let store = Arc::new(MemoryStore::new());
    let service = KeyService::new(Arc::clone(&store), options(true)).unwrap();
    let mut keys = Vec::with_capacity(count);
    for n in 0..count {
        let user = service
            .register_user(NewUser::named(format!("user{n}")))
            .await
            .unwrap();
        let live = user.key(&KeyType::SECRET, &Environment::LIVE).unwrap();
        keys.push(live.plaintext.clone());
    }
    (store, keys)
}

/// `connect` (authenticate + route + checkout) against a bare checkout on the same pool.
fn bench_connect<B: Backend>(
    c: &mut Criterion,
    rt: &Runtime,
    group: &str,
    db: &TestDatabase<B>,
    check: RecyclingCheck,
) {
    let (store, key) = rt.block_on(live_key(Arc::new(MemoryStore::new()), true));
    let mut settings = PoolSettings::default();
    settings.recycling_check = check;
    let router = ConnectionRouter::<B>::builder()
        .pool_settings(settings)
        .connection("live", db.url().clone())
        .build()
        .unwrap();
    let gateway = rt.block_on(async {
        Gateway::new(
            KeyResolver::builder(store, options(true))
                .dangerous_cache_without_feed()
                .build()
                .unwrap(),
            router,
        )
    });
    let pool = rt
        .block_on(async { gateway.router().pool_named("live") })
        .unwrap();
    let headers = bearer(&key);
    let request = IncomingRequest::new(&headers).over_tls(true);
    rt.block_on(gateway.connect(&request)).unwrap();
    let mut g = c.benchmark_group(group);
    g.bench_function("pool_get", |b| {
        b.to_async(rt)
            .iter(|| async { black_box(pool.get_owned().await.unwrap()) })
    });
    g.bench_function("connect", |b| {
        b.to_async(rt)
            .iter(|| async { black_box(gateway.connect(&request).await.unwrap()) })
    });
    g.finish();
}

/// The bench's own view of keyroute's key table: just what a bare lookup needs.
mod schema {
    diesel::table! {
        keyroute_api_keys (id) {
            id -> Text,
            hash -> Binary,
        }
    }
}

/// An uncached resolve on PostgreSQL against a bare indexed SELECT through the same pool.
fn bench_uncached_postgres(
    c: &mut Criterion,
    rt: &Runtime,
    db: &TestDatabase<keyroute_store::Postgres>,
) {
    use diesel::{ExpressionMethods, QueryDsl};
    use schema::keyroute_api_keys as keys;

    let store = rt.block_on(db.store()).unwrap();
    let (store, key) = rt.block_on(live_key(store, false));
    let hash = key.hash();
    let resolver = rt.block_on(async {
        KeyResolver::builder(store.clone(), options(false))
            .build()
            .unwrap()
    });
    rt.block_on(resolver.resolve(key.expose_secret())).unwrap();
    let mut g = c.benchmark_group("postgres_uncached");
    g.bench_function("resolve", |b| {
        b.to_async(rt)
            .iter(|| resolver.resolve(black_box(key.expose_secret())))
    });
    g.bench_function("indexed_select", |b| {
        b.to_async(rt).iter(|| async {
            let mut conn = store.db().get().await.unwrap();
            let id: String = keys::table
                .filter(keys::hash.eq(hash.as_bytes().as_slice()))
                .select(keys::id)
                .first(&mut *conn)
                .await
                .unwrap();
            black_box(id)
        })
    });
    g.finish();
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut c = Criterion::default().configure_from_args();
    let mut pairs: Vec<(String, &str, &str)> = Vec::new();

    bench_cached_resolve(&mut c, &rt);
    let sqlite = keyroute_testing::sqlite().unwrap();
    rt.block_on(sqlite.store()).unwrap();
    for (group, check) in [
        ("sqlite_verified", RecyclingCheck::Verified),
        ("sqlite_fast", RecyclingCheck::Fast),
    ] {
        bench_connect(&mut c, &rt, group, &sqlite, check);
        pairs.push((group.to_owned(), "connect", "pool_get"));
    }
    match rt.block_on(keyroute_testing::postgres()) {
        Ok(pg) => {
            for (group, check) in [
                ("postgres_verified", RecyclingCheck::Verified),
                ("postgres_fast", RecyclingCheck::Fast),
            ] {
                bench_connect(&mut c, &rt, group, &pg, check);
                pairs.push((group.to_owned(), "connect", "pool_get"));
            }
            bench_uncached_postgres(&mut c, &rt, &pg);
            pairs.push(("postgres_uncached".to_owned(), "resolve", "indexed_select"));
        }
        Err(e) => println!("PostgreSQL benchmarks not run: {e}"),
    }

    c.final_summary();
    let dir = criterion_dir(env!("CARGO_TARGET_TMPDIR"));
    println!("\nratios (criterion medians of this run):");
    match keyroute_testing::bench::median(&dir, "cached", "resolve") {
        Some(m) => println!("  cached resolve: {m:?} (target: at most 1 us)"),
        None => println!("  cached resolve: no estimate"),
    }
    for (group, what, base) in &pairs {
        println!(
            "  {}",
            ratio_line(&dir, group, (group, what), (group, base))
        );
    }
}
