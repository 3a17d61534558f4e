//! [`Checkout`]: a pooled connection for one unit of work, which behind a transaction
//! pooler is one transaction.
//!
//! Behind PgBouncer in transaction mode, a statement outside a transaction can have its
//! `Parse` reach one server connection and its `Bind` another ("prepared statement
//! does not exist"), and a session `SET` stays on a server connection that the next
//! client gets. So there ([`Pooler::Transaction`](crate::Pooler::Transaction)) a
//! checkout begins a transaction ([`Backend::begin_unit`](crate::Backend::begin_unit):
//! it first undoes what an earlier client left on the server connection) and the unit
//! ends when it is finished: [`Checkout::commit`], [`Checkout::rollback`], or, when it
//! is dropped, a commit on a task of its own, so a unit that is dropped behaves as
//! the statements of a direct connection do (each kept once it ran). Directly, a
//! checkout is the pooled connection as it is, and finishing it does nothing.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use diesel_async::{AsyncConnection, TransactionManager};
use keyroute_core::StoreError;

use crate::Binding;
use crate::affinity::{Affinity, Handed};
use crate::backend::{Backend, OwnedConnection};

/// The transaction manager of `B`'s connections.
type Manager<B> = <<B as Backend>::Connection as AsyncConnection>::TransactionManager;

/// A pooled connection for one unit of work ([`DbPool::unit`](crate::DbPool::unit)).
/// It dereferences to the backend's connection, so diesel-async's query methods take
/// it as they take a pooled connection.
///
/// Behind a transaction pooler the unit is one transaction: a handler's own
/// `conn.transaction(...)` nests in it as a savepoint, [`commit`](Self::commit)
/// ends it and says whether the commit succeeded, and dropping the checkout commits
/// on a task of its own (a failure is logged, the connection discarded). Directly,
/// `commit` and `rollback` do nothing and each statement is kept as it runs.
pub struct Checkout<B: Backend> {
    /// `None` only once `Drop` has handed the connection to its commit task.
    conn: Option<OwnedConnection<B>>,
    /// A unit transaction this checkout began is still open.
    open: bool,
    /// Where the connection goes when the checkout is dropped, for a unit bound
    /// directly (tenant affinity, see `affinity.rs`): the pool's queue, the binding's
    /// key, and how many times in a row the connection has been handed on.
    back: Option<(Arc<Affinity<B>>, u64, u32)>,
}

impl<B: Backend> Checkout<B> {
    /// `conn` as it is: a direct connection's unit.
    pub(crate) fn direct(conn: OwnedConnection<B>) -> Self {
        Self {
            conn: Some(conn),
            open: false,
            back: None,
        }
    }

    /// This checkout, giving its connection to `affinity` under `key` when dropped.
    pub(crate) fn handing_back(
        mut self,
        affinity: Arc<Affinity<B>>,
        key: u64,
        handoffs: u32,
    ) -> Self {
        self.back = Some((affinity, key, handoffs));
        self
    }

    /// Begins a unit on `conn`: behind a transaction pooler (`pooled`) a transaction
    /// with `binding` local to it; directly, the session reset and bound, with no
    /// transaction. On failure the connection is marked broken, so the pool discards
    /// it rather than lend it again, and the error says whether the connection was
    /// lost or the server refused. If this future is dropped before the server
    /// answered, the connection is discarded too: its transaction or binding may have
    /// happened (or failed) on the server without the connection knowing.
    pub(crate) async fn begin(
        conn: OwnedConnection<B>,
        pooled: bool,
        binding: Option<&Binding>,
    ) -> Result<Self, Began> {
        let mut pending = Pending::<B>(Some(conn));
        let outcome = match pending.0.as_mut() {
            Some(conn) if pooled => B::begin_unit(conn, binding).await,
            Some(conn) => B::bind_session(conn, binding).await,
            None => Ok(()),
        };
        let Some(mut conn) = pending.0.take() else {
            return Err(Began {
                lost: true,
                error: diesel::result::Error::BrokenTransactionManager,
            });
        };
        match outcome {
            Ok(()) => Ok(Self {
                conn: Some(conn),
                open: pooled,
                back: None,
            }),
            Err(error) => {
                Manager::<B>::transaction_manager_status_mut(&mut conn).set_in_error();
                let lost = matches!(
                    error,
                    diesel::result::Error::DatabaseError(
                        diesel::result::DatabaseErrorKind::ClosedConnection
                            | diesel::result::DatabaseErrorKind::UnableToSendCommand,
                        _
                    )
                );
                Err(Began { lost, error })
            }
        }
    }

