//! Pool settings as each backend resolves them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use keyroute_pool::{DbPool, Mysql, PoolSettings, Postgres, RecyclingCheck, Sqlite};

/// A SQLite pool built with default settings checks out with `Fast`: a `SELECT 1`
/// on an in-process file catches nothing.
#[tokio::test]
async fn sqlite_defaults_to_the_fast_check() {
    let db = keyroute_testing::sqlite().unwrap();
    let pool = DbPool::<Sqlite>::lazy(db.url().clone(), PoolSettings::default()).unwrap();
    assert_eq!(pool.settings().recycling_check, RecyclingCheck::Fast);
    let memory = DbPool::<Sqlite>::lazy(":memory:", PoolSettings::default()).unwrap();
    assert_eq!(memory.settings().recycling_check, RecyclingCheck::Fast);
}

/// Server databases check the connections that may have gone stale by default: those
/// that sat idle, or whose last query failed or was dropped (`tests/idle_check.rs`,
/// `tests/dropped_query.rs`).
#[tokio::test]
async fn servers_default_to_checking_connections() {
    let pg = DbPool::<Postgres>::lazy("postgres://app@127.0.0.1:1/keys", PoolSettings::default())
        .unwrap();
    assert_eq!(pg.settings().recycling_check, RecyclingCheck::Idle);
    let my =
        DbPool::<Mysql>::lazy("mysql://app@127.0.0.1:1/keys", PoolSettings::default()).unwrap();
    assert_eq!(my.settings().recycling_check, RecyclingCheck::Idle);
}

/// A check chosen explicitly is kept on every backend.
#[tokio::test]
async fn an_explicit_check_is_kept() {
    let mut settings = PoolSettings::default();
    settings.recycling_check = RecyclingCheck::Verified;
    let db = keyroute_testing::sqlite().unwrap();
    let pool = DbPool::<Sqlite>::lazy(db.url().clone(), settings.clone()).unwrap();
    assert_eq!(pool.settings().recycling_check, RecyclingCheck::Verified);
    settings.recycling_check = RecyclingCheck::Fast;
    let pg = DbPool::<Postgres>::lazy("postgres://app@127.0.0.1:1/keys", settings).unwrap();
    assert_eq!(pg.settings().recycling_check, RecyclingCheck::Fast);
}

/// `Idle` chosen for SQLite checks every checkout, as `Verified` does: a query whose
/// future is dropped can leave its connection thread holding the connection, and
/// nothing on such a connection may be read at checkout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_on_sqlite_checks_every_checkout() {
    use diesel_async::SimpleAsyncConnection;
    let db = keyroute_testing::sqlite().unwrap();
    let mut settings = PoolSettings::default();
    settings.recycling_check = RecyclingCheck::Idle;
    settings.max_size = 1;
    let pool = DbPool::<Sqlite>::connect(db.url().clone(), settings)
        .await
        .unwrap();
    assert_eq!(pool.settings().recycling_check, RecyclingCheck::Idle);
    for _ in 0..3 {
        let mut conn = pool.get().await.unwrap();
        conn.batch_execute("SELECT 1").await.unwrap();
    }
    // A recursive query long enough to be dropped midway, then the next checkout.
    let mut conn = pool.get().await.unwrap();
    let _ = tokio::time::timeout(
        std::time::Duration::from_millis(5),
        conn.batch_execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000) SELECT count(*) FROM n",
        ),
    )
    .await;
    drop(conn);
    let mut conn = pool.get().await.unwrap();
    conn.batch_execute("SELECT 1").await.unwrap();
}
