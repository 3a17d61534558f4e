//! Where SQLite queries run (see keyroute-pool's `sqlite_thread.rs`): each connection's
//! queries on a thread of its own, never on a Tokio worker nor in Tokio's blocking
//! pool; threads bounded by the connections and gone with them; a query waiting for
//! the write lock leaves the workers free; and a future dropped mid-query leaves its
//! connection whole on both runtime flavours.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use chrono::Utc;
use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel_async::{AsyncConnection, SimpleAsyncConnection};
use keyroute_core::{
    ApiKey, ApiKeyStore, Environment, KeyHash, KeyId, KeyQuery, KeyType, User, UserId, UserStore,
};
use keyroute_store::{PoolSettings, SqliteStore};

/// Where one query started: its thread's name and id, and the OS thread id (Linux).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Place {
    name: Option<String>,
    thread: String,
    os_thread: Option<String>,
}

/// Records where each query of the connections it is set on started.
#[derive(Debug, Clone, Default)]
struct QueryPlaces(Arc<Mutex<Vec<Place>>>);

impl Instrumentation for QueryPlaces {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::StartQuery { .. } = event {
            let current = std::thread::current();
            self.0.lock().unwrap().push(Place {
                name: current.name().map(str::to_owned),
                thread: format!("{:?}", current.id()),
                os_thread: std::fs::read_link("/proc/thread-self")
                    .ok()
                    .map(|p| p.to_string_lossy().into_owned()),
            });
        }
    }
}

impl QueryPlaces {
    fn seen(&self) -> Vec<Place> {
        self.0.lock().unwrap().clone()
    }
}

fn pool_of(size: u32) -> PoolSettings {
    let mut settings = PoolSettings::default();
    settings.max_size = size;
    settings.min_idle = Some(size);
    settings
}

/// Sets `places` on every connection of the store's pool (all `size` of them,
/// checked out at once).
async fn watch_every_connection(store: &SqliteStore, size: u32, places: &QueryPlaces) {
    let mut held = Vec::new();
    for _ in 0..size {
        let mut conn = store.pool().get().await.unwrap();
        conn.set_instrumentation(places.clone());
        held.push(conn);
    }
}

/// A user with `count` keys; returns the user and the first key.
async fn user_with_keys(store: &SqliteStore, count: usize) -> (User, ApiKey) {
    let ada = User::new(UserId::new("user-ada").unwrap(), "ada", Utc::now());
    let keys: Vec<ApiKey> = (0..count)
        .map(|i| {
            let mut key = ApiKey::new(
                KeyId::random(),
                KeyType::SECRET,
                Environment::TEST,
                KeyHash::of(&format!("secret-{i}")),
                "sk_test_…cret",
                Utc::now(),
            );
            key.user_id = Some(ada.id.clone());
            key
        })
        .collect();
    store.create_user(&ada, &keys, &[]).await.unwrap();
    (ada, keys[0].clone())
}

/// Every query of a connection runs on that connection's own thread, named
/// `keyroute-sqlite`: not on the calling worker, not in Tokio's blocking pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connections_queries_run_on_its_own_thread() {
    let db = keyroute_testing::sqlite().unwrap();
    let store = db.store_with(pool_of(1)).await.unwrap();
    let (_, key) = user_with_keys(&store, 1).await;
    let places = QueryPlaces::default();
    watch_every_connection(&store, 1, &places).await;

    let caller = tokio::spawn(async move {
        for _ in 0..10 {
            assert!(
                store
                    .get_api_key_by_hash(&key.hash)
                    .await
                    .unwrap()
                    .is_some()
            );
        }
        format!("{:?}", std::thread::current().id())
    })
    .await
    .unwrap();

    let seen = places.seen();
    assert_eq!(seen.len(), 10, "one query per lookup: {seen:?}");
    let threads: BTreeSet<&Place> = seen.iter().collect();
    assert_eq!(
        threads.len(),
        1,
        "one thread for the connection: {threads:?}"
    );
    let place = &seen[0];
    assert_eq!(
        place.name.as_deref(),
        Some(keyroute_pool::SQLITE_THREAD_NAME)
    );
    assert_ne!(place.thread, caller, "not the calling worker's thread");
}

