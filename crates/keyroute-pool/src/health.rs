//! A pool's circuit breaker: after a failed connect, checkouts fail at once for a
//! back-off window instead of each waiting out the pool's `connection_timeout`.
//!
//! - **Closed** (healthy): checkouts go to bb8. The first connect that fails opens the
//!   breaker and wakes every checkout waiting on the pool, which then fail at once
//!   with the cause.
//! - **Open**: checkouts fail within microseconds, saying why and when the next try
//!   is, until the window ends. The window starts at `retry_backoff` and doubles after
//!   each failed probe, up to `retry_backoff_max`.
//! - **Probing** (half-open): when the window ends, one checkout goes through as the
//!   probe; the others keep failing fast. The first successful connect (the probe's,
//!   or any other) closes the breaker: no restart is needed.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::connect::ConnectFailure;

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Closed,
    Open { until: Instant },
    Probing,
}

#[derive(Debug)]
struct State {
    mode: Mode,
    /// The current window; doubles after each failed probe.
    backoff: Duration,
    /// The newest connect failure (already scrubbed of secrets).
    last: Option<Arc<ConnectFailure>>,
}

/// One pool's breaker, shared by the pool and its connection manager.
#[derive(Debug)]
pub(crate) struct Health {
    state: Mutex<State>,
    /// Bumped each time the breaker opens, waking checkouts waiting on the pool.
    opened: watch::Sender<u64>,
    min: Duration,
    max: Duration,
    /// The database, password masked, for the logs (which pool's breaker this is).
    database: String,
}

/// What a checkout may do.
#[derive(Debug)]
pub(crate) enum Admission {
    /// Go to the pool.
    Go,
    /// Go to the pool as the one probe; the guard reopens the breaker if the probe
    /// ends without a connection.
    Probe(ProbeGuard),
    /// Fail now, with the last cause and the time until the next probe.
    Refuse {
        /// The newest connect failure.
        cause: Option<Arc<ConnectFailure>>,
        /// Until the next probe may run.
        retry_in: Duration,
    },
}

