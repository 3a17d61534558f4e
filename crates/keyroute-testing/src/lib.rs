#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod app;
pub mod bench;
mod client;
mod databases;
pub mod dedicated;
mod error;
mod keys;
mod migrations;
mod pgbouncer;
mod provision;
mod run;
mod server;
mod valkey;

pub use app::{STORE_DATABASE, TestApp, TestAppBuilder};
pub use client::{TestClient, TestServer};
pub use databases::{
    LiveAndTest, TEST_POOL_SIZE, TestBackend, TestDatabase, mariadb, mariadb_live_and_test,
    postgres, postgres_live_and_test, sqlite,
};
pub use error::TestAppError;
pub use keys::KeyBuilder;
pub use pgbouncer::{ConsoleRow, PgBouncerOptions, PoolMode, TestPgBouncer, pgbouncer};
pub use server::HarnessError;
pub use valkey::{DedicatedValkey, TestValkey, valkey, valkey_restartable};

/// Builds a fresh [`TestApp`] for an `async fn` test and passes it in; see the crate
/// docs. Options: `migrations = "migrations"` and `config = "keyroute.toml"` (paths
/// relative to the crate's `Cargo.toml`), `tenants = ["acme", "globex"]`.
pub use keyroute_testing_macros::test;

/// The HTTP client [`TestClient`] hands out requests of: add a body or JSON, then
/// `.send().await`.
pub use reqwest;

#[doc(hidden)]
pub mod __private {
    pub use crate::run::run;
}
