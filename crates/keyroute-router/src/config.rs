//! The router's and the resolver's sections of keyroute's one configuration.
//!
//! The facade's `Config` reads `keyroute.toml` and `KEYROUTE_*` variables and hands
//! each option, as text, to the `set` of the section that owns it: [`RouterConfig`]
//! owns `[connections]`, `[routing]` and `[pools]`, [`ResolverConfig`] owns
//! `[resolver]`. Both can also be filled in code and turned into the component
//! builders (the advanced API).
//!
//! ```toml
//! [connections]
//! live = "postgres://app:secret@db/live"
//! test = "postgres://app:secret@db/test"
//!
//! [routing]
//! template = "{tenant}_{env}"      # or: table = { test = "TestDb" }; default: by environment
//! anonymous = "public"             # default: unauthenticated requests get no connection
//!
//! [pools]
//! max_size = 10
//! max_pools = 64
//! connection_budget = 512
//!
//! [resolver]
//! trust_forwarded_proto = false
//! trusted_proxies = ["10.0.0.0/8"]   # forwarded headers count only from these peers
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use keyroute_core::config::{parse_bool, parse_duration, parse_list, parse_number, split_list};
use keyroute_core::{ApiKeyStore, ConfigError, CredentialExtractor, Environment, KeyType};
use keyroute_pool::{Backend, DatabaseUrl, PoolSettings, RecyclingCheck};

use crate::error::RouteError;
use crate::policy::{RouteTable, Template};
use crate::resolver::{ProxyNet, ResolverBuilder};
use crate::router::{ConnectionRouter, RouterBuilder};

/// The options of `[routing]`.
pub(crate) const ROUTING_OPTIONS: &[&str] = &["template", "table", "anonymous"];
/// The options of `[pools]`.
pub(crate) const POOLS_OPTIONS: &[&str] = &[
    "max_size",
    "min_idle",
    "connection_timeout",
    "idle_timeout",
    "max_lifetime",
    "check",
    "connect_timeout",
    "retry_backoff",
    "retry_backoff_max",
    "max_pools",
    "connection_budget",
];
/// The options of `[resolver]`.
pub(crate) const RESOLVER_OPTIONS: &[&str] = &[
    "cache_capacity",
    "negative_cache_ttl",
    "negative_cache_capacity",
    "last_used_interval",
    "trust_forwarded_proto",
    "trusted_proxies",
    "api_key_header",
    "query_parameter",
    "accept_environments",
    "accept_key_types",
    "feed_poll_interval",
    "feed_retention",
];

/// The router's configuration: `[connections]`, `[routing]` and `[pools]`.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RouterConfig {
    /// Connection name to database URL.
    pub connections: BTreeMap<String, DatabaseUrl>,
    /// A route template such as `{tenant}_{env}`.
    pub route_template: Option<String>,
    /// Environment to connection name, when not routing by environment or template.
    pub route_table: BTreeMap<String, String>,
    /// The connection unauthenticated requests may use.
    pub anonymous_route: Option<String>,
    /// Settings of every pool.
    pub pool: PoolSettings,
    /// Pools open at once.
    pub max_pools: Option<usize>,
    /// Connections of all open pools together.
    pub connection_budget: Option<u32>,
}

