//! PostgreSQL, on `AsyncPgConnection` (tokio-postgres: no libpq needed).
//!
//! Connections are opened with `tokio_postgres::connect` and handed to diesel-async,
//! rather than through `AsyncPgConnection::establish`, which keeps only the top line of
//! a connection error ("error connecting to server") and drops its cause ("connection
//! refused"). TLS follows libpq's `sslmode` and `sslrootcert`, on rustls (see
//! `tls.rs`).
//!
//! Behind a pooler in transaction mode ([`Pooler::Transaction`]) a connection is
//! opened so that it leaves nothing on a server connection: diesel-async's set-up
//! (`SET TIME ZONE`, `SET CLIENT_ENCODING`, as named prepared statements) runs inside
//! one transaction, whose statements are closed before it commits, and the statement
//! cache is off. Each unit of work then begins with [`UNIT_BEGIN`].

use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use diesel_async::{AnsiTransactionManager, AsyncPgConnection};
use keyroute_core::BoxError;

use crate::Pooler;
use crate::backend::{Backend, ConnectFuture, OwnedConnection, UnitFuture, sealed};

/// How a unit of work begins behind a transaction pooler, in one round trip: the
/// transaction, then what an earlier client of the server connection may have left
/// (settings such as `search_path` or `statement_timeout`, a role, prepared
/// statements), undone inside it, so it is undone for good when the unit commits.
/// `DISCARD ALL` would do more but cannot run inside a transaction block.
pub(crate) const UNIT_BEGIN: &str = "BEGIN; RESET ALL; RESET ROLE; DEALLOCATE ALL";

/// The PostgreSQL backend.
#[derive(Debug, Clone, Copy)]
pub struct Postgres;

impl sealed::Sealed for Postgres {}

impl Backend for Postgres {
    type Connection = AsyncPgConnection;
    type Manager = AsyncDieselConnectionManager<Self::Connection>;
    const NAME: &'static str = "PostgreSQL";
    const TRANSACTION_POOLER: bool = true;

    fn establish(url: String, pooler: Pooler) -> ConnectFuture<Self::Connection> {
        Box::pin(crate::connect::postgres(url, pooler))
    }

    fn begin_unit(conn: &mut Self::Connection) -> UnitFuture<'_> {
        Box::pin(AnsiTransactionManager::begin_transaction_sql(
            conn, UNIT_BEGIN,
        ))
    }

    crate::backend::app_migrations!();
}
