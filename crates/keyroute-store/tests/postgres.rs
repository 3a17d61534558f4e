//! The conformance suite on PostgreSQL (a fresh database per case on this binary's container).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

#[macro_use]
mod conformance;

conformance_suite!(async {
    let db = keyroute_testing::postgres()
        .await
        .expect("PostgreSQL test database");
    let store = db.store().await.expect("connected and migrated store");
    (store, db)
});
