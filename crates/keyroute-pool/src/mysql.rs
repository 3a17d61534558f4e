//! MySQL and MariaDB, on `AsyncMysqlConnection` (mysql_async: no libmysqlclient needed).

use diesel_async::AsyncMysqlConnection;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use keyroute_core::BoxError;

use crate::Pooler;
use crate::backend::{Backend, ConnectFuture, OwnedConnection, sealed};

/// The MySQL / MariaDB backend.
#[derive(Debug, Clone, Copy)]
pub struct Mysql;

impl sealed::Sealed for Mysql {}

impl Backend for Mysql {
    type Connection = AsyncMysqlConnection;
    type Manager = AsyncDieselConnectionManager<Self::Connection>;
    const NAME: &'static str = "MySQL";

    fn establish(url: String, _pooler: Pooler) -> ConnectFuture<Self::Connection> {
        Box::pin(crate::connect::mysql(url))
    }

    crate::backend::app_migrations!();
}
