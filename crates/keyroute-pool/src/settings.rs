//! How big the pool is, how long it waits, and what it checks on checkout: the
//! options of the `[pools]` section that each pool takes (the router adds its own
//! bounds on all pools together).

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How pooled connections are checked when taken from the pool.
///
/// The default, [`Auto`](Self::Auto), lets the backend choose:
/// - PostgreSQL, MySQL and MariaDB use [`Idle`](Self::Idle): a server can drop a
///   connection (restart, idle timeout, failover), so one that has sat idle is
///   verified before a request gets it; one that answered a query a moment ago is
///   not, which saves a round trip on most checkouts of a busy pool (on PostgreSQL
///   over HTTP at 64 concurrent requests, about 40 % of the CPU per request; see
///   `BENCHMARKS.md`).
/// - SQLite uses [`Fast`](Self::Fast): its database is a file opened in-process, so
///   a `SELECT 1` can find nothing wrong and only costs a hop to a blocking thread
///   (24-45 us against 0.25 us per checkout, measured on the lookup benchmark).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum RecyclingCheck {
    /// The backend's choice: `Idle` for PostgreSQL and MySQL, `Fast` for SQLite. A
    /// pool's [`settings`](crate::DbPool::settings) show the check it resolved to.
    #[default]
    Auto,
    /// Only check the connection is not mid-transaction. Fastest; a connection the
    /// server dropped fails its first query and is then discarded.
    Fast,
    /// Also run `SELECT 1` on every checkout: one more round trip, no stale connections.
    /// On MySQL / MariaDB the check is an echo of a number unique to it instead: a
    /// query whose future was dropped midway can leave a connection out of step (its
    /// driver is not cancel-safe), and only an answer that must be the check's own
    /// finds that, so the connection is discarded rather than handing the next
    /// request an answer that is not its own. With `Fast` on MySQL that protection is off.
    Verified,
    /// `Verified`, but only for a connection that may have gone stale: one whose last
    /// query finished more than [`PoolSettings::idle_check_after`] ago (500 ms by
    /// default), failed, or was abandoned midway (its future dropped), or whose socket
    /// the driver has seen close. A connection that answered a query within that
    /// window is handed out at once, with no round trip.
    ///
    /// What it gives up against `Verified`: a server that drops a connection within
    /// the window, before the driver has read the close, fails that one request's
    /// first query (and the connection is then discarded). PostgreSQL's driver reads
    /// a close as it arrives, in the background, so on a restart or a terminated
    /// backend that is a window of milliseconds, not the whole 500. MySQL's driver
    /// reads nothing between queries: a MySQL server that restarts fails the next
    /// request on each connection that answered within the window before it (at most
    /// `max_size` requests per pool).
    ///
    /// On MySQL / MariaDB a query dropped before it finished is what can leave a
    /// connection out of step, and its connection is verified (the echo) at the next
    /// checkout. A query dropped later, while its rows are read, is not seen as
    /// abandoned: mysql_async drains its rows before the connection's next command,
    /// and `crates/keyroute-pool/tests/dropped_query.rs` drops 300 queries at every
    /// stage under this check. SQLite, whose default `Fast` is right for a file,
    /// checks every checkout under `Idle`, as under `Verified`.
    Idle,
}

impl RecyclingCheck {
    /// This check, with [`Auto`](Self::Auto) replaced by `backend_default`.
    pub(crate) fn or_default(self, backend_default: RecyclingCheck) -> RecyclingCheck {
        match self {
            RecyclingCheck::Auto => backend_default,
            chosen => chosen,
        }
    }
}

