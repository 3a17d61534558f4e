//! [`ConnectionRouter`]: the principal's environment picks the database.
//!
//! The router holds named connections (`live`, `test`, `eu-live`, `tenant-42_test`),
//! each a bb8 pool of diesel-async connections, opened on first use. A
//! [`RoutingPolicy`] names the connection for a principal; a name that is not
//! configured is a [`RouteError::NoRoute`], never a fallback. Unauthenticated callers
//! get no connection unless an anonymous route is configured.
//!
//! Handlers stay unaware: [`ConnectionRouter::connection`] returns a
//! [`RoutedConnection`] that derefs to the backend's connection, so diesel-async
//! queries run on it unchanged.
//!
//! Teams with hundreds of tenants would otherwise open hundreds of pools (the pool
//! explosion known from Rails and Hibernate multitenancy): at most `max_pools` are open
//! at once and their sizes add up to at most `connection_budget`; opening another
//! closes the least recently used pool. Connections already handed out stay valid
//! until returned.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use keyroute_core::{ConfigError, Principal, StoreError};
use keyroute_pool::{Backend, Binding, DatabaseUrl, DbPool, PoolSettings, RecyclingCheck};

use crate::error::RouteError;
use crate::policy::RoutingPolicy;
use crate::replicas::Replicas;
pub use crate::routed::RoutedConnection;
pub use crate::router_builder::RouterBuilder;
pub(crate) use crate::router_builder::{DEFAULT_CONNECTION_BUDGET, DEFAULT_MAX_POOLS};
use crate::tenancy::Tenancy;
use crate::tenant_urls::UrlTemplate;

/// A connection's shared name and its pool.
type Named<B> = (Arc<str>, Arc<DbPool<B>>);

/// A configured connection: where it goes and how its pool is sized.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) url: DatabaseUrl,
    pub(crate) settings: PoolSettings,
}

/// The pools open now, with when each was last used.
pub(crate) struct OpenPools<B: Backend> {
    pools: HashMap<Arc<str>, OpenPool<B>>,
    clock: u64,
    connections: u32,
}

impl<B: Backend> OpenPools<B> {
    /// No pool open yet.
    pub(crate) fn none() -> Self {
        Self {
            pools: HashMap::new(),
            clock: 0,
            connections: 0,
        }
    }
}

struct OpenPool<B: Backend> {
    name: Arc<str>,
    pool: Arc<DbPool<B>>,
    last_used: u64,
}

pub(crate) struct RouterInner<B: Backend> {
    pub(crate) targets: HashMap<String, Target>,
    /// `[direct]`: connections' direct URLs around a transaction pooler.
    pub(crate) direct: HashMap<String, DatabaseUrl>,
    pub(crate) policy: Box<dyn RoutingPolicy>,
    pub(crate) anonymous: Option<String>,
    pub(crate) max_pools: usize,
    pub(crate) budget: u32,
    pub(crate) tenancy: Option<Tenancy>,
    /// `[routing] url_template`: where connections no `[connections]` entry names go.
    pub(crate) url_template: Option<UrlTemplate>,
    /// The pool settings of connections opened from the URL template.
    pub(crate) tenant_settings: PoolSettings,
    /// Connections' read replicas, when any are configured.
    pub(crate) replicas: Option<Replicas>,
    pub(crate) open: Mutex<OpenPools<B>>,
    /// keyroute's own migration versions, which schema reports leave out.
    pub(crate) keyroute_versions: Vec<String>,
}

/// Routes principals to named connections. Cheap to clone: clones share the pools.
pub struct ConnectionRouter<B: Backend> {
    pub(crate) inner: Arc<RouterInner<B>>,
}

impl<B: Backend> Clone for ConnectionRouter<B> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<B: Backend> fmt::Debug for ConnectionRouter<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        let mut names: Vec<_> = i.targets.keys().collect();
        names.sort();
        f.debug_struct("ConnectionRouter")
            .field("backend", &B::NAME)
            .field("connections", &names)
            .field("policy", &i.policy)
            .field("anonymous", &i.anonymous)
            .field("max_pools", &i.max_pools)
            .field("connection_budget", &i.budget)
            .field("tenancy", &i.tenancy)
            .finish()
    }
}

