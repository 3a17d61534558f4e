//! [`TestApp`]: the whole keyroute world for one test. Fresh databases for every
//! connection the app routes to (live, test, each tenant's), keyroute's schema and the
//! app's migrations on them, a [`Keyroute`] handle configured for them, and the
//! helpers a test needs around it (users, keys, direct connections, an HTTP server).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use keyroute::keys::Tenant;
use keyroute::routing::RoutedConnection;
use keyroute::{Config, Keyroute};
use tokio::task::JoinHandle;

use crate::migrations::AppMigrations;
use crate::provision::make_databases;
use crate::{TestAppError, TestBackend, TestDatabase};

/// The connection name of the key store's own database when the configuration gives
/// the store a URL of its own (`[store] url`).
pub const STORE_DATABASE: &str = "keyroute-store";

/// One test's keyroute app: its databases, its [`Keyroute`] handle and helpers.
///
/// Build it with [`TestApp::builder`]; drop it at the end of the test (its databases
/// stay on the shared server until the container is removed at exit; SQLite files
/// are deleted at once).
pub struct TestApp<B: TestBackend> {
    keyroute: Keyroute<B>,
    databases: BTreeMap<String, TestDatabase<B>>,
    background: JoinHandle<()>,
}

impl<B: TestBackend> fmt::Debug for TestApp<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestApp")
            .field("backend", &B::NAME)
            .field("databases", &self.databases)
            .finish_non_exhaustive()
    }
}

impl<B: TestBackend> Drop for TestApp<B> {
    fn drop(&mut self) {
        self.background.abort();
    }
}

impl<B: TestBackend> TestApp<B> {
    /// A builder for a test's app on backend `B`.
    pub fn builder() -> TestAppBuilder<B> {
        TestAppBuilder {
            migrations: None,
            tenants: Vec::new(),
            config: None,
            _backend: std::marker::PhantomData,
        }
    }

    /// The app's keyroute handle: key service, gateway, router, JWTs. Clone it into
    /// the app's axum state.
    pub fn keyroute(&self) -> &Keyroute<B> {
        &self.keyroute
    }

    /// The fresh database behind connection `name` (`live`, `test`, `acme_test`, and
    /// [`STORE_DATABASE`] when the store has a database of its own).
    pub fn database(&self, name: &str) -> Option<&TestDatabase<B>> {
        self.databases.get(name)
    }

    /// The names of the app's databases, in order.
    pub fn database_names(&self) -> impl Iterator<Item = &str> {
        self.databases.keys().map(String::as_str)
    }

    /// A pooled connection to connection `name`'s database, to arrange rows or to
    /// check where a request's rows landed. Derefs to the backend's diesel-async
    /// connection.
    ///
    /// # Errors
    /// [`TestAppError::Route`] when no connection has that name or it cannot be had.
    pub async fn connection(&self, name: &str) -> Result<RoutedConnection<B>, TestAppError> {
        Ok(self.keyroute.router().connection_named(name).await?)
    }
}

/// Builds a [`TestApp`]: which migrations, which tenants, which configuration.
pub struct TestAppBuilder<B: TestBackend> {
    migrations: Option<PathBuf>,
    tenants: Vec<String>,
    config: Option<ConfigSource>,
    _backend: std::marker::PhantomData<B>,
}

#[derive(Debug, Clone)]
enum ConfigSource {
    Text(String),
    File(PathBuf),
}

impl<B: TestBackend> fmt::Debug for TestAppBuilder<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestAppBuilder")
            .field("backend", &B::NAME)
            .field("migrations", &self.migrations)
            .field("tenants", &self.tenants)
            .field("config", &self.config.as_ref().map(|_| "given"))
            .finish()
    }
}

