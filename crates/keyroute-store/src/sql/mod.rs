//! The SQL stores on diesel + diesel-async, on keyroute-pool's pools.
//!
//! Layout: this module holds the [`SqlStore`] type and the schema every backend shares;
//! the pool it keeps its keys in ([`DbPool`], [`PoolSettings`], the redacted
//! [`DatabaseUrl`], the sealed [`Backend`] trait) is the `keyroute-pool` crate's,
//! which the connection router uses too. `backend.rs` holds [`StoreBackend`], the
//! contract each backend module keeps, and `dispatch.rs` the one implementation of the
//! core store traits over it. `error.rs` maps database errors to [`StoreError`]
//! kinds, `codec.rs` says how values are stored. `queries.rs` holds the store's
//! queries and `rows.rs` the table rows they read and write, both written once and
//! compiled inside each backend module (`postgres.rs`, `mysql.rs`, `sqlite.rs`), which
//! supplies its own `schema`, its timestamp type and its migrations. Writing the
//! queries once keeps the backends from drifting apart; compiling them per backend
//! keeps diesel's types concrete, where a generic implementation would drown in trait
//! bounds.
//!
//! Schema: `keyroute_users` and `keyroute_api_keys` (prefixed, since teams embed keyroute
//! in their own databases). Keys are found by `hash` only, under a unique index; an
//! index on `(user_id, environment)` serves listing, regeneration and backfill.
//! Migrations live in `migrations/<backend>/` at the workspace root and are embedded
//! through this crate's `migrations` link (a published crate can only read files
//! inside its own directory; `cargo package` follows the link).
//!
//! Change feed: every write other instances' caches must learn of publishes an event
//! in its own transaction through the backend's `publish`: `pg_notify` on PostgreSQL
//! (`notify.rs`), a row in `keyroute_events` on SQLite and MySQL (`events.rs`, which
//! also polls it). PostgreSQL has no `keyroute_events` table.

use std::fmt;
use std::marker::PhantomData;

use keyroute_core::{StoreError, StoreResult};

use keyroute_pool::{Backend, DatabaseUrl, DbPool, PoolSettings};

mod backend;
mod dispatch;

// What the backend modules' queries share. With the `sql` feature alone (code generic
// over backends, no backend compiled) nothing uses it, so it compiles with a backend.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod codec;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
mod error;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
use codec::{
    Timestamp, decode, decode_limits, decode_meta, decode_networks, decode_scopes, encode_limits,
    encode_meta, encode_networks, encode_scopes,
};
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
use error::map_error;

pub use backend::{StoreBackend, keyroute_migration_versions};
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub(crate) use backend::{keyroute_migrations, sealed};

#[cfg(feature = "mysql")]
pub(crate) mod mysql;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(feature = "sqlite")]
pub(crate) mod sqlite;

/// The tables, for every backend: only the timestamp column type differs.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
macro_rules! keyroute_schema {
    ($timestamp:ident) => {
        diesel::table! {
            keyroute_users (id) {
                id -> Text,
                user_name -> Text,
                email -> Nullable<Text>,
                tenant -> Nullable<Text>,
                created_at -> $timestamp,
                meta -> Text,
            }
        }

        diesel::table! {
            keyroute_api_keys (id) {
                id -> Text,
                user_id -> Nullable<Text>,
                tenant -> Nullable<Text>,
                key_type -> Text,
                environment -> Text,
                hash -> Binary,
                hint -> Text,
                name -> Nullable<Text>,
                created_at -> $timestamp,
                expires_at -> Nullable<$timestamp>,
                cancelled_at -> Nullable<$timestamp>,
                last_used_at -> Nullable<$timestamp>,
                scopes -> Text,
                notes -> Nullable<Text>,
                ref_id -> Nullable<Text>,
                meta -> Text,
                enabled -> Bool,
                allowed_networks -> Nullable<Text>,
                revision -> BigInt,
                limits -> Nullable<Text>,
                credits_remaining -> Nullable<BigInt>,
                credits_refill -> Nullable<Text>,
                credits_next_refill_at -> Nullable<$timestamp>,
            }
        }

        diesel::table! {
            keyroute_denylist (id) {
                id -> Text,
                expires_at -> $timestamp,
                denied_from -> Nullable<$timestamp>,
            }
        }

        diesel::table! {
            keyroute_events (id) {
                id -> BigInt,
                kind -> Text,
                subject -> Text,
                created_at -> $timestamp,
            }
        }

        diesel::table! {
            keyroute_audit (id) {
                id -> BigInt,
                at -> $timestamp,
                actor -> Text,
                action -> Text,
                key_id -> Nullable<Text>,
                environment -> Nullable<Text>,
                user_id -> Nullable<Text>,
                details -> Text,
                source -> Nullable<Text>,
                request_id -> Nullable<Text>,
            }
        }

        diesel::joinable!(keyroute_api_keys -> keyroute_users (user_id));
        diesel::allow_tables_to_appear_in_same_query!(keyroute_users, keyroute_api_keys);
    };
}
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub(crate) use keyroute_schema;

