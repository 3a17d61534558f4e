//! The router's and the resolver's sections of keyroute's one configuration.
//!
//! [`RouterConfig`] owns `[connections]`, `[routing]` ([`RoutingConfig`]), `[tenancy]`
//! ([`TenancyConfig`](crate::TenancyConfig)) and `[pools]`
//! ([`PoolsConfig`]: the pool crate's [`PoolSettings`] for each pool, and the router's
//! bounds on all of them); [`ResolverConfig`] owns `[resolver]`. Each is a serde struct
//! whose fields are its options (`deny_unknown_fields`), read by the facade's `Config`
//! from `keyroute.toml` and `KEYROUTE_*` variables through the one deserializer of
//! [`keyroute_core::config`]. Both can also be filled in code and turned into the
//! component builders (the advanced API).
//!
//! ```toml
//! [connections]
//! live = "postgres://app:secret@db/live"
//! test = "postgres://app:secret@db/test"
//!
//! [routing]
//! template = "{tenant}_{env}"      # or: table = { test = "TestDb" }; default: by environment
//! anonymous = "public"             # default: unauthenticated requests get no connection
//! # url_template = "postgres://app:secret@db/{tenant}_{env}"  # a database per tenant, no line each
//!
//! [tenancy]
//! mode = "row_security"            # or "schema"; default "none"
//!
//! [pools]
//! max_size = 10
//! max_pools = 64
//! connection_budget = 512
//!
//! [resolver]
//! dangerous_trust_any_proxy = false
//! trusted_proxies = ["10.0.0.0/8"]   # forwarded headers count only from these peers
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use keyroute_core::config::check_duration;
use keyroute_core::{ApiKeyStore, ConfigError, CredentialExtractor, Environment, KeyType};
use keyroute_pool::{Backend, DatabaseUrl, PoolSettings};
use serde::{Deserialize, Serialize};

use crate::error::RouteError;
use crate::policy::{RouteTable, Template};
use crate::resolver::{ProxyNet, ResolverBuilder};
use crate::router::{
    ConnectionRouter, DEFAULT_CONNECTION_BUDGET, DEFAULT_MAX_POOLS, RouterBuilder,
};
use crate::tenancy::TenancyConfig;

/// The router's configuration: `[connections]`, `[routing]` and `[pools]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RouterConfig {
    /// `[connections]`: connection name to database URL. A URL whose scheme names no
    /// database keyroute knows is refused when read.
    pub connections: BTreeMap<String, DatabaseUrl>,
    /// `[routing]`: how principals are routed to connections.
    pub routing: RoutingConfig,
    /// `[pools]`: the settings of every pool, and bounds on all of them together.
    pub pools: PoolsConfig,
    /// `[tenancy]`: whether and how each request's tenant is bound in its database.
    pub tenancy: TenancyConfig,
    /// `[direct]`: connection name to a direct URL around a pooler in transaction
    /// mode, for app migrations and schema reports (never for requests).
    pub direct: BTreeMap<String, DatabaseUrl>,
    /// `[replicas]`: connection name to its read replicas' URLs.
    pub replicas: BTreeMap<String, Vec<DatabaseUrl>>,
}

