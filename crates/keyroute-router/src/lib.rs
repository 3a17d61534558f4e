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
//! | [`resolver`] | [`KeyResolver`]: offline rejection, cache, negative cache, checks, last-used batching |
//! | [`router`] | [`ConnectionRouter`], [`RoutedConnection`]: named pools, bounds, fail-closed routing |
//! | [`policy`] | [`RoutingPolicy`]: by environment, a table, a `{tenant}_{env}` template, or your own |
//! | [`config`] | the `[connections]`, `[routing]`, `[pools]` ([`RouterConfig`]) and `[resolver]` ([`ResolverConfig`]) sections |
//! | [`gateway`] | [`Gateway`]: both in one call, for handlers |
//!
//! | feature | connections |
//! |---|---|
//! | `sqlite` | SQLite files (the embedded default) |
//! | `postgres` | PostgreSQL |
//! | `mysql` | MySQL and MariaDB |

mod admin;
mod checks;
pub mod config;
pub mod error;
pub mod gateway;
pub mod policy;
pub mod resolver;
pub mod router;
pub mod schema;

pub use config::{PoolsConfig, ResolverConfig, RouterConfig, RoutingConfig};
pub use error::RouteError;
pub use gateway::Gateway;
pub use policy::{ByEnvironment, RouteTable, RoutingPolicy, Template};
pub use resolver::{
    IncomingRequest, KeyResolver, ProxyNet, ProxyNetError, ResolverBuilder, follow_feed,
};
pub use router::{ConnectionRouter, RoutedConnection, RouterBuilder};
pub use schema::{ConnectionSchema, SchemaDrift, SchemaReport};
