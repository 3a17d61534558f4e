//! keyroute's store backends: where users and API keys live.
//!
//! Every backend implements the [`keyroute_core::store`] traits and passes one
//! conformance suite, so a service moves between them by changing one line.
//!
//! | feature | backend | for |
//! |---|---|---|
//! | `memory` (default) | [`MemoryStore`] | single-process services, demos, tests above the store |
//! | `sqlite` | [`SqliteStore`] | the embedded default: a file or in-memory database, no server |
//! | `postgres` | [`PostgresStore`] | PostgreSQL |
//! | `mysql` | [`MysqlStore`] | MySQL and MariaDB |
//! | `pool` | the [`pool`] module | pooled diesel-async connections, used by the router (every SQL backend turns it on) |
//!
//! With the `test-util` feature, `CountingStore` wraps any of them and counts the calls
//! made through it.
//!
//! The SQL stores are pooled with bb8 ([`PoolSettings`]), run their embedded migrations
//! on [`init_schema`](keyroute_core::ApiKeyStore::init_schema) or
//! [`migrate`](SqlStore::migrate), map database errors to
//! [`StoreError`](keyroute_core::StoreError) kinds (a unique violation is a `Conflict`,
//! a connection failure `Unavailable` with its real cause) and never show a password.
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

#[cfg(feature = "test-util")]
pub mod counting;
#[cfg(feature = "memory")]
pub mod memory;

#[cfg(feature = "sql")]
pub mod sql;

#[cfg(feature = "test-util")]
pub use counting::CountingStore;
#[cfg(feature = "memory")]
pub use memory::MemoryStore;
// What a store's constructors take, from keyroute-pool, so a store user needs one crate.
#[cfg(feature = "mysql")]
pub use keyroute_pool::Mysql;
#[cfg(feature = "postgres")]
pub use keyroute_pool::Postgres;
#[cfg(feature = "sqlite")]
pub use keyroute_pool::Sqlite;
#[cfg(feature = "sql")]
pub use keyroute_pool::{Backend, DatabaseUrl, DbPool, PoolSettings, RecyclingCheck};
#[cfg(feature = "mysql")]
pub use sql::mysql::MysqlStore;
#[cfg(feature = "postgres")]
pub use sql::postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use sql::sqlite::SqliteStore;
#[cfg(feature = "sql")]
pub use sql::{SqlStore, StoreBackend, keyroute_migration_versions};
