//! What the [`Idle`](crate::RecyclingCheck::Idle) checkout check knows of a connection:
//! whether its last query finished, and when.
//!
//! Each connection of a pool with that check carries a [`Freshness`] as its diesel
//! instrumentation, which sees every query start and finish on that connection and
//! nothing else. The check reads it back from the connection on checkout, so no
//! table keyed by connection is needed (bb8 moves connections, and diesel-async's
//! give nothing to key them by). Whatever instrumentation diesel would have given the
//! connection ([`diesel::connection::set_default_instrumentation`]) still gets
//! every event: a [`Freshness`] forwards them.

use std::time::{Duration, Instant};

use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel_async::AsyncConnection;
use diesel_async::pooled_connection::PoolableConnection;

/// A connection's record of its last query: the instrumentation the `Idle` check
/// installs on each connection it opens.
pub(crate) struct Freshness {
    /// When the last query finished without an error; `None` before the first and
    /// after one that failed.
    answered: Option<Instant>,
    /// A query has started and not finished: its future was dropped midway (or is
    /// still running, which a pooled connection cannot be).
    in_flight: bool,
    /// The instrumentation diesel would have installed, which gets every event.
    inner: Option<Box<dyn Instrumentation>>,
}

impl Instrumentation for Freshness {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match &event {
            InstrumentationEvent::StartQuery { .. } => self.in_flight = true,
            InstrumentationEvent::FinishQuery { error, .. } => {
                self.in_flight = false;
                self.answered = error.is_none().then(Instant::now);
            }
            _ => {}
        }
        if let Some(inner) = self.inner.as_mut() {
            inner.on_connection_event(event);
        }
    }
}

/// Gives a newly opened `conn` its [`Freshness`], wrapping the default
/// instrumentation diesel gives every connection (none unless the app set one).
pub(crate) fn install<C: AsyncConnection>(conn: &mut C) {
    conn.set_instrumentation(Freshness {
        answered: None,
        in_flight: false,
        inner: diesel::connection::get_default_instrumentation(),
    });
}

/// Whether `conn` may skip the verifying check: its socket is open (as far as the
/// driver knows), its last query finished without an error less than `within` ago,
/// and no query was left midway since. `false` for a connection without a
/// [`Freshness`] (one whose instrumentation an app replaced), so it is verified.
pub(crate) fn answered_within<C: AsyncConnection + PoolableConnection>(
    conn: &mut C,
    within: Duration,
) -> bool {
    if conn.is_broken() {
        return false;
    }
    // No query future can hold the connection here (the check has it by `&mut`), so
    // diesel-async's PostgreSQL connection hands its instrumentation out.
    conn.instrumentation()
        .downcast_ref::<Freshness>()
        .is_some_and(|fresh| {
            !fresh.in_flight && fresh.answered.is_some_and(|at| at.elapsed() < within)
        })
}
