//! The key store on MySQL and MariaDB: keyroute's migrations, its tables, and the
//! change feed on `keyroute_events` (`events.rs`). Connections are keyroute-pool's.

use chrono::NaiveDateTime;
use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use keyroute_pool::Mysql;

use super::{SqlStore, StoreBackend, sealed};

/// A store on MySQL or MariaDB.
pub type MysqlStore = SqlStore<Mysql>;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/mysql");

impl sealed::Migrations for Mysql {
    super::keyroute_migrations!(MIGRATIONS);
}

// The compiler checks the contract here: `queries.rs` and `events.rs`, included below,
// implement the rest of what a `StoreBackend` is (see `backend.rs`).
impl StoreBackend for Mysql {}

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

/// The keys among `$ids` to stamp in a last-used batch (used by `queries.rs`; see
/// the macro it calls).
macro_rules! unheld {
    ($conn:expr, $ids:expr) => {
        crate::sql::unheld_all!($ids)
    };
}

// Compiled once per backend on purpose: the queries are written once (see `sql/mod.rs`)
// and implement this backend's part of the `StoreBackend` contract (`backend.rs`).
// clippy's `duplicate_mod` stays allowed on each include: one file in several modules
// is exactly what it warns about, and here it is the design.
#[allow(clippy::duplicate_mod)]
#[path = "audit.rs"]
mod audit;
#[allow(clippy::duplicate_mod)]
#[path = "events.rs"]
mod events;
#[allow(clippy::duplicate_mod)]
#[path = "queries.rs"]
mod queries;
#[allow(clippy::duplicate_mod)]
#[path = "rows.rs"]
mod rows;
