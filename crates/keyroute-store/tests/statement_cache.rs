//! Lookups by a unique column reuse one prepared statement per connection.
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
use keyroute_store::{Backend, PoolSettings, SqlStore};

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
async fn cached_during_lookups<B: Backend>(store: SqlStore<B>, rounds: usize) -> Vec<String>
where
    SqlStore<B>: ApiKeyStore + UserStore,
{
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
    store.create_user(&ada, &[key.clone()]).await.unwrap();

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
        assert!(
            !sql.to_uppercase().contains("LIMIT"),
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