impl Health {
    /// A closed breaker for `database` (its masked connection string, named in the
    /// logs) whose window runs from `min` doubling to `max`.
    pub(crate) fn new(min: Duration, max: Duration, database: String) -> Arc<Self> {
        let min = if min.is_zero() {
            Duration::from_millis(1)
        } else {
            min
        };
        Arc::new(Self {
            state: Mutex::new(State {
                mode: Mode::Closed,
                backoff: min,
                last: None,
            }),
            opened: watch::Sender::new(0),
            min,
            max: max.max(min),
            database,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A receiver that wakes when the breaker next opens. Take it before
    /// [`admit`](Self::admit), so an opening in between is not missed.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.opened.subscribe()
    }

    /// Whether a checkout may go to the pool now.
    pub(crate) fn admit(self: &Arc<Self>) -> Admission {
        let mut state = self.lock();
        let now = Instant::now();
        match state.mode {
            Mode::Closed => Admission::Go,
            Mode::Open { until } if now < until => Admission::Refuse {
                cause: state.last.clone(),
                retry_in: until.saturating_duration_since(now),
            },
            Mode::Open { .. } => {
                state.mode = Mode::Probing;
                Admission::Probe(ProbeGuard(Arc::clone(self)))
            }
            Mode::Probing => Admission::Refuse {
                cause: state.last.clone(),
                retry_in: Duration::ZERO,
            },
        }
    }

    /// A connect failed: open the breaker (or widen its window after a failed probe).
    pub(crate) fn connect_failed(&self, failure: ConnectFailure) {
        let mut state = self.lock();
        let now = Instant::now();
        state.last = Some(Arc::new(failure));
        match state.mode {
            Mode::Closed => {
                state.backoff = self.min;
                state.mode = Mode::Open {
                    until: later(now, state.backoff),
                };
                tracing::warn!(
                    database = %self.database,
                    cause = %state.last.as_deref().map(ToString::to_string).unwrap_or_default(),
                    retry_in = ?state.backoff,
                    "keyroute: database unreachable; failing fast until the next try"
                );
            }
            Mode::Probing => {
                state.backoff = state.backoff.saturating_mul(2).min(self.max);
                state.mode = Mode::Open {
                    until: later(now, state.backoff),
                };
            }
            // Another connect (bb8 retrying in the background) failed while open.
            Mode::Open { .. } => return,
        }
        drop(state);
        self.opened.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A connection was made or checked out: close the breaker.
    pub(crate) fn connected(&self) {
        let mut state = self.lock();
        if state.mode != Mode::Closed {
            tracing::info!(database = %self.database, "keyroute: database reachable again");
        }
        state.mode = Mode::Closed;
        state.backoff = self.min;
        state.last = None;
    }

    /// The newest connect failure, if the breaker is not closed.
    pub(crate) fn last_failure(&self) -> Option<Arc<ConnectFailure>> {
        self.lock().last.clone()
    }

    /// The probe ended without a connection and without a connect failure (a
    /// cancelled request, a pool full of busy connections): open again, same window.
    fn probe_ended(&self) {
        let mut state = self.lock();
        if state.mode == Mode::Probing {
            state.mode = Mode::Open {
                until: later(Instant::now(), state.backoff),
            };
        }
    }
}

/// `now + wait`, capped at a day for a wait too long to add (from a wild setting).
fn later(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait.min(Duration::from_secs(86_400)))
        .unwrap_or(now)
}

/// Held by the probing checkout; dropping it without success reopens the breaker.
#[derive(Debug)]
pub(crate) struct ProbeGuard(Arc<Health>);

impl Drop for ProbeGuard {
    fn drop(&mut self) {
        self.0.probe_ended();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(admission: &Admission) -> Option<Duration> {
        match admission {
            Admission::Refuse { retry_in, .. } => Some(*retry_in),
            _ => None,
        }
    }

    /// Closed until a failure; open for the window; one probe; a failed probe doubles
    /// the window up to the cap; a success closes.
    #[tokio::test]
    async fn opens_probes_once_backs_off_and_closes() {
        let min = Duration::from_millis(20);
        let health = Health::new(min, Duration::from_millis(50), "test-db".into());
        assert!(matches!(health.admit(), Admission::Go));

        health.connect_failed(ConnectFailure::Other("refused".into()));
        let wait = refused(&health.admit()).expect("open after a failure");
        assert!(wait > Duration::ZERO && wait <= min, "{wait:?}");

        tokio::time::sleep(min + Duration::from_millis(5)).await;
        let probe = health.admit();
        assert!(matches!(probe, Admission::Probe(_)), "{probe:?}");
        assert_eq!(
            refused(&health.admit()),
            Some(Duration::ZERO),
            "one probe at a time"
        );

        health.connect_failed(ConnectFailure::Other("refused".into()));
        drop(probe);
        let wait = refused(&health.admit()).expect("open after a failed probe");
        assert!(wait > min, "the window doubled: {wait:?}");

        // Doubling stops at the cap.
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(55)).await;
            let probe = health.admit();
            assert!(matches!(probe, Admission::Probe(_)), "{probe:?}");
            health.connect_failed(ConnectFailure::Other("refused".into()));
        }
        let wait = refused(&health.admit()).expect("still open");
        assert!(wait <= Duration::from_millis(50), "capped: {wait:?}");

        tokio::time::sleep(Duration::from_millis(55)).await;
        let probe = health.admit();
        health.connected();
        drop(probe);
        assert!(
            matches!(health.admit(), Admission::Go),
            "closed by a success"
        );
    }

    /// A probe that ends with no outcome (cancelled) reopens rather than blocking
    /// every later request.
    #[tokio::test]
    async fn an_abandoned_probe_reopens() {
        let health = Health::new(
            Duration::from_millis(10),
            Duration::from_millis(10),
            "test-db".into(),
        );
        health.connect_failed(ConnectFailure::Other("refused".into()));
        tokio::time::sleep(Duration::from_millis(15)).await;
        drop(health.admit());
        assert!(refused(&health.admit()).is_some_and(|w| w > Duration::ZERO));
    }
}
