//! Real databases for integration tests: PostgreSQL and MariaDB in containers (through
//! testcontainers), SQLite in a temporary file, each handed out as a fresh, empty
//! database ready to migrate and route to.
//!
//! Unpublished; depends on `keyroute-pool` (URLs, pools, markers), `keyroute-store`
//! (migrated stores) and testcontainers.
//!
//! A test a team can copy into its own `tests/` (it needs a Docker engine):
//!
//! ```
//! use keyroute_core::{ApiKeyStore, KeyOptions, KeyService, NewUser, UserStore};
//!
//! // In your tests: #[tokio::test(flavor = "multi_thread")] async fn ...() { ... }
//! # async fn keys_stay_in_their_database() -> Result<(), Box<dyn std::error::Error>> {
//! // Two fresh databases on this test binary's shared PostgreSQL container.
//! let dbs = keyroute_testing::postgres_live_and_test().await?;
//! let live = dbs.live.store().await?; // connected and migrated
//! let test = dbs.test.store().await?;
//!
//! let service = KeyService::new(live, KeyOptions::default())?;
//! let ada = service.register_user(NewUser::named("ada")).await?;
//! let key = &ada.keys[0];
//!
//! assert!(service.store().api_key_exists(&key.key.hash).await?);
//! assert!(!test.api_key_exists(&key.key.hash).await?);
//! assert!(test.find_user_by_name("ada").await?.is_none());
//! // Point your own pools at dbs.live.url() and dbs.test.url() to test key routing.
//! # Ok(())
//! # }
//! # tokio::runtime::Runtime::new()?.block_on(keys_stay_in_their_database())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! How it behaves:
//!
//! - **One container per backend per test binary.** The first test that asks starts it;
//!   the rest share it, each with its own database (`CREATE DATABASE`), so tests stay
//!   isolated and run in parallel. Containers are removed when the test binary exits:
//!   they are owned by this crate's own runtime (not by a test's, which ends with the
//!   test) and removed from an exit hook, because a container parked in a `static` is
//!   never dropped (testcontainers-rs issues 528 and 707).
//! - **Ready means answering.** The official images print their "ready" line once for a
//!   temporary set-up server and once for the real one; the harness waits for the real
//!   server's line, then runs `SELECT 1` until it succeeds before handing out anything.
//! - **Images are configurable.** `KEYROUTE_POSTGRES_IMAGE` / `KEYROUTE_POSTGRES_TAG`
//!   (default `postgres:15`) and `KEYROUTE_MARIADB_IMAGE` / `KEYROUTE_MARIADB_TAG`
//!   (default `mariadb:10.11`). Any image keeping the official images' contract
//!   (environment variables, ready lines) works.
//! - **No engine, no hang.** Without a Docker engine every container test fails at
//!   once with [`HarnessError::NoEngine`], which says how to get one. Tests never skip.
//! - **Bounded connections.** Stores from [`TestDatabase::store`] use pools of at most
//!   [`TEST_POOL_SIZE`] connections, so parallel tests stay within the servers' limits.

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};

use diesel::migration::MigrationSource;
use keyroute_pool::{
    Backend, BackendDb, DatabaseUrl, DbPool, Mysql, PoolSettings, Postgres, Sqlite,
};
use keyroute_store::{SqlStore, StoreBackend};

pub mod bench;
pub mod dedicated;
mod server;

pub use server::HarnessError;
use server::{ServerKind, shared_server};

/// The most connections a store from [`TestDatabase::store`] opens.
pub const TEST_POOL_SIZE: u32 = 5;

/// A fresh, empty database for one test. Keep it alive for as long as the test uses
/// the database (a SQLite database's file is deleted when it drops).
pub struct TestDatabase<B: Backend> {
    url: DatabaseUrl,
    name: String,
    _files: Option<tempfile::TempDir>,
    _backend: PhantomData<B>,
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
        _backend: PhantomData,
    })
}

async fn fresh_database<B: Backend>(
    kind: &'static ServerKind,
) -> Result<TestDatabase<B>, HarnessError> {
    let server = shared_server(kind).await?;
    let name = unique_name();
    server.create_database(&name).await?;
    Ok(TestDatabase {
        url: server.database_url(&name),
        name,
        _files: None,
        _backend: PhantomData,
    })
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