/// `[routing]`: by environment (the default), by a table, or by a template.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RoutingConfig {
    /// A route template such as `{tenant}_{env}`.
    pub template: Option<String>,
    /// Environment to connection name (`{ test = "TestDb" }`; in a variable
    /// `test=TestDb,live=LiveDb`), when not routing by environment or template.
    #[serde(with = "keyroute_core::config::map")]
    pub table: BTreeMap<String, String>,
    /// The connection unauthenticated requests may use. Default: none may.
    pub anonymous: Option<String>,
    /// A database per tenant and environment without a `[connections]` line each:
    /// a URL holding `{tenant}` and `{env}` (`postgres://app@db/{tenant}_{env}`).
    /// Connections are then named `{tenant}_{env}`; not with `template` or `table`.
    pub url_template: Option<DatabaseUrl>,
    /// Connections per pool opened from `url_template`. Default: `[pools] max_size`.
    pub tenant_pool_size: Option<u32>,
    /// How long after a caller takes a write connection its reads go to the primary
    /// rather than a `[replicas]` replica. Default 2 s.
    #[serde(with = "keyroute_core::config::duration")]
    pub read_your_writes: Duration,
    /// The most a replica may lag and still serve reads. Default 5 s.
    #[serde(with = "keyroute_core::config::duration")]
    pub replica_max_lag: Duration,
    /// The statement that measures a replica's lag (one `BIGINT` column `lag_ms`).
    /// Default: PostgreSQL's standby replay position.
    pub replica_lag_query: Option<String>,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            template: None,
            table: BTreeMap::new(),
            anonymous: None,
            url_template: None,
            tenant_pool_size: None,
            read_your_writes: crate::DEFAULT_READ_YOUR_WRITES,
            replica_max_lag: crate::DEFAULT_REPLICA_MAX_LAG,
            replica_lag_query: None,
        }
    }
}

/// `[pools]`: each pool's [`PoolSettings`] (`max_size`, timeouts, `check`, ...) and the
/// router's bounds on all pools together.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct PoolsConfig {
    /// The settings of every pool.
    #[serde(flatten)]
    pub settings: PoolSettings,
    /// The most pools open at once; opening another closes the least recently used.
    /// Default 64.
    pub max_pools: usize,
    /// The most connections all open pools may hold together. Default 512.
    pub connection_budget: u32,
}

impl Default for PoolsConfig {
    fn default() -> Self {
        Self {
            settings: PoolSettings::default(),
            max_pools: DEFAULT_MAX_POOLS,
            connection_budget: DEFAULT_CONNECTION_BUDGET,
        }
    }
}

impl RouterConfig {
    /// Checks what can be checked of the sections alone: every connection has a name.
    /// The routing policy (a template or a table, not both) is checked by
    /// [`builder`](Self::builder); routes to connections that do not exist and the
    /// pools' bounds by [`RouterBuilder::build`].
    ///
    /// # Errors
    /// [`ConfigError`] naming the section and option at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.connections.keys().any(String::is_empty) {
            return Err(ConfigError::invalid(
                "connections",
                "",
                "a connection needs a name",
            ));
        }
        Ok(())
    }

    /// A router builder for this configuration; add anything code-only before building.
    ///
    /// # Errors
    /// [`RouteError::Config`] for a bad template, a table entry for an invalid
    /// environment, or both a template and a table.
    pub fn builder<B: Backend>(&self) -> Result<RouterBuilder<B>, RouteError> {
        self.validate()?;
        let mut builder =
            ConnectionRouter::<B>::builder().pool_settings(self.pools.settings.clone());
        for (name, url) in &self.connections {
            builder = builder.connection(name.clone(), url.clone());
        }
        for (name, url) in &self.direct {
            builder = builder.direct_url(name.clone(), url.clone());
        }
        for (name, urls) in &self.replicas {
            builder = builder.replicas(name.clone(), urls.iter().cloned());
        }
        builder = builder
            .read_your_writes(self.routing.read_your_writes)
            .replica_max_lag(self.routing.replica_max_lag);
        if let Some(query) = &self.routing.replica_lag_query {
            builder = builder.replica_lag_query(query.clone());
        }
        let routing = &self.routing;
        if routing.template.is_some() && !routing.table.is_empty() {
            return Err(ConfigError::invalid(
                "routing",
                "table",
                "choose a route template or a route table, not both",
            )
            .into());
        }
        if routing.url_template.is_some()
            && (routing.template.is_some() || !routing.table.is_empty())
        {
            return Err(ConfigError::invalid(
                "routing",
                "url_template",
                "names connections {tenant}_{env} itself; remove template and table, or url_template",
            )
            .into());
        }
        if routing.tenant_pool_size.is_some() && routing.url_template.is_none() {
            return Err(ConfigError::invalid(
                "routing",
                "tenant_pool_size",
                "sizes the pools url_template opens; set url_template, or size every pool with [pools] max_size",
            )
            .into());
        }
        if let Some(url) = &routing.url_template {
            builder = builder.url_template(url.clone(), routing.tenant_pool_size);
        } else if let Some(template) = &routing.template {
            builder = builder.policy(Template::parse(template)?);
        } else if !routing.table.is_empty() {
            let mut table = RouteTable::new();
            for (env, name) in &routing.table {
                let env = Environment::new(env)
                    .map_err(|e| ConfigError::invalid("routing", "table", e))?;
                table = table.environment(env, name.clone());
            }
            builder = builder.policy(table);
        }
        if let Some(anonymous) = &routing.anonymous {
            builder = builder.anonymous_route(anonymous.clone());
        }
        Ok(builder
            .tenancy(self.tenancy.tenancy()?)
            .max_pools(self.pools.max_pools)
            .connection_budget(self.pools.connection_budget))
    }

    /// The environments the route table names (for cross-checks against the
    /// environments keys are issued for).
    pub fn table_environments(&self) -> impl Iterator<Item = &str> {
        self.routing.table.keys().map(String::as_str)
    }

    /// The router this configuration describes.
    ///
    /// # Errors
    /// As [`builder`](Self::builder) and [`RouterBuilder::build`].
    pub fn router<B: Backend>(&self) -> Result<ConnectionRouter<B>, RouteError> {
        self.builder::<B>()?.build()
    }
}

