//! PostgreSQL, on `AsyncPgConnection` (tokio-postgres: no libpq needed).
//!
//! Connections are opened with `tokio_postgres::connect` and handed to diesel-async,
//! rather than through `AsyncPgConnection::establish`, which keeps only the top line of
//! a connection error ("error connecting to server") and drops its cause ("connection
//! refused"). TLS follows libpq's `sslmode` and `sslrootcert`, on rustls (see
//! `tls.rs`).

use diesel_async::AsyncPgConnection;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use keyroute_core::BoxError;

use crate::backend::{Backend, ConnectFuture, OwnedConnection, sealed};

/// The PostgreSQL backend.
#[derive(Debug, Clone, Copy)]
pub struct Postgres;

impl sealed::Sealed for Postgres {}

impl Backend for Postgres {
    type Connection = AsyncPgConnection;
    type Manager = AsyncDieselConnectionManager<Self::Connection>;
    const NAME: &'static str = "PostgreSQL";

    fn establish(url: String) -> ConnectFuture<Self::Connection> {
        Box::pin(crate::connect::postgres(url))
    }

    crate::backend::app_migrations!();
}
