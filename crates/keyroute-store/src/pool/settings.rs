//! How big the pool is, how long it waits, and what it checks on checkout.

use std::time::Duration;

/// How pooled connections are checked when taken from the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RecyclingCheck {
    /// Only check the connection is not mid-transaction. Fastest; a connection the
    /// server dropped fails its first query and is then discarded.
    Fast,
    /// Also run `SELECT 1` on every checkout: one more round trip, no stale connections.
    #[default]
    Verified,
}

/// Pool settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PoolSettings {
    /// Most connections open at once. Default 10.
    pub max_size: u32,
    /// Connections kept open while idle. Default none.
    pub min_idle: Option<u32>,
    /// How long to wait for a connection before giving up. Default 5 s: a request
    /// should fail fast, with the cause, rather than hang.
    pub connection_timeout: Duration,
    /// Idle connections are closed after this long. Default 10 minutes.
    pub idle_timeout: Option<Duration>,
    /// Connections are replaced after this long. Default 30 minutes.
    pub max_lifetime: Option<Duration>,
    /// The check run on checkout. Default [`RecyclingCheck::Verified`].
    pub recycling_check: RecyclingCheck,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_size: 10,
            min_idle: None,
            connection_timeout: Duration::from_secs(5),
            idle_timeout: Some(Duration::from_secs(600)),
            max_lifetime: Some(Duration::from_secs(1800)),
            recycling_check: RecyclingCheck::Verified,
        }
    }
}
