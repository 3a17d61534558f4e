//! Lookups by a unique column reuse one prepared statement per connection, and on
//! MariaDB (counted by the server) a lookup is one command: one round trip.
//!
//! diesel reports each statement it prepares *and caches* as
//! `InstrumentationEvent::CacheQuery`, so N repeated lookups through one connection
//! must report each lookup's statement exactly once. diesel cannot see SQLite's own
//! re-preparation, though: a statement with a bound `LIMIT ?` (what `.first()` adds)
//! is marked by SQLite as depending on that parameter's value and is recompiled on
//! every bind, inside SQLite, while diesel's cache still holds it. Reading
//! `SQLITE_STMTSTATUS_REPREPARE` would take `unsafe` FFI, which this workspace forbids,
//! so the test checks the cause instead: no cached lookup statement binds its `LIMIT`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::sync::{Arc, Mutex};

use chrono::Utc;
use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel_async::AsyncConnection;
use keyroute_core::{
    ApiKey, ApiKeyStore, Environment, KeyHash, KeyId, KeyType, User, UserId, UserStore,
};
use keyroute_store::{PoolSettings, SqlStore, StoreBackend};

/// Records the SQL of every statement diesel prepares and caches.
#[derive(Debug, Clone, Default)]
struct CachedStatements(Arc<Mutex<Vec<String>>>);

impl Instrumentation for CachedStatements {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::CacheQuery { sql, .. } = event {
            self.0.lock().unwrap().push(sql.to_owned());
        }
    }
}

/// Runs each unique lookup `rounds` times on a one-connection store and returns the
/// statements cached meanwhile.
async fn cached_during_lookups<B: StoreBackend>(store: SqlStore<B>, rounds: usize) -> Vec<String> {
    let ada = User::new(UserId::new("user-ada").unwrap(), "ada", Utc::now());
    let mut key = ApiKey::new(
        KeyId::random(),
        KeyType::SECRET,
        Environment::TEST,
        KeyHash::of("secret"),
        "sk_test_…cret",
        Utc::now(),
    );
    key.user_id = Some(ada.id.clone());
    store.create_user(&ada, &[key.clone()], &[]).await.unwrap();

    let recorder = CachedStatements::default();
    store
        .pool()
        .get()
        .await
        .unwrap()
        .set_instrumentation(recorder.clone());
    for _ in 0..rounds {
        assert!(
            store
                .get_api_key_by_hash(&key.hash)
                .await
                .unwrap()
                .is_some()
        );
        assert!(store.get_api_key(&key.id).await.unwrap().is_some());
        assert!(store.get_user(&ada.id).await.unwrap().is_some());
        assert!(store.find_user_by_name("ada").await.unwrap().is_some());
    }
    recorder.0.lock().unwrap().clone()
}

/// The four unique lookups are each prepared once, then served from the cache.
fn assert_each_prepared_once(cached: &[String]) {
    assert_eq!(
        cached.len(),
        4,
        "each of the 4 lookups is prepared and cached exactly once: {cached:#?}"
    );
    for sql in cached {
        // A LIMIT clause, not a column whose name contains the word (`limits`).
        assert!(
            !sql.to_uppercase().contains(" LIMIT "),
            "no bound LIMIT: {sql}"
        );
    }
}

fn one_connection() -> PoolSettings {
    let mut settings = PoolSettings::default();
    settings.max_size = 1;
    settings
}

/// On SQLite, 50 rounds of lookups prepare each lookup statement once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_lookups_prepare_once() {
    let db = keyroute_testing::sqlite().unwrap();
    let store = db.store_with(one_connection()).await.unwrap();
    assert_each_prepared_once(&cached_during_lookups(store, 50).await);
}

/// On PostgreSQL, 50 rounds of lookups prepare each lookup statement once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_lookups_prepare_once() {
    let db = keyroute_testing::postgres().await.unwrap();
    let store = db.store_with(one_connection()).await.unwrap();
    assert_each_prepared_once(&cached_during_lookups(store, 50).await);
}

/// On MariaDB, 50 rounds of lookups prepare each lookup statement once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_lookups_prepare_once() {
    let db = keyroute_testing::mariadb().await.unwrap();
    let store = db.store_with(one_connection()).await.unwrap();
    assert_each_prepared_once(&cached_during_lookups(store, 50).await);
}

/// One row of MariaDB's `information_schema.SESSION_STATUS`.
#[derive(diesel::QueryableByName)]
struct Status {
    #[diesel(sql_type = diesel::sql_types::Text)]
    variable_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    variable_value: String,
}

/// The server's count of each kind of command this connection has sent.
async fn commands_sent(
    store: &keyroute_store::MysqlStore,
) -> std::collections::BTreeMap<String, u64> {
    use diesel_async::RunQueryDsl;
    let mut conn = store.pool().get().await.unwrap();
    let rows: Vec<Status> = diesel::sql_query(
        "SELECT VARIABLE_NAME AS variable_name, VARIABLE_VALUE AS variable_value \
         FROM information_schema.SESSION_STATUS \
         WHERE VARIABLE_NAME LIKE 'COM\\_%' AND VARIABLE_VALUE <> '0'",
    )
    .load(&mut *conn)
    .await
    .unwrap();
    rows.into_iter()
        .map(|r| {
            (
                r.variable_name.to_lowercase(),
                r.variable_value.parse().unwrap(),
            )
        })
        .collect()
}

/// On MariaDB, counted by the server: once prepared, a key lookup is one command (one
/// `COM_STMT_EXECUTE`, so one round trip), and nothing else is sent for it when the
/// pool's checkout check is `Fast`. (The default `Verified` check adds its own
/// `SELECT 1` per checkout, which is the pool's, not the lookup's.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_lookup_is_one_command() {
    let db = keyroute_testing::mariadb().await.unwrap();
    let mut settings = one_connection();
    settings.recycling_check = keyroute_store::RecyclingCheck::Fast;
    let store = db.store_with(settings).await.unwrap();
    let key = ApiKey::new(
        KeyId::random(),
        KeyType::SECRET,
        Environment::TEST,
        KeyHash::of("secret"),
        "sk_test_…cret",
        Utc::now(),
    );
    store
        .store_all(std::slice::from_ref(&key), &[])
        .await
        .unwrap();
    // Warm: the lookup statement is prepared and cached.
    assert!(
        store
            .get_api_key_by_hash(&key.hash)
            .await
            .unwrap()
            .is_some()
    );

    let before = commands_sent(&store).await;
    for _ in 0..20 {
        assert!(
            store
                .get_api_key_by_hash(&key.hash)
                .await
                .unwrap()
                .is_some()
        );
    }
    let after = commands_sent(&store).await;
    let sent: std::collections::BTreeMap<&str, u64> = after
        .iter()
        .map(|(name, n)| (name.as_str(), n - before.get(name).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    // Counted by the server in `sent`: the second status read itself (diesel sends raw
    // SQL as a statement it prepares, executes and closes: one of each), and each
    // lookup as one `COM_STMT_EXECUTE`. `com_select` is not a command but the type of
    // the statements executed: every `SELECT`, prepared or not, adds one.
    let expected = std::collections::BTreeMap::from([
        ("com_select", 20 + 1),
        ("com_stmt_close", 1),
        ("com_stmt_execute", 20 + 1),
        ("com_stmt_prepare", 1),
    ]);
    assert_eq!(sent, expected, "commands sent for 20 lookups");
}
