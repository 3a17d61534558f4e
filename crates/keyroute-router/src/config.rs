//! [`RouterConfig`]: named connections and routing from a TOML file or environment
//! variables, as ServiceStack registers a "TestDb" named connection in app settings.
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
//! ```
//!
//! Variables: `KEYROUTE_DB_<NAME>=<url>` adds a connection (`KEYROUTE_DB_EU_LIVE` names
//! `eu-live`), `KEYROUTE_ROUTING_TEMPLATE`, `KEYROUTE_ROUTING_ANONYMOUS`,
//! `KEYROUTE_POOLS_MAX_SIZE`, `KEYROUTE_POOLS_MAX_POOLS`,
//! `KEYROUTE_POOLS_CONNECTION_BUDGET`. Other tables of the file (`[apikey]`) belong to
//! other parts of keyroute and are ignored here.

use std::collections::BTreeMap;

use keyroute_core::Environment;
use keyroute_store::{Backend, DatabaseUrl, PoolSettings};
use serde::Deserialize;

use crate::error::RouteError;
use crate::policy::{RouteTable, Template};
use crate::router::{ConnectionRouter, RouterBuilder};

/// The router's configuration.
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
    /// Connections per pool.
    pub pool_max_size: Option<u32>,
    /// Pools open at once.
    pub max_pools: Option<usize>,
    /// Connections of all open pools together.
    pub connection_budget: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Routing {
    template: Option<String>,
    anonymous: Option<String>,
    #[serde(default)]
    table: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Pools {
    max_size: Option<u32>,
    max_pools: Option<usize>,
    connection_budget: Option<u32>,
}

/// The tables of the file this module reads; others are left to their owners.
#[derive(Deserialize)]
struct File {
    #[serde(default)]
    connections: BTreeMap<String, String>,
    #[serde(default)]
    routing: Routing,
    #[serde(default)]
    pools: Pools,
}

impl RouterConfig {
    /// Reads the `[connections]`, `[routing]` and `[pools]` tables of a TOML document.
    ///
    /// # Errors
    /// [`RouteError::Config`] naming the invalid or unknown entry.
    pub fn from_toml_str(toml: &str) -> Result<Self, RouteError> {
        let file: File = toml::from_str(toml).map_err(|e| RouteError::Config(e.to_string()))?;
        Ok(Self {
            connections: file
                .connections
                .into_iter()
                .map(|(n, u)| (n, DatabaseUrl::new(u)))
                .collect(),
            route_template: file.routing.template,
            route_table: file.routing.table,
            anonymous_route: file.routing.anonymous,
            pool_max_size: file.pools.max_size,
            max_pools: file.pools.max_pools,
            connection_budget: file.pools.connection_budget,
        })
    }

    /// The configuration in the process's `KEYROUTE_DB_*`, `KEYROUTE_ROUTING_*` and
    /// `KEYROUTE_POOLS_*` variables.
    ///
    /// # Errors
    /// As [`apply_env_vars`](Self::apply_env_vars).
    pub fn from_env() -> Result<Self, RouteError> {
        Self::default().apply_env_vars(std::env::vars())
    }

    /// Overrides entries with `KEYROUTE_DB_*`, `KEYROUTE_ROUTING_*` and
    /// `KEYROUTE_POOLS_*` pairs from `vars`; other variables are ignored.
    ///
    /// # Errors
    /// [`RouteError::Config`] naming an unknown or invalid variable.
    pub fn apply_env_vars<I, K, V>(mut self, vars: I) -> Result<Self, RouteError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        for (key, value) in vars {
            let (key, value) = (key.as_ref(), value.as_ref().trim());
            if let Some(name) = key.strip_prefix("KEYROUTE_DB_") {
                self.connections.insert(
                    name.to_ascii_lowercase().replace('_', "-"),
                    DatabaseUrl::new(value),
                );
            } else if let Some(option) = key.strip_prefix("KEYROUTE_ROUTING_") {
                match option {
                    "TEMPLATE" => self.route_template = Some(value.to_owned()),
                    "ANONYMOUS" => self.anonymous_route = Some(value.to_owned()),
                    _ => return Err(RouteError::Config(format!("unknown variable {key}"))),
                }
            } else if let Some(option) = key.strip_prefix("KEYROUTE_POOLS_") {
                match option {
                    "MAX_SIZE" => self.pool_max_size = Some(whole_number(key, value)?),
                    "MAX_POOLS" => self.max_pools = Some(whole_number(key, value)?),
                    "CONNECTION_BUDGET" => self.connection_budget = Some(whole_number(key, value)?),
                    _ => return Err(RouteError::Config(format!("unknown variable {key}"))),
                }
            }
        }
        Ok(self)
    }

    /// A router builder for this configuration; add anything code-only before building.
    ///
    /// # Errors
    /// [`RouteError::Config`] for a bad template, a table entry for an invalid
    /// environment, or both a template and a table.
    pub fn builder<B: Backend>(&self) -> Result<RouterBuilder<B>, RouteError> {
        let mut settings = PoolSettings::default();
        if let Some(max_size) = self.pool_max_size {
            settings.max_size = max_size;
        }
        let mut builder = ConnectionRouter::<B>::builder().pool_settings(settings);
        for (name, url) in &self.connections {
            builder = builder.connection(name.clone(), url.clone());
        }
        builder = match (&self.route_template, self.route_table.is_empty()) {
            (Some(_), false) => {
                return Err(RouteError::Config(
                    "choose a route template or a route table, not both".into(),
                ));
            }
            (Some(template), true) => builder.policy(Template::parse(template)?),
            (None, false) => {
                let mut table = RouteTable::new();
                for (env, name) in &self.route_table {
                    let env = Environment::new(env)
                        .map_err(|e| RouteError::Config(format!("routing table: {e}")))?;
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

    /// The router this configuration describes.
    ///
    /// # Errors
    /// As [`builder`](Self::builder) and [`RouterBuilder::build`].
    pub fn router<B: Backend>(&self) -> Result<ConnectionRouter<B>, RouteError> {
        self.builder::<B>()?.build()
    }
}

fn whole_number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, RouteError> {
    value
        .parse()
        .map_err(|_| RouteError::Config(format!("{key}: expected a whole number, got {value:?}")))
}
