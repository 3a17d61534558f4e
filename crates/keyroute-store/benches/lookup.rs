//! How a key lookup scales: `get_api_key_by_hash` on SQLite (a file) and PostgreSQL (a
//! container) holding 1 000 and 1 000 000 keys, against a bare `SELECT 1` and a
//! one-column indexed `SELECT` through the same path (keyroute's checkout from the
//! same pool, the same diesel-async connection: on SQLite the same thread). Prints
//! each ratio with both medians, the 1 M / 1 k ratio (flat means about 1), and the
//! cost of keyroute's checkout (SQLite's file check) over a bare bb8 checkout, and
//! that check against the one `stat` per checkout it used to be.
//!
//! Run with `bash scripts/bench store` (it brings up Docker for PostgreSQL), or
//! `cargo bench -p keyroute-store --all-features --bench lookup` where an engine runs.
//! `KEYROUTE_BENCH_ONLY=sqlite_1k` (a comma-separated list of groups) seeds and runs
//! only those groups, skipping the long seeding of the others.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::hint::black_box;

use chrono::Utc;
use criterion::Criterion;
use diesel::IntoSql;
use diesel::sql_types::Integer;
use diesel_async::RunQueryDsl;
use keyroute_core::{ApiKey, ApiKeyStore, Environment, KeyHash, KeyId, KeyType};
use keyroute_store::{Backend, DbPool};
use keyroute_testing::bench::{criterion_dir, ratio_line};
use tokio::runtime::Runtime;

const SIZES: [(&str, usize); 2] = [("1k", 1_000), ("1m", 1_000_000)];
const CHUNK: usize = 10_000;

