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

/// Server databases keep `Verified` by default: a server can drop a connection.
#[tokio::test]
async fn servers_default_to_the_verified_check() {
    let pg = DbPool::<Postgres>::lazy("postgres://app@127.0.0.1:1/keys", PoolSettings::default())
        .unwrap();
    assert_eq!(pg.settings().recycling_check, RecyclingCheck::Verified);
    let my =
        DbPool::<Mysql>::lazy("mysql://app@127.0.0.1:1/keys", PoolSettings::default()).unwrap();
    assert_eq!(my.settings().recycling_check, RecyclingCheck::Verified);
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
