//! The sealed [`Backend`] trait and the diesel-async connection manager it builds.

use std::future::Future;
use std::pin::Pin;

use bb8::PooledConnection;
use diesel::migration::MigrationSource;
use diesel_async::AsyncConnection;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, PoolError, PoolableConnection, RecyclingMethod,
};
use keyroute_core::BoxError;

use super::{DatabaseUrl, PoolSettings, Pooler, RecyclingCheck};

/// A connection being opened ([`Backend::establish`]); a failure says why, typed where
/// it can be.
pub type ConnectFuture<C> =
    Pin<Box<dyn Future<Output = Result<C, super::connect::ConnectFailure>> + Send>>;

/// A statement on a connection that borrows it ([`Backend::begin_unit`]).
pub type UnitFuture<'c> = Pin<Box<dyn Future<Output = diesel::QueryResult<()>> + Send + 'c>>;

/// Row-security findings being gathered ([`Backend::row_security_findings`]).
pub type FindingsFuture<'c> =
    Pin<Box<dyn Future<Output = diesel::QueryResult<Vec<crate::RowSecurityFinding>>> + Send + 'c>>;

/// A replica's lag being measured ([`Backend::replica_lag_ms`]).
pub type LagFuture<'c> =
    Pin<Box<dyn Future<Output = diesel::QueryResult<Option<i64>>> + Send + 'c>>;

/// Applied migration versions being read in a unit ([`Backend::applied_versions`]).
pub type VersionsFuture<'c> =
    Pin<Box<dyn Future<Output = diesel::QueryResult<Vec<String>>> + Send + 'c>>;

/// A pooled connection that does not borrow its pool ([`DbPool::get_owned`](crate::DbPool::get_owned)),
/// so it can move to a blocking thread.
pub type OwnedConnection<B> = PooledConnection<'static, <B as Backend>::Manager>;

