//! Fresh databases, one per call: on this test binary's shared PostgreSQL or MariaDB
//! container, or in a temporary SQLite file.

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};

use diesel::migration::MigrationSource;
use keyroute_pool::{
    Backend, BackendDb, DatabaseUrl, DbPool, Mysql, PoolSettings, Postgres, Sqlite,
};
use keyroute_store::{SqlStore, StoreBackend};

use crate::server::{self, BoxFuture, HarnessError, Server, ServerKind, shared_server};

/// The most connections a store from [`TestDatabase::store`] opens.
pub const TEST_POOL_SIZE: u32 = 5;

/// A fresh, empty database for one test. Keep it alive for as long as the test uses
/// the database: when it drops, a server database is dropped (in the background) and a
/// SQLite database's file is deleted.
pub struct TestDatabase<B: Backend> {
    url: DatabaseUrl,
    name: String,
    _files: Option<tempfile::TempDir>,
    /// The shared server it is on, which drops it when this drops.
    server: Option<&'static Server>,
    _backend: PhantomData<B>,
}

impl<B: Backend> TestDatabase<B> {
    /// Database `name`, just created on `server`.
    fn on_server(server: &'static Server, name: String) -> Self {
        Self {
            url: server.database_url(&name),
            name,
            _files: None,
            server: Some(server),
            _backend: PhantomData,
        }
    }
}

/// A server database is dropped when its `TestDatabase` drops (in the background, so
/// a long test binary does not fill the server's memory-backed storage); a SQLite
/// database's directory is deleted.
impl<B: Backend> Drop for TestDatabase<B> {
    fn drop(&mut self) {
        if let Some(server) = self.server {
            server.drop_database_later(std::mem::take(&mut self.name));
        }
    }
}

impl<B: Backend> fmt::Debug for TestDatabase<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestDatabase")
            .field("backend", &B::NAME)
            .field("name", &self.name)
            .field("url", &self.url)
            .finish()
    }
}

impl<B: Backend> TestDatabase<B> {
    /// The database's connection URL (the password is redacted in `Debug`).
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl<B: StoreBackend> TestDatabase<B> {
    /// A store on this database, connected and migrated, with a pool of at most
    /// [`TEST_POOL_SIZE`] connections.
    ///
    /// # Errors
    /// [`HarnessError::Database`] when connecting or migrating fails.
    pub async fn store(&self) -> Result<SqlStore<B>, HarnessError> {
        let mut settings = PoolSettings::default();
        settings.max_size = TEST_POOL_SIZE;
        self.store_with(settings).await
    }

    /// A store on this database with `settings`, connected and migrated.
    ///
    /// # Errors
    /// [`HarnessError::Database`] when connecting or migrating fails.
    pub async fn store_with(&self, settings: PoolSettings) -> Result<SqlStore<B>, HarnessError> {
        let store = SqlStore::<B>::connect_with(self.url.clone(), settings)
            .await
            .map_err(|e| HarnessError::Database(e.to_string()))?;
        store
            .migrate()
            .await
            .map_err(|e| HarnessError::Database(e.to_string()))?;
        Ok(store)
    }
}

impl<B: Backend> TestDatabase<B> {
    /// Applies an app's own migrations (its `embed_migrations!` or a
    /// `FileBasedMigrations` directory) to this database; returns the versions applied.
    ///
    /// # Errors
    /// [`HarnessError::Database`] when connecting or migrating fails.
    pub async fn apply_migrations<S>(&self, source: S) -> Result<Vec<String>, HarnessError>
    where
        S: MigrationSource<BackendDb<B>> + Send + 'static,
    {
        let mut settings = PoolSettings::default();
        settings.max_size = 1;
        let pool = DbPool::<B>::connect(self.url.clone(), settings)
            .await
            .map_err(|e| HarnessError::Database(e.to_string()))?;
        pool.run_migrations_from(source)
            .await
            .map_err(|e| HarnessError::Database(e.to_string()))
    }
}

impl<B: Backend> LiveAndTest<B> {
    /// Applies an app's own migrations to both databases, so a team's integration
    /// tests get a live and a test database with the same schema as production.
    ///
    /// # Errors
    /// As [`TestDatabase::apply_migrations`].
    pub async fn apply_migrations<S>(&self, source: S) -> Result<(), HarnessError>
    where
        S: MigrationSource<BackendDb<B>> + Clone + Send + 'static,
    {
        self.live.apply_migrations(source.clone()).await?;
        self.test.apply_migrations(source).await?;
        Ok(())
    }
}

/// Two databases on one server: what a test of key routing needs.
#[derive(Debug)]
#[non_exhaustive]
pub struct LiveAndTest<B: Backend> {
    /// The database live keys must reach.
    pub live: TestDatabase<B>,
    /// The database test keys must reach.
    pub test: TestDatabase<B>,
}

/// A fresh database on this test binary's PostgreSQL container.
///
/// # Errors
/// [`HarnessError`] when no engine answers, the container does not start, or the
/// database cannot be created.
pub async fn postgres() -> Result<TestDatabase<Postgres>, HarnessError> {
    fresh_database::<Postgres>(&server::POSTGRES).await
}

/// A fresh database on this test binary's MariaDB container.
///
/// # Errors
/// As [`postgres`].
pub async fn mariadb() -> Result<TestDatabase<Mysql>, HarnessError> {
    fresh_database::<Mysql>(&server::MARIADB).await
}

/// A live and a test database on this test binary's PostgreSQL container.
///
/// # Errors
/// As [`postgres`].
pub async fn postgres_live_and_test() -> Result<LiveAndTest<Postgres>, HarnessError> {
    Ok(LiveAndTest {
        live: postgres().await?,
        test: postgres().await?,
    })
}

/// A live and a test database on this test binary's MariaDB container.
///
/// # Errors
/// As [`postgres`].
pub async fn mariadb_live_and_test() -> Result<LiveAndTest<Mysql>, HarnessError> {
    Ok(LiveAndTest {
        live: mariadb().await?,
        test: mariadb().await?,
    })
}

/// A fresh SQLite database in a temporary file, deleted when the [`TestDatabase`] drops.
///
/// # Errors
/// [`HarnessError::Database`] when the temporary directory cannot be made.
pub fn sqlite() -> Result<TestDatabase<Sqlite>, HarnessError> {
    let files = tempfile::Builder::new()
        .prefix("keyroute-test-")
        .tempdir()
        .map_err(|e| HarnessError::Database(format!("cannot make a temporary directory: {e}")))?;
    let name = unique_name();
    let path = files.path().join(format!("{name}.db"));
    Ok(TestDatabase {
        url: DatabaseUrl::new(path.to_string_lossy().into_owned()),
        name,
        _files: Some(files),
        server: None,
        _backend: PhantomData,
    })
}

/// A backend [`TestApp`](crate::TestApp) can make fresh databases on: [`Postgres`],
/// [`Mysql`] (MariaDB) and [`Sqlite`]. Sealed: the harness knows how to start each.
pub trait TestBackend: StoreBackend + sealed::Sealed {
    /// Whether fresh databases are copied from a migrated template ([`copy_of`](Self::copy_of)).
    #[doc(hidden)]
    const COPIES: bool = false;

