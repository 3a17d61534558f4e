//! MySQL and MariaDB, on `AsyncMysqlConnection` (mysql_async: no libmysqlclient needed).

use chrono::NaiveDateTime;
use diesel_async::{AsyncMigrationHarness, AsyncMysqlConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use keyroute_core::BoxError;

use diesel_async::pooled_connection::AsyncDieselConnectionManager;

use super::SqlStore;
use crate::pool::{Backend, ConnectSetup, DatabaseUrl, OwnedConnection, sealed};

/// The MySQL / MariaDB backend.
#[derive(Debug, Clone, Copy)]
pub struct Mysql;

/// A store on MySQL or MariaDB.
pub type MysqlStore = SqlStore<Mysql>;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/mysql");

impl sealed::Sealed for Mysql {}

impl Backend for Mysql {
    type Connection = AsyncMysqlConnection;
    type Manager = AsyncDieselConnectionManager<Self::Connection>;
    const NAME: &'static str = "MySQL";

    fn manager(url: &DatabaseUrl, setup: ConnectSetup) -> Self::Manager {
        crate::pool::manager(url, setup, |url| Box::pin(crate::pool::connect::mysql(url)))
    }

    fn run_migrations(conn: OwnedConnection<Self>) -> Result<(), BoxError> {
        AsyncMigrationHarness::new(conn).run_pending_migrations(MIGRATIONS)?;
        Ok(())
    }

    crate::pool::app_migrations!(MIGRATIONS);
}

type Marker = Mysql;
type Ts = NaiveDateTime;

mod schema {
    crate::sql::keyroute_schema!(Datetime);
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