/// A read of at most one row on an async connection, `None` when there is none: the
/// `read_one!` of the PostgreSQL and MySQL modules (SQLite has its own, see `sqlite.rs`).
#[cfg(any(feature = "postgres", feature = "mysql"))]
macro_rules! read_one_async {
    ($conn:expr, $query:expr) => {
        diesel_async::RunQueryDsl::get_result($query, $conn)
            .await
            .optional()
    };
}
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) use read_one_async;

/// The keys among `$ids` (sorted) whose rows no other transaction holds, locked in id
/// order (`FOR UPDATE SKIP LOCKED`): PostgreSQL's `unheld!`. Its `UPDATE ... WHERE id =
/// ANY(...)` locks rows in the order of whatever plan it gets (index or heap order),
/// so two batches of overlapping keys deadlocked; now they never wait on each other.
/// A row another transaction holds is being stamped by it, as freshly.
#[cfg(feature = "postgres")]
macro_rules! unheld_skip_locked {
    ($conn:expr, $ids:expr) => {
        diesel_async::RunQueryDsl::load::<String>(
            keys::table
                .filter(keys::id.eq_any($ids))
                .order(keys::id)
                .select(keys::id)
                .for_update()
                .skip_locked(),
            $conn,
        )
        .await?
    };
}
#[cfg(feature = "postgres")]
pub(crate) use unheld_skip_locked;

/// All of `$ids` (sorted), to stamp without locking first: the `unheld!` of SQLite (no
/// row locks: a writing transaction holds the database) and MySQL / MariaDB (InnoDB
/// locks an `IN` list on the primary key in key order, so batches of overlapping keys
/// wait for each other but cannot deadlock; `SKIP LOCKED` before the update made
/// MariaDB 10.11 report deadlocks).
#[cfg(any(feature = "sqlite", feature = "mysql"))]
macro_rules! unheld_all {
    ($ids:expr) => {
        $ids.iter()
            .map(|id| id.to_string())
            .collect::<Vec<String>>()
    };
}
#[cfg(any(feature = "sqlite", feature = "mysql"))]
pub(crate) use unheld_all;

/// Rows per multi-row `INSERT`: 1000 rows × 16 columns stays under every backend's
/// bind-parameter limit (SQLite's is the lowest, 32 766).
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
const INSERT_CHUNK: usize = 1000;

/// Ends a store operation's unit of work ([`SqlStore::conn`]): commits it behind a
/// transaction pooler; directly, each statement was kept as it ran and this does
/// nothing.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
async fn done<B: Backend>(conn: keyroute_pool::Checkout<B>) -> StoreResult<()> {
    conn.commit().await.map_err(map_error)
}

/// A store on a SQL database: [`PostgresStore`](crate::PostgresStore),
/// [`MysqlStore`](crate::MysqlStore) or [`SqliteStore`](crate::SqliteStore).
pub struct SqlStore<B: Backend> {
    db: DbPool<B>,
    /// A session connection's URL for what a transaction pooler cannot carry (the
    /// change feed's `LISTEN`, migrations), when it differs from the pool's.
    direct: Option<DatabaseUrl>,
    _backend: PhantomData<B>,
}

impl<B: Backend> Clone for SqlStore<B> {
    fn clone(&self) -> Self {
        Self {
            db: self.db.clone(),
            direct: self.direct.clone(),
            _backend: PhantomData,
        }
    }
}