    /// A fresh, empty database.
    #[doc(hidden)]
    fn fresh() -> BoxFuture<Result<TestDatabase<Self>, HarnessError>>;

    /// A fresh database copied from the migrated database `template`, when the backend
    /// can copy one (PostgreSQL); `None` when every database is migrated on its own.
    #[doc(hidden)]
    fn copy_of(
        _template: &TestDatabase<Self>,
    ) -> Option<BoxFuture<Result<TestDatabase<Self>, HarnessError>>> {
        None
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Postgres {}
    impl Sealed for super::Mysql {}
    impl Sealed for super::Sqlite {}
}

impl TestBackend for Postgres {
    const COPIES: bool = true;

    fn fresh() -> BoxFuture<Result<TestDatabase<Self>, HarnessError>> {
        Box::pin(postgres())
    }

    fn copy_of(
        template: &TestDatabase<Self>,
    ) -> Option<BoxFuture<Result<TestDatabase<Self>, HarnessError>>> {
        let template = template.name.clone();
        Some(Box::pin(async move {
            let server = shared_server(&server::POSTGRES).await?;
            let name = unique_name();
            server.copy_database(&name, &template).await?;
            Ok(TestDatabase::on_server(server, name))
        }))
    }
}

impl TestBackend for Mysql {
    fn fresh() -> BoxFuture<Result<TestDatabase<Self>, HarnessError>> {
        Box::pin(mariadb())
    }
}

impl TestBackend for Sqlite {
    fn fresh() -> BoxFuture<Result<TestDatabase<Self>, HarnessError>> {
        Box::pin(std::future::ready(sqlite()))
    }
}

async fn fresh_database<B: Backend>(
    kind: &'static ServerKind,
) -> Result<TestDatabase<B>, HarnessError> {
    let server = shared_server(kind).await?;
    let name = unique_name();
    server.create_database(&name).await?;
    Ok(TestDatabase::on_server(server, name))
}

/// `kr_<pid>_<n>`: unique within the shared server and readable in its logs.
fn unique_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "kr_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