impl RouterConfig {
    /// Sets one option of `[connections]`, `[routing]` or `[pools]` from its text form.
    /// In `[connections]` every option is a connection name and its value the URL.
    ///
    /// # Errors
    /// [`ConfigError`] naming the section and option: unknown, or an invalid value.
    pub fn set(&mut self, section: &str, option: &str, value: &str) -> Result<(), ConfigError> {
        let value = value.trim();
        match (section, option) {
            ("connections", name) => {
                if name.is_empty() {
                    return Err(ConfigError::invalid(
                        section,
                        name,
                        "a connection needs a name",
                    ));
                }
                let url = DatabaseUrl::new(value);
                // A misspelt scheme is refused here, naming the connection, rather than
                // opened later as a SQLite file of that name.
                url.backend()
                    .map_err(|e| ConfigError::invalid(section, name, e))?;
                self.connections.insert(name.to_owned(), url);
            }
            ("routing", "template") => self.route_template = Some(value.to_owned()),
            ("routing", "anonymous") => self.anonymous_route = Some(value.to_owned()),
            ("routing", "table") => {
                self.route_table = split_list(value)
                    .map(|pair| {
                        let (env, name) = pair.split_once('=').ok_or_else(|| {
                            ConfigError::invalid(
                                section,
                                option,
                                "expected environment=connection pairs, e.g. test=TestDb",
                            )
                        })?;
                        Ok((env.trim().to_owned(), name.trim().to_owned()))
                    })
                    .collect::<Result<_, ConfigError>>()?;
            }
            ("routing", other) => {
                return Err(ConfigError::unknown(section, other, ROUTING_OPTIONS));
            }
            ("pools", "max_size") => self.pool.max_size = parse_number(section, option, value)?,
            ("pools", "min_idle") => {
                self.pool.min_idle = match value {
                    "" | "none" => None,
                    n => Some(parse_number(section, option, n)?),
                }
            }
            ("pools", "connection_timeout") => {
                self.pool.connection_timeout =
                    keyroute_core::config::parse_required_duration(section, option, value)?
            }
            ("pools", "idle_timeout") => {
                self.pool.idle_timeout = parse_duration(section, option, value)?
            }
            ("pools", "max_lifetime") => {
                self.pool.max_lifetime = parse_duration(section, option, value)?
            }
            ("pools", "check") => {
                self.pool.recycling_check = match value.to_ascii_lowercase().as_str() {
                    "verified" => RecyclingCheck::Verified,
                    "fast" => RecyclingCheck::Fast,
                    _ => {
                        return Err(ConfigError::invalid(
                            section,
                            option,
                            "expected verified or fast",
                        ));
                    }
                }
            }
            ("pools", "connect_timeout") => {
                self.pool.connect_timeout =
                    keyroute_core::config::parse_required_duration(section, option, value)?
            }
            ("pools", "retry_backoff") => {
                self.pool.retry_backoff =
                    keyroute_core::config::parse_required_duration(section, option, value)?
            }
            ("pools", "retry_backoff_max") => {
                self.pool.retry_backoff_max =
                    keyroute_core::config::parse_required_duration(section, option, value)?
            }
            ("pools", "max_pools") => self.max_pools = Some(parse_number(section, option, value)?),
            ("pools", "connection_budget") => {
                self.connection_budget = Some(parse_number(section, option, value)?)
            }
            ("pools", other) => return Err(ConfigError::unknown(section, other, POOLS_OPTIONS)),
            (other, _) => {
                return Err(ConfigError::unknown(
                    other,
                    "",
                    &["connections", "routing", "pools"],
                ));
            }
        }
        Ok(())
    }

    /// A router builder for this configuration; add anything code-only before building.
    ///
    /// # Errors
    /// [`RouteError::Config`] for a bad template, a table entry for an invalid
    /// environment, or both a template and a table.
    pub fn builder<B: Backend>(&self) -> Result<RouterBuilder<B>, RouteError> {
        let mut builder = ConnectionRouter::<B>::builder().pool_settings(self.pool.clone());
        for (name, url) in &self.connections {
            builder = builder.connection(name.clone(), url.clone());
        }
        builder = match (&self.route_template, self.route_table.is_empty()) {
            (Some(_), false) => {
                return Err(ConfigError::invalid(
                    "routing",
                    "table",
                    "choose a route template or a route table, not both",
                )
                .into());
            }
            (Some(template), true) => builder.policy(Template::parse(template)?),
            (None, false) => {
                let mut table = RouteTable::new();
                for (env, name) in &self.route_table {
                    let env = Environment::new(env)
                        .map_err(|e| ConfigError::invalid("routing", "table", e))?;
                    table = table.environment(env, name.clone());
                }
                builder.policy(table)
            }
            (None, true) => builder,
        };
        if let Some(anonymous) = &self.anonymous_route {
            builder = builder.anonymous_route(anonymous.clone());
        }
        if let Some(max_pools) = self.max_pools {
            builder = builder.max_pools(max_pools);
        }
        if let Some(budget) = self.connection_budget {
            builder = builder.connection_budget(budget);
        }
        Ok(builder)
    }

