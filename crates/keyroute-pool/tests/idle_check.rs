//! The `Idle` checkout check, PostgreSQL's default, against a real server: a
//! connection that answered a query within `idle_check_after` is handed out with no
//! round trip; one that sat idle longer, whose last query failed or was abandoned
//! midway, or whose socket the server closed, is verified first.
//!
//! Whether a checkout ran the check is seen from bb8's count of connections that
//! failed it: each test first runs `DEALLOCATE ALL` on its one connection, which
//! drops the prepared `SELECT 1` of the check, so a check that runs fails and the
//! connection is replaced; a check that is skipped leaves the count at zero.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::cell::Cell;
use std::time::Duration;

use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel::sql_types::Integer;
use diesel::{IntoSql, QueryableByName};
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use keyroute_pool::{DbPool, PoolSettings, Postgres, RecyclingCheck};

/// A pool of one connection with `check` and `idle_check_after = window`, on a fresh
/// database, and the connection's first checkout done (a new connection is always
/// verified) with the check's statement then dropped.
async fn primed(
    check: RecyclingCheck,
    window: Duration,
) -> (keyroute_testing::TestDatabase<Postgres>, DbPool<Postgres>) {
    let db = keyroute_testing::postgres().await.unwrap();
    let mut settings = PoolSettings::default();
    settings.max_size = 1;
    settings.recycling_check = check;
    settings.idle_check_after = window;
    let pool = DbPool::<Postgres>::connect(db.url().clone(), settings)
        .await
        .unwrap();
    let mut conn = pool.get().await.unwrap();
    conn.batch_execute("DEALLOCATE ALL").await.unwrap();
    drop(conn);
    assert_eq!(
        failed_checks(&pool),
        0,
        "the first checkout failed its check"
    );
    (db, pool)
}

/// Checkouts whose check failed, so far.
fn failed_checks(pool: &DbPool<Postgres>) -> u64 {
    pool.pool().state().statistics.connections_closed_invalid
}

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

/// The server process of a checkout of `pool`, which must work.
async fn backend_pid(pool: &DbPool<Postgres>) -> i32 {
    let mut conn = pool.get().await.unwrap();
    let row: Pid = diesel::sql_query("SELECT pg_backend_pid() AS pid")
        .get_result(&mut conn)
        .await
        .unwrap();
    row.pid
}

#[tokio::test]
async fn postgres_defaults_to_the_idle_check_after_500_ms() {
    let pool = DbPool::<Postgres>::lazy("postgres://app@127.0.0.1:1/keys", PoolSettings::default())
        .unwrap();
    assert_eq!(pool.settings().recycling_check, RecyclingCheck::Idle);
    assert_eq!(pool.settings().idle_check_after, Duration::from_millis(500));
}

#[tokio::test]
async fn a_connection_that_just_answered_is_not_checked() {
    let (_db, pool) = primed(RecyclingCheck::Idle, Duration::from_secs(30)).await;
    for _ in 0..5 {
        let conn = pool.get().await.unwrap();
        drop(conn);
    }
    assert_eq!(failed_checks(&pool), 0, "a recent connection was checked");
    assert_eq!(pool.pool().state().statistics.connections_created, 1);
}

/// The other side of the test above: with `Verified`, the same sequence runs the
/// check, which fails, so that test's zero means the check was skipped.
#[tokio::test]
async fn verified_checks_the_same_connection() {
    let (_db, pool) = primed(RecyclingCheck::Verified, Duration::from_secs(30)).await;
    backend_pid(&pool).await;
    assert_eq!(failed_checks(&pool), 1);
}

