//! SQLite, the embedded default: a file or an in-memory database, no server.
//!
//! Connections are diesel's synchronous `SqliteConnection` in diesel-async's
//! `SyncConnectionWrapper`. A query runs on the calling Tokio worker while no
//! transaction is open on its file and the file's queries stay short, and on a thread
//! of the connection's own ([`ConnectionThread`]) otherwise, so a query that waits for
//! a transaction's lock never blocks a worker (`sqlite_gate.rs`). Each connection
//! enables foreign keys, waits up to 5 s for a busy database instead of failing, and
//! (for files) uses WAL so readers never block the writer. An in-memory database
//! exists only inside its one connection, so its pool holds exactly one connection and
//! never recycles it.
//!
//! Checkouts use [`RecyclingCheck::Fast`] unless told otherwise: the database is a
//! file opened in this process, so the `SELECT 1` of `Verified` can find nothing
//! wrong with a connection and only costs a hop to the connection's thread (24-45 us per
//! checkout against 0.25 us).
//!
//! URLs: a path (`keys.db`), `sqlite://keys.db`, a `file:` URI, or `:memory:`.
//!
//! A file database is watched: every checkout compares the file's identity (device
//! and inode) with the one first seen (on Linux through inotify, with a `stat` only
//! after the path changed and once a second; elsewhere a `stat` each time). A file
//! that was removed or replaced while the pool had it open is
//! [`StoreError::Unavailable`](keyroute_core::StoreError::Unavailable), where its
//! connections would otherwise go on writing to the old, unreachable file and report
//! success. Restoring the file brings the store back; a new file needs a
//! new store.

use diesel::{Connection, SqliteConnection};
use diesel_async::SimpleAsyncConnection;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use keyroute_core::BoxError;

use crate::backend::{Backend, ConnectFuture, OwnedConnection, sealed};
use crate::{DatabaseUrl, PoolSettings, Pooler, RecyclingCheck};
pub use gate::{
    COOL_DOWN as SQLITE_COOL_DOWN, INLINE_LIMIT as SQLITE_INLINE_LIMIT,
    LONG_QUERY as SQLITE_LONG_QUERY, SLOW_IN_WINDOW as SQLITE_SLOW_IN_WINDOW,
    WINDOW as SQLITE_WINDOW,
};
pub use thread::{ConnectionThread, THREAD_NAME as SQLITE_THREAD_NAME};

/// The SQLite backend.
#[derive(Debug, Clone, Copy)]
pub struct Sqlite;

const PRAGMAS: &str = "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; \
                       PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;";

fn is_in_memory(url: &str) -> bool {
    let path = url.strip_prefix("sqlite://").unwrap_or(url);
    path == ":memory:" || path.contains("mode=memory")
}

impl sealed::Sealed for Sqlite {}

impl Backend for Sqlite {
    type Connection = SyncConnectionWrapper<SqliteConnection, ConnectionThread>;
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
        file_of(url.expose_secret())
    }

    /// Opens a connection on its own thread, watches its transactions for its file's
    /// gate (see `sqlite_gate.rs`), and applies [`PRAGMAS`].
    fn establish(url: String, _pooler: Pooler) -> ConnectFuture<Self::Connection> {
        Box::pin(async move {
            let path = url.strip_prefix("sqlite://").unwrap_or(&url).to_owned();
            let file = file_of(&url);
            let mut runtime = ConnectionThread::default();
            let (mut opened, gate) = runtime
                .on_thread(move || {
                    let conn = SqliteConnection::establish(&path)?;
                    // After opening: a new file exists only now, and its gate is keyed
                    // by its canonical path.
                    Ok((conn, gate::Gate::of(file)))
                })
                .await
                .unwrap_or_else(|e| Err(diesel::ConnectionError::BadConnection(e.to_string())))?;
            let watched = gate::Watched::new(gate);
            opened.set_instrumentation(gate::TxWatch::new(std::sync::Arc::clone(&watched)));
            runtime.gate(watched);
            let mut conn = SyncConnectionWrapper::with_runtime(opened, runtime);
            conn.batch_execute(PRAGMAS)
                .await
                .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        })
    }

    crate::backend::app_migrations!();
}

#[path = "sqlite_gate.rs"]
mod gate;
#[path = "sqlite_thread.rs"]
mod thread;

/// The file a SQLite URL names, or `None` for an in-memory database.
fn file_of(url: &str) -> Option<std::path::PathBuf> {
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
