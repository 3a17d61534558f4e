//! Where SQLite queries run (see keyroute-pool's `sqlite_gate.rs` and
//! `sqlite_thread.rs`): on the calling worker while that cannot stall the runtime, and
//! otherwise on a thread of the connection's own, never in Tokio's blocking pool:
//! - a short query runs on the calling worker; inside a transaction, on a file where
//!   another connection holds one, after a query ran long, on a connection whose
//!   instrumentation was replaced, and on a current-thread runtime, on the
//!   connection's thread;
//! - writers waiting for a transaction held across an `.await` leave the workers free;
//! - a loop of queries that run on the worker still yields to its other tasks;
//! - threads are bounded by the connections and gone with them;
//! - a future dropped mid-query leaves its connection whole on both runtime flavours.
//!
//! Past 500 lines on purpose: every test here shares the same set-up and the same
//! probe of where a job ran (`settled_pair`, `where_it_runs`, `runs_inline`), and one
//! file is one test binary to build.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use chrono::Utc;
use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel_async::{AsyncConnection, SimpleAsyncConnection, TransactionManager};
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

/// Polls `done` every 10 ms until it holds; fails if it still does not after 10 s.
async fn within_10_s(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(
            std::time::Instant::now() < deadline,
            "not within 10 s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
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

/// Every query of a connection that runs on a thread runs on that connection's own,
/// named `keyroute-sqlite`, never in Tokio's blocking pool. (Replacing the
/// instrumentation, as this test does to see where queries run, sends them all there.)
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
    within_10_s(&format!("{task} ends with its connection"), async || {
        !path.exists()
    })
    .await;
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
    // A transaction open on another connection of the file sends this one's queries to
    // its thread (on a current-thread runtime they go there anyway).
    let other = db.store_with(pool_of(1)).await.unwrap();
    let mut holder = other.pool().get().await.unwrap();
    Tm::begin_transaction(&mut holder).await.unwrap();
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
    Tm::rollback_transaction(&mut holder).await.unwrap();
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

/// A pooled SQLite connection, as the store's pool lends it.
type Conn = <keyroute_pool::Sqlite as keyroute_pool::Backend>::Connection;
/// A connection lent by the store's pool without borrowing it.
type Pooled =
    bb8::PooledConnection<'static, <keyroute_pool::Sqlite as keyroute_pool::Backend>::Manager>;
/// Its transaction manager: transactions opened through it are the ones the gate sees.
type Tm = <Conn as AsyncConnection>::TransactionManager;

/// Waits out the cool-down that opening a store starts: its migrations run long.
async fn settled() {
    tokio::time::sleep(keyroute_pool::SQLITE_COOL_DOWN + Duration::from_millis(50)).await;
}

/// Where a job on `conn` ran.
#[derive(Debug, PartialEq, Eq)]
enum Ran {
    /// On the calling worker.
    Inline,
    /// On the connection's own thread.
    OnItsThread,
}

async fn where_it_runs(conn: &mut Conn) -> Ran {
    let caller = std::thread::current().id();
    let (id, name) = conn
        .spawn_blocking(|_| {
            let here = std::thread::current();
            Ok((here.id(), here.name().map(str::to_owned)))
        })
        .await
        .unwrap();
    if id == caller {
        return Ran::Inline;
    }
    assert_eq!(
        name.as_deref(),
        Some(keyroute_pool::SQLITE_THREAD_NAME),
        "neither the caller's thread nor the connection's"
    );
    Ran::OnItsThread
}

/// Whether a job on `conn` runs on the calling worker, allowing for one cool-down: on a
/// busy machine a short query stalled past `SQLITE_LONG_QUERY` starts one, as it
/// should. A transaction still counted would keep the job on its thread after it.
async fn runs_inline(conn: &mut Conn) -> bool {
    if where_it_runs(conn).await == Ran::Inline {
        return true;
    }
    settled().await;
    where_it_runs(conn).await == Ran::Inline
}

/// A store of two connections on a fresh file, both connections, and the cool-down of
/// opening it waited out: a job on either runs on the calling worker.
async fn settled_pair() -> (
    keyroute_testing::TestDatabase<keyroute_pool::Sqlite>,
    SqliteStore,
    Pooled,
    Pooled,
) {
    let db = keyroute_testing::sqlite().unwrap();
    let store = db.store_with(pool_of(2)).await.unwrap();
    let mut a = store.pool().get_owned().await.unwrap();
    let mut b = store.pool().get_owned().await.unwrap();
    settled().await;
    assert!(runs_inline(&mut a).await);
    assert!(runs_inline(&mut b).await);
    (db, store, a, b)
}

/// A short query runs on the calling worker; inside a transaction it runs on the
/// connection's thread, and so do the queries of every other connection of the same
/// file, until the transaction has committed or rolled back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_run_on_the_worker_unless_a_transaction_is_open_on_the_file() {
    let db = keyroute_testing::sqlite().unwrap();
    let store = db.store_with(pool_of(2)).await.unwrap();
    // Another pool on the same file shares its gate.
    let other = db.store_with(pool_of(1)).await.unwrap();
    let mut a = store.pool().get().await.unwrap();
    let mut b = store.pool().get().await.unwrap();
    let mut c = other.pool().get().await.unwrap();
    settled().await;
    assert!(runs_inline(&mut a).await);
    assert!(runs_inline(&mut c).await);

    for commit in [true, false] {
        Tm::begin_transaction(&mut a).await.unwrap();
        a.batch_execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
            .await
            .unwrap();
        assert_eq!(where_it_runs(&mut a).await, Ran::OnItsThread);
        assert_eq!(where_it_runs(&mut b).await, Ran::OnItsThread);
        assert_eq!(where_it_runs(&mut c).await, Ran::OnItsThread);
        if commit {
            Tm::commit_transaction(&mut a).await.unwrap();
        } else {
            Tm::rollback_transaction(&mut a).await.unwrap();
        }
        for conn in [&mut a, &mut b, &mut c] {
            assert!(runs_inline(conn).await, "commit: {commit}");
        }
    }

    // A transaction through the closure API, nested savepoints included.
    let conn: &mut Conn = &mut a;
    let inside = conn
        .transaction::<_, diesel::result::Error, _>(async |a| {
            let outer = where_it_runs(a).await;
            let inner = a
                .transaction::<_, diesel::result::Error, _>(async |a| Ok(where_it_runs(a).await))
                .await?;
            Ok((outer, inner, where_it_runs(a).await))
        })
        .await
        .unwrap();
    assert_eq!(
        inside,
        (Ran::OnItsThread, Ran::OnItsThread, Ran::OnItsThread)
    );
    assert!(runs_inline(&mut b).await);
}

/// A query as slow as `rows` makes it: a recursive count, no table.
fn counting(rows: u32) -> String {
    format!(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {rows}) \
         SELECT count(*) FROM c"
    )
}

