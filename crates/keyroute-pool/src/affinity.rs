//! Tenant affinity: a connection a tenant's unit gives back goes straight to a unit of
//! the same tenant that is waiting for one, when there is such a unit, else to the unit
//! that has waited longest, instead of back to the pool for whoever is first.
//!
//! Why: in schema mode ([`Binding::schema`](crate::Binding::schema)) a connection that
//! serves another tenant than last time gets another `search_path`, and PostgreSQL
//! then analyses and plans every cached statement again on it. Measured apart from
//! HTTP (8 connections, 20 schemas, a prepared lookup after each binding), binding the
//! same schema as last time ran at 0.85-0.95 × a bare `SELECT 1` check, switching
//! between schemas at 0.58-0.64 ×. Nothing about what a unit may see changes: a
//! handed-on connection is reset and bound again before its unit's first statement,
//! exactly as one from the pool.
//!
//! How, on top of bb8 (which cannot choose among its idle connections):
//! - A unit that finds a connection free in the pool takes it at once; nothing here is
//!   touched.
//! - A unit that has to wait joins a queue here, keyed by its binding, and waits for
//!   whichever comes first: a connection handed on here, or one from the pool.
//! - A unit that ends hands its connection to the oldest waiting unit of the same
//!   binding, or, with none, to the oldest waiting unit; only when no unit waits does
//!   the connection go back to the pool. So while units wait, they are served in
//!   order (bb8 alone lets a newcomer that finds a connection just put back take it
//!   before a unit that has waited), except that one of the connection's binding may
//!   go first.
//! - Fairness: once the oldest waiting unit has been passed over [`MAX_PASSED`] times,
//!   the next connection given back is its, so no unit waits more than that many
//!   extra turns.
//! - A connection is handed on at most [`MAX_HANDOFFS`] times in a row before it goes
//!   back to the pool, so the pool still sees it often enough to retire it
//!   (`max_lifetime`) and to lend it to callers that do not bind. A broken connection,
//!   or one given back while its thread panics, always goes back to the pool (which
//!   discards it), never on to another unit.
//!
//! Every connection here is a checkout of the pool the whole time: a connection in a
//! handing-on channel whose unit stopped waiting is dropped, and so goes back to the
//! pool; none is ever kept aside.

use std::collections::VecDeque;
use std::collections::hash_map::DefaultHasher;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};

use diesel_async::pooled_connection::PoolableConnection;
use tokio::sync::oneshot;

use keyroute_core::StoreResult;

use crate::backend::{Backend, OwnedConnection};
use crate::{Binding, Checkout, DbPool};

/// How many times the oldest waiting unit may be passed over by later units of the
/// connection's own binding before it gets the next connection given back. With 20
/// tenants on 8 connections under saturation (the HTTP benchmark's schema mode), 4
/// let about 20 % of connections given back go to a unit of their own binding, 32
/// about 55 %; a unit passed over 32 times waits that many more units' turns on a
/// connection, a few milliseconds there.
pub(crate) const MAX_PASSED: u32 = 32;

/// How many times in a row a connection is handed from unit to unit before it goes
/// back to the pool.
pub(crate) const MAX_HANDOFFS: u32 = 64;

/// What a unit's binding is, for matching: equal bindings give equal keys. A collision
/// would only hand a connection to another tenant's unit, which binds it afresh as
/// it binds any connection.
pub(crate) fn key(binding: &Binding) -> u64 {
    let mut hasher = DefaultHasher::new();
    binding.session_sql().hash(&mut hasher);
    hasher.finish()
}

/// A connection on its way from one unit to the next, and how many times in a row it
/// has been handed on.
pub(crate) struct Handed<B: Backend> {
    pub(crate) conn: OwnedConnection<B>,
    pub(crate) handoffs: u32,
}

impl<B: Backend> Handed<B> {
    /// A connection straight from the pool.
    pub(crate) fn fresh(conn: OwnedConnection<B>) -> Self {
        Self { conn, handoffs: 0 }
    }
}

impl<B: Backend> DbPool<B> {
    /// A connection for a unit bound directly to `key`, through the circuit breaker as
    /// any checkout.
    pub(crate) async fn get_affine(&self, key: u64) -> StoreResult<Handed<B>> {
        let handed = self
            .checkout(self.affinity.get(key, self.pool.get_owned()))
            .await?;
        self.check_file()?;
        Ok(handed)
    }

    /// `unit`, giving its connection back here under `key` when it is dropped (a unit
    /// bound directly); as it is without a key.
    pub(crate) fn hand_back(
        &self,
        unit: Checkout<B>,
        key: Option<u64>,
        handoffs: u32,
    ) -> Checkout<B> {
        match key {
            Some(key) => unit.handing_back(Arc::clone(&self.affinity), key, handoffs),
            None => unit,
        }
    }