#[tokio::test]
async fn a_connection_idle_past_the_window_is_checked() {
    let (_db, pool) = primed(RecyclingCheck::Idle, Duration::from_millis(100)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    backend_pid(&pool).await;
    assert_eq!(
        failed_checks(&pool),
        1,
        "an idle connection was not checked"
    );
    assert_eq!(pool.pool().state().statistics.connections_created, 2);
}

#[tokio::test]
async fn a_zero_window_checks_every_checkout() {
    let (_db, pool) = primed(RecyclingCheck::Idle, Duration::ZERO).await;
    backend_pid(&pool).await;
    assert_eq!(failed_checks(&pool), 1);
}

#[tokio::test]
async fn a_connection_whose_last_query_failed_is_checked() {
    let (_db, pool) = primed(RecyclingCheck::Idle, Duration::from_secs(30)).await;
    let mut conn = pool.get().await.unwrap();
    conn.batch_execute("SELECT * FROM no_such_table")
        .await
        .unwrap_err();
    drop(conn);
    backend_pid(&pool).await;
    assert_eq!(
        failed_checks(&pool),
        1,
        "a connection after a failed query was not checked"
    );
}

#[tokio::test]
async fn a_connection_whose_query_was_dropped_midway_is_checked() {
    let (_db, pool) = primed(RecyclingCheck::Idle, Duration::from_secs(30)).await;
    let mut conn = pool.get().await.unwrap();
    let abandoned = tokio::time::timeout(
        Duration::from_millis(50),
        diesel::sql_query("SELECT pg_sleep(0.3)").execute(&mut conn),
    )
    .await;
    assert!(
        abandoned.is_err(),
        "the query finished before it was dropped"
    );
    drop(conn);
    backend_pid(&pool).await;
    assert_eq!(
        failed_checks(&pool),
        1,
        "a connection after a dropped query was not checked"
    );
}

/// A server that ends the connection within the window: the driver reads the close
/// in the background, the check sees it, and the next request gets a new connection.
#[tokio::test]
async fn a_connection_the_server_closed_is_not_handed_out() {
    let (db, pool) = primed(RecyclingCheck::Idle, Duration::from_secs(30)).await;
    let pid = backend_pid(&pool).await;
    let admin = DbPool::<Postgres>::connect(db.url().clone(), PoolSettings::default())
        .await
        .unwrap();
    let mut conn = admin.get().await.unwrap();
    diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(&format!(
        "pg_terminate_backend({pid})"
    )))
    .get_result::<bool>(&mut conn)
    .await
    .unwrap();
    // Until the server process is gone, and a moment for the driver to read it.
    for _ in 0..100 {
        let alive: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
            "count(*) FROM pg_stat_activity WHERE pid = {pid}"
        )))
        .get_result(&mut conn)
        .await
        .unwrap();
        if alive == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let next = backend_pid(&pool).await;
    assert_ne!(next, pid, "a closed connection was handed out");
}

/// Counts the queries it sees finish, standing for an app's query log.
struct Counted;

thread_local! {
    /// Per thread: each test runs on its own thread, on a runtime of that thread, and
    /// a PostgreSQL query reports its events where its future is polled.
    static SEEN: Cell<usize> = const { Cell::new(0) };
}

impl Instrumentation for Counted {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if let InstrumentationEvent::FinishQuery { .. } = event {
            SEEN.with(|seen| seen.set(seen.get() + 1));
        }
    }
}

/// The check's own instrumentation wraps the one an app set as diesel's default, so
/// an app's query log still sees every query. (Diesel's default is process-wide: the
/// other tests in this binary pass their events to `Counted` too, which counts them
/// on their own threads.)
#[tokio::test]
async fn an_apps_default_instrumentation_still_sees_every_query() {
    diesel::connection::set_default_instrumentation(|| Some(Box::new(Counted))).unwrap();
    let db = keyroute_testing::postgres().await.unwrap();
    let pool = DbPool::<Postgres>::connect(db.url().clone(), PoolSettings::default())
        .await
        .unwrap();
    let mut conn = pool.get().await.unwrap();
    let before = SEEN.with(Cell::get);
    let two: i32 = diesel::select(2_i32.into_sql::<Integer>())
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(two, 2);
    assert!(
        SEEN.with(Cell::get) > before,
        "the app's instrumentation missed the query"
    );
}
