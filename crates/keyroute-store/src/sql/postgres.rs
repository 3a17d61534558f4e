//! PostgreSQL, on `AsyncPgConnection` (tokio-postgres: no libpq needed).
//!
//! Connections are opened with `tokio_postgres::connect` and handed to diesel-async,
//! rather than through `AsyncPgConnection::establish`, which keeps only the top line of
//! a connection error ("error connecting to server") and drops its cause ("connection
//! refused"). TLS follows libpq's `sslmode` and `sslrootcert`, on rustls (see
//! `pool/tls.rs`).

use chrono::{DateTime, Utc};
use diesel_async::{AsyncMigrationHarness, AsyncPgConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use keyroute_core::BoxError;

use diesel_async::pooled_connection::AsyncDieselConnectionManager;

use super::SqlStore;
use crate::pool::{Backend, ConnectSetup, DatabaseUrl, OwnedConnection, sealed};

/// The PostgreSQL backend.
#[derive(Debug, Clone, Copy)]
pub struct Postgres;

/// A store on PostgreSQL.
pub type PostgresStore = SqlStore<Postgres>;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

impl sealed::Sealed for Postgres {}

impl Backend for Postgres {
    type Connection = AsyncPgConnection;
    type Manager = AsyncDieselConnectionManager<Self::Connection>;
    const NAME: &'static str = "PostgreSQL";

    fn manager(url: &DatabaseUrl, setup: ConnectSetup) -> Self::Manager {
        crate::pool::manager(url, setup, |url| {
            Box::pin(crate::pool::connect::postgres(url))
        })
    }

    fn run_migrations(conn: OwnedConnection<Self>) -> Result<(), BoxError> {
        AsyncMigrationHarness::new(conn).run_pending_migrations(MIGRATIONS)?;
        Ok(())
    }

    crate::pool::app_migrations!(MIGRATIONS);
}

type Marker = Postgres;
type Ts = DateTime<Utc>;

mod schema {
    crate::sql::keyroute_schema!(Timestamptz);
}

/// One multi-row `INSERT` per chunk (used by `queries.rs`).
macro_rules! insert_rows {
    ($conn:expr, $table:expr, $rows:expr) => {
        diesel::insert_into($table)
            .values($rows)
            .execute($conn)
            .await?
    };
}

/// A read of at most one row (used by `queries.rs` for the key lookup).
macro_rules! read_one {
    ($conn:expr, $query:expr) => {
        crate::sql::read_one_async!($conn, $query)
    };
}

// Compiled once per backend on purpose: the queries are written once (see `sql/mod.rs`).
#[path = "notify.rs"]
mod notify;
#[allow(clippy::duplicate_mod)]
#[path = "queries.rs"]
mod queries;
#[allow(clippy::duplicate_mod)]
#[path = "rows.rs"]
mod rows;
use notify::publish;
pub use notify::{CHANNEL, LISTENER_APPLICATION_NAME};