impl<B: Backend> ConnectionRouter<B> {
    /// A builder with no connections, routing by environment.
    pub fn builder() -> RouterBuilder<B> {
        RouterBuilder::new()
    }

    /// A connection from the pool `principal` is routed to, bound to its tenant when
    /// [tenancy](RouterBuilder::tenancy) is on: the write connection, the primary
    /// when the connection has [replicas](RouterBuilder::replicas) (the caller's
    /// reads then go to the primary for `read_your_writes`; use
    /// [`read_connection`](Self::read_connection) for reads).
    ///
    /// # Errors
    /// [`RouteError::NoRoute`] when the policy names no configured connection, or
    /// tenancy is on and the principal's tenant cannot be bound;
    /// [`RouteError::Unavailable`] with the real cause when the pool gives none.
    pub async fn connection(
        &self,
        principal: &Principal,
    ) -> Result<RoutedConnection<B>, RouteError> {
        if let Some(replicas) = &self.inner.replicas {
            replicas.wrote(principal);
        }
        self.primary(principal).await
    }

    /// The binding of `principal`'s requests, when tenancy is on.
    pub(crate) fn binding(&self, principal: &Principal) -> Result<Option<Binding>, RouteError> {
        self.inner
            .tenancy
            .as_ref()
            .map(|tenancy| tenancy.binding(principal))
            .transpose()
    }

    /// A connection to the primary `principal` is routed to, bound as `connection`
    /// says, without remembering a write.
    pub(crate) async fn primary(
        &self,
        principal: &Principal,
    ) -> Result<RoutedConnection<B>, RouteError> {
        let name = self.inner.policy.route(principal)?;
        let binding = self.binding(principal)?;
        let (name, pool) = match (self.inner.pool(&name), &self.inner.url_template) {
            (Some(named), _) => named?,
            (None, Some(urls)) => self.inner.open_pool(&name, || {
                Ok(Target {
                    url: urls.url(principal)?,
                    settings: self.inner.tenant_settings.clone(),
                })
            })?,
            (None, None) => {
                return Err(RouteError::no_route(
                    principal,
                    format!("no connection named '{name}' is configured"),
                ));
            }
        };
        self.take(name, &pool, binding.as_ref()).await
    }

    /// A connection for an unauthenticated request, from the anonymous route.
    ///
    /// # Errors
    /// [`RouteError::Anonymous`] when no anonymous route is configured;
    /// [`RouteError::Unavailable`] as for [`connection`](Self::connection).
    pub async fn anonymous_connection(&self) -> Result<RoutedConnection<B>, RouteError> {
        let name = self
            .inner
            .anonymous
            .as_deref()
            .ok_or(RouteError::Anonymous)?;
        let (name, pool) = self.inner.pool(name).ok_or(RouteError::Anonymous)??;
        let nobody = self.inner.tenancy.as_ref().map(Tenancy::nobody);
        self.take(name, &pool, nobody.as_ref()).await
    }

    /// A connection by name, bypassing the policy: for migrations and administration,
    /// never for request handling. With tenancy on it is bound to no tenant, but begun
    /// with what an earlier request left on it undone.
    ///
    /// # Errors
    /// [`RouteError::Config`] for an unknown name; [`RouteError::Unavailable`] as above.
    pub async fn connection_named(&self, name: &str) -> Result<RoutedConnection<B>, RouteError> {
        let (name, pool) = self.named(name)?;
        self.take(name, &pool, None).await
    }

    /// The pool of connection `name`, opened if needed: for administration and
    /// measurement, never for request handling.
    ///
    /// # Errors
    /// [`RouteError::Config`] for an unknown name; [`RouteError::Unavailable`] when the
    /// pool cannot be opened (outside a Tokio runtime).
    pub fn pool_named(&self, name: &str) -> Result<Arc<DbPool<B>>, RouteError> {
        self.named(name).map(|(_, pool)| pool)
    }

    /// The pool of a connection by name, for the administrative paths.
    pub(crate) fn named(&self, name: &str) -> Result<Named<B>, RouteError> {
        self.inner.pool(name).ok_or_else(|| {
            RouteError::Config(ConfigError::invalid(
                "connections",
                name,
                "no connection of this name is configured",
            ))
        })?
    }

