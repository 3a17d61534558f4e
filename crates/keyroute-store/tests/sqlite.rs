//! The conformance suite on SQLite (a temporary file per case).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

#[macro_use]
mod conformance;

conformance_suite!(async {
    let db = keyroute_testing::sqlite().expect("temporary SQLite database");
    let store = db.store().await.expect("connected and migrated store");
    (store, db)
});
