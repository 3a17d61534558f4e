//! Where SQLite queries run (see keyroute-pool's `sqlite_thread.rs`): on the calling task's thread
//! on the multi-threaded runtime, with no hop to the blocking pool; on the blocking pool
//! on a current-thread runtime, where a future dropped mid-query must leave its
//! connection whole and must not panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use chrono::Utc;
use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel_async::AsyncConnection;
use keyroute_core::{
    ApiKey, ApiKeyStore, Environment, KeyHash, KeyId, KeyQuery, KeyType, User, UserId, UserStore,
};
use keyroute_store::{PoolSettings, SqliteStore};

/// Records the Tokio task (if any) each query started on.
#[derive(Debug, Clone, Default)]
struct QueryTasks(Arc<Mutex<Vec<Option<tokio::task::Id>>>>);

impl Instrumentation for QueryTasks {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::StartQuery { .. } = event {
            self.0.lock().unwrap().push(tokio::task::try_id());
        }
    }
}

fn one_connection() -> PoolSettings {
    let mut settings = PoolSettings::default();
    settings.max_size = 1;
    settings
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
    store.create_user(&ada, &keys).await.unwrap();
    (ada, keys[0].clone())
}

/// On the multi-threaded runtime a key lookup runs in the calling task (on its
/// thread, inside `block_in_place`), not in a task of the blocking pool: the hop that
/// cost 50-90 us per lookup stays gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_runs_in_the_calling_task_on_the_multi_thread_runtime() {
    let db = keyroute_testing::sqlite().unwrap();
    let store = db.store_with(one_connection()).await.unwrap();
    let (_, key) = user_with_keys(&store, 1).await;

    let tasks = QueryTasks::default();
    store
        .pool()
        .get()
        .await
        .unwrap()
        .set_instrumentation(tasks.clone());
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
        tokio::task::id()
    })
    .await
    .unwrap();

    let seen = tasks.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 10, "one query per lookup: {seen:?}");
    assert!(
        seen.iter().all(|task| *task == Some(caller)),
        "every lookup ran in the calling task {caller}: {seen:?}"
    );
}

/// On a current-thread runtime, a query future dropped while its query runs on the
/// blocking pool does not panic (diesel-async's own wrapper panicked here, calling
/// `block_in_place`), and its connection serves the next query.
#[tokio::test(flavor = "current_thread")]
async fn query_dropped_mid_flight_on_a_current_thread_runtime_leaves_the_connection_whole() {
    let db = keyroute_testing::sqlite().unwrap();
    let store = db.store_with(one_connection()).await.unwrap();
    // Enough rows that listing them takes milliseconds: the drop below comes while the
    // query still runs.
    let (ada, key) = user_with_keys(&store, 20_000).await;

    let all = KeyQuery::default();
    for _ in 0..3 {
        let mut listing = pin!(store.get_user_api_keys(&ada.id, &all));
        // Poll until the query has been handed to the blocking pool, then drop it.
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
    let listed = store
        .get_user_api_keys(&ada.id, &KeyQuery::default())
        .await
        .unwrap();
    assert_eq!(listed.len(), 20_000);
}
