//! [`RouterBuilder`]: a [`ConnectionRouter`]'s connections, policy, bounds and tenancy,
//! checked when it is built.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use keyroute_core::{ConfigError, Environment};
use keyroute_pool::{Backend, DatabaseUrl, PoolSettings};

use crate::checks::{check_pool_settings, check_routes};
use crate::error::RouteError;
use crate::policy::{ByEnvironment, RoutingPolicy};
use crate::replicas::{ReplicaSettings, Replicas};
use crate::router::{ConnectionRouter, OpenPools, RouterInner, Target};
use crate::tenancy::Tenancy;
use crate::tenant_urls::UrlTemplate;

/// The most pools open at once, unless told otherwise (`[pools] max_pools`).
pub(crate) const DEFAULT_MAX_POOLS: usize = 64;

/// The most connections of all open pools together, unless told otherwise
/// (`[pools] connection_budget`).
pub(crate) const DEFAULT_CONNECTION_BUDGET: u32 = 512;

/// Builds a [`ConnectionRouter`].
pub struct RouterBuilder<B: Backend> {
    targets: HashMap<String, Target>,
    direct: HashMap<String, DatabaseUrl>,
    replicas: ReplicaSettings,
    policy: Box<dyn RoutingPolicy>,
    anonymous: Option<String>,
    settings: PoolSettings,
    max_pools: usize,
    budget: u32,
    environments: Vec<Environment>,
    keyroute_versions: Vec<String>,
    tenancy: Option<Tenancy>,
    url_template: Option<(DatabaseUrl, Option<u32>)>,
    _backend: std::marker::PhantomData<B>,
}

