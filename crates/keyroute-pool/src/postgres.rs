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
//!
//! A unit bound to a tenant ([`Binding`]) is, behind the pooler, that transaction with
//! the binding's transaction-local statements in the same round trip; directly, one
//! round trip that resets the session ([`SESSION_RESET`]) and binds it, with no
//! transaction.

use diesel_async::pooled_connection::{AsyncDieselConnectionManager, RecyclingMethod};
use diesel_async::{AnsiTransactionManager, AsyncPgConnection};
use keyroute_core::BoxError;

use crate::backend::{
    Backend, ConnectFuture, FindingsFuture, LagFuture, OwnedConnection, UnitFuture, VersionsFuture,
    sealed,
};
use crate::{Binding, DatabaseUrl, Pooler, RecyclingCheck};

/// How a unit of work begins behind a transaction pooler, in one round trip: the
/// transaction, then what an earlier client of the server connection may have left
/// (settings such as `search_path` or `statement_timeout`, a role, prepared
/// statements), undone inside it, so it is undone for good when the unit commits.
/// `DISCARD ALL` would do more but cannot run inside a transaction block.
///
/// `SET statement_timeout = 0` comes first: the server arms the statement timeout
/// when a message's first statement starts, with the value the session has then, so a
/// tiny timeout an earlier client left would otherwise cancel the `BEGIN` and
/// `RESET ALL` meant to undo it. After it, nothing runs under the old timeout but that
/// one `SET`; `RESET ALL` then restores the configured default.
pub(crate) const UNIT_BEGIN: &str =
    "SET statement_timeout = 0; BEGIN; RESET ALL; RESET ROLE; DEALLOCATE ALL";

/// How a direct connection of a tenancy pool is readied for a unit, before the
/// binding's session statements: what the previous user left is undone (see
/// [`UNIT_BEGIN`] for why `SET statement_timeout = 0` comes first).
const SESSION_RESET: &str = "SET statement_timeout = 0; RESET ALL; RESET ROLE";

/// `first`, then `binding`'s statements (`sql` of it), as one batch.
fn then_bind(first: &str, binding: Option<&str>) -> String {
    match binding {
        Some(binding) => format!("{first}; {binding}"),
        None => first.to_owned(),
    }
}

/// How far a streaming-replication standby is behind, in milliseconds: nothing when it
/// has replayed all it received (an idle primary sends nothing, so the last replayed
/// transaction's age would overstate it), else the age of the last replayed
/// transaction; 0 on a server that is not a standby.
const REPLICA_LAG: &str = "SELECT CASE WHEN NOT pg_is_in_recovery() \
     OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 \
     ELSE COALESCE((EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()) * 1000)::bigint, 0) END \
     AS lag_ms";

/// The `Verified` checkout check: `SELECT 1`, as diesel-async's own.
async fn select_one(conn: &mut AsyncPgConnection) -> diesel::QueryResult<()> {
    use diesel::IntoSql;
    use diesel_async::RunQueryDsl;
    diesel::select(1_i32.into_sql::<diesel::sql_types::Integer>())
        .get_result::<i32>(conn)
        .await
        .map(|_| ())
}

/// The PostgreSQL backend.
#[derive(Debug, Clone, Copy)]
pub struct Postgres;

impl sealed::Sealed for Postgres {}

impl Backend for Postgres {
    type Connection = AsyncPgConnection;
    type Manager = AsyncDieselConnectionManager<Self::Connection>;
    const NAME: &'static str = "PostgreSQL";
    const TRANSACTION_POOLER: bool = true;
    /// A checkout verifies only a connection that has sat idle: tokio-postgres reads
    /// a server's close in the background, so a connection that answered a moment
    /// ago and is still open is handed out without a round trip.
    const DEFAULT_CHECK: RecyclingCheck = RecyclingCheck::Idle;

    fn establish(url: String, pooler: Pooler) -> ConnectFuture<Self::Connection> {
        Box::pin(crate::connect::postgres(url, pooler))
    }

    /// The `Verified` check is diesel-async's `SELECT 1`, given as a function so the
    /// `Idle` check can run it on the checkouts it verifies.
    fn manager(url: &DatabaseUrl, setup: crate::backend::ConnectSetup) -> Self::Manager {
        let verified = RecyclingMethod::CustomFunction(Box::new(|conn| Box::pin(select_one(conn))));
        crate::backend::manager(url, setup, Self::establish, verified)
    }

    const BINDS_TENANTS: bool = true;

    fn begin_unit<'c>(
        conn: &'c mut Self::Connection,
        binding: Option<&'c Binding>,
    ) -> UnitFuture<'c> {
        let sql = then_bind(UNIT_BEGIN, binding.map(Binding::sql));
        Box::pin(async move { AnsiTransactionManager::begin_transaction_sql(conn, &sql).await })
    }

    fn bind_session<'c>(
        conn: &'c mut Self::Connection,
        binding: Option<&'c Binding>,
    ) -> UnitFuture<'c> {
        use diesel_async::SimpleAsyncConnection;
        let sql = then_bind(SESSION_RESET, binding.map(Binding::session_sql));
        Box::pin(async move { conn.batch_execute(&sql).await })
    }

    fn row_security_findings<'c>(
        conn: &'c mut Self::Connection,
        column: &'c str,
    ) -> FindingsFuture<'c> {
        Box::pin(crate::row_security::postgres::findings(conn, column))
    }

    fn replica_lag_ms<'c>(conn: &'c mut Self::Connection, query: Option<&'c str>) -> LagFuture<'c> {
        Box::pin(async move {
            #[derive(diesel::QueryableByName)]
            struct Lag {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                lag_ms: i64,
            }
            use diesel_async::RunQueryDsl;
            let lag: Lag = diesel::sql_query(query.unwrap_or(REPLICA_LAG))
                .get_result(conn)
                .await?;
            Ok(Some(lag.lag_ms))
        })
    }

    fn applied_versions<'c>(conn: &'c mut Self::Connection) -> VersionsFuture<'c> {
        Box::pin(async move {
            use diesel::sql_types::{Bool, Text};
            use diesel_async::RunQueryDsl;
            #[derive(diesel::QueryableByName)]
            struct Present {
                #[diesel(sql_type = Bool)]
                present: bool,
            }
            #[derive(diesel::QueryableByName)]
            struct Version {
                #[diesel(sql_type = Text)]
                version: String,
            }
            let table: Present = diesel::sql_query(
                "SELECT to_regclass('__diesel_schema_migrations') IS NOT NULL AS present",
            )
            .get_result(conn)
            .await?;
            if !table.present {
                return Ok(Vec::new());
            }
            let rows: Vec<Version> =
                diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
                    .load(conn)
                    .await?;
            Ok(rows.into_iter().map(|row| row.version).collect())
        })
    }

    crate::backend::app_migrations!();
}