impl<B: Backend> fmt::Debug for SqlStore<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore")
            .field("db", &self.db)
            .field("direct", &self.direct)
            .finish()
    }
}

impl<B: Backend> SqlStore<B> {
    /// Connects with default pool settings and checks the database answers.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] with the real cause when no connection can be made.
    pub async fn connect(url: impl Into<DatabaseUrl>) -> StoreResult<Self> {
        Self::connect_with(url, PoolSettings::default()).await
    }

    /// Connects with `settings` and checks the database answers.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] with the real cause when no connection can be made.
    pub async fn connect_with(
        url: impl Into<DatabaseUrl>,
        settings: PoolSettings,
    ) -> StoreResult<Self> {
        Ok(Self::from_pool(DbPool::connect(url, settings).await?))
    }

    /// A store on an existing pool (keys in the same database as the team's data).
    pub fn from_pool(db: DbPool<B>) -> Self {
        Self {
            db,
            direct: None,
            _backend: PhantomData,
        }
    }

    /// This store, with `url` for what needs a session of its own on the store's
    /// database: the change feed's `LISTEN` connection and keyroute's migrations.
    /// Give it when the pool's URL goes through a pooler in transaction mode
    /// (`[store] direct_url`); the pool's URL serves them otherwise.
    pub fn with_direct_url(mut self, url: impl Into<DatabaseUrl>) -> Self {
        self.direct = Some(url.into());
        self
    }

    /// The URL of the change feed's connection and of migrations: the direct URL if
    /// one was given, the pool's otherwise.
    pub fn session_url(&self) -> &DatabaseUrl {
        self.direct.as_ref().unwrap_or_else(|| self.db.url())
    }

    /// The store's pool.
    pub fn db(&self) -> &DbPool<B> {
        &self.db
    }

    /// The bb8 pool, for queries of the team's own.
    pub fn pool(&self) -> &bb8::Pool<B::Manager> {
        self.db.pool()
    }

    /// The database URL (redacted in `Debug`).
    pub fn url(&self) -> &DatabaseUrl {
        self.db.url()
    }

    /// A connection for one of the store's operations, or `Unavailable` with the real
    /// cause: behind a transaction pooler a unit transaction, which the operation ends
    /// with [`done`] once its work is in (so what it wrote is committed, and published,
    /// before it returns).
    #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
    async fn conn(&self) -> StoreResult<keyroute_pool::Checkout<B>> {
        self.db.unit().await
    }
}

impl<B: StoreBackend> SqlStore<B> {
    /// Checks that this store's change feed delivers what is committed: on
    /// PostgreSQL, a `LISTEN` connection on [`session_url`](Self::session_url) must
    /// receive a probe notification within 3 s (behind a pooler in transaction mode
    /// it receives nothing: give the store a direct URL). Backends whose feed is
    /// polled have nothing to check. keyroute's builder runs it when caches follow the
    /// feed.
    ///
    /// # Errors
    /// [`StoreError::Misuse`] naming `[store] direct_url` when nothing arrives;
    /// `Unavailable` when the connection cannot be opened.
    pub async fn verify_feed(&self) -> StoreResult<()> {
        B::verify_feed(self).await
    }

    /// Runs the embedded migrations (idempotent). Works on either Tokio runtime flavour:
    /// the migration harness blocks, so it runs on a blocking thread.
    ///
    /// # Errors
    /// [`StoreError::Migration`] when a migration fails, `Unavailable` when the database
    /// cannot be reached.
    pub async fn migrate(&self) -> StoreResult<()> {
        let conn = match &self.direct {
            // A session of its own: diesel's harness runs statements outside its
            // migrations' transactions, which a transaction pooler may split.
            Some(url) => {
                let mut settings = self.db.settings().clone();
                settings.max_size = 1;
                settings.min_idle = None;
                settings.pooler = keyroute_pool::Pooler::Session;
                DbPool::<B>::connect(url.clone(), settings)
                    .await?
                    .get_owned()
                    .await?
            }
            None => self.db.get_owned().await?,
        };
        tokio::task::spawn_blocking(move || B::run_migrations(conn))
            .await
            .map_err(StoreError::migration)?
            .map_err(StoreError::migration)
    }
}
