//! Schema parity: an app's own diesel migrations applied to every configured
//! connection (live, test, every tenant's), and the versions each has applied compared,
//! so a TestDb that fell behind its LiveDb is reported instead of failing requests.
//!
//! The report and its comparison are keyroute-pool's ([`SchemaReport`]); this module
//! walks the router's connections. keyroute's own migrations are left out of every
//! comparison: the router learns their versions from whoever builds it
//! ([`RouterBuilder::keyroute_versions`](crate::RouterBuilder::keyroute_versions)).

use diesel::migration::MigrationSource;
use keyroute_core::{AuthMethod, Environment, Principal, StoreError, Tenant};
use keyroute_pool::{Backend, BackendDb, ConnectionSchema, Pooler, SchemaReport};

use crate::error::RouteError;
use crate::policy::RoutingPolicy;
use crate::router::ConnectionRouter;

impl<B: Backend> ConnectionRouter<B> {
    /// Applies the pending migrations of `source` (an app's `EmbeddedMigrations` or a
    /// `FileBasedMigrations` directory) to every configured connection, one after the
    /// other, and reports the versions each one applied. A connection that fails does
    /// not stop the others; check each entry.
    pub async fn migrate_each<S>(&self, source: S) -> SchemaReport
    where
        S: MigrationSource<BackendDb<B>> + Send + Sync + 'static,
    {
        let source = Shared(std::sync::Arc::new(source));
        self.report(true, |pool| {
            let source = Shared(std::sync::Arc::clone(&source.0));
            async move { pool.run_migrations_from(source).await }
        })
        .await
    }

    /// Applies `source` to every tenant's own schema or database: with
    /// [`Tenancy::Schema`](crate::Tenancy::Schema), each tenant's schema (created when
    /// missing) on the connection its keys of each environment route to; with a
    /// `[routing] url_template`, each tenant's database. One entry per tenant and
    /// environment, named `connection/schema` or `{tenant}_{env}`, in order; a tenant
    /// that fails does not stop the others, and a second run applies only what is
    /// pending (diesel records each schema's and database's migrations in it), so an
    /// interrupted run resumes. `done` is told each entry as it finishes. Empty when
    /// neither mode is configured.
    pub async fn migrate_tenants<S>(
        &self,
        source: S,
        tenants: &[Tenant],
        environments: &[Environment],
        mut done: impl FnMut(&ConnectionSchema),
    ) -> Vec<ConnectionSchema>
    where
        S: MigrationSource<BackendDb<B>> + Send + Sync + 'static,
    {
        let source = Shared(std::sync::Arc::new(source));
        let mut entries = Vec::new();
        for (label, place) in self.tenant_places(tenants, environments) {
            let source = Shared(std::sync::Arc::clone(&source.0));
            let versions = match place {
                Ok(TenantPlace::Schema { pool, schema }) => {
                    pool.run_migrations_in_schema(source, &schema).await
                }
                Ok(TenantPlace::Database(pool)) => pool.run_migrations_from(source).await,
                Err(e) => Err(e),
            };
            let entry = ConnectionSchema::new(label, versions);
            done(&entry);
            entries.push(entry);
        }
        entries
    }

    /// The app migrations every tenant's schema or database has applied, one entry
    /// per tenant and environment named as [`migrate_tenants`](Self::migrate_tenants)
    /// names them, for drift reports across tenants. Empty when neither mode is
    /// configured.
    pub async fn applied_tenant_migrations(
        &self,
        tenants: &[Tenant],
        environments: &[Environment],
    ) -> Vec<ConnectionSchema> {
        let mut entries = Vec::new();
        for (label, place) in self.tenant_places(tenants, environments) {
            let versions = match place {
                Ok(TenantPlace::Schema { pool, schema }) => {
                    pool.applied_migrations_in_schema(&schema).await
                }
                Ok(TenantPlace::Database(pool)) => pool.applied_migrations().await,
                Err(e) => Err(e),
            };
            entries.push(ConnectionSchema::new(label, versions));
        }
        entries
    }

    /// Where each tenant's app schema lives, per environment, with its entry's name.
    fn tenant_places(
        &self,
        tenants: &[Tenant],
        environments: &[Environment],
    ) -> Vec<(String, Result<TenantPlace<B>, StoreError>)> {
        let mut places = Vec::new();
        for tenant in tenants {
            for env in environments {
                let principal = Principal::from_claims(AuthMethod::ApiKey, env.clone())
                    .with_tenant(Some(tenant.clone()));
                if let Some(place) = self.tenant_place(&principal) {
                    places.push(place);
                }
            }
        }
        places
    }