/// The resolver's configuration: `[resolver]`. The cache duration and the
/// secure-connection rule are in `[apikey]` (`session_cache_duration`,
/// `dangerous_accept_plain_http`), under ServiceStack's names where it has them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct ResolverConfig {
    /// The most resolved keys cached at once. Default 100 000.
    pub cache_capacity: u64,
    /// How long an unknown key is remembered. Default 30 s.
    #[serde(with = "keyroute_core::config::duration")]
    pub negative_cache_ttl: Duration,
    /// The most unknown keys remembered. Default 100 000.
    pub negative_cache_capacity: u64,
    /// How often a key's last-used time is written at most. Default 60 s.
    #[serde(with = "keyroute_core::config::duration")]
    pub last_used_interval: Duration,
    /// Take any peer for a proxy when `trusted_proxies` is empty, counting its
    /// `X-Forwarded-Proto: https`: a client that reaches the service directly can then
    /// claim HTTPS. List your proxies in `trusted_proxies` instead. Default false.
    pub dangerous_trust_any_proxy: bool,
    /// Peers whose `Forwarded` / `X-Forwarded-Proto` headers count, read from the
    /// right, one value per trusted hop. Default none.
    #[serde(with = "keyroute_core::config::list")]
    pub trusted_proxies: Vec<ProxyNet>,
    /// The header an API key may be sent in. Default `X-Api-Key`.
    pub api_key_header: Option<String>,
    /// A query parameter an API key may be sent in. Default none (keys in URLs end up
    /// in logs).
    pub query_parameter: Option<String>,
    /// Accept only keys of these environments. Default: every environment keys are
    /// issued for.
    #[serde(with = "keyroute_core::config::optional_list")]
    pub accept_environments: Option<Vec<Environment>>,
    /// Accept only keys of these types. Default: every type keys are issued as.
    #[serde(with = "keyroute_core::config::optional_list")]
    pub accept_key_types: Option<Vec<KeyType>>,
    /// How often the change feed is polled (SQLite, MySQL/MariaDB: a query on
    /// `keyroute_events`), or its PostgreSQL `LISTEN` connection checked. A revocation
    /// reaches other instances within about this interval on polled backends.
    /// Default 250 ms.
    #[serde(with = "keyroute_core::config::duration")]
    pub feed_poll_interval: Duration,
    /// How long published change events are kept before the background work purges
    /// them. Pollers read events within `feed_poll_interval`; longer retention only
    /// helps someone reading the table. Default 1 hour.
    #[serde(with = "keyroute_core::config::duration")]
    pub feed_retention: Duration,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        Self {
            cache_capacity: 100_000,
            negative_cache_ttl: Duration::from_secs(30),
            negative_cache_capacity: 100_000,
            last_used_interval: Duration::from_secs(60),
            dangerous_trust_any_proxy: false,
            trusted_proxies: Vec::new(),
            api_key_header: None,
            query_parameter: None,
            accept_environments: None,
            accept_key_types: None,
            feed_poll_interval: Duration::from_millis(250),
            feed_retention: Duration::from_secs(3600),
        }
    }
}

