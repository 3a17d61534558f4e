//! The conformance suite on MariaDB (a fresh database per case on this binary's container).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

#[macro_use]
mod conformance;

conformance_suite!(async {
    let db = keyroute_testing::mariadb()
        .await
        .expect("MariaDB test database");
    let store = db.store().await.expect("connected and migrated store");
    (store, db)
});

/// A `mariadb://` URL reaches the same server as its `mysql://` spelling (the
/// `keyroute` command and `DatabaseUrl::backend` accept both).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_scheme_connects() {
    use keyroute_core::{ApiKeyStore, KeyHash};
    let db = keyroute_testing::mariadb()
        .await
        .expect("MariaDB test database");
    let url = db
        .url()
        .expose_secret()
        .replacen("mysql://", "mariadb://", 1);
    assert!(url.starts_with("mariadb://"));
    let store = keyroute_store::MysqlStore::connect(url.as_str())
        .await
        .unwrap();
    store.init_schema().await.unwrap();
    assert!(!store.api_key_exists(&KeyHash::of("x")).await.unwrap());
}