    /// The environments the route table names (for cross-checks against the
    /// environments keys are issued for).
    pub fn table_environments(&self) -> impl Iterator<Item = &str> {
        self.route_table.keys().map(String::as_str)
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
/// `require_secure_connection`), under ServiceStack's names.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ResolverConfig {
    /// The most resolved keys cached at once. Default 100 000.
    pub cache_capacity: u64,
    /// How long an unknown key is remembered. Default 30 s.
    pub negative_cache_ttl: Duration,
    /// The most unknown keys remembered. Default 100 000.
    pub negative_cache_capacity: u64,
    /// How often a key's last-used time is written at most. Default 60 s.
    pub last_used_interval: Duration,
    /// Count `X-Forwarded-Proto: https` as a secure connection. Only behind a proxy
    /// that sets the header itself. Default false.
    pub trust_forwarded_proto: bool,
    /// Peers whose `Forwarded` / `X-Forwarded-Proto` headers count, read from the
    /// right, one value per trusted hop. Default none.
    pub trusted_proxies: Vec<ProxyNet>,
    /// The header an API key may be sent in. Default `X-Api-Key`.
    pub api_key_header: Option<String>,
    /// A query parameter an API key may be sent in. Default none (keys in URLs end up
    /// in logs).
    pub query_parameter: Option<String>,
    /// Accept only keys of these environments. Default: every environment keys are
    /// issued for.
    pub accept_environments: Option<Vec<Environment>>,
    /// Accept only keys of these types. Default: every type keys are issued as.
    pub accept_key_types: Option<Vec<KeyType>>,
    /// How often the change feed is polled (SQLite, MySQL/MariaDB: a query on
    /// `keyroute_events`), or its PostgreSQL `LISTEN` connection checked. A revocation
    /// reaches other instances within about this interval on polled backends.
    /// Default 250 ms.
    pub feed_poll_interval: Duration,
    /// How long published change events are kept before the background work purges
    /// them. Pollers read events within `feed_poll_interval`; longer retention only
    /// helps someone reading the table. Default 1 hour.
    pub feed_retention: Duration,
}

impl Default for ResolverConfig {
    fn default() -> Self {
        Self {
            cache_capacity: 100_000,
            negative_cache_ttl: Duration::from_secs(30),
            negative_cache_capacity: 100_000,
            last_used_interval: Duration::from_secs(60),
            trust_forwarded_proto: false,
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

    /// Sets one option of `[resolver]` from its text form.
    ///
    /// # Errors
    /// [`ConfigError`] naming the option: unknown, or an invalid value.
    pub fn set(&mut self, option: &str, value: &str) -> Result<(), ConfigError> {
        let section = Self::SECTION;
        let value = value.trim();
        let duration =
            |value: &str| keyroute_core::config::parse_required_duration(section, option, value);
        match option {
            "cache_capacity" => self.cache_capacity = parse_number(section, option, value)?,
            "negative_cache_ttl" => self.negative_cache_ttl = duration(value)?,
            "negative_cache_capacity" => {
                self.negative_cache_capacity = parse_number(section, option, value)?
            }
            "last_used_interval" => self.last_used_interval = duration(value)?,
            "trust_forwarded_proto" => {
                self.trust_forwarded_proto = parse_bool(section, option, value)?
            }
            "trusted_proxies" => {
                self.trusted_proxies = split_list(value)
                    .map(|net| {
                        net.trim_matches('"')
                            .parse::<ProxyNet>()
                            .map_err(|e| ConfigError::invalid(section, option, e))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "api_key_header" => {
                http::HeaderName::from_bytes(value.as_bytes()).map_err(|_| {
                    ConfigError::invalid(section, option, "not a valid HTTP header name")
                })?;
                self.api_key_header = Some(value.to_owned());
            }
            "query_parameter" => {
                self.query_parameter =
                    (!value.is_empty() && value != "none").then(|| value.to_owned())
            }
            "accept_environments" => {
                self.accept_environments =
                    Some(parse_list(section, option, value, Environment::new)?)
            }
            "accept_key_types" => {
                self.accept_key_types = Some(parse_list(section, option, value, KeyType::new)?)
            }
            "feed_poll_interval" => {
                let interval = duration(value)?;
                if interval.is_zero() {
                    return Err(ConfigError::invalid(
                        section,
                        option,
                        "must be over zero; 250ms is the default",
                    ));
                }
                self.feed_poll_interval = interval;
            }
            "feed_retention" => self.feed_retention = duration(value)?,
            other => return Err(ConfigError::unknown(section, other, RESOLVER_OPTIONS)),
        }
        Ok(())
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
        if let Some(header) = &self.api_key_header {
            let header = http::HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
                ConfigError::invalid(
                    Self::SECTION,
                    "api_key_header",
                    "not a valid HTTP header name",
                )
            })?;
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
            .trust_forwarded_proto(self.trust_forwarded_proto)
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
