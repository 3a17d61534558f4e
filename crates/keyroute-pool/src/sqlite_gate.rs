//! When a SQLite query may run on the calling Tokio worker instead of its connection's
//! thread: the [`Gate`] of a database file, and the [`TxWatch`] that tells it which of
//! the file's connections are inside a transaction.
//!
//! Handing a query to its connection's thread and back costs two thread wake-ups.
//! On the 2-core VMs this project is measured on that was 12-15 µs of CPU per
//! request, about a quarter of a whole SQLite request over HTTP, against 4-10 µs
//! for the query itself (BENCHMARKS.md, "A SQLite query on the calling worker").
//! So a query runs inline whenever that cannot stall the runtime, and on the
//! connection's thread otherwise:
//!
//! - **A transaction is open on any connection of the same file** (in this
//!   process): its write lock may be held across an `.await`, and a write that waits
//!   for it inline would block a worker the transaction's own task may need to reach
//!   its `COMMIT`. With every worker blocked so, nothing would move until
//!   `busy_timeout` ended. While a transaction is open, every query of the file's
//!   connections goes to their threads, where waiting stalls nobody. An autocommit
//!   statement holds the lock only while it runs, so one that waits for another
//!   waits microseconds.
//! - **The file's queries run long inline**: one took over [`LONG_QUERY`], or
//!   [`SLOW_IN_WINDOW`] of the last [`WINDOW`] took over [`INLINE_LIMIT`]. For the
//!   next [`COOL_DOWN`] the file's queries go to their threads. A workload of reports
//!   and scans then blocks a worker now and then, not once per query. One slow query
//!   alone is not enough: on a loaded machine the OS preempts a worker in the middle of
//!   a 5 µs query often enough (about 0.5 % of queries in the HTTP benchmark) that a
//!   single query over 250 µs said nothing about the file's queries, and sent every
//!   query to the threads; so did 4 in 128.
//! - **Keyroute cannot see a connection's transactions**: its instrumentation was
//!   replaced (`set_instrumentation` on a pooled connection; set
//!   `diesel::connection::set_default_instrumentation` instead, which keyroute
//!   forwards to). Such a connection counts as inside a transaction until it closes.
//! - **A current-thread runtime**: there a waiting query would block the only thread.
//!
//! Transactions are seen through diesel's transaction events (`BeginTransaction`,
//! `CommitTransaction`, `RollbackTransaction`), which `conn.transaction(..)`, and
//! every other path through diesel's transaction manager, emit. A `BEGIN` sent as
//! plain SQL (`batch_execute("BEGIN")`) is not seen. A connection is counted from the
//! moment its `BEGIN` is about to run, and until its top-level `COMMIT` or
//! `ROLLBACK` has succeeded (or it closes): a count that errs, errs towards threads.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use diesel::connection::{Instrumentation, InstrumentationEvent};

/// A query that ran longer than this inline is slow: [`SLOW_IN_WINDOW`] of them among
/// [`WINDOW`] send the file's queries to their threads for [`COOL_DOWN`]. Tokio's
/// guidance is to go no longer than 10-100 µs between `.await`s; a point query or a
/// short write takes 4-10 µs here.
pub const INLINE_LIMIT: Duration = Duration::from_micros(250);

/// A query that ran longer than this inline sends the file's queries to their
/// threads for [`COOL_DOWN`] on its own: longer than the OS keeps a runnable thread
/// waiting on a busy machine.
pub const LONG_QUERY: Duration = Duration::from_millis(20);

/// How many inline queries the count of slow ones covers.
pub const WINDOW: u32 = 128;

/// How many slow queries among [`WINDOW`] send the file's queries to their threads: a
/// quarter. The HTTP benchmark's point queries are slow only when the OS preempts
/// their worker mid-query; with 4 that still sent them to the threads often enough
/// that its `open` mode cost 39.4 µs of server CPU per request, against 34.2 with 32
/// and 44-46 with every query on the threads (BENCHMARKS.md).
pub const SLOW_IN_WINDOW: u32 = 32;

/// How long a file's queries go to their threads after they ran long inline
/// ([`LONG_QUERY`], [`SLOW_IN_WINDOW`]).
pub const COOL_DOWN: Duration = Duration::from_secs(1);

/// What every connection of one database file shares: whether its queries may run
/// inline now.
#[derive(Debug)]
pub(crate) struct Gate {
    /// Connections of the file inside a transaction now, or unwatched.
    open: AtomicUsize,
    /// Until when (nanoseconds after `epoch`) the file's queries go to threads.
    threads_until: AtomicU64,
    epoch: Instant,
    /// Inline queries, and slow ones among them, in the current window (counted
    /// without a lock: a race loses a count, never a decision that matters).
    ran: AtomicU32,
    slow: AtomicU32,
}

/// The gates of the files open in this process, by canonical path, so that every
/// pool on one file (the key store's and an application's) shares one.
static GATES: LazyLock<Mutex<HashMap<PathBuf, Weak<Gate>>>> = LazyLock::new(Default::default);

impl Gate {
    fn new() -> Self {
        Self {
            open: AtomicUsize::new(0),
            threads_until: AtomicU64::new(0),
            epoch: Instant::now(),
            ran: AtomicU32::new(0),
            slow: AtomicU32::new(0),
        }
    }

