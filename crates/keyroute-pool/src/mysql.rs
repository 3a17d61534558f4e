//! MySQL and MariaDB, on `AsyncMysqlConnection` (mysql_async: no libmysqlclient needed).

use std::sync::atomic::{AtomicI64, Ordering};

use diesel::IntoSql;
use diesel::sql_types::BigInt;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, RecyclingMethod};
use diesel_async::{AsyncMysqlConnection, RunQueryDsl};
use keyroute_core::BoxError;

use crate::backend::{Backend, ConnectFuture, OwnedConnection, sealed};
use crate::{DatabaseUrl, Pooler, RecyclingCheck};

/// The MySQL / MariaDB backend.
#[derive(Debug, Clone, Copy)]
pub struct Mysql;

impl sealed::Sealed for Mysql {}

impl Backend for Mysql {
    type Connection = AsyncMysqlConnection;
    type Manager = AsyncDieselConnectionManager<Self::Connection>;
    const NAME: &'static str = "MySQL";
    /// A checkout verifies a connection that sat idle or whose last query was
    /// dropped before it finished (the case that can leave mysql_async out of step;
    /// a result dropped while its rows are read, mysql_async drains before the next
    /// command): `tests/dropped_query.rs`.
    const DEFAULT_CHECK: RecyclingCheck = RecyclingCheck::Idle;

    fn establish(url: String, _pooler: Pooler) -> ConnectFuture<Self::Connection> {
        Box::pin(crate::connect::mysql(url))
    }

    /// The `Verified` check is [`echo_check`]: a `SELECT 1` can pass on a connection
    /// whose previous query was dropped midway and so reach the next request out of
    /// step.
    fn manager(url: &DatabaseUrl, setup: crate::backend::ConnectSetup) -> Self::Manager {
        let verified = RecyclingMethod::CustomFunction(Box::new(|conn| Box::pin(echo_check(conn))));
        crate::backend::manager(url, setup, Self::establish, verified)
    }

    crate::backend::app_migrations!();
}

/// The number the next checkout check asks the server to echo.
static NEXT_ECHO: AtomicI64 = AtomicI64::new(1);

/// The checkout check of MySQL / MariaDB connections: the server must answer with the
/// number this check alone sent (one round trip, as `SELECT 1`).
///
/// mysql_async is not cancel-safe: a query whose future is dropped midway (a client
/// that disconnected while its handler ran) can leave the connection's protocol
/// stream out of step, with an earlier answer, or a part of one, still to be read. A
/// constant `SELECT 1` can pass on such a connection, and the next request's query
/// then reads an answer that is not its own (or fails to parse one). An answer that
/// is not this check's number, or a failure, discards the connection instead.
async fn echo_check(conn: &mut AsyncMysqlConnection) -> diesel::QueryResult<()> {
    // Wraps at i64::MAX (an atomic add wraps); any number the server echoes will do.
    let sent = NEXT_ECHO.fetch_add(1, Ordering::Relaxed);
    let echoed: i64 = diesel::select(sent.into_sql::<BigInt>())
        .get_result(conn)
        .await?;
    if echoed == sent {
        Ok(())
    } else {
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::Unknown,
            Box::new(format!(
                "the connection answered the checkout check with another query's result ({echoed}, not {sent}): it is out of step and is discarded"
            )),
        ))
    }
}
