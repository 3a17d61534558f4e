//! The key store on SQLite: keyroute's migrations, its tables, and the change feed on
//! `keyroute_events` (`events.rs`). Connections (files, `:memory:`, the thread queries
//! run on) are keyroute-pool's.

use diesel_migrations::{EmbeddedMigrations, embed_migrations};
use keyroute_pool::Sqlite;

use super::{SqlStore, StoreBackend, sealed};

/// A store on SQLite.
pub type SqliteStore = SqlStore<Sqlite>;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

impl sealed::Migrations for Sqlite {
    super::keyroute_migrations!(MIGRATIONS);
}

// The compiler checks the contract here: `queries.rs` and `events.rs`, included below,
// implement the rest of what a `StoreBackend` is (see `backend.rs`).
impl StoreBackend for Sqlite {}

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
/// `spawn_blocking` (on the calling worker or on the connection's own thread, as
/// keyroute-pool's [`ConnectionThread`](keyroute_pool::ConnectionThread) decides).
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