    /// One tenant's place in one environment; `None` without schema tenancy or a URL
    /// template.
    fn tenant_place(
        &self,
        principal: &Principal,
    ) -> Option<(String, Result<TenantPlace<B>, StoreError>)> {
        if let Some(crate::Tenancy::Schema(template)) = &self.inner.tenancy {
            let place = (|| {
                let connection = self.inner.policy.route(principal).map_err(unavailable)?;
                let schema = template.route(principal).map_err(unavailable)?.into_owned();
                // A name PostgreSQL would cut could be another tenant's schema.
                keyroute_pool::Binding::schema(&schema)
                    .map_err(|e| StoreError::Misuse(e.to_string()))?;
                let pool = self.schema_pool(&connection, true)?;
                Ok((
                    format!("{connection}/{schema}"),
                    TenantPlace::Schema { pool, schema },
                ))
            })();
            return Some(match place {
                Ok((label, place)) => (label, Ok(place)),
                Err(e) => (tenant_label(principal), Err(e)),
            });
        }
        let urls = self.inner.url_template.as_ref()?;
        let place = urls.url(principal).map_err(unavailable).and_then(|url| {
            let mut settings = self.inner.tenant_settings.clone();
            settings.max_size = 1;
            settings.min_idle = None;
            keyroute_pool::DbPool::<B>::lazy(url, settings).map(TenantPlace::Database)
        });
        Some((tenant_label(principal), place))
    }

    /// The migration versions every configured connection has applied, for
    /// [`SchemaReport::drift`]. An unreachable connection carries its real cause.
    pub async fn applied_migrations(&self) -> SchemaReport {
        self.report(false, |pool| async move { pool.applied_migrations().await })
            .await
    }

    /// Runs `each` on every configured connection's pool, in name order, and reports
    /// the versions each gives; an unreachable connection carries its real cause. A
    /// connection with a `[direct]` URL is reached through it (a pool of one, closed
    /// after); without one, a connection behind a transaction pooler is refused when
    /// `session` (migrations need a session) and read through the pooler otherwise.
    async fn report<F, Fut>(&self, session: bool, each: F) -> SchemaReport
    where
        F: Fn(std::sync::Arc<keyroute_pool::DbPool<B>>) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<String>, StoreError>>,
    {
        let mut connections = Vec::new();
        for name in self.connection_names() {
            let versions = match self.schema_pool(&name, session) {
                Ok(pool) => each(pool).await,
                Err(e) => Err(e),
            };
            connections.push(ConnectionSchema::new(name, versions));
        }
        SchemaReport::new(connections, self.inner.keyroute_versions.clone())
    }
}

impl<B: Backend> ConnectionRouter<B> {
    /// The pool schema work on connection `name` uses (see [`report`](Self::report)).
    fn schema_pool(
        &self,
        name: &str,
        session: bool,
    ) -> Result<std::sync::Arc<keyroute_pool::DbPool<B>>, StoreError> {
        let pool = self
            .pool_named(name)
            .map_err(|e| StoreError::unavailable(e.to_string()))?;
        // With tenancy on, a direct pooled connection carries the last request's
        // binding for its session (a tenant's `search_path`): schema work reads the
        // connection's own schema through a connection of its own. (Behind a
        // transaction pooler bindings end with their transaction.)
        let own_url = self.inner.direct.get(name).or_else(|| {
            (self.inner.tenancy.is_some() && !pool.transaction_pooled())
                .then(|| self.inner.targets.get(name).map(|t| &t.url))
                .flatten()
        });
        if let Some(direct) = own_url {
            let mut settings = pool.settings().clone();
            settings.pooler = Pooler::Session;
            settings.max_size = 1;
            settings.min_idle = None;
            return keyroute_pool::DbPool::lazy(direct.clone(), settings).map(std::sync::Arc::new);
        }
        if session && pool.transaction_pooled() {
            return Err(StoreError::Misuse(format!(
                "connection '{name}' goes through a pooler in transaction mode ([pools] pooler = \"transaction\"), and diesel's migration harness needs a session; set [direct] {name} = \"<its direct URL>\""
            )));
        }
        Ok(pool)
    }
}

/// Where one tenant's app schema lives in one environment.
enum TenantPlace<B: Backend> {
    /// A schema on the environment's connection (a pool reaching it directly).
    Schema {
        pool: std::sync::Arc<keyroute_pool::DbPool<B>>,
        schema: String,
    },
    /// A database of its own (a pool of one, closed after).
    Database(keyroute_pool::DbPool<B>),
}

/// `{tenant}_{env}`, how a tenant's entry is named.
fn tenant_label(principal: &Principal) -> String {
    format!(
        "{}_{}",
        principal.tenant().map_or("-", Tenant::as_str),
        principal.environment()
    )
}

/// A routing failure as a report entry's cause.
fn unavailable(e: RouteError) -> StoreError {
    StoreError::unavailable(e.to_string())
}

/// One migration source handed to each connection in turn: diesel's
/// `EmbeddedMigrations` (what `embed_migrations!` makes) is not `Clone`.
struct Shared<S>(std::sync::Arc<S>);

impl<S, DB> MigrationSource<DB> for Shared<S>
where
    S: MigrationSource<DB>,
    DB: diesel::backend::Backend,
{
    fn migrations(
        &self,
    ) -> diesel::migration::Result<Vec<Box<dyn diesel::migration::Migration<DB>>>> {
        self.0.migrations()
    }
}
