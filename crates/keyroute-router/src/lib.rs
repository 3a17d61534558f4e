//! keyroute's router: credentials become principals, and principals become database
//! connections, so a request made with a test key reaches the TestDb and one made with
//! a live key the LiveDb, without the handler branching on either.
//!
//! ```text
//! IncomingRequest ─ KeyResolver::authenticate ─> Principal ─ ConnectionRouter::connection ─> RoutedConnection
//!                   (offline checks, cache,                  (policy names the connection,
//!                    one indexed lookup)                      fail closed, lazy bb8 pools)
//! ```
//!
//! | module | holds |
//! |---|---|
//! | `resolver` | [`KeyResolver`]: offline rejection, cache, negative cache, checks, last-used batching |
//! | `router` | [`ConnectionRouter`], [`RoutedConnection`], [`RouterBuilder`]: named pools, bounds, fail-closed routing, `url_template` |
//! | `policy` | [`RoutingPolicy`]: by environment, a table, a `{tenant}_{env}` template, or your own |
//! | `config` | the `[connections]`, `[routing]`, `[pools]` ([`RouterConfig`]) and `[resolver]` ([`ResolverConfig`]) sections |
//! | `tenancy` | [`Tenancy`]: the request's tenant bound in its database (row-level security, schema per tenant), `[tenancy]` ([`TenancyConfig`]) |
//! | `gateway` | [`Gateway`]: both in one call, for handlers |
//! | [`limits`] | `[limits]`, the [`Limiter`](limits::Limiter) step of the pipeline and its engines (in process; Valkey/Redis with `valkey`) |
//!
//! | feature | connections |
//! |---|---|
//! | `sqlite` | SQLite files (the embedded default) |
//! | `postgres` | PostgreSQL |
//! | `mysql` | MySQL and MariaDB |
//!
//! Depends on `keyroute-core` (principals, the store traits it resolves keys through,
//! routing rules' errors) and `keyroute-pool` (URLs, pools, backends, schema reports),
//! never on `keyroute-store`: a backend feature here turns on the pool's backend
//! alone, so routing to PostgreSQL compiles no PostgreSQL key store. The store behind a
//! resolver is any [`ApiKeyStore`](keyroute_core::ApiKeyStore) it is given, and
//! keyroute's own migration versions reach schema reports from the front door
//! ([`RouterBuilder::keyroute_versions`]).

// docs.rs (nightly, `--cfg docsrs`) marks each item with the features it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]
// Every public item is documented: a published crate's docs are its manual.
#![deny(missing_docs)]

mod admin;
mod checks;
mod config;
mod error;
mod gateway;
pub mod limits;
mod policy;
mod replicas;
mod resolver;
mod routed;
mod router;
mod router_builder;
mod schema;
mod tenancy;
mod tenant_urls;

pub use config::{PoolsConfig, ResolverConfig, RouterConfig, RoutingConfig};
pub use error::RouteError;
pub use gateway::Gateway;
pub use keyroute_pool::{ConnectionSchema, SchemaDrift, SchemaReport};
pub use policy::{ByEnvironment, RouteTable, RoutingPolicy, Template};
pub use replicas::{DEFAULT_READ_YOUR_WRITES, DEFAULT_REPLICA_MAX_LAG};
pub use resolver::{
    IncomingRequest, KeyResolver, ProxyNet, ProxyNetError, ResolverBuilder, follow_feed,
};
pub use router::{ConnectionRouter, RoutedConnection, RouterBuilder};
pub use tenancy::{
    DEFAULT_SCHEMA_TEMPLATE, DEFAULT_TENANT_COLUMN, Tenancy, TenancyConfig, TenancyMode,
};
