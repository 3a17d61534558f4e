//! The sealed [`Backend`] trait and the diesel-async connection manager it builds.

// With `pool` alone (the router's view) no backend compiles the queries, so the
// helpers they share are unused there.
#![cfg_attr(
    not(any(feature = "sqlite", feature = "postgres", feature = "mysql")),
    allow(dead_code, unused_imports, unused_macros)
)]

use std::future::Future;
use std::pin::Pin;

use bb8::PooledConnection;
use diesel_async::AsyncConnection;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, PoolError, RecyclingMethod,
};
use keyroute_core::BoxError;

use super::{DatabaseUrl, PoolSettings, RecyclingCheck};

/// A connection being opened.
pub(crate) type ConnectFuture<C> =
    Pin<Box<dyn Future<Output = diesel::ConnectionResult<C>> + Send>>;

/// A pooled connection that can move to a blocking thread.
pub(crate) type OwnedConnection<B> = PooledConnection<'static, <B as Backend>::Manager>;

/// A SQL database backend. Sealed: implemented by [`Postgres`](crate::sql::postgres::Postgres),
/// [`Mysql`](crate::sql::mysql::Mysql) and [`Sqlite`](crate::sql::sqlite::Sqlite).
pub trait Backend: sealed::Sealed + Send + Sync + 'static {
    /// The diesel-async connection type.
    type Connection: AsyncConnection + Send + 'static;

    /// The bb8 connection manager: diesel-async's, with keyroute's connection set-up.
    type Manager: bb8::ManageConnection<Connection = Self::Connection, Error = PoolError>;

    /// The backend's name, for messages.
    const NAME: &'static str;

    /// The checkout check [`RecyclingCheck::Auto`] stands for on this backend:
    /// `Verified` where a server can drop connections, `Fast` for SQLite.
    const DEFAULT_CHECK: RecyclingCheck = RecyclingCheck::Verified;

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

    /// The connection manager for `url`.
    #[doc(hidden)]
    fn manager(url: &DatabaseUrl, recycling: RecyclingCheck) -> Self::Manager;

    /// Runs the embedded migrations on `conn`. Called on a blocking thread.
    #[doc(hidden)]
    fn run_migrations(conn: OwnedConnection<Self>) -> Result<(), BoxError>;
}

/// diesel-async's connection manager, opening connections with `establish`.
pub(crate) fn manager<C: AsyncConnection + 'static>(
    url: &DatabaseUrl,
    recycling: RecyclingCheck,
    establish: fn(String) -> ConnectFuture<C>,
) -> AsyncDieselConnectionManager<C> {
    let mut config = ManagerConfig::<C>::default();
    config.custom_setup = Box::new(move |url| establish(url.to_owned()));
    config.recycling_method = match recycling {
        RecyclingCheck::Fast => RecyclingMethod::Fast,
        // `Auto` is resolved by the pool before it builds a manager; if it ever
        // arrives here, the safe choice is the check that verifies.
        RecyclingCheck::Verified | RecyclingCheck::Auto => RecyclingMethod::Verified,
    };
    AsyncDieselConnectionManager::new_with_config(url.expose_secret(), config)
}

pub(crate) mod sealed {
    pub trait Sealed {}
}
