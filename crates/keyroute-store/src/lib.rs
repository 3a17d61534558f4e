//! keyroute's key stores: where users and API keys live.
//!
//! Owns the stores behind the core store traits ([`Store`](keyroute_core::Store)),
//! keyroute's own tables and embedded migrations (`migrations/<backend>/` at the
//! workspace root, reached through this crate's `migrations` link so the published
//! crate carries them), the queries, and the change feed each store publishes to other
//! instances. Every backend passes one conformance suite, so a service moves between
//! them by changing one line.
//!
//! Depends on `keyroute-core` and, for the SQL stores, `keyroute-pool`, which owns
//! the connections: URLs, pools, backends and their markers, TLS, the breaker. A SQL
//! store keeps its keys in one [`DbPool`]; the pool types its constructors take are
//! re-exported here. No other keyroute crate depends on this one except the facade
//! (and the test crates): routing to a database does not compile a key store.
//!
//! | feature | backend | for |
//! |---|---|---|
//! | `memory` (default) | [`MemoryStore`] | single-process services, demos, tests above the store |
//! | `sqlite` | [`SqliteStore`] | the embedded default: a file or in-memory database, no server |
//! | `postgres` | [`PostgresStore`] | PostgreSQL |
//! | `mysql` | [`MysqlStore`] | MySQL and MariaDB |
//! | `sql` | [`SqlStore`], [`StoreBackend`] | code generic over backends (every SQL backend turns it on) |
//!
//! With the `test-util` feature, `CountingStore` wraps any of them and counts the calls
//! made through it.
//!
//! [`SqlStore<B>`](SqlStore) is a [`Store`](keyroute_core::Store) for every
//! `B: StoreBackend`; the SQL stores run their embedded migrations on
//! [`init_schema`](keyroute_core::ApiKeyStore::init_schema) or
//! [`migrate`](SqlStore::migrate), map database errors to
//! [`StoreError`](keyroute_core::StoreError) kinds (a unique violation is a `Conflict`,
//! a connection failure `Unavailable` with its real cause) and never show a password.
// docs.rs (nightly, `--cfg docsrs`) marks each item with the features it needs;
// `doc_auto_cfg` was merged into `doc_cfg` in Rust 1.92 and is an error since.
#![cfg_attr(docsrs, feature(doc_cfg))]
// Every public item is documented: a published crate's docs are its manual.
#![deny(missing_docs)]

#[cfg(feature = "test-util")]
mod counting;
#[cfg(feature = "memory")]
mod memory;

#[cfg(feature = "sql")]
mod sql;

/// Which users a page of users holds. `UserStore::list_users` and
/// `UserStore::users_missing_keys` are one keyset-paged query (users in id order,
/// after a cursor, up to a limit) that differs only in this filter, so each store
/// writes that query once and takes the filter.
#[cfg(any(
    feature = "memory",
    feature = "sqlite",
    feature = "postgres",
    feature = "mysql"
))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UserFilter {
    /// Every user, with keys or without.
    Any,
    /// Only users who own no key at all: the pages of a backfill.
    WithoutKeys,
}

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
pub use keyroute_pool::{
    Backend, Checkout, DatabaseUrl, DbPool, PoolSettings, Pooler, RecyclingCheck,
};
#[cfg(feature = "mysql")]
pub use sql::mysql::MysqlStore;
#[cfg(feature = "postgres")]
pub use sql::postgres::{
    CHANNEL as POSTGRES_FEED_CHANNEL, LISTENER_APPLICATION_NAME as POSTGRES_FEED_APPLICATION_NAME,
    PostgresStore,
};
#[cfg(feature = "sqlite")]
pub use sql::sqlite::SqliteStore;
#[cfg(feature = "sql")]
pub use sql::{SqlStore, StoreBackend, keyroute_migration_versions};
