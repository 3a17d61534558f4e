//! SQLite, the embedded default: a file or an in-memory database, no server.
//!
//! Connections are diesel's synchronous `SqliteConnection` in diesel-async's
//! `SyncConnectionWrapper`, whose queries run where [`CallerThread`] says: on the
//! calling thread (inside `block_in_place`) on the multi-threaded runtime, on the
//! blocking pool on a current-thread one. Each connection enables foreign keys, waits
//! up to 5 s for a busy database instead of failing, and (for files) uses WAL so readers
//! never block the writer. An in-memory database exists only inside its one connection,
//! so its pool holds exactly one connection and never recycles it.
//!
//! Checkouts use [`RecyclingCheck::Fast`] unless told otherwise: the database is a
//! file opened in this process, so the `SELECT 1` of `Verified` can find nothing
//! wrong with a connection and only costs a hop to a blocking thread (24-45 us per
//! checkout against 0.25 us).
//!
//! URLs: a path (`keys.db`), `sqlite://keys.db`, a `file:` URI, or `:memory:`.
//!
//! A file database is watched: every checkout compares the file's identity (device
//! and inode; one `stat` call) with the one first seen, and a file that was removed or
//! replaced while the pool had it open is [`StoreError::Unavailable`](keyroute_core::StoreError::Unavailable),
//! where its connections would otherwise go on writing to the old, unreachable file
//! and report success. Restoring the file brings the store back; a new file needs a
//! new store.

use diesel::SqliteConnection;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncMigrationHarness, SimpleAsyncConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use keyroute_core::BoxError;

use diesel_async::pooled_connection::AsyncDieselConnectionManager;

use super::SqlStore;
use crate::pool::{
    Backend, ConnectFuture, ConnectSetup, DatabaseUrl, OwnedConnection, PoolSettings,
    RecyclingCheck, sealed,
};
pub use thread::CallerThread;

/// The SQLite backend.
#[derive(Debug, Clone, Copy)]
pub struct Sqlite;

/// A store on SQLite.
pub type SqliteStore = SqlStore<Sqlite>;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

const PRAGMAS: &str = "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; \
                       PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;";

fn is_in_memory(url: &str) -> bool {
    let path = url.strip_prefix("sqlite://").unwrap_or(url);
    path == ":memory:" || path.contains("mode=memory")
}

impl sealed::Sealed for Sqlite {}

impl Backend for Sqlite {
    type Connection = SyncConnectionWrapper<SqliteConnection, CallerThread>;
    type Manager = AsyncDieselConnectionManager<Self::Connection>;
    const NAME: &'static str = "SQLite";
    const DEFAULT_CHECK: RecyclingCheck = RecyclingCheck::Fast;

    fn adjust(url: &DatabaseUrl, mut settings: PoolSettings) -> PoolSettings {
        if is_in_memory(url.expose_secret()) {
            settings.max_size = 1;
            settings.min_idle = Some(1);
            settings.idle_timeout = None;
            settings.max_lifetime = None;
        }
        settings
    }

    fn database_file(url: &DatabaseUrl) -> Option<std::path::PathBuf> {
        let url = url.expose_secret();
        let path = url.strip_prefix("sqlite://").unwrap_or(url);
        if is_in_memory(path) {
            return None;
        }
        // A `file:` URI names its file before any `?` parameters.
        let path = match path.strip_prefix("file:") {
            Some(uri) => uri.split(['?', '#']).next().unwrap_or_default(),
            None => path,
        };
        // An empty name is a private temporary database, like `:memory:`.
        (!path.is_empty()).then(|| std::path::PathBuf::from(path))
    }

    fn manager(url: &DatabaseUrl, setup: ConnectSetup) -> Self::Manager {
        crate::pool::manager(url, setup, establish)
    }

    fn run_migrations(conn: OwnedConnection<Self>) -> Result<(), BoxError> {
        AsyncMigrationHarness::new(conn).run_pending_migrations(MIGRATIONS)?;
        Ok(())
    }

    crate::pool::app_migrations!(MIGRATIONS);
}

/// Opens a connection and applies [`PRAGMAS`].
fn establish(url: String) -> ConnectFuture<<Sqlite as Backend>::Connection> {
    Box::pin(async move {
        let path = url.strip_prefix("sqlite://").unwrap_or(&url);
        let mut conn =
            SyncConnectionWrapper::<SqliteConnection, CallerThread>::establish(path).await?;
        conn.batch_execute(PRAGMAS)
            .await
            .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
        Ok(conn)
    })
}

type Marker = Sqlite;
type Ts = i64;

mod schema {
    crate::sql::keyroute_schema!(BigInt);
}

/// One `INSERT` per row (used by `queries.rs`): diesel-async cannot send a multi-row
/// `INSERT` to SQLite. Rows go in one transaction to one in-process database, so the
/// loop costs microseconds per row, not round trips.
macro_rules! insert_rows {
    ($conn:expr, $table:expr, $rows:expr) => {
        for row in $rows {
            diesel::insert_into($table)
                .values(row)
                .execute(&mut *$conn)
                .await?;
        }
    };
}

/// A read of at most one row (used by `queries.rs` for the key lookup), `None` when
/// there is none, run on diesel's synchronous connection inside the wrapper's
/// `spawn_blocking` (on [`CallerThread`], so no hop).
///
/// Why not diesel-async's `get_result`: `SyncConnectionWrapper` renders every query to
/// its SQL text and collects its binds before handing it to its thread, and diesel's
/// statement cache then finds the prepared statement by hashing that text. The query
/// built inside the closure instead keeps its static query id, so the cache finds the
/// statement by type: no rendering, no hashing, no string allocations (measured on
/// the lookup benchmark, see the commit that introduced this). `$query` is built
/// inside the closure, so whatever it captures must be owned.
macro_rules! read_one {
    ($conn:expr, $query:expr) => {
        $conn
            .spawn_blocking(move |conn| diesel::RunQueryDsl::get_result($query, conn).optional())
            .await
    };
}

#[path = "sqlite_thread.rs"]
mod thread;

// Compiled once per backend on purpose: the queries are written once (see `sql/mod.rs`).
#[allow(clippy::duplicate_mod)]
#[path = "events.rs"]
mod events;
#[allow(clippy::duplicate_mod)]
#[path = "queries.rs"]
mod queries;
#[allow(clippy::duplicate_mod)]
#[path = "rows.rs"]
mod rows;
use events::publish;