    /// How many units bound to a tenant ([`bound_unit`](Self::bound_unit), on a direct
    /// connection) are waiting for a connection because none was free: each gets the
    /// first of a connection the pool frees and one a unit that ends hands on (to a
    /// unit of its own tenant first, else to the unit that has waited longest). A
    /// steady count near the number of concurrent requests means the pool is too small
    /// for the load.
    pub fn bound_units_waiting(&self) -> usize {
        self.affinity.waiting()
    }
}

/// One pool's queue of waiting units (shared by the pool's clones).
pub(crate) struct Affinity<B: Backend> {
    queue: Mutex<Queue<B>>,
}

struct Queue<B: Backend> {
    next_id: u64,
    waiting: VecDeque<Waiter<B>>,
}

struct Waiter<B: Backend> {
    id: u64,
    key: u64,
    /// How many later units were handed a connection before this one.
    passed: u32,
    tx: oneshot::Sender<Handed<B>>,
}

impl<B: Backend> Default for Affinity<B> {
    fn default() -> Self {
        Self {
            queue: Mutex::new(Queue {
                next_id: 0,
                waiting: VecDeque::new(),
            }),
        }
    }
}

impl<B: Backend> Affinity<B> {
    /// A connection for a unit bound to `key`: at once if `get` (a checkout of the
    /// pool) has one ready, else whichever comes first of `get` and a connection a
    /// unit that ends hands on ([`give_back`](Self::give_back)).
    pub(crate) async fn get<E>(
        &self,
        key: u64,
        get: impl Future<Output = Result<OwnedConnection<B>, E>>,
    ) -> Result<Handed<B>, E> {
        let mut get = pin!(get);
        // One poll: a free connection in the pool costs no queueing.
        let ready = std::future::poll_fn(|cx| match get.as_mut().poll(cx) {
            std::task::Poll::Ready(result) => std::task::Poll::Ready(Some(result)),
            std::task::Poll::Pending => std::task::Poll::Ready(None),
        })
        .await;
        if let Some(result) = ready {
            return result.map(Handed::fresh);
        }
        let (tx, rx) = oneshot::channel();
        let _queued = Queued {
            affinity: self,
            id: self.enqueue(key, tx),
        };
        tokio::select! {
            biased;
            Ok(handed) = rx => Ok(handed),
            result = &mut get => result.map(Handed::fresh),
        }
        // A connection handed on after the pool answered is dropped with `rx`, and so
        // goes back to the pool.
    }

    /// Gives back the connection of a unit bound to `key`: to a waiting unit (the
    /// oldest of the same binding, or the oldest), or to the pool when none waits.
    pub(crate) fn give_back(&self, key: u64, mut handed: Handed<B>) {
        // What the pool's own check on a returned connection is (diesel-async's
        // manager): a panicking thread, an open or failed transaction.
        if std::thread::panicking() || handed.handoffs >= MAX_HANDOFFS || handed.conn.is_broken() {
            return;
        }
        handed.handoffs = handed.handoffs.saturating_add(1);
        let mut queue = self.lock();
        loop {
            // The oldest waiting unit once it has been passed over enough, else the
            // oldest of the same binding, else the oldest.
            let at = match queue.waiting.front() {
                None => return,
                Some(oldest) if oldest.passed >= MAX_PASSED => 0,
                Some(_) => queue.waiting.iter().position(|w| w.key == key).unwrap_or(0),
            };
            for earlier in queue.waiting.iter_mut().take(at) {
                earlier.passed = earlier.passed.saturating_add(1);
            }
            let Some(waiter) = queue.waiting.remove(at) else {
                return;
            };
            match waiter.tx.send(handed) {
                Ok(()) => return,
                // That unit stopped waiting: the next one, if any.
                Err(back) => handed = back,
            }
        }
    }

    /// How many units are waiting here.
    pub(crate) fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }

    fn enqueue(&self, key: u64, tx: oneshot::Sender<Handed<B>>) -> u64 {
        let mut queue = self.lock();
        let id = queue.next_id;
        queue.next_id = queue.next_id.wrapping_add(1);
        queue.waiting.push_back(Waiter {
            id,
            key,
            passed: 0,
            tx,
        });
        id
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue<B>> {
        // The queue holds no invariant a panic elsewhere could break halfway.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A unit's place in the queue, left when it stops waiting (served, or dropped).
struct Queued<'a, B: Backend> {
    affinity: &'a Affinity<B>,
    id: u64,
}

impl<B: Backend> Drop for Queued<'_, B> {
    fn drop(&mut self) {
        let mut queue = self.affinity.lock();
        if let Some(at) = queue.waiting.iter().position(|w| w.id == self.id) {
            queue.waiting.remove(at);
        }
    }
}
