//! Failures surface as typed errors with their real cause, and never show a password.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use keyroute_core::{ApiKeyStore, ErrorKind, KeyHash, StoreError};
use keyroute_store::{PoolSettings, PostgresStore, RecyclingCheck, SqliteStore};

fn quick() -> PoolSettings {
    let mut settings = PoolSettings::default();
    settings.connection_timeout = Duration::from_millis(500);
    settings
}

fn assert_unavailable(result: Result<impl std::fmt::Debug, StoreError>, cause: &str, secret: &str) {
    let err = result.expect_err("expected the database to be unavailable");
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    let shown = format!("{err} {err:?}");
    assert!(
        shown.to_lowercase().contains(cause),
        "the cause ({cause}) is kept: {shown}"
    );
    assert!(
        !shown.contains(secret),
        "the password is not shown: {shown}"
    );
}

/// A refused connection is `Unavailable`, says "refused", and hides the password.
#[tokio::test]
async fn refused_connection_keeps_its_cause() {
    let result =
        PostgresStore::connect_with("postgres://app:s3cr3t-pw@127.0.0.1:1/keys", quick()).await;
    assert_unavailable(result, "refused", "s3cr3t-pw");
}

/// A wrong password is `Unavailable` with the server's reason, not a bare timeout.
#[tokio::test(flavor = "multi_thread")]
async fn wrong_password_keeps_its_cause() {
    let db = keyroute_testing::postgres().await.unwrap();
    let url = db
        .url()
        .expose_secret()
        .replace(":keyroute@", ":not-the-password@");
    let result = PostgresStore::connect_with(url, quick()).await;
    assert_unavailable(result, "password authentication failed", "not-the-password");
}

/// An unopenable SQLite file is `Unavailable` with SQLite's reason.
#[tokio::test]
async fn unopenable_sqlite_file_keeps_its_cause() {
    let result = SqliteStore::connect_with("/nonexistent-dir/keys.db", quick()).await;
    assert_unavailable(result, "unable to open", "\u{0}");
}

/// With every connection in use, a request waits `connection_timeout`, then says so.
#[tokio::test(flavor = "multi_thread")]
async fn exhausted_pool_says_all_connections_are_in_use() {
    let db = keyroute_testing::sqlite().unwrap();
    let mut settings = quick();
    settings.max_size = 1;
    settings.recycling_check = RecyclingCheck::Fast;
    let store = db.store_with(settings).await.unwrap();
    let held = store.pool().get().await.unwrap();
    let err = store.api_key_exists(&KeyHash::of("x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.to_string().contains("all 1 are in use"), "{err}");
    drop(held);
    assert!(!store.api_key_exists(&KeyHash::of("x")).await.unwrap());
}

/// Migrations run on a current-thread runtime too (they block, so they must not run
/// on the runtime's only thread, nor with `block_in_place`, which would panic here).
#[tokio::test(flavor = "current_thread")]
async fn migrations_run_on_a_current_thread_runtime() {
    let store = SqliteStore::connect(":memory:").await.unwrap();
    store.init_schema().await.unwrap();
    store.init_schema().await.unwrap();
    assert!(!store.api_key_exists(&KeyHash::of("x")).await.unwrap());
}

/// A store's Debug output names the database but hides the password.
#[tokio::test(flavor = "multi_thread")]
async fn debug_output_hides_the_password() {
    let db = keyroute_testing::postgres().await.unwrap();
    let store = db.store().await.unwrap();
    let shown = format!("{store:?} {db:?}");
    assert!(shown.contains(db.name()), "{shown}");
    assert!(!shown.contains(":keyroute@"), "{shown}");
}