/// What sits between keyroute's PostgreSQL pools and the server ([`PoolSettings::pooler`]).
///
/// Behind a pooler in transaction mode (PgBouncer's `pool_mode = transaction`, RDS
/// Proxy, Supavisor's transaction port) each transaction may run on a different server
/// connection, so anything a connection keeps between transactions is lost or, worse,
/// seen by another client: named prepared statements, session `SET`s, `LISTEN`.
/// [`Transaction`](Self::Transaction) makes keyroute's PostgreSQL connections safe
/// there (see the variant). MySQL, MariaDB and SQLite pools ignore this setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Pooler {
    /// Each pooled connection is one server session: a direct connection, or a pooler
    /// in session mode. Statements are prepared once per connection and cached.
    #[default]
    Session,
    /// A pooler in transaction mode. Every unit of work on a connection
    /// ([`DbPool::unit`](crate::DbPool::unit)) is one transaction, begun by resetting
    /// what an earlier client may have left on the server connection (`RESET ALL`,
    /// `RESET ROLE`, `DEALLOCATE ALL`); statements are prepared inside it and closed
    /// before it commits (no statement cache), so nothing outlives the transaction;
    /// the unit's `BEGIN` is the checkout check (a connection the server dropped fails
    /// it and another is taken), so no `SELECT 1` is added. The change feed's `LISTEN` and
    /// migrations need a session: give them a direct URL (`[store] direct_url`).
    Transaction,
}

/// Pool settings. Build them from [`PoolSettings::default`] and change fields, or read
/// them from the `[pools]` section of keyroute's configuration (a field's name is its
/// option's, `recycling_check` is `check`; durations are text such as `5s`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct PoolSettings {
    /// Most connections open at once. Default 10.
    pub max_size: u32,
    /// Connections kept open while idle. Default none.
    pub min_idle: Option<u32>,
    /// How long to wait for a connection before giving up. Default 5 s: a request
    /// should fail fast, with the cause, rather than hang.
    #[serde(with = "keyroute_core::config::duration")]
    pub connection_timeout: Duration,
    /// Idle connections are closed after this long. Default 10 minutes.
    #[serde(with = "keyroute_core::config::optional_duration")]
    pub idle_timeout: Option<Duration>,
    /// Connections are replaced after this long. Default 30 minutes.
    #[serde(with = "keyroute_core::config::optional_duration")]
    pub max_lifetime: Option<Duration>,
    /// The check run on checkout (`auto`, `fast`, `verified` or `idle`). Default
    /// [`RecyclingCheck::Auto`]: `Idle` for PostgreSQL and MySQL, `Fast` for SQLite
    /// (see [`RecyclingCheck`] for why).
    #[serde(rename = "check")]
    pub recycling_check: RecyclingCheck,
    /// Under the [`Idle`](RecyclingCheck::Idle) check, a connection whose last query
    /// finished longer ago than this is verified on checkout; a more recent one is
    /// not. Default 500 ms: long enough that a busy pool's connections skip the
    /// check, short enough that one idle through a restart or a failover is checked.
    /// `0s` verifies every checkout. Other checks ignore it.
    #[serde(with = "keyroute_core::config::duration")]
    pub idle_check_after: Duration,
    /// How long opening one connection (TCP, TLS, authentication) may take. Default
    /// 2 s: a host that drops packets fails the request after this, not after the
    /// whole `connection_timeout`, and opens the circuit breaker.
    #[serde(with = "keyroute_core::config::duration")]
    pub connect_timeout: Duration,
    /// After a failed connect, checkouts fail at once (`Unavailable`, with the cause)
    /// for this long before one probe tries again. Default 250 ms.
    #[serde(with = "keyroute_core::config::duration")]
    pub retry_backoff: Duration,
    /// The window doubles after each failed probe, up to this. Default 5 s.
    #[serde(with = "keyroute_core::config::duration")]
    pub retry_backoff_max: Duration,
    /// What sits between the pools and PostgreSQL: `session` (the default: nothing,
    /// or a pooler in session mode) or `transaction` (PgBouncer in transaction mode
    /// and its kind; see [`Pooler`]). Other backends ignore it.
    pub pooler: Pooler,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_size: 10,
            min_idle: None,
            connection_timeout: Duration::from_secs(5),
            idle_timeout: Some(Duration::from_secs(600)),
            max_lifetime: Some(Duration::from_secs(1800)),
            recycling_check: RecyclingCheck::Auto,
            idle_check_after: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(2),
            retry_backoff: Duration::from_millis(250),
            retry_backoff_max: Duration::from_secs(5),
            pooler: Pooler::Session,
        }
    }
}