/// A SQL database backend: its connection type, how one is opened, and what its pools
/// need to know. Sealed: implemented by the markers `Postgres`, `Mysql` and `Sqlite`,
/// each behind its feature.
pub trait Backend: sealed::Sealed + Send + Sync + 'static {
    /// The diesel-async connection type.
    type Connection: AsyncConnection + PoolableConnection + Send + 'static;

    /// The bb8 connection manager: diesel-async's, with keyroute's connection set-up
    /// (see [`manager`](Self::manager)).
    type Manager: bb8::ManageConnection<Connection = Self::Connection, Error = PoolError>
        + From<AsyncDieselConnectionManager<Self::Connection>>;

    /// The backend's name, for messages.
    const NAME: &'static str;

    /// The checkout check [`RecyclingCheck::Auto`] stands for on this backend: `Idle`
    /// for PostgreSQL and MySQL, `Fast` for SQLite; `Verified`, the check that always
    /// verifies, for a backend that does not choose.
    const DEFAULT_CHECK: RecyclingCheck = RecyclingCheck::Verified;

    /// Whether the backend honours [`Pooler::Transaction`]; the pool treats the
    /// setting as [`Pooler::Session`] where it does not.
    #[doc(hidden)]
    const TRANSACTION_POOLER: bool = false;

    /// Adjusts settings the backend cannot honour (an in-memory SQLite database lives
    /// in one connection, so its pool holds exactly one).
    fn adjust(_url: &DatabaseUrl, settings: PoolSettings) -> PoolSettings {
        settings
    }

    /// The file an embedded database at `url` lives in, which the pool checks on every
    /// checkout (a removed or replaced file is `Unavailable`, not lost writes); `None`
    /// for servers and in-memory databases.
    #[doc(hidden)]
    fn database_file(_url: &DatabaseUrl) -> Option<std::path::PathBuf> {
        None
    }

    /// Opens one connection to `url` (the whole connection string, password included),
    /// ready for use behind `pooler`.
    #[doc(hidden)]
    fn establish(url: String, pooler: Pooler) -> ConnectFuture<Self::Connection>;

    /// Whether the backend can bind a unit of work to a tenant
    /// ([`Binding`](crate::Binding)); [`DbPool::bound_unit`](crate::DbPool::bound_unit)
    /// refuses where it cannot.
    #[doc(hidden)]
    const BINDS_TENANTS: bool = false;

    /// Begins a unit of work behind a transaction pooler in one round trip: a
    /// transaction, begun by undoing what an earlier client may have left on the server
    /// connection (its settings, role and prepared statements), then `binding`'s
    /// transaction-local statements. Only called where
    /// [`TRANSACTION_POOLER`](Self::TRANSACTION_POOLER) holds.
    #[doc(hidden)]
    fn begin_unit<'c>(
        _conn: &'c mut Self::Connection,
        _binding: Option<&'c crate::Binding>,
    ) -> UnitFuture<'c> {
        Box::pin(async { Ok(()) })
    }

    /// Readies a direct connection for a unit bound to `binding` (or to nothing) in one
    /// round trip: undoes what the previous user left on the session (settings, role),
    /// then binds for the session. No transaction: statements commit as they run, as
    /// without tenancy. Only called where [`BINDS_TENANTS`](Self::BINDS_TENANTS) holds.
    #[doc(hidden)]
    fn bind_session<'c>(
        _conn: &'c mut Self::Connection,
        _binding: Option<&'c crate::Binding>,
    ) -> UnitFuture<'c> {
        Box::pin(async { Ok(()) })
    }

    /// What would let a request on `conn` escape row-level security on tables with
    /// `column` ([`RowSecurityFinding`](crate::RowSecurityFinding)). Only called where
    /// [`BINDS_TENANTS`](Self::BINDS_TENANTS) holds.
    #[doc(hidden)]
    fn row_security_findings<'c>(
        _conn: &'c mut Self::Connection,
        _column: &'c str,
    ) -> FindingsFuture<'c> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// How far behind its primary the replica `conn` is, in milliseconds, by `query`
    /// (a statement returning one `BIGINT` column `lag_ms`) or the backend's own
    /// measure; `None` where the backend has none and no query is given.
    #[doc(hidden)]
    fn replica_lag_ms<'c>(
        _conn: &'c mut Self::Connection,
        _query: Option<&'c str>,
    ) -> LagFuture<'c> {
        Box::pin(async { Ok(None) })
    }

    /// The versions recorded in diesel's `__diesel_schema_migrations` on `conn` (none
    /// when the table does not exist), read with plain statements inside the unit
    /// `conn` is, as a pool behind a transaction pooler must: diesel's harness
    /// prepares a named statement and executes it in two exchanges outside a
    /// transaction, which the pooler may send to two server connections. Only called
    /// where [`TRANSACTION_POOLER`](Self::TRANSACTION_POOLER) holds.
    #[doc(hidden)]
    fn applied_versions<'c>(_conn: &'c mut Self::Connection) -> VersionsFuture<'c> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// The connection manager for `url`: diesel-async's, opening each connection with
    /// [`establish`](Self::establish) within the connect timeout and reporting every
    /// outcome to the pool's circuit breaker. Written once for every backend here,
    /// so it compiles (and is checked) even when no backend feature is on.
    #[doc(hidden)]
    fn manager(url: &DatabaseUrl, setup: ConnectSetup) -> Self::Manager {
        manager(url, setup, Self::establish, RecyclingMethod::Verified).into()
    }

    /// Runs the pending migrations of `source` (an app's own) on `conn` and returns
    /// the versions applied. Called on a blocking thread.
    #[doc(hidden)]
    fn run_migrations_from<S: MigrationSource<BackendDb<Self>>>(
        conn: OwnedConnection<Self>,
        source: S,
    ) -> Result<Vec<String>, BoxError>;

    /// The versions recorded in diesel's `__diesel_schema_migrations` on `conn`,
    /// oldest first. Called on a blocking thread.
    #[doc(hidden)]
    fn applied_migrations(conn: OwnedConnection<Self>) -> Result<Vec<String>, BoxError>;
}

/// The diesel backend (`diesel::pg::Pg`, `diesel::sqlite::Sqlite`, `diesel::mysql::Mysql`)
/// of a keyroute [`Backend`]: what a migration source must be written for.
pub type BackendDb<B> = <<B as Backend>::Connection as diesel_async::AsyncConnectionCore>::Backend;

/// The shared body of every backend's app-migration methods: the harness is diesel's,
/// run over diesel-async's wrapper, as for keyroute's own migrations. A macro rather
/// than provided methods: the harness's bounds hold for each concrete connection, not
/// for a generic one.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
macro_rules! app_migrations {
    () => {
        fn run_migrations_from<S: diesel::migration::MigrationSource<crate::BackendDb<Self>>>(
            conn: OwnedConnection<Self>,
            source: S,
        ) -> Result<Vec<String>, BoxError> {
            use diesel_migrations::MigrationHarness as _;
            let mut harness = diesel_async::AsyncMigrationHarness::new(conn);
            let applied = harness.run_pending_migrations(source)?;
            Ok(applied.iter().map(ToString::to_string).collect())
        }

        fn applied_migrations(conn: OwnedConnection<Self>) -> Result<Vec<String>, BoxError> {
            use diesel_migrations::MigrationHarness as _;
            let mut harness = diesel_async::AsyncMigrationHarness::new(conn);
            let mut versions: Vec<String> = harness
                .applied_migrations()?
                .iter()
                .map(ToString::to_string)
                .collect();
            versions.sort();
            Ok(versions)
        }
    };
}
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub(crate) use app_migrations;