/// However many tasks query at once, the queries run on at most one thread per
/// connection of the pool: the thread count follows the pools, not the load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn threads_are_bounded_by_the_connections() {
    let db = keyroute_testing::sqlite().unwrap();
    let store = Arc::new(db.store_with(pool_of(4)).await.unwrap());
    let (_, key) = user_with_keys(&store, 1).await;
    let places = QueryPlaces::default();
    watch_every_connection(&store, 4, &places).await;

    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (store, hash) = (Arc::clone(&store), key.hash);
            tokio::spawn(async move {
                for _ in 0..20 {
                    assert!(store.get_api_key_by_hash(&hash).await.unwrap().is_some());
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }

    let seen = places.seen();
    assert_eq!(seen.len(), 64 * 20);
    let threads: BTreeSet<&str> = seen.iter().map(|p| p.thread.as_str()).collect();
    assert!(
        (1..=4).contains(&threads.len()),
        "1 280 lookups over 4 connections ran on {} threads",
        threads.len()
    );
    assert!(
        seen.iter()
            .all(|p| p.name.as_deref() == Some(keyroute_pool::SQLITE_THREAD_NAME))
    );
}

/// A connection's thread ends when the connection closes.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_thread_ends_with_its_connection() {
    let db = keyroute_testing::sqlite().unwrap();
    let store = db.store_with(pool_of(1)).await.unwrap();
    let places = QueryPlaces::default();
    watch_every_connection(&store, 1, &places).await;
    assert!(!store.api_key_exists(&KeyHash::of("x")).await.unwrap());
    let task = places.seen()[0]
        .os_thread
        .clone()
        .expect("/proc/thread-self");
    let path = std::path::Path::new("/proc").join(&task);
    assert!(path.exists(), "{task} runs while its connection is open");

    drop(store);
    // The pool closes its connections as it drops; the thread then sees its queue end.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while path.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{task} still runs 10 s after its connection closed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A query waiting for SQLite's write lock blocks its connection's thread only: on a
/// runtime with one worker, other tasks keep running until the lock is released, and
/// the write then completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_query_waiting_for_the_lock_leaves_the_workers_free() {
    let db = keyroute_testing::sqlite().unwrap();
    let holder = db.store_with(pool_of(1)).await.unwrap();
    let writer = db.store_with(pool_of(1)).await.unwrap();
    holder.init_schema().await.unwrap();

    let mut lock = holder.pool().get().await.unwrap();
    lock.batch_execute("BEGIN IMMEDIATE").await.unwrap();
    let ada = User::new(UserId::new("user-ada").unwrap(), "ada", Utc::now());
    let write = tokio::spawn(async move { writer.create_user(&ada, &[], &[]).await });

    // The write now waits for the lock (busy_timeout is 5 s). The one worker must
    // stay free meanwhile: count its ticks.
    let mut ticks = 0;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        ticks += 1;
    }
    assert!(!write.is_finished(), "the write waits for the lock");
    assert_eq!(ticks, 20);

    lock.batch_execute("COMMIT").await.unwrap();
    drop(lock);
    write.await.unwrap().unwrap();
    assert!(holder.find_user_by_name("ada").await.unwrap().is_some());
}

/// Drops a 20 000-row listing three times while its query runs, then checks that the
/// one connection still answers a lookup and the whole listing.
async fn drop_listings_mid_flight() {
    let db = keyroute_testing::sqlite().unwrap();
    let store = db.store_with(pool_of(1)).await.unwrap();
    // Enough rows that listing them takes milliseconds: the drop below comes while the
    // query still runs.
    let (ada, key) = user_with_keys(&store, 20_000).await;

    let all = KeyQuery::default();
    for _ in 0..3 {
        let mut listing = pin!(store.get_user_api_keys(&ada.id, &all));
        // Poll until the query has been handed to the connection's thread, then drop it.
        let first =
            std::future::poll_fn(|cx| Poll::Ready(listing.as_mut().poll(cx).is_pending())).await;
        assert!(
            first,
            "a 20 000-row listing is still running after one poll"
        );
    }

    assert!(
        store
            .get_api_key_by_hash(&key.hash)
            .await
            .unwrap()
            .is_some()
    );
    let listed = store.get_user_api_keys(&ada.id, &all).await.unwrap();
    assert_eq!(listed.len(), 20_000);
}

/// On the multi-threaded runtime, a query future dropped while its query runs does
/// not panic, and its connection serves the next query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_dropped_mid_flight_on_the_multi_thread_runtime_leaves_the_connection_whole() {
    drop_listings_mid_flight().await;
}

/// On a current-thread runtime, a query future dropped while its query runs does not
/// panic (diesel-async's own wrapper panicked here, calling `block_in_place`), and its
/// connection serves the next query.
#[tokio::test(flavor = "current_thread")]
async fn query_dropped_mid_flight_on_a_current_thread_runtime_leaves_the_connection_whole() {
    drop_listings_mid_flight().await;
}