    /// Whether this checkout is a transaction keyroute began (behind a transaction
    /// pooler) that has not ended yet.
    pub fn in_unit_transaction(&self) -> bool {
        self.open
    }

    /// Ends the unit, keeping what it wrote. Directly, does nothing.
    ///
    /// # Errors
    /// The database's answer to `COMMIT` (the unit's work is then lost: PostgreSQL
    /// rolls back a transaction that failed).
    pub async fn commit(mut self) -> diesel::QueryResult<()> {
        self.end(true).await
    }

    /// Ends the unit, discarding what it wrote. Directly, does nothing: each
    /// statement was kept as it ran.
    ///
    /// # Errors
    /// The database's answer to `ROLLBACK`.
    pub async fn rollback(mut self) -> diesel::QueryResult<()> {
        self.end(false).await
    }

    async fn end(&mut self, commit: bool) -> diesel::QueryResult<()> {
        if !self.open {
            return Ok(());
        }
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        self.open = false;
        let conn = &mut **conn;
        if commit {
            Manager::<B>::commit_transaction(conn).await
        } else {
            Manager::<B>::rollback_transaction(conn).await
        }
    }
}

/// A connection whose unit is beginning: dropped before the server answered (its
/// future cancelled), it is marked broken so the pool discards it.
struct Pending<B: Backend>(Option<OwnedConnection<B>>);

impl<B: Backend> Drop for Pending<B> {
    fn drop(&mut self) {
        if let Some(conn) = self.0.as_mut() {
            Manager::<B>::transaction_manager_status_mut(conn).set_in_error();
        }
    }
}

/// Why a unit transaction did not begin ([`Checkout::begin`]).
#[derive(Debug)]
pub(crate) struct Began {
    /// The connection was lost (the server dropped it): another may do.
    pub(crate) lost: bool,
    pub(crate) error: diesel::result::Error,
}

impl Began {
    /// The error a caller of [`DbPool::unit`](crate::DbPool::unit) sees.
    pub(crate) fn into_store_error(self, backend: &str) -> StoreError {
        let text = format!(
            "{backend}: could not begin the unit of work (its transaction behind a pooler, [pools] pooler = \"transaction\", or its [tenancy] binding): {}",
            self.error
        );
        if self.lost {
            StoreError::unavailable(text)
        } else {
            StoreError::database(text)
        }
    }
}

impl<B: Backend> Deref for Checkout<B> {
    type Target = B::Connection;

    fn deref(&self) -> &Self::Target {
        #[allow(clippy::expect_used)] // `conn` is taken only in `drop`
        self.conn
            .as_deref()
            .expect("a checkout has its connection until dropped")
    }
}

impl<B: Backend> DerefMut for Checkout<B> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        #[allow(clippy::expect_used)] // `conn` is taken only in `drop`
        self.conn
            .as_deref_mut()
            .expect("a checkout has its connection until dropped")
    }
}

impl<B: Backend> Drop for Checkout<B> {
    fn drop(&mut self) {
        if !self.open {
            if let (Some((affinity, key, handoffs)), Some(conn)) =
                (self.back.take(), self.conn.take())
            {
                affinity.give_back(key, Handed { conn, handoffs });
            }
            return;
        }
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        // Without a runtime the connection goes back with its transaction open, and
        // the pool discards it (the server rolls the transaction back).
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = Manager::<B>::commit_transaction(&mut *conn).await {
                    tracing::warn!(
                        backend = B::NAME,
                        "keyroute: a unit of work dropped behind a transaction pooler did not commit: {e}"
                    );
                }
            });
        }
    }
}

impl<B: Backend> fmt::Debug for Checkout<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkout")
            .field("backend", &B::NAME)
            .field("in_unit_transaction", &self.open)
            .finish_non_exhaustive()
    }
}