/// Stores `count` keys; returns the hashes of the first 1 000 to look up.
async fn seed(store: &impl ApiKeyStore, count: usize) -> Vec<KeyHash> {
    let now = Utc::now();
    let mut known = Vec::new();
    for start in (0..count).step_by(CHUNK) {
        let keys: Vec<ApiKey> = (start..(start + CHUNK).min(count))
            .map(|i| {
                let hash = KeyHash::of(&format!("bench-key-{i}"));
                if known.len() < 1_000 {
                    known.push(hash);
                }
                ApiKey::new(
                    KeyId::random(),
                    KeyType::SECRET,
                    Environment::LIVE,
                    hash,
                    "sk_live_…",
                    now,
                )
            })
            .collect();
        store.store_all(&keys, &[]).await.unwrap();
    }
    known
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

/// Benchmarks, as criterion group `<backend>_<size>`, three queries through the same
/// path (keyroute's checkout from the store's pool, the same diesel-async connection):
/// `select_1` (the floor: a checkout and a statement that reads nothing),
/// `indexed_select` (one column by hash: what the index costs) and
/// `get_api_key_by_hash` (the lookup: the key row and its owner, decoded).
macro_rules! bench_queries {
    ($c:expr, $rt:expr, $group:expr, $store:expr, $known:expr) => {{
        use diesel::{ExpressionMethods, QueryDsl};
        use schema::keyroute_api_keys as keys;
        let (store, known): (&_, &[KeyHash]) = ($store, $known);
        let mut g = $c.benchmark_group($group);
        g.bench_function("select_1", |b| {
            b.to_async($rt).iter(|| async {
                let mut conn = store.db().get().await.unwrap();
                let one: i32 = diesel::select(1.into_sql::<Integer>())
                    .get_result(&mut *conn)
                    .await
                    .unwrap();
                black_box(one)
            })
        });
        let mut next = 0usize;
        g.bench_function("indexed_select", |b| {
            b.to_async($rt).iter(|| {
                next = (next + 1) % known.len();
                let hash = known[next];
                async move {
                    let mut conn = store.db().get().await.unwrap();
                    let id: String = keys::table
                        .filter(keys::hash.eq(hash.as_bytes().as_slice()))
                        .select(keys::id)
                        .get_result(&mut *conn)
                        .await
                        .unwrap();
                    black_box(id)
                }
            })
        });
        g.bench_function("get_api_key_by_hash", |b| {
            b.to_async($rt).iter(|| {
                next = (next + 1) % known.len();
                let hash = known[next];
                async move { black_box(store.get_api_key_by_hash(&hash).await.unwrap().unwrap()) }
            })
        });
        g.finish();
    }};
}

/// Seeds and benchmarks one backend at every size; `$make` is a future of a
/// `TestDatabase`. A backend without its server is reported, not benchmarked.
macro_rules! bench_backend {
    ($c:expr, $rt:expr, $groups:expr, $backend:literal, $make:expr) => {
        for (size_name, size) in SIZES {
            if !wanted(&format!("{}_{size_name}", $backend)) {
                continue;
            }
            let db = match $rt.block_on($make) {
                Ok(db) => db,
                Err(e) => {
                    println!("{} benchmarks not run: {e}", $backend);
                    break;
                }
            };
            let store = $rt.block_on(db.store()).unwrap();
            let known = $rt.block_on(seed(&store, size));
            let group = format!("{}_{size_name}", $backend);
            bench_queries!($c, $rt, &group, &store, &known);
            $groups.push(group);
            if size == SIZES[0].1 {
                bench_checkout($c, $rt, $backend, store.db());
            }
        }
    };
}

/// Whether `group` is to run: all groups unless `KEYROUTE_BENCH_ONLY` lists others.
fn wanted(group: &str) -> bool {
    std::env::var("KEYROUTE_BENCH_ONLY")
        .map_or(true, |only| only.split(',').any(|g| g.trim() == group))
}

/// A checkout through keyroute's pool (with SQLite's file check) against a bare bb8
/// checkout of the same pool, as criterion group `<backend>_checkout`.
fn bench_checkout<B: Backend>(c: &mut Criterion, rt: &Runtime, backend: &str, db: &DbPool<B>) {
    let mut g = c.benchmark_group(format!("{backend}_checkout"));
    g.bench_function("bb8_get", |b| {
        b.to_async(rt)
            .iter(|| async { drop(black_box(db.pool().get().await.unwrap())) })
    });
    g.bench_function("db_get", |b| {
        b.to_async(rt)
            .iter(|| async { drop(black_box(db.get().await.unwrap())) })
    });
    if backend == "sqlite" {
        // What the file check cost per checkout when it was one `stat` each time.
        let url = db.url().expose_secret();
        let path = std::path::absolute(url.strip_prefix("sqlite://").unwrap_or(url)).unwrap();
        g.bench_function("stat", |b| {
            b.iter(|| black_box(std::fs::metadata(black_box(&path)).unwrap()))
        });
    }
    g.finish();
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut c = Criterion::default().configure_from_args();
    let mut groups = Vec::new();
    bench_backend!(&mut c, &rt, groups, "sqlite", async {
        keyroute_testing::sqlite()
    });
    bench_backend!(
        &mut c,
        &rt,
        groups,
        "postgres",
        keyroute_testing::postgres()
    );

    c.final_summary();
    let dir = criterion_dir(env!("CARGO_TARGET_TMPDIR"));
    println!("\nratios (criterion medians of this run):");
    for group in &groups {
        for (what, base) in [
            ("get_api_key_by_hash", "select_1"),
            ("indexed_select", "select_1"),
            ("get_api_key_by_hash", "indexed_select"),
        ] {
            let label = format!("{group}: {what} vs {base}");
            println!(
                "  {}",
                ratio_line(&dir, &label, (group, what), (group, base))
            );
        }
    }
    for backend in ["sqlite", "postgres"] {
        let group = format!("{backend}_checkout");
        let label = format!("{backend}: checkout with keyroute's checks vs bare bb8");
        println!(
            "  {}",
            ratio_line(&dir, &label, (&group, "db_get"), (&group, "bb8_get"))
        );
        if backend == "sqlite" {
            println!("  {}", file_check_line(&dir, &group));
        }
        let (big, small) = (format!("{backend}_1m"), format!("{backend}_1k"));
        let label = format!("{backend}: lookup at 1 M keys vs 1 k keys");
        println!(
            "  {}",
            ratio_line(
                &dir,
                &label,
                (&big, "get_api_key_by_hash"),
                (&small, "get_api_key_by_hash")
            )
        );
    }
}

/// What keyroute's SQLite checkout adds to a bare one (the file check and the circuit
/// breaker's admission) against one `stat`, which the file check was until it read
/// inotify events instead.
fn file_check_line(dir: &std::path::Path, group: &str) -> String {
    let m = |f| keyroute_testing::bench::median(dir, group, f);
    match (m("db_get"), m("bb8_get"), m("stat")) {
        (Some(ours), Some(bare), Some(stat)) if !stat.is_zero() => {
            let check = ours.saturating_sub(bare);
            format!(
                "sqlite: keyroute's checks on a checkout (db_get - bb8_get: file check, breaker) {check:?} vs one stat {stat:?} = {:.2} x",
                check.as_secs_f64() / stat.as_secs_f64()
            )
        }
        _ => format!("sqlite: no estimates for {group}/db_get, bb8_get and stat"),
    }
}
