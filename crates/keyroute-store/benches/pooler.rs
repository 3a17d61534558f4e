//! What running behind a transaction pooler costs a key lookup: `get_api_key_by_hash`
//! on one PostgreSQL container holding 1 000 keys, three ways in one run:
//!
//! - `direct`: keyroute's default pools straight to PostgreSQL (statements prepared
//!   once per connection and cached);
//! - `pgbouncer_transaction`: through PgBouncer 1.18 in transaction mode with `[pools]
//!   pooler = "transaction"` (each lookup one unit transaction: `BEGIN; RESET ALL;
//!   RESET ROLE; DEALLOCATE ALL`, which is also the checkout's check, the statement
//!   prepared and closed, `COMMIT`);
//! - `direct_transaction`: the same transaction-mode pools straight to PostgreSQL, to
//!   split the cost between keyroute's units and PgBouncer's hop.
//!
//! Prints each against `direct` (criterion medians of this run). Run with `bash
//! scripts/bench pooler`, or `cargo bench -p keyroute-store --all-features --bench
//! pooler` where an engine runs.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

use std::hint::black_box;

use chrono::Utc;
use criterion::Criterion;
use keyroute_core::{ApiKey, ApiKeyStore, Environment, KeyHash, KeyId, KeyType};
use keyroute_store::{DatabaseUrl, PoolSettings, Pooler, PostgresStore};
use keyroute_testing::bench::{criterion_dir, ratio_line};
use keyroute_testing::dedicated::postgres_restartable;
use keyroute_testing::{PgBouncerOptions, pgbouncer};

const KEYS: usize = 1_000;
const GROUP: &str = "postgres_pooler";

async fn store(url: DatabaseUrl, pooler: Pooler) -> PostgresStore {
    let mut settings = PoolSettings::default();
    settings.pooler = pooler;
    PostgresStore::connect_with(url, settings).await.unwrap()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let servers = rt.block_on(async {
        let postgres = postgres_restartable().await?;
        let bouncer = pgbouncer(&postgres, PgBouncerOptions::default()).await?;
        Ok::<_, keyroute_testing::HarnessError>((postgres, bouncer))
    });
    let (_postgres, bouncer) = match servers {
        Ok(servers) => servers,
        Err(e) => {
            println!("pooler benchmarks not run: {e}");
            return;
        }
    };
    let (pooled, direct) = rt
        .block_on(bouncer.create_database("pooler_bench"))
        .unwrap();
    let known: Vec<KeyHash> = rt.block_on(async {
        let store = store(direct.clone(), Pooler::Session).await;
        store.migrate().await.unwrap();
        let keys: Vec<ApiKey> = (0..KEYS)
            .map(|i| {
                ApiKey::new(
                    KeyId::random(),
                    KeyType::SECRET,
                    Environment::LIVE,
                    KeyHash::of(&format!("pooler-bench-{i}")),
                    "sk_live_…",
                    Utc::now(),
                )
            })
            .collect();
        store.store_all(&keys, &[]).await.unwrap();
        keys.iter().map(|k| k.hash).collect()
    });
    let ways = [
        ("direct", direct.clone(), Pooler::Session),
        ("pgbouncer_transaction", pooled, Pooler::Transaction),
        ("direct_transaction", direct, Pooler::Transaction),
    ];
    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group(GROUP);
    for (name, url, pooler) in ways {
        let store = rt.block_on(store(url, pooler));
        let mut next = 0usize;
        g.bench_function(name, |b| {
            b.to_async(&rt).iter(|| {
                next = (next + 1) % known.len();
                let (store, hash) = (&store, known[next]);
                async move { black_box(store.get_api_key_by_hash(&hash).await.unwrap().unwrap()) }
            })
        });
    }
    g.finish();
    c.final_summary();
    let dir = criterion_dir(env!("CARGO_TARGET_TMPDIR"));
    println!("\nratios (criterion medians of this run; lower is cheaper):");
    for way in ["pgbouncer_transaction", "direct_transaction"] {
        let label = format!("lookup: {way} vs direct");
        println!(
            "  {}",
            ratio_line(&dir, &label, (GROUP, way), (GROUP, "direct"))
        );
    }
}
