//! The store behind a real PgBouncer 1.18 in transaction mode (which tracks no prepared
//! statements), in front of a PostgreSQL container of this binary's own.
//!
//! - The whole conformance suite, through the pooler, with `[pools] pooler =
//!   "transaction"` and the feed and migrations on the direct URL; PgBouncer's pools
//!   hold 4 server connections per database, so clients share them.
//! - What the setting is for: the same store in session mode breaks under concurrent
//!   load (named statements that another server connection does not have, or has from
//!   another client), and in transaction mode does not.
//! - Session state a unit of work leaves (`SET`, `SET ROLE`, `PREPARE`) never reaches
//!   the next unit, though both ran on the one server connection.
//! - A feed whose `LISTEN` goes through the pooler is found out (`verify_feed`), and one
//!   on the direct URL delivers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

#[macro_use]
mod conformance;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use keyroute_core::{ApiKey, ApiKeyStore, Environment, ErrorKind, KeyHash, KeyId, KeyType};
use keyroute_pool::{DatabaseUrl, DbPool, PoolSettings, Pooler, Postgres};
use keyroute_store::PostgresStore;
use keyroute_testing::dedicated::{DedicatedServer, postgres_restartable};
use keyroute_testing::{PgBouncerOptions, TestPgBouncer, pgbouncer};
use tokio::sync::OnceCell;

/// Server connections PgBouncer keeps per database: fewer than the clients, so they
/// are shared.
const SERVER_CONNECTIONS: u32 = 4;

/// This binary's PostgreSQL server and the PgBouncer in front of it.
static SERVERS: OnceCell<(DedicatedServer, TestPgBouncer)> = OnceCell::const_new();

async fn servers() -> &'static (DedicatedServer, TestPgBouncer) {
    SERVERS
        .get_or_init(|| async {
            let postgres = postgres_restartable()
                .await
                .expect("a PostgreSQL container");
            let mut options = PgBouncerOptions::default();
            options.default_pool_size = SERVER_CONNECTIONS;
            options.max_client_conn = 400;
            let bouncer = pgbouncer(&postgres, options)
                .await
                .expect("PgBouncer in front of it");
            (postgres, bouncer)
        })
        .await
}

/// A new, empty database on the server: its pooled and direct URLs, and its name.
async fn database() -> (DatabaseUrl, DatabaseUrl, String) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "pgb_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let (pooled, direct) = servers().await.1.create_database(&name).await.unwrap();
    (pooled, direct, name)
}

fn settings(pooler: Pooler) -> PoolSettings {
    let mut settings = PoolSettings::default();
    settings.pooler = pooler;
    settings.max_size = 16;
    settings
}

/// A migrated store through the pooler in transaction mode, with the direct URL for
/// its feed and migrations.
async fn pooled_store() -> PostgresStore {
    let (pooled, direct, _) = database().await;
    let store = PostgresStore::connect_with(pooled, settings(Pooler::Transaction))
        .await
        .expect("a store through PgBouncer")
        .with_direct_url(direct);
    store.migrate().await.expect("migrated on the direct URL");
    store
}

conformance_suite!(async { (pooled_store().await, ()) });

fn new_key() -> ApiKey {
    let secret = format!("secret-{}", KeyId::random());
    ApiKey::new(
        KeyId::random(),
        KeyType::SECRET,
        Environment::LIVE,
        KeyHash::of(&secret),
        "sk_live_…abcd",
        chrono::Utc::now(),
    )
}

/// 16 tasks × 40 lookups and existence checks, half of them of a key that exists:
/// the number of failures.
async fn hammer(store: &PostgresStore, key: &ApiKey) -> (usize, Vec<String>) {
    let store = Arc::new(store.clone());
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (store, key) = (Arc::clone(&store), key.clone());
            tokio::spawn(async move {
                let mut errors = Vec::new();
                for i in 0..40 {
                    let outcome = if i % 2 == 0 {
                        store
                            .get_api_key_by_hash(&key.hash)
                            .await
                            .map(|found| assert_eq!(found.unwrap().key.id, key.id))
                    } else {
                        store
                            .api_key_exists(&KeyHash::of("nobody"))
                            .await
                            .map(|e| assert!(!e))
                    };
                    if let Err(e) = outcome {
                        errors.push(e.to_string());
                    }
                }
                errors
            })
        })
        .collect();
    let mut errors = Vec::new();
    for task in tasks {
        errors.extend(task.await.unwrap());
    }
    (errors.len(), errors)
}