impl ResolverConfig {
    /// The section these options are read from.
    pub const SECTION: &'static str = "resolver";

    /// Sets one option of `[resolver]` from text, as the variable
    /// `KEYROUTE_RESOLVER_<OPTION>` would: a thin wrapper over the deserializer every
    /// source goes through ([`set_option`](keyroute_core::config::set_option)).
    ///
    /// # Errors
    /// [`ConfigError`] naming the option: unknown, or an invalid value.
    pub fn set(&mut self, option: &str, value: &str) -> Result<(), ConfigError> {
        let updated = keyroute_core::config::set_option(Self::SECTION, self, option, value)?;
        updated.validate()?;
        *self = updated;
        Ok(())
    }

    /// Checks the options: durations over zero, a valid header name, a query
    /// parameter with a name.
    ///
    /// # Errors
    /// [`ConfigError`] naming the option at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (option, duration) in [
            ("negative_cache_ttl", self.negative_cache_ttl),
            ("last_used_interval", self.last_used_interval),
            ("feed_poll_interval", self.feed_poll_interval),
            ("feed_retention", self.feed_retention),
        ] {
            check_duration(Self::SECTION, option, duration)?;
        }
        self.api_key_header()?;
        if self.query_parameter.as_deref() == Some("") {
            return Err(ConfigError::invalid(
                Self::SECTION,
                "query_parameter",
                "give the parameter a name, or leave the option out",
            ));
        }
        Ok(())
    }

    /// The configured API-key header, checked.
    fn api_key_header(&self) -> Result<Option<http::HeaderName>, ConfigError> {
        self.api_key_header
            .as_deref()
            .map(|header| {
                http::HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
                    ConfigError::invalid(
                        Self::SECTION,
                        "api_key_header",
                        "not a valid HTTP header name",
                    )
                })
            })
            .transpose()
    }

    /// The change feed's settings these options give.
    pub fn feed_settings(&self) -> keyroute_core::FeedSettings {
        keyroute_core::FeedSettings::default().with_poll_interval(self.feed_poll_interval)
    }

    /// Applies these options to a resolver builder.
    ///
    /// # Errors
    /// [`ConfigError`] for an invalid header name.
    pub fn apply<S: ApiKeyStore + 'static>(
        &self,
        mut builder: ResolverBuilder<S>,
    ) -> Result<ResolverBuilder<S>, ConfigError> {
        let mut extractor = CredentialExtractor::default();
        if let Some(header) = self.api_key_header()? {
            extractor = extractor.with_api_key_header(header);
        }
        if let Some(parameter) = &self.query_parameter {
            extractor = extractor.with_query_param(parameter.clone());
        }
        builder = builder
            .extractor(extractor)
            .cache_capacity(self.cache_capacity)
            .negative_cache(self.negative_cache_ttl, self.negative_cache_capacity)
            .last_used_every(self.last_used_interval)
            .dangerous_trust_any_proxy(self.dangerous_trust_any_proxy)
            .trusted_proxies(self.trusted_proxies.clone());
        if let Some(environments) = &self.accept_environments {
            builder = builder.accept_environments(environments.clone());
        }
        if let Some(key_types) = &self.accept_key_types {
            builder = builder.accept_key_types(key_types.clone());
        }
        Ok(builder)
    }
}