impl<B: Backend> fmt::Debug for RouterBuilder<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RouterBuilder")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<B: Backend> RouterBuilder<B> {
    /// A builder with no connections, routing by environment.
    pub(crate) fn new() -> Self {
        Self {
            targets: HashMap::new(),
            direct: HashMap::new(),
            replicas: ReplicaSettings::default(),
            policy: Box::new(ByEnvironment),
            anonymous: None,
            settings: PoolSettings::default(),
            max_pools: DEFAULT_MAX_POOLS,
            budget: DEFAULT_CONNECTION_BUDGET,
            environments: Vec::new(),
            keyroute_versions: Vec::new(),
            tenancy: None,
            url_template: None,
            _backend: std::marker::PhantomData,
        }
    }

    /// Adds a named connection with the builder's pool settings.
    pub fn connection(self, name: impl Into<String>, url: impl Into<DatabaseUrl>) -> Self {
        let settings = self.settings.clone();
        self.connection_with(name, url, settings)
    }

    /// Adds a named connection with its own pool settings.
    pub fn connection_with(
        mut self,
        name: impl Into<String>,
        url: impl Into<DatabaseUrl>,
        settings: PoolSettings,
    ) -> Self {
        self.targets.insert(
            name.into(),
            Target {
                url: url.into(),
                settings,
            },
        );
        self
    }

    /// A direct URL for connection `name`, around a pooler in transaction mode: app
    /// migrations ([`migrate_each`](ConnectionRouter::migrate_each)) run on it, since
    /// diesel's migration harness needs a session of its own, and schema reports read
    /// through it. Requests never use it.
    pub fn direct_url(mut self, name: impl Into<String>, url: impl Into<DatabaseUrl>) -> Self {
        self.direct.insert(name.into(), url.into());
        self
    }

    /// Read replicas of connection `name`: [`read_connection`](ConnectionRouter::read_connection)
    /// reads from them in turn, each with `name`'s pool settings, while they are up and
    /// within [`replica_max_lag`](Self::replica_max_lag).
    pub fn replicas(
        mut self,
        name: impl Into<String>,
        urls: impl IntoIterator<Item = DatabaseUrl>,
    ) -> Self {
        self.replicas
            .urls
            .entry(name.into())
            .or_default()
            .extend(urls);
        self
    }

    /// How long after a caller takes a write connection its reads go to the primary,
    /// so it reads its own writes. Default 2 s; zero turns it off.
    pub fn read_your_writes(mut self, delay: std::time::Duration) -> Self {
        self.replicas.read_your_writes = delay;
        self
    }

    /// The most a replica may lag and still serve reads. Default 5 s.
    pub fn replica_max_lag(mut self, lag: std::time::Duration) -> Self {
        self.replicas.max_lag = lag;
        self
    }

    /// The statement that measures a replica's lag (one `BIGINT` column `lag_ms`),
    /// for setups the backend's own measure does not fit (logical replication, or
    /// backends without one). Default: PostgreSQL's standby replay position.
    pub fn replica_lag_query(mut self, query: impl Into<String>) -> Self {
        self.replicas.lag_query = Some(query.into());
        self
    }

    /// Pool settings for connections added after this call. Default: [`PoolSettings::default`].
    pub fn pool_settings(mut self, settings: PoolSettings) -> Self {
        self.settings = settings;
        self
    }

    /// How principals are routed. Default [`ByEnvironment`].
    pub fn policy(mut self, policy: impl RoutingPolicy + 'static) -> Self {
        self.policy = Box::new(policy);
        self
    }

    /// Lets unauthenticated requests use the connection `name`. Default: none do.
    pub fn anonymous_route(mut self, name: impl Into<String>) -> Self {
        self.anonymous = Some(name.into());
        self
    }

    /// The most pools open at once. Default 64.
    pub fn max_pools(mut self, max_pools: usize) -> Self {
        self.max_pools = max_pools;
        self
    }

    /// The most connections all open pools may hold together. Default 512.
    pub fn connection_budget(mut self, budget: u32) -> Self {
        self.budget = budget;
        self
    }

    /// Opens a database per tenant and environment at `url` (which holds `{tenant}`
    /// and `{env}`, e.g. `postgres://app@db/{tenant}_{env}`), each pool of
    /// `pool_size` connections (default: the builder's `max_size`), within
    /// `max_pools` and `connection_budget`. Connections are then named
    /// `{tenant}_{env}` (this replaces the [`policy`](Self::policy)), and a name added
    /// with [`connection`](Self::connection) is that connection rather than the
    /// template's.
    pub fn url_template(mut self, url: impl Into<DatabaseUrl>, pool_size: Option<u32>) -> Self {
        self.url_template = Some((url.into(), pool_size));
        self
    }

    /// Binds each request's tenant in its database ([`Tenancy`]). Default: none (a
    /// database per tenant is a routing template instead). PostgreSQL only.
    pub fn tenancy(mut self, tenancy: Option<Tenancy>) -> Self {
        self.tenancy = tenancy;
        self
    }

    /// Checks at build time that keys of each of `environments` have a route to a
    /// configured connection, as far as the policy can tell before a request (see
    /// [`RoutingPolicy::targets`]). The front door passes the environments keys are
    /// accepted for.
    pub fn check_routes_for(mut self, environments: Vec<Environment>) -> Self {
        self.environments = environments;
        self
    }

    /// keyroute's own migration versions (the key store's), which
    /// [`SchemaReport`](crate::SchemaReport)s leave out of every comparison: only the
    /// database the key store lives in has them. The router knows no store; the front
    /// door passes `keyroute_store::keyroute_migration_versions::<B>()`. Default: none.
    pub fn keyroute_versions(mut self, versions: Vec<String>) -> Self {
        self.keyroute_versions = versions;
        self
    }

    /// The router. Opens nothing yet.
    ///
    /// # Errors
    /// [`RouteError::Config`] naming the setting when there are no connections, the
    /// anonymous route names none of them, `max_pools` or `connection_budget` is zero,
    /// a pool's settings are out of bounds (`max_size` of zero or larger than the whole
    /// `connection_budget`, `min_idle` above `max_size`, a zero `connection_timeout`,
    /// `idle_timeout` or `max_lifetime`), an environment given to
    /// [`check_routes_for`](Self::check_routes_for) routes to a connection that does
    /// not exist, or [`tenancy`](Self::tenancy) is on for a backend that cannot bind
    /// (anything but PostgreSQL) or together with a [`url_template`](Self::url_template).
    pub fn build(mut self) -> Result<ConnectionRouter<B>, RouteError> {
        let url_template = match &self.url_template {
            Some((url, size)) => Some(UrlTemplate::parse(url, *size)?),
            None => None,
        };
        let mut tenant_settings = self.settings.clone();
        if let Some(size) = url_template.as_ref().and_then(|t| t.pool_size) {
            tenant_settings.max_size = size;
        }
        if url_template.is_some() {
            self.policy = Box::new(UrlTemplate::names());
            check_pool_settings(
                "{tenant}_{env} (url_template, sized by [routing] tenant_pool_size)",
                &tenant_settings,
                self.budget,
            )?;
        }
        if self.targets.is_empty() && url_template.is_none() {
            return Err(ConfigError::missing(
                "connections",
                "",
                "no connections are configured; add e.g. live = \"...\" and test = \"...\"",
            )
            .into());
        }
        if let Some(anonymous) = &self.anonymous
            && !self.targets.contains_key(anonymous)
        {
            return Err(ConfigError::invalid(
                "routing",
                "anonymous",
                format_args!("names '{anonymous}', which is not a configured connection"),
            )
            .into());
        }
        if self.max_pools == 0 {
            return Err(ConfigError::invalid("pools", "max_pools", "must be at least 1").into());
        }
        if self.budget == 0 {
            return Err(ConfigError::invalid(
                "pools",
                "connection_budget",
                "must be at least 1 (it bounds the connections of all open pools together)",
            )
            .into());
        }
        // The write memory's expiry: its cache refuses (panics on) a lifetime over
        // 1000 years, so durations are held to the configuration's bound (zero is
        // allowed: no read-your-writes delay, or no lag tolerated).
        for (option, value) in [
            ("read_your_writes", self.replicas.read_your_writes),
            ("replica_max_lag", self.replicas.max_lag),
        ] {
            if !value.is_zero() {
                keyroute_core::config::check_duration("routing", option, value)?;
            }
        }
        if let Some(stray) = self
            .replicas
            .urls
            .keys()
            .find(|n| !self.targets.contains_key(*n))
        {
            return Err(ConfigError::invalid(
                "replicas",
                stray,
                "lists replicas of a connection that is not configured; add it under [connections] or remove them",
            )
            .into());
        }
        if let Some(stray) = self.direct.keys().find(|n| !self.targets.contains_key(*n)) {
            return Err(ConfigError::invalid(
                "direct",
                stray,
                "is a direct URL for a connection that is not configured; add it under [connections] or remove it",
            )
            .into());
        }
        for (name, target) in &self.targets {
            check_pool_settings(name, &target.settings, self.budget)?;
        }
        check_routes(self.policy.as_ref(), &self.targets, &self.environments)?;
        if let (Some(tenancy), Some(_)) = (&self.tenancy, &url_template) {
            // Each tenant already has a database of its own, which no build-time check
            // could read (they open on first use): the row-security check would pass
            // without having looked, and a schema would separate nothing more.
            return Err(ConfigError::invalid(
                "tenancy",
                "mode",
                format_args!(
                    "\"{}\" binds tenants inside a shared database, and [routing] url_template already gives each tenant a database of its own; use mode = \"none\" with url_template, or [connections] with the tenancy mode",
                    tenancy.mode_name()
                ),
            )
            .into());
        }
        if let Some(tenancy) = &self.tenancy
            && !B::BINDS_TENANTS
        {
            return Err(ConfigError::invalid(
                "tenancy",
                "mode",
                format_args!(
                    "\"{}\" binds the tenant in PostgreSQL, and these connections are {}; use mode = \"none\" with a database per tenant: [routing] url_template = \"...://app@db/{{tenant}}_{{env}}\" (on MySQL / MariaDB this is schema per tenant: a schema is a database there)",
                    tenancy.mode_name(),
                    B::NAME
                ),
            )
            .into());
        }
        Ok(ConnectionRouter {
            inner: Arc::new(RouterInner {
                replicas: Replicas::new(self.replicas, |name| {
                    self.targets.get(name).map(|t| t.settings.clone())
                }),
                targets: self.targets,
                direct: self.direct,
                policy: self.policy,
                anonymous: self.anonymous,
                max_pools: self.max_pools,
                budget: self.budget,
                tenancy: self.tenancy,
                url_template,
                tenant_settings,
                open: Mutex::new(OpenPools::none()),
                keyroute_versions: self.keyroute_versions,
            }),
        })
    }
}