impl<B: TestBackend> TestAppBuilder<B> {
    /// The app's diesel migrations directory (one folder per migration, each with an
    /// `up.sql`), applied to every database of the app. A relative path is taken from
    /// the current directory, which `cargo test` sets to the crate's root.
    pub fn migrations(mut self, dir: impl AsRef<Path>) -> Self {
        self.migrations = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Tenants with databases of their own: `{tenant}_{env}` for every environment,
    /// routed by the template `{tenant}_{env}` unless the configuration routes
    /// otherwise.
    pub fn tenants<I, S>(mut self, tenants: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tenants.extend(tenants.into_iter().map(Into::into));
        self
    }

    /// keyroute configuration as TOML (a `keyroute.toml`'s text). Its
    /// `[connections]` name the databases the test gets (each replaced by a fresh
    /// one); a `[store] url` is replaced by a fresh database too.
    pub fn config(mut self, toml: impl Into<String>) -> Self {
        self.config = Some(ConfigSource::Text(toml.into()));
        self
    }

    /// keyroute configuration read from a file (the app's own `keyroute.toml`), treated
    /// as [`config`](Self::config).
    pub fn config_file(mut self, path: impl AsRef<Path>) -> Self {
        self.config = Some(ConfigSource::File(path.as_ref().to_path_buf()));
        self
    }

    /// Makes the databases, migrates them and builds the app's keyroute handle, with
    /// its background task (the change feed) running.
    ///
    /// Every connection of the configuration gets a fresh database, plus one per
    /// environment keys are issued for (`live`, `test`) and one per tenant and
    /// environment. keyroute's schema is applied to the store's database, and the
    /// app's migrations to every database. Plain HTTP is accepted
    /// (`dangerous_accept_plain_http`), as the test server listens on 127.0.0.1 only.
    ///
    /// # Errors
    /// [`TestAppError`] naming what to change: a migrations directory or SQL file, a
    /// configuration option, a tenant name; or [`TestAppError::Harness`] when no
    /// database server can be had.
    pub async fn build(self) -> Result<TestApp<B>, TestAppError> {
        let migrations = self
            .migrations
            .as_deref()
            .map(AppMigrations::open)
            .transpose()?;
        let mut config = match &self.config {
            None => Config::default(),
            Some(ConfigSource::Text(text)) => Config::from_toml_str(text)?,
            Some(ConfigSource::File(path)) => Config::from_toml_file(path)?,
        };
        let names = connection_names(&mut config, &self.tenants)?;
        let databases = make_databases::<B>(names, migrations).await?;
        config.router.connections = databases
            .iter()
            .filter(|(name, _)| name.as_str() != STORE_DATABASE)
            .map(|(name, db)| (name.clone(), db.url().clone()))
            .collect();
        if let Some(store) = databases.get(STORE_DATABASE) {
            config.store.url = Some(store.url().clone());
        }
        config.apikey.dangerous_accept_plain_http = true;
        let keyroute = Keyroute::<B>::builder().config(config).build().await?;
        let background = tokio::spawn(keyroute.background());
        Ok(TestApp {
            keyroute,
            databases,
            background,
        })
    }
}

/// Every database name the app needs, and the routing template tenants need.
fn connection_names(config: &mut Config, tenants: &[String]) -> Result<Vec<String>, TestAppError> {
    let mut names: Vec<String> = config.router.connections.keys().cloned().collect();
    let environments: Vec<String> = config
        .apikey
        .environments
        .iter()
        .map(|e| e.as_str().to_owned())
        .collect();
    names.extend(environments.iter().cloned());
    for tenant in tenants {
        Tenant::new(tenant).map_err(|e| TestAppError::Tenant {
            tenant: tenant.clone(),
            reason: e.to_string(),
        })?;
        names.extend(environments.iter().map(|env| format!("{tenant}_{env}")));
    }
    let routing = &mut config.router.routing;
    if !tenants.is_empty() && routing.template.is_none() && routing.table.is_empty() {
        routing.template = Some("{tenant}_{env}".to_owned());
    }
    if config.store.url.is_some() {
        names.push(STORE_DATABASE.to_owned());
    }
    names.sort();
    names.dedup();
    Ok(names)
}