/// Why the setting exists: pools that cache named statements per connection (the
/// default, right for a direct connection) fail behind a transaction pooler as soon
/// as clients share server connections; in transaction mode, none of 640 operations
/// fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_pools_break_behind_the_pooler_and_transaction_pools_do_not() {
    // A database each: PgBouncer pools server connections per database, and the
    // session-mode clients' stray statements must not meet the transaction-mode ones'
    // (what that does to PgBouncer is not what is measured here).
    let mut stores = Vec::new();
    let key = new_key();
    for pooler in [Pooler::Session, Pooler::Transaction] {
        let (pooled, direct, _) = database().await;
        let migrated = PostgresStore::connect(direct).await.unwrap();
        migrated.migrate().await.unwrap();
        migrated
            .store_all(std::slice::from_ref(&key), &[])
            .await
            .unwrap();
        stores.push(PostgresStore::connect_with(pooled, settings(pooler)).await);
    }
    let failed = match stores.remove(0) {
        // Even the connection's set-up may already have failed.
        Err(e) => vec![e.to_string()],
        Ok(store) => hammer(&store, &key).await.1,
    };
    assert!(
        !failed.is_empty(),
        "session-mode pools through a transaction pooler did not fail; is PgBouncer in transaction mode?"
    );
    assert!(
        failed.iter().any(|e| e.contains("prepared statement")),
        "the failures are the known ones: {failed:?}"
    );

    let store = stores.remove(0).unwrap();
    let (count, errors) = hammer(&store, &key).await;
    assert_eq!(
        count, 0,
        "through the pooler in transaction mode: {errors:?}"
    );
}

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Text)]
    value: String,
}

async fn setting(conn: &mut diesel_async::AsyncPgConnection, name: &str) -> String {
    diesel::sql_query(format!("SELECT current_setting('{name}') AS value"))
        .get_result::<Setting>(conn)
        .await
        .unwrap()
        .value
}

/// What one unit of work leaves on its server connection (session `SET`s, a role, a
/// prepared statement) is gone for the next unit, of this pool or another instance's,
/// whether the first ended by `commit` or by being dropped. PgBouncer in front holds
/// one server connection here, so every unit runs on the same one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_state_never_reaches_the_next_unit() {
    let (postgres, _) = servers().await;
    let mut options = PgBouncerOptions::default();
    options.default_pool_size = 1;
    let bouncer = pgbouncer(postgres, options).await.unwrap();
    let (_, _, name) = database().await;
    let url = bouncer.database_url(&name);
    let one = DbPool::<Postgres>::connect(url.clone(), settings(Pooler::Transaction))
        .await
        .unwrap();
    let other = DbPool::<Postgres>::connect(url, settings(Pooler::Transaction))
        .await
        .unwrap();
    let defaults = {
        let mut conn = other.unit().await.unwrap();
        let search_path = setting(&mut conn, "search_path").await;
        conn.commit().await.unwrap();
        search_path
    };

    for commit in [true, false] {
        let mut conn = one.unit().await.unwrap();
        assert!(conn.in_unit_transaction());
        conn.batch_execute(
            "SET search_path = nowhere; SET statement_timeout = '1ms'; \
             SET application_name = 'leaky'; SET ROLE pg_read_all_data; \
             PREPARE leaked AS SELECT 1",
        )
        .await
        .unwrap();
        assert_eq!(setting(&mut conn, "search_path").await, "nowhere");
        if commit {
            conn.commit().await.unwrap();
        } else {
            drop(conn);
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        for pool in [&one, &other] {
            let mut conn = pool.unit().await.unwrap();
            assert_eq!(setting(&mut conn, "search_path").await, defaults);
            assert_eq!(setting(&mut conn, "statement_timeout").await, "0");
            assert_eq!(setting(&mut conn, "role").await, "none");
            // The name is free again: PREPARE would fail on a duplicate.
            conn.batch_execute("PREPARE leaked AS SELECT 2")
                .await
                .unwrap();
            conn.commit().await.unwrap();
        }
    }
    // One server connection served every unit of both pools.
    let pools = bouncer.show("POOLS").await.unwrap();
    let database = pools
        .iter()
        .find(|row| row.get("database") == Some(&name))
        .expect("the database's pool");
    let servers: u32 = ["sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login"]
        .iter()
        .map(|c| database[*c].parse::<u32>().unwrap())
        .sum();
    assert_eq!(servers, 1, "{database:?}");
}

/// `LISTEN` through the pooler holds no session: the feed's check finds out (and says
/// what to set), and the same store with its direct URL passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_through_the_pooler_is_found_out() {
    let (pooled, direct, _) = database().await;
    let through = PostgresStore::connect_with(pooled.clone(), settings(Pooler::Transaction))
        .await
        .unwrap();
    let refused = through.verify_feed().await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Misuse, "{refused}");
    assert!(
        refused.to_string().contains("[store] direct_url"),
        "{refused}"
    );
    through.with_direct_url(direct).verify_feed().await.unwrap();
}

/// In transaction mode the unit's `BEGIN` is the checkout check: connections the
/// server dropped while idle are discarded there and replaced, and the unit still
/// begins (directly, with every pooled connection terminated by the server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_replaced_when_its_unit_begins() {
    let (_, direct, name) = database().await;
    let pool = DbPool::<Postgres>::connect(direct.clone(), settings(Pooler::Transaction))
        .await
        .unwrap();
    // Four units at once: four connections, idle in the pool once committed.
    let mut units = Vec::new();
    for _ in 0..4 {
        units.push(pool.unit().await.unwrap());
    }
    for unit in units {
        unit.commit().await.unwrap();
    }
    let (client, connection) =
        tokio_postgres::connect(direct.expose_secret(), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(connection);
    let killed = client
        .simple_query(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ))
        .await
        .unwrap();
    assert!(killed.len() > 1, "the pool's connections were terminated");
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let mut unit = pool.unit().await.unwrap();
    assert_eq!(setting(&mut unit, "statement_timeout").await, "0");
    unit.commit().await.unwrap();
}
