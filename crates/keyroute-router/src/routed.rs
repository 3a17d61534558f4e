//! [`RoutedConnection`]: the connection a request was routed to, as handlers hold it.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use keyroute_pool::{Backend, Checkout};

/// A connection taken from the pool a principal was routed to. Derefs to the
/// backend's connection; returns to its pool when dropped.
///
/// Behind a pooler in transaction mode (`[pools] pooler = "transaction"`) it is one
/// transaction for the request, begun with nothing left of an earlier client's
/// session (see [`Pooler::Transaction`](keyroute_pool::Pooler::Transaction)): the
/// handler's own `transaction(...)` calls nest in it as savepoints, [`commit`](Self::commit)
/// ends it and reports the outcome, and dropping it commits on a task of its own.
/// Directly, `commit` does nothing: each statement is kept as it runs. Calling
/// `commit` before answering is the portable way to write a handler that reports a
/// failed commit.
///
/// With [tenancy](crate::Tenancy) on it is bound to the request's tenant before the
/// handler's first statement (behind a transaction pooler, for the request's
/// transaction only); it cannot be bound to another, and the next request on the
/// connection binds its own.
pub struct RoutedConnection<B: Backend> {
    conn: Checkout<B>,
    name: Arc<str>,
}

impl<B: Backend> RoutedConnection<B> {
    pub(crate) fn new(conn: Checkout<B>, name: Arc<str>) -> Self {
        Self { conn, name }
    }

    /// The name of the connection this came from (`live`, `test`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Ends the request's transaction behind a transaction pooler, keeping its writes;
    /// does nothing directly.
    ///
    /// # Errors
    /// The database's answer to `COMMIT`.
    pub async fn commit(self) -> diesel::QueryResult<()> {
        self.conn.commit().await
    }

    /// Ends the request's transaction behind a transaction pooler, discarding its
    /// writes; does nothing directly (each statement was kept as it ran: use
    /// `transaction(...)` for work that must be all or nothing everywhere).
    ///
    /// # Errors
    /// The database's answer to `ROLLBACK`.
    pub async fn rollback(self) -> diesel::QueryResult<()> {
        self.conn.rollback().await
    }
}

impl<B: Backend> Deref for RoutedConnection<B> {
    type Target = B::Connection;

    fn deref(&self) -> &Self::Target {
        &self.conn
    }
}

impl<B: Backend> DerefMut for RoutedConnection<B> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.conn
    }
}

impl<B: Backend> fmt::Debug for RoutedConnection<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoutedConnection")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
