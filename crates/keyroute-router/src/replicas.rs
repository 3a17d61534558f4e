//! Read replicas: a connection may have replicas, handlers ask for a read connection
//! ([`ConnectionRouter::read_connection`]) or the write one
//! ([`ConnectionRouter::connection`]), and a caller always reads its own writes.
//!
//! - A read goes to a replica of the connection the caller is routed to, in turn,
//!   unless the caller took a write connection within `read_your_writes` (default 2 s,
//!   as Rails): then it goes to the primary, so a write followed by a read sees the
//!   write however far the replica is behind. The caller is the principal's user, or
//!   its key when it has no user.
//! - A replica is used only while its measured lag is within `replica_max_lag`
//!   (measured on the replica at most once a second, in the background; PostgreSQL
//!   standbys by their replay position, other setups by `replica_lag_query`); until
//!   it has been measured, and while it is behind or cannot be measured, reads go to
//!   the next replica or the primary.
//! - A replica that is down (its pool gives no connection: the breaker fails fast)
//!   sends its reads to the next replica or the primary.
//! - Replica connections are bound to the caller's tenant as the primary's are.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use keyroute_core::{KeyId, Principal, UserId};
use keyroute_pool::{Backend, DatabaseUrl, PoolSettings};

use crate::error::RouteError;
use crate::router::{ConnectionRouter, RoutedConnection, Target};

/// How long after a write connection a caller's reads go to the primary, unless told
/// otherwise (`[routing] read_your_writes`).
pub const DEFAULT_READ_YOUR_WRITES: Duration = Duration::from_secs(2);

/// The most a replica may lag and still serve reads, unless told otherwise
/// (`[routing] replica_max_lag`).
pub const DEFAULT_REPLICA_MAX_LAG: Duration = Duration::from_secs(5);

/// How often a replica's lag is measured at most.
const LAG_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// The most callers whose recent writes are remembered.
const MAX_WRITERS: u64 = 100_000;

/// Who a read-your-writes promise is made to.
#[derive(Clone, PartialEq, Eq, Hash)]
enum Caller {
    User(UserId),
    Key(KeyId),
}

impl Caller {
    fn of(principal: &Principal) -> Option<Self> {
        principal
            .user_id()
            .cloned()
            .map(Caller::User)
            .or_else(|| principal.key_id().cloned().map(Caller::Key))
    }
}

/// One replica of a connection, and what is known of its lag.
pub(crate) struct Replica {
    pub(crate) name: Arc<str>,
    pub(crate) target: Target,
    /// The last measured lag in milliseconds; -1 until measured, or when the last
    /// measurement failed.
    lag_ms: AtomicI64,
    /// When the lag was last measured (or a measurement started).
    checked: std::sync::Mutex<Option<Instant>>,
    probing: AtomicBool,
}

/// Every connection's replicas and the read-your-writes memory.
pub(crate) struct Replicas {
    by_primary: HashMap<String, Vec<Arc<Replica>>>,
    read_your_writes: Duration,
    max_lag: Duration,
    lag_query: Option<String>,
    writers: moka::sync::Cache<Caller, ()>,
    next: AtomicUsize,
}

/// What the builder collects: replica URLs per connection, and the settings.
#[derive(Debug, Clone)]
pub(crate) struct ReplicaSettings {
    pub(crate) urls: HashMap<String, Vec<DatabaseUrl>>,
    pub(crate) read_your_writes: Duration,
    pub(crate) max_lag: Duration,
    pub(crate) lag_query: Option<String>,
}

impl Default for ReplicaSettings {
    fn default() -> Self {
        Self {
            urls: HashMap::new(),
            read_your_writes: DEFAULT_READ_YOUR_WRITES,
            max_lag: DEFAULT_REPLICA_MAX_LAG,
            lag_query: None,
        }
    }
}

impl Replicas {
    /// The replicas of `settings`, each with its primary's pool settings (`settings_of`).
    pub(crate) fn new(
        settings: ReplicaSettings,
        settings_of: impl Fn(&str) -> Option<PoolSettings>,
    ) -> Option<Self> {
        if settings.urls.values().all(Vec::is_empty) {
            return None;
        }
        let mut by_primary = HashMap::new();
        for (primary, urls) in settings.urls {
            let pool = settings_of(&primary).unwrap_or_default();
            let replicas = urls
                .into_iter()
                .enumerate()
                .map(|(i, url)| {
                    Arc::new(Replica {
                        name: Arc::from(format!("{primary}#replica-{}", i + 1)),
                        target: Target {
                            url,
                            settings: pool.clone(),
                        },
                        lag_ms: AtomicI64::new(-1),
                        checked: std::sync::Mutex::new(None),
                        probing: AtomicBool::new(false),
                    })
                })
                .collect();
            by_primary.insert(primary, replicas);
        }
        Some(Self {
            by_primary,
            read_your_writes: settings.read_your_writes,
            max_lag: settings.max_lag,
            lag_query: settings.lag_query,
            writers: moka::sync::Cache::builder()
                .max_capacity(MAX_WRITERS)
                .time_to_live(settings.read_your_writes)
                .build(),
            next: AtomicUsize::new(0),
        })
    }