    /// The gate of the file at `path` (shared with the file's other connections), or,
    /// for an in-memory database (`None`), one of the connection's own.
    pub(crate) fn of(path: Option<PathBuf>) -> Arc<Self> {
        let Some(path) = path.map(|p| std::fs::canonicalize(&p).unwrap_or(p)) else {
            return Arc::new(Self::new());
        };
        let mut gates = GATES.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(gate) = gates.get(&path).and_then(Weak::upgrade) {
            return gate;
        }
        gates.retain(|_, gate| gate.strong_count() > 0);
        let gate = Arc::new(Self::new());
        gates.insert(path, Arc::downgrade(&gate));
        gate
    }

    /// Nanoseconds from the gate's epoch to `now`.
    fn since_epoch(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether a query may run inline at `now` (the caller's one clock reading, which
    /// also times the query).
    pub(crate) fn inline_at(&self, now: Instant) -> bool {
        self.open.load(Ordering::Acquire) == 0
            && self.threads_until.load(Ordering::Relaxed) <= self.since_epoch(now)
    }

    /// Records how long a query took inline.
    pub(crate) fn ran_inline(&self, took: Duration) {
        let ran = self.ran.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        let mut cool = took > LONG_QUERY;
        if took > INLINE_LIMIT {
            cool |= self.slow.fetch_add(1, Ordering::Relaxed).saturating_add(1) >= SLOW_IN_WINDOW;
        }
        if cool || ran >= WINDOW {
            self.ran.store(0, Ordering::Relaxed);
            self.slow.store(0, Ordering::Relaxed);
        }
        if cool {
            let until = self
                .since_epoch(Instant::now())
                .saturating_add(u64::try_from(COOL_DOWN.as_nanos()).unwrap_or(u64::MAX));
            self.threads_until.fetch_max(until, Ordering::Relaxed);
            tracing::debug!(
                took_us = took.as_micros(),
                "keyroute: SQLite queries ran long on a Tokio worker; the file's queries use their connections' threads for a while"
            );
        }
    }

    fn count(&self) {
        self.open.fetch_add(1, Ordering::AcqRel);
    }

    fn uncount(&self) {
        // Paired with `count` by `Watched::counted`, so this never goes below zero.
        let _ = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }
}

/// One connection's standing with its file's gate.
#[derive(Debug)]
pub(crate) struct Watched {
    pub(crate) gate: Arc<Gate>,
    /// Whether this connection is in the gate's count now.
    counted: AtomicBool,
    /// Set once the connection is closing: its watch may be dropped after its
    /// executor, and must then leave the count as it found it.
    closing: AtomicBool,
}

impl Watched {
    pub(crate) fn new(gate: Arc<Gate>) -> Arc<Self> {
        Arc::new(Self {
            gate,
            counted: AtomicBool::new(false),
            closing: AtomicBool::new(false),
        })
    }

    fn count(&self) {
        if !self.counted.swap(true, Ordering::AcqRel) {
            self.gate.count();
        }
    }

    fn uncount(&self) {
        if self.counted.swap(false, Ordering::AcqRel) {
            self.gate.uncount();
        }
    }

    /// The connection is closing: it leaves the count.
    pub(crate) fn close(&self) {
        self.closing.store(true, Ordering::Release);
        self.uncount();
    }
}

/// What the watch waits to hear from the statement that follows a transaction event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Nothing,
    /// A top-level `BEGIN` is about to run: counted already, uncounted if it fails.
    Begin,
    /// A top-level `COMMIT` or `ROLLBACK` is about to run: uncounted if it succeeds.
    End,
}

/// The instrumentation keyroute sets on each SQLite connection it opens: it follows
/// the connection's transactions for the gate, and hands every event on to the
/// instrumentation the application set as diesel's default.
pub(crate) struct TxWatch {
    watched: Arc<Watched>,
    pending: Pending,
    inner: Option<Box<dyn Instrumentation>>,
}

impl TxWatch {
    pub(crate) fn new(watched: Arc<Watched>) -> Self {
        Self {
            watched,
            pending: Pending::Nothing,
            inner: diesel::connection::get_default_instrumentation(),
        }
    }
}

impl Instrumentation for TxWatch {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match &event {
            InstrumentationEvent::BeginTransaction { depth, .. } if depth.get() == 1 => {
                self.watched.count();
                self.pending = Pending::Begin;
            }
            InstrumentationEvent::CommitTransaction { depth, .. }
            | InstrumentationEvent::RollbackTransaction { depth, .. }
                if depth.get() == 1 =>
            {
                self.pending = Pending::End;
            }
            InstrumentationEvent::FinishQuery { error, .. } => {
                match (self.pending, error.is_some()) {
                    (Pending::Begin, true) | (Pending::End, false) => self.watched.uncount(),
                    _ => {}
                }
                self.pending = Pending::Nothing;
            }
            _ => {}
        }
        if let Some(inner) = &mut self.inner {
            inner.on_connection_event(event);
        }
    }
}

impl Drop for TxWatch {
    fn drop(&mut self) {
        if self.watched.closing.load(Ordering::Acquire) {
            self.watched.uncount();
        } else {
            // Replaced while the connection lives: its transactions are no longer
            // seen, so it counts as inside one until it closes.
            self.watched.count();
        }
    }
}