/// One query that ran longer than `SQLITE_LONG_QUERY` on the worker sends the file's
/// queries to their threads for `SQLITE_COOL_DOWN`, then they run on the worker again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_that_ran_long_sends_the_file_to_threads_for_a_while() {
    let (_db, _store, mut a, mut b) = settled_pair().await;

    let started = std::time::Instant::now();
    a.batch_execute(&counting(2_000_000)).await.unwrap();
    assert!(started.elapsed() > keyroute_pool::SQLITE_LONG_QUERY);
    assert_eq!(where_it_runs(&mut a).await, Ran::OnItsThread);
    assert_eq!(where_it_runs(&mut b).await, Ran::OnItsThread);

    settled().await;
    assert!(runs_inline(&mut a).await);
    assert!(runs_inline(&mut b).await);
}

/// Queries over `SQLITE_INLINE_LIMIT` but short of `SQLITE_LONG_QUERY`: one alone (a
/// worker preempted mid-query looks the same) changes nothing; `SQLITE_SLOW_IN_WINDOW`
/// of them send the file's queries to their threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_slow_queries_send_the_file_to_threads() {
    let db = keyroute_testing::sqlite().unwrap();
    let store = db.store_with(pool_of(1)).await.unwrap();
    let mut a = store.pool().get().await.unwrap();
    // About a millisecond of a debug build's SQLite: over the limit, and far short of a
    // long query. An attempt starts over with more rows if a query was not slow (an
    // optimized build), and as it was if one took 20 ms (the machine stalled this
    // thread: the long-query rule applies then).
    let mut rows = 2_000;
    'attempt: for _ in 1..=5 {
        let slow = counting(rows);
        settled().await;
        // A window of short queries: slow ones from before are forgotten.
        for _ in 0..keyroute_pool::SQLITE_WINDOW {
            assert!(runs_inline(&mut a).await);
        }
        for i in 1..=keyroute_pool::SQLITE_SLOW_IN_WINDOW {
            let started = std::time::Instant::now();
            a.batch_execute(&slow).await.unwrap();
            let took = started.elapsed();
            if took <= keyroute_pool::SQLITE_INLINE_LIMIT {
                rows *= 4;
                continue 'attempt;
            }
            if took >= keyroute_pool::SQLITE_LONG_QUERY {
                continue 'attempt;
            }
            let ran = where_it_runs(&mut a).await;
            if i < keyroute_pool::SQLITE_SLOW_IN_WINDOW {
                // On its thread this early only if something stalled past 20 ms (which
                // starts a cool-down): start over.
                if ran != Ran::Inline {
                    continue 'attempt;
                }
            } else {
                assert_eq!(ran, Ran::OnItsThread, "after {i} slow queries");
            }
        }
        return;
    }
    panic!("no attempt ran its queries between the two limits (last: {rows} rows)");
}