    /// The names of the pools open now.
    pub fn open_pools(&self) -> Vec<String> {
        let open = self
            .inner
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut names: Vec<String> = open.pools.keys().map(|n| n.to_string()).collect();
        names.sort();
        names
    }

    /// A unit of work on `pool`: bound to `binding` (or, with tenancy on, at least
    /// begun clean) when tenancy is on, the pool's plain unit otherwise.
    pub(crate) async fn take(
        &self,
        name: Arc<str>,
        pool: &DbPool<B>,
        binding: Option<&Binding>,
    ) -> Result<RoutedConnection<B>, RouteError> {
        let unit = if self.inner.tenancy.is_some() {
            pool.bound_unit(binding).await
        } else {
            pool.unit().await
        };
        match unit {
            Ok(conn) => Ok(RoutedConnection::new(conn, name)),
            Err(StoreError::Misuse(reason)) => Err(RouteError::Misuse(reason)),
            Err(source) => Err(RouteError::Unavailable {
                connection: name.to_string(),
                source,
            }),
        }
    }
}

impl<B: Backend> RouterInner<B> {
    /// The open pool for `name`, opening it (and closing the least recently used ones
    /// to stay within the bounds) if needed. `None` if `name` is not configured.
    fn pool(&self, name: &str) -> Option<Result<Named<B>, RouteError>> {
        let target = self.targets.get(name)?;
        Some(self.open_pool(name, || Ok(target.clone())))
    }

    /// The open pool for `name`, opening it at the connection `target` gives (asked
    /// only when the pool is not open) and closing the least recently used ones to
    /// stay within the bounds.
    pub(crate) fn open_pool(
        &self,
        name: &str,
        target: impl FnOnce() -> Result<Target, RouteError>,
    ) -> Result<Named<B>, RouteError> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.clock += 1;
        let now = open.clock;
        if let Some(entry) = open.pools.get_mut(name) {
            entry.last_used = now;
            return Ok((Arc::clone(&entry.name), Arc::clone(&entry.pool)));
        }
        let target = target()?;
        let mut settings = target.settings.clone();
        if self.tenancy.is_some() {
            // Every unit begins with a round trip (the binding's transaction) that
            // finds a dropped connection as the checkout check's `SELECT 1` would,
            // and `bound_unit` then takes another: a check of its own would only
            // add a round trip to every request.
            settings.recycling_check = RecyclingCheck::Fast;
        }
        let pool = match DbPool::lazy(target.url.clone(), settings) {
            Ok(pool) => Arc::new(pool),
            Err(StoreError::Misuse(reason)) => return Err(RouteError::Misuse(reason)),
            Err(source) => {
                return Err(RouteError::Unavailable {
                    connection: name.to_owned(),
                    source,
                });
            }
        };
        // Sized as the backend adjusted it (an in-memory SQLite pool holds one).
        let size = pool.settings().max_size.max(1);
        // Checked: with a budget near u32::MAX the sum may not fit, which means "over".
        let over_budget = |open: &OpenPools<B>| {
            open.connections
                .checked_add(size)
                .is_none_or(|total| total > self.budget)
        };
        while open.pools.len() >= self.max_pools || over_budget(&open) {
            let Some(oldest) = open
                .pools
                .iter()
                .min_by_key(|(_, p)| p.last_used)
                .map(|(n, _)| Arc::clone(n))
            else {
                break;
            };
            if let Some(closed) = open.pools.remove(&oldest) {
                let freed = closed.pool.settings().max_size.max(1);
                open.connections = open.connections.saturating_sub(freed);
                tracing::debug!(connection = %oldest, "keyroute: closed the least recently used pool");
            }
        }
        let name: Arc<str> = Arc::from(name);
        // Within the budget after the loop (build() keeps every pool within it).
        open.connections = open.connections.saturating_add(size);
        open.pools.insert(
            Arc::clone(&name),
            OpenPool {
                name: Arc::clone(&name),
                pool: Arc::clone(&pool),
                last_used: now,
            },
        );
        Ok((name, pool))
    }
}
