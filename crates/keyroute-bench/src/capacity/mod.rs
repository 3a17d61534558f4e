//! The capacity model, measured: `N` full `Keyroute<Postgres>` instances in this
//! process (each with its own pools, cache, `LISTEN` connection and background work)
//! against one PostgreSQL server, once directly and once through PgBouncer in
//! transaction mode, at a fixed request rate.
//!
//! - [`fleet`]: the instances, the keys, the cache prefill, the fixed-rate load (one
//!   ticker per instance, each request its own task, so the rate does not depend on
//!   how fast requests are served) and the revocation propagation.
//! - [`observe`]: what PostgreSQL and PgBouncer count (`pg_stat_database`,
//!   `pg_stat_activity`, `pg_stat_statements`, `SHOW STATS`, `SHOW POOLS`) and a
//!   `LISTEN` of our own counting the change feed's notifications.
//! - [`model`]: what the model predicts from the run's settings alone, printed next
//!   to what was measured.
//! - [`run`]: one mode's run, phase by phase.
//! - [`warnings`]: keyroute's own warnings (`tracing`), counted per mode.

pub(crate) mod fleet;
pub(crate) mod model;
pub(crate) mod observe;
pub(crate) mod run;
pub(crate) mod warnings;

use std::fmt;

/// Why the capacity run stopped: what was being done, and the cause.
#[derive(Debug)]
pub(crate) struct Failure(String);

impl Failure {
    /// A failure described by `message`.
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Failure {}

impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Self {
        Self(format!("writing the report: {error}"))
    }
}

/// The capacity run's results.
pub(crate) type Outcome<T> = Result<T, Failure>;

/// Adds what was being done to an error.
pub(crate) trait Context<T> {
    /// The error, prefixed with `what` was being done.
    fn context(self, what: &str) -> Outcome<T>;
}

impl<T, E: fmt::Display> Context<T> for Result<T, E> {
    fn context(self, what: &str) -> Outcome<T> {
        self.map_err(|e| Failure(format!("{what}: {e}")))
    }
}

/// `q` (0 to 1) of `values`, by nearest rank; `None` for none.
pub(crate) fn percentile(values: &[std::time::Duration], q: f64) -> Option<std::time::Duration> {
    let mut sorted = values.to_vec();
    sorted.sort();
    let last = sorted.len().checked_sub(1)?;
    let rank = ((last as f64) * q).round() as usize;
    sorted.get(rank.min(last)).copied()
}

/// Milliseconds, for printing.
pub(crate) fn ms(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