/// On a current-thread runtime every query runs on its connection's thread: waiting
/// there for a lock would otherwise block the runtime's only thread.
#[tokio::test(flavor = "current_thread")]
async fn on_a_current_thread_runtime_queries_run_on_their_threads() {
    let db = keyroute_testing::sqlite().unwrap();
    let store = db.store_with(pool_of(1)).await.unwrap();
    let mut a = store.pool().get().await.unwrap();
    assert_eq!(where_it_runs(&mut a).await, Ran::OnItsThread);
}

/// A loop of short queries, all run on the worker, still lets the worker's other tasks
/// run: awaiting each spends the task's Tokio budget, so the loop yields now and then.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_loop_of_inline_queries_yields_to_other_tasks() {
    let (_db, _store, a, _b) = settled_pair().await;
    let ticks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let ticker = {
        let ticks = Arc::clone(&ticks);
        tokio::spawn(async move {
            loop {
                ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        })
    };
    let mut a = Some(a);
    // An attempt counts when all of its 1 000 queries ran on the worker: a machine that
    // stalls one past 20 ms starts a cool-down, and the rest run on the thread.
    for _ in 0..3 {
        let (conn, inline, during) = {
            let (mut conn, ticks) = (a.take().unwrap(), Arc::clone(&ticks));
            tokio::spawn(async move {
                assert!(runs_inline(&mut conn).await);
                let before = ticks.load(std::sync::atomic::Ordering::Relaxed);
                let mut inline = 0;
                for _ in 0..1_000 {
                    if where_it_runs(&mut conn).await == Ran::Inline {
                        inline += 1;
                    }
                }
                let during = ticks.load(std::sync::atomic::Ordering::Relaxed) - before;
                (conn, inline, during)
            })
            .await
            .unwrap()
        };
        a = Some(conn);
        if inline == 1_000 {
            ticker.abort();
            assert!(during > 0, "the other task never ran during the loop");
            return;
        }
    }
    panic!("no attempt ran all of its queries on the worker");
}

/// A connection whose instrumentation was replaced hides its transactions: the file's
/// queries run on their threads until that connection closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_a_connections_instrumentation_sends_the_file_to_threads() {
    let (db, store, mut a, mut b) = settled_pair().await;
    a.set_instrumentation(QueryPlaces::default());
    assert_eq!(where_it_runs(&mut b).await, Ran::OnItsThread);
    drop(a);
    assert_eq!(
        where_it_runs(&mut b).await,
        Ran::OnItsThread,
        "a is still open"
    );
    drop(b);
    drop(store);

    // Once the pool has closed its connections, a new one runs on the worker again.
    let store = db.store_with(pool_of(1)).await.unwrap();
    let mut c = store.pool().get().await.unwrap();
    within_10_s("the replaced connection stops counting", async || {
        where_it_runs(&mut c).await == Ran::Inline
    })
    .await;
}

/// A transaction that holds the write lock across an `.await` while other tasks write:
/// the writers wait on their connections' threads, so the workers stay free to finish
/// the transaction, and every write completes long before `busy_timeout` (5 s). Were
/// the writers to wait on the two workers, nothing would run the transaction's task
/// until their waits timed out, and they would fail with "database is locked".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_waiting_for_a_transaction_leave_the_workers_free() {
    let db = keyroute_testing::sqlite().unwrap();
    let store = Arc::new(db.store_with(pool_of(10)).await.unwrap());
    {
        let mut conn = store.pool().get().await.unwrap();
        conn.batch_execute("CREATE TABLE t (x INTEGER)")
            .await
            .unwrap();
        // The file's first writes grow it and its WAL, and may run long enough to
        // start a cool-down; the writes below are short.
        for i in 0..20 {
            conn.batch_execute(&format!("INSERT INTO t VALUES ({i})"))
                .await
                .unwrap();
        }
    }
    settled().await;
    let started = std::time::Instant::now();
    let (locked, is_locked) = tokio::sync::oneshot::channel();
    let holder = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let mut conn = store.pool().get().await.unwrap();
            Tm::begin_transaction(&mut conn).await.unwrap();
            conn.batch_execute("INSERT INTO t VALUES (0)")
                .await
                .unwrap();
            locked.send(()).unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
            Tm::commit_transaction(&mut conn).await.unwrap();
        })
    };
    is_locked.await.unwrap();
    let writers: Vec<_> = (1..=8)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut conn = store.pool().get().await.unwrap();
                conn.batch_execute(&format!("INSERT INTO t VALUES ({i})"))
                    .await
            })
        })
        .collect();
    holder.await.unwrap();
    for writer in writers {
        writer.await.unwrap().unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}