/// How a pool opens connections: the checkout check, the time one connect may take,
/// and the circuit breaker every connect reports to. Built by the pool.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct ConnectSetup {
    pub(crate) recycling: RecyclingCheck,
    pub(crate) idle_check_after: std::time::Duration,
    pub(crate) pooler: Pooler,
    pub(crate) connect_timeout: std::time::Duration,
    pub(crate) health: std::sync::Arc<super::health::Health>,
    pub(crate) url: DatabaseUrl,
}

/// diesel-async's connection manager, opening connections with `establish` within
/// the connect timeout and reporting each outcome to the pool's circuit breaker.
///
/// `verified` is the backend's `Verified` check (diesel-async's `SELECT 1`, or a check
/// of the backend's own). Under [`RecyclingCheck::Idle`] each connection is opened
/// with a [`Freshness`](crate::freshness::Freshness) and `verified` runs only on one
/// that did not answer a query within `idle_check_after`; a backend whose `verified`
/// is diesel-async's own (SQLite's: not a function this check can call) verifies
/// every checkout.
pub(crate) fn manager<C: AsyncConnection + PoolableConnection + 'static>(
    url: &DatabaseUrl,
    setup: ConnectSetup,
    establish: fn(String, Pooler) -> ConnectFuture<C>,
    verified: RecyclingMethod<C>,
) -> AsyncDieselConnectionManager<C> {
    use super::connect::ConnectFailure;
    let mut config = ManagerConfig::<C>::default();
    let recycling = setup.recycling;
    let pooler = setup.pooler;
    let idle_check_after = setup.idle_check_after;
    // Only where the backend's check is a function the `Idle` check can call (PostgreSQL,
    // MySQL): SQLite's connections run queries on a thread that can still hold the
    // connection when a dropped query's connection is back in the pool, and diesel-async
    // panics when the instrumentation of such a connection is read.
    let track = recycling == RecyclingCheck::Idle
        && pooler != Pooler::Transaction
        && matches!(verified, RecyclingMethod::CustomFunction(_));
    config.custom_setup = Box::new(move |url| {
        let opening = establish(url.to_owned(), setup.pooler);
        let setup = setup.clone();
        Box::pin(async move {
            let outcome = match tokio::time::timeout(setup.connect_timeout, opening).await {
                Ok(outcome) => outcome,
                Err(_) => Err(ConnectFailure::Other(format!(
                    "no connection within connect_timeout ({:?}): the host did not answer \
                     (down, or a firewall drops the packets)",
                    setup.connect_timeout
                ))),
            };
            match outcome {
                Ok(mut conn) => {
                    if track {
                        crate::freshness::install(&mut conn);
                    }
                    setup.health.connected();
                    Ok(conn)
                }
                Err(failure) => {
                    let failure = failure.redacted(&setup.url);
                    let message = failure.to_string();
                    setup.health.connect_failed(failure);
                    Err(diesel::ConnectionError::BadConnection(message))
                }
            }
        })
    });
    config.recycling_method = match recycling {
        RecyclingCheck::Fast => RecyclingMethod::Fast,
        // Behind a transaction pooler every checkout that is used begins a unit
        // transaction (`DbPool::unit`), a round trip that finds a dropped connection as
        // `SELECT 1` would and discards it: a check of its own would only add one.
        // (diesel-async's check would also prepare a named statement outside a
        // transaction, which the pooler may split across server connections.)
        _ if pooler == Pooler::Transaction => RecyclingMethod::Fast,
        // `track` holds here exactly when `verified` is a function: a transaction
        // pooler was matched above.
        RecyclingCheck::Idle => match verified {
            RecyclingMethod::CustomFunction(verify) => {
                RecyclingMethod::CustomFunction(Box::new(move |conn| {
                    if crate::freshness::answered_within(conn, idle_check_after) {
                        Box::pin(std::future::ready(Ok(())))
                    } else {
                        verify(conn)
                    }
                }))
            }
            verified => verified,
        },
        // `Auto` is resolved by the pool before it builds a manager; if it ever
        // arrives here, the safe choice is the check that verifies.
        RecyclingCheck::Verified | RecyclingCheck::Auto => verified,
    };
    AsyncDieselConnectionManager::new_with_config(url.expose_secret(), config)
}

pub(crate) mod sealed {
    pub trait Sealed {}
}