    /// Remembers that `principal` took a write connection now.
    pub(crate) fn wrote(&self, principal: &Principal) {
        if self.read_your_writes.is_zero() {
            return;
        }
        if let Some(caller) = Caller::of(principal) {
            self.writers.insert(caller, ());
        }
    }

    /// Whether `principal` took a write connection within `read_your_writes`.
    fn wrote_recently(&self, principal: &Principal) -> bool {
        Caller::of(principal).is_some_and(|caller| self.writers.contains_key(&caller))
    }

    /// The replicas of `primary` a read may use now, in this read's turn.
    fn candidates(&self, primary: &str) -> Vec<Arc<Replica>> {
        let Some(all) = self.by_primary.get(primary) else {
            return Vec::new();
        };
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..all.len())
            .map(|i| Arc::clone(&all[(start + i) % all.len()]))
            .collect()
    }

    /// Whether `replica`'s last measured lag is within the bound.
    fn fresh(&self, replica: &Replica) -> bool {
        let lag = replica.lag_ms.load(Ordering::Relaxed);
        lag >= 0 && u128::from(lag.unsigned_abs()) <= self.max_lag.as_millis()
    }
}

impl<B: Backend> ConnectionRouter<B> {
    /// A connection for reads: a replica of the connection `principal` is routed to
    /// when it has one that is up and within `replica_max_lag`, and the caller has
    /// not taken a write connection within `read_your_writes`; the primary otherwise.
    /// Without replicas, the same as [`connection`](Self::connection) (without
    /// marking a write). Bound to the caller's tenant as that is.
    ///
    /// # Errors
    /// As [`connection`](Self::connection).
    pub async fn read_connection(
        &self,
        principal: &Principal,
    ) -> Result<RoutedConnection<B>, RouteError> {
        if let Some(replicas) = &self.inner.replicas
            && !replicas.wrote_recently(principal)
        {
            let primary = self.inner.policy.route(principal)?;
            let binding = self.binding(principal)?;
            for replica in replicas.candidates(&primary) {
                self.measure_lag(replicas, &replica);
                if !replicas.fresh(&replica) {
                    continue;
                }
                let (name, pool) = self
                    .inner
                    .open_pool(&replica.name, || Ok(replica.target.clone()))?;
                match self.take(name, &pool, binding.as_ref()).await {
                    Ok(conn) => return Ok(conn),
                    Err(RouteError::Unavailable { connection, source }) => {
                        tracing::debug!(%connection, "keyroute: a replica is unavailable, reading elsewhere: {source}");
                    }
                    Err(other) => return Err(other),
                }
            }
        }
        self.primary(principal).await
    }

    /// Starts measuring `replica`'s lag in the background if it was not measured
    /// within the interval (and no measurement is running).
    fn measure_lag(&self, replicas: &Replicas, replica: &Arc<Replica>) {
        {
            let mut checked = replica
                .checked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if checked.is_some_and(|at| at.elapsed() < LAG_CHECK_INTERVAL)
                || replica.probing.swap(true, Ordering::AcqRel)
            {
                return;
            }
            *checked = Some(Instant::now());
        }
        let router = self.clone();
        let replica = Arc::clone(replica);
        let query = replicas.lag_query.clone();
        tokio::spawn(async move {
            let measured = match router
                .inner
                .open_pool(&replica.name, || Ok(replica.target.clone()))
            {
                Ok((_, pool)) => pool.replica_lag_ms(query.as_deref()).await,
                Err(e) => Err(keyroute_core::StoreError::unavailable(e.to_string())),
            };
            let lag = match measured {
                Ok(Some(ms)) => ms.max(0),
                Ok(None) => 0,
                Err(e) => {
                    tracing::debug!(replica = %replica.name, "keyroute: a replica's lag could not be measured: {e}");
                    -1
                }
            };
            replica.lag_ms.store(lag, Ordering::Relaxed);
            replica.probing.store(false, Ordering::Release);
        });
    }
}
