//! keyroute's database connections: what a service needs to reach a database, and
//! nothing of what keyroute keeps in one.
//!
//! Owns:
//!
//! - [`DatabaseUrl`]: a connection string whose password never shows in `Debug` or in
//!   error messages, in any of its forms (URL user-info, `password=` query parameter,
//!   key-value `password=...`), and which knows the kind of database it names
//!   ([`DatabaseUrl::backend`]; an unknown scheme is an error, not a SQLite path).
//! - [`PoolSettings`] and [`RecyclingCheck`]: the bb8 pool's sizes, timeouts and the
//!   check run on checkout.
//! - [`Backend`]: the sealed trait naming a database backend, its connection and how
//!   one is opened, implemented by the markers `Postgres`, `Mysql` and `Sqlite`
//!   (modules `postgres`, `mysql`, `sqlite`, each behind its feature).
//! - [`DbPool`]: a bb8 pool of one backend's connections, whose failed checkouts report
//!   the real cause as [`StoreError::Unavailable`] instead of a bare timeout, behind a
//!   circuit breaker that fails fast while the database is down. For a SQLite file it
//!   also checks, on every checkout, that the file is still the one first opened (on
//!   Linux one inotify `read`, elsewhere one `stat`): a removed or replaced file is
//!   `Unavailable`.
//! - TLS to PostgreSQL and MySQL/MariaDB on rustls (`sslmode` / `ssl-mode`), with a
//!   typed [`TlsError`] saying which option to change ([`tls_error`] finds it).
//! - An app's own diesel migrations on a pool ([`DbPool::run_migrations_from`],
//!   [`DbPool::applied_migrations`]) and the [`SchemaReport`] that compares databases.
//!
//! Depends on `keyroute-core` (its [`StoreError`] kinds are the pool's errors),
//! diesel, diesel-async, bb8 and rustls, and on no other keyroute crate: the router
//! and keyroute-axum reach a database through this crate alone, and keyroute-store
//! builds its key stores on it. Keyroute's own tables and migrations are the store's;
//! a [`SchemaReport`] is told their versions by whoever builds it.
//!
//! | feature | adds |
//! |---|---|
//! | `sqlite` | [`Sqlite`]: files or `:memory:`, bundled, no server |
//! | `postgres` | [`Postgres`], on tokio-postgres (turns `tls` on) |
//! | `mysql` | [`Mysql`] (MySQL and MariaDB), on mysql_async (turns `tls` on) |
//! | `tls` | [`TlsMode`], [`TlsError`], [`tls_error`] |
//!
//! Just past 500 lines on purpose: about 100 are this overview and the re-exports,
//! the rest is [`DbPool`], whose checkout paths (plain, unit, bound unit) share its
//! breaker and file check and belong in one place.
// docs.rs (nightly, `--cfg docsrs`) marks each item with the features it needs;
// `doc_auto_cfg` was merged into `doc_cfg` in Rust 1.92 and is an error since.
#![cfg_attr(docsrs, feature(doc_cfg))]
// Every public item is documented: a published crate's docs are its manual.
#![deny(missing_docs)]

use std::fmt;
use std::sync::Arc;

use bb8::PooledConnection;
use diesel_async::pooled_connection::PoolError;
use keyroute_core::{StoreError, StoreResult};

mod affinity;
mod backend;
mod binding;
pub(crate) mod connect;
mod freshness;
mod health;
mod migrations;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
mod row_security;
mod schema;
mod secrets;
mod settings;
mod sink;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(feature = "tls")]
mod tls;
mod unit;
mod url;
mod watch;

pub use backend::{
    Backend, BackendDb, ConnectFuture, ConnectSetup, FindingsFuture, LagFuture, OwnedConnection,
    UnitFuture, VersionsFuture,
};
pub use binding::{
    Binding, BindingError, ENV_SETTING, MAX_IDENTIFIER_BYTES, TENANT_SETTING, quote_identifier,
};
pub use connect::ConnectFailure;
#[cfg(feature = "postgres")]
pub use connect::{PgConnection, postgres_client};
#[cfg(feature = "mysql")]
pub use mysql::Mysql;
#[cfg(feature = "postgres")]
pub use postgres::Postgres;
pub use row_security::{RowSecurityFinding, row_security_sql};
pub use schema::{ConnectionSchema, SchemaDrift, SchemaReport};
pub use settings::{PoolSettings, Pooler, RecyclingCheck};
#[cfg(feature = "sqlite")]
pub use sqlite::{
    ConnectionThread, SQLITE_COOL_DOWN, SQLITE_INLINE_LIMIT, SQLITE_LONG_QUERY,
    SQLITE_SLOW_IN_WINDOW, SQLITE_THREAD_NAME, SQLITE_WINDOW, Sqlite,
};
#[cfg(feature = "tls")]
pub use tls::{TlsError, TlsMode};
// `tls_error` is defined below.
pub use unit::Checkout;
pub use url::{BackendKind, DatabaseUrl, UnknownScheme};

use sink::{ErrorSink, LastError};
use watch::FileWatch;

/// An error whose message was scrubbed of secrets; the source of `Unavailable` errors.
/// When TLS is why, its source is the typed [`TlsError`] (see [`tls_error`]).
#[derive(Debug)]
pub(crate) struct Cause(
    pub(crate) String,
    pub(crate) Option<Arc<connect::ConnectFailure>>,
);

impl Cause {
    /// A cause with a message only.
    pub(crate) fn text(message: String) -> Self {
        Self(message, None)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.1.as_deref().and_then(connect::ConnectFailure::typed)
    }
}

/// The typed TLS error behind a store error, if TLS is why the database could not be
/// reached: what a test or a health check can match on.
#[cfg(feature = "tls")]
pub fn tls_error(error: &StoreError) -> Option<&TlsError> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(tls) = e.downcast_ref::<TlsError>() {
            return Some(tls);
        }
        current = e.source();
    }
    None
}

/// An error and its causes on one line: "error connecting to server: Connection refused".
pub fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A bb8 pool of diesel-async connections to one database, with keyroute's handling of
/// its failures: a checkout that fails says why (bb8 alone reports a bare timeout), and
/// the URL's password never shows. keyroute-store's `SqlStore` keeps its keys in one;
/// the connection router keeps one per named connection.
pub struct DbPool<B: Backend> {
    pool: bb8::Pool<B::Manager>,
    url: DatabaseUrl,
    settings: PoolSettings,
    last_error: LastError,
    /// The circuit breaker: fail fast while the database is unreachable.
    health: Arc<health::Health>,
    /// The database file, for embedded databases: checked on every checkout.
    file: Option<Arc<FileWatch>>,
    /// Units bound directly waiting for a connection (tenant affinity).
    affinity: Arc<affinity::Affinity<B>>,
}

impl<B: Backend> Clone for DbPool<B> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            url: self.url.clone(),
            settings: self.settings.clone(),
            last_error: self.last_error.clone(),
            health: Arc::clone(&self.health),
            file: self.file.clone(),
            affinity: Arc::clone(&self.affinity),
        }
    }
}

impl<B: Backend> fmt::Debug for DbPool<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbPool")
            .field("backend", &B::NAME)
            .field("url", &self.url)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<B: Backend> DbPool<B> {
    /// A pool that opens connections on first use; nothing is checked yet.
    ///
    /// # Errors
    /// [`StoreError::Misuse`] outside a Tokio runtime: the pool's reaper (which
    /// closes idle and old connections) is a task on the current runtime.
    pub fn lazy(url: impl Into<DatabaseUrl>, settings: PoolSettings) -> StoreResult<Self> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StoreError::Misuse(
                "a connection pool can only be created inside a Tokio runtime; build keyroute inside one (e.g. #[tokio::main])".into(),
            ));
        }
        let url = url.into();
        let mut settings = B::adjust(&url, settings);
        settings.recycling_check = settings.recycling_check.or_default(B::DEFAULT_CHECK);
        if !B::TRANSACTION_POOLER {
            settings.pooler = Pooler::Session;
        }
        let last_error = LastError::default();
        let health = health::Health::new(
            settings.retry_backoff,
            settings.retry_backoff_max,
            url.masked(),
        );
        let manager = B::manager(
            &url,
            ConnectSetup {
                recycling: settings.recycling_check,
                idle_check_after: settings.idle_check_after,
                pooler: settings.pooler,
                connect_timeout: settings.connect_timeout,
                health: Arc::clone(&health),
                url: url.clone(),
            },
        );
        let pool = bb8::Pool::builder()
            .max_size(settings.max_size.max(1))
            .min_idle(settings.min_idle)
            .connection_timeout(settings.connection_timeout)
            .idle_timeout(settings.idle_timeout)
            .max_lifetime(settings.max_lifetime)
            .error_sink(Box::new(ErrorSink::new(last_error.clone(), url.clone())))
            .build_unchecked(manager);
        let file = B::database_file(&url).map(|path| Arc::new(FileWatch::new(path)));
        Ok(Self {
            pool,
            url,
            settings,
            last_error,
            health,
            file,
            affinity: Arc::default(),
        })
    }

    /// A pool whose database answered one connection.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] with the real cause when no connection can be made.
    pub async fn connect(url: impl Into<DatabaseUrl>, settings: PoolSettings) -> StoreResult<Self> {
        let pool = Self::lazy(url, settings)?;
        drop(pool.get().await?);
        Ok(pool)
    }

    /// A pooled connection, or `Unavailable` with the real cause.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when no connection can be had within the timeout,
    /// or (SQLite) when the database file was removed or replaced under the pool.
    pub async fn get(&self) -> StoreResult<PooledConnection<'_, B::Manager>> {
        let conn = self.checkout(self.pool.get()).await?;
        self.check_file()?;
        Ok(conn)
    }

    /// A pooled connection that does not borrow the pool, so it can move between tasks.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub async fn get_owned(&self) -> StoreResult<PooledConnection<'static, B::Manager>> {
        let conn = self.checkout(self.pool.get_owned()).await?;
        self.check_file()?;
        Ok(conn)
    }

    /// A connection for one unit of work: behind a transaction pooler
    /// ([`Pooler::Transaction`]) a transaction begun on it, which the [`Checkout`]
    /// ends; otherwise the pooled connection as it is. keyroute's own queries and the
    /// connections handed to handlers go through here.
    ///
    /// # Errors
    /// As [`get`](Self::get), or [`StoreError::Database`] when the transaction cannot
    /// begin.
    pub async fn unit(&self) -> StoreResult<Checkout<B>> {
        if !self.transaction_pooled() {
            return self.get_owned().await.map(Checkout::direct);
        }
        self.begin(None).await
    }

    /// A connection for one unit of work bound to `binding` (a request's tenant), or,
    /// with `None`, to nothing, in one round trip that first undoes what an earlier
    /// user left on the connection (`RESET ALL`, `RESET ROLE`). Behind a transaction
    /// pooler the unit is a transaction and the binding local to it; directly the
    /// binding is the session's until the next unit binds again (every unit of a
    /// tenancy pool does, before its first statement), and statements commit as they
    /// run. Either way no binding reaches another request.
    ///
    /// Directly, a connection given back goes first to a waiting unit of the same
    /// binding (tenant affinity: its `search_path` and cached plans stay), passing no
    /// waiting unit more than 32 times; see
    /// [`bound_units_waiting`](Self::bound_units_waiting).
    ///
    /// # Errors
    /// [`StoreError::Misuse`] on a backend that cannot bind (only PostgreSQL can);
    /// otherwise as [`unit`](Self::unit).
    pub async fn bound_unit(&self, binding: Option<&Binding>) -> StoreResult<Checkout<B>> {
        if !B::BINDS_TENANTS {
            return Err(StoreError::Misuse(format!(
                "{}: tenancy in the database ([tenancy] mode = \"row_security\" or \"schema\") needs PostgreSQL; \
                 use a database per tenant ([routing] url_template = \"...://app@db/{{tenant}}_{{env}}\") on {}",
                B::NAME,
                B::NAME
            )));
        }
        self.begin(binding).await
    }

    /// What would let requests on this pool's connections escape row-level security
    /// on tables with `column`: the role's rights and each such table's state. Empty
    /// on backends without row-level security.
    ///
    /// # Errors
    /// As [`unit`](Self::unit), or [`StoreError::Database`] when the catalog queries
    /// fail.
    pub async fn row_security_findings(
        &self,
        column: &str,
    ) -> StoreResult<Vec<RowSecurityFinding>> {
        if !B::BINDS_TENANTS {
            return Ok(Vec::new());
        }
        let mut conn = self.unit().await?;
        let findings = B::row_security_findings(&mut conn, column)
            .await
            .map_err(|e| {
                StoreError::database(format!("{}: reading row-level security: {e}", B::NAME))
            })?;
        conn.commit()
            .await
            .map_err(|e| StoreError::database(format!("{}: {e}", B::NAME)))?;
        Ok(findings)
    }

    /// How far behind its primary this pool's database (a replica) is, in
    /// milliseconds: by `query` (one `BIGINT` column `lag_ms`) when given, else by the
    /// backend's own measure (PostgreSQL: the standby's replay position); `None` where
    /// there is neither.
    ///
    /// # Errors
    /// As [`get`](Self::get), or [`StoreError::Database`] when the query fails.
    pub async fn replica_lag_ms(&self, query: Option<&str>) -> StoreResult<Option<i64>> {
        let mut conn = self.unit().await?;
        let lag = B::replica_lag_ms(&mut conn, query).await.map_err(|e| {
            StoreError::database(format!("{}: measuring replica lag: {e}", B::NAME))
        })?;
        conn.commit()
            .await
            .map_err(|e| StoreError::database(format!("{}: {e}", B::NAME)))?;
        Ok(lag)
    }

    /// A unit transaction, begun as [`bound_unit`](Self::bound_unit) says.
    async fn begin(&self, binding: Option<&Binding>) -> StoreResult<Checkout<B>> {
        let pooled = self.transaction_pooled();
        // Behind a transaction pooler (and for tenancy, whose router sets the check to
        // `Fast`) the unit's BEGIN is the connection's check (the pool runs no SELECT 1
        // of its own, see `backend.rs`): a connection whose BEGIN fails is discarded
        // and the next one is tried, as the check would have. Not only a connection
        // the server dropped: one an earlier handler left unusable (a session
        // `statement_timeout` of 1 ms can cancel the very statements that undo it)
        // fails it too. A server that refuses every BEGIN is reported after
        // max_size + 1 tries.
        let mut tries = self.settings.max_size.saturating_add(1);
        // Directly, a bound unit's connection has tenant affinity (`affinity.rs`).
        let key = binding.filter(|_| !pooled).map(affinity::key);
        loop {
            let handed = match key {
                Some(key) => self.get_affine(key).await?,
                None => affinity::Handed::fresh(self.get_owned().await?),
            };
            match Checkout::begin(handed.conn, pooled, binding).await {
                Ok(unit) => return Ok(self.hand_back(unit, key, handed.handoffs)),
                Err(_) if tries > 1 => tries -= 1,
                Err(began) => return Err(began.into_store_error(B::NAME)),
            }
        }
    }

    /// Whether this pool's connections go through a pooler in transaction mode
    /// ([`PoolSettings::pooler`], on a backend that honours it).
    pub fn transaction_pooled(&self) -> bool {
        self.settings.pooler == Pooler::Transaction
    }

    /// A checkout through the circuit breaker: refused at once while it is open,
    /// ended at once if it opens while waiting, and the one probe when it half-opens.
    async fn checkout<C>(
        &self,
        get: impl std::future::Future<Output = Result<C, bb8::RunError<PoolError>>>,
    ) -> StoreResult<C> {
        let mut opened = self.health.subscribe();
        let probe = match self.health.admit() {
            health::Admission::Go => None,
            health::Admission::Probe(guard) => Some(guard),
            health::Admission::Refuse { cause, retry_in } => {
                return Err(self.refused(cause, Some(retry_in)));
            }
        };
        let result = tokio::select! {
            biased;
            result = get => result,
            _ = opened.changed() => {
                return Err(self.refused(self.health.last_failure(), None));
            }
        };
        match result {
            Ok(conn) => {
                if probe.is_some() {
                    self.health.connected();
                }
                Ok(conn)
            }
            Err(e) => Err(self.unavailable(e)),
        }
    }

    /// `Unavailable` while the breaker is open: the cause, and when the next try is.
    fn refused(
        &self,
        cause: Option<Arc<connect::ConnectFailure>>,
        retry_in: Option<std::time::Duration>,
    ) -> StoreError {
        let what = cause.as_deref().map_or_else(
            || "the database is unreachable".to_owned(),
            ToString::to_string,
        );
        let when = match retry_in {
            Some(wait) if !wait.is_zero() => format!(
                "failing fast; the next try is in {} ms (retry_backoff in [pools])",
                wait.as_millis()
            ),
            _ => "failing fast while one request tries again".to_owned(),
        };
        StoreError::unavailable(Cause(format!("{}: {what}; {when}", B::NAME), cause))
    }

    /// `Unavailable` when the database file is no longer the one the pool opened.
    fn check_file(&self) -> StoreResult<()> {
        match self.file.as_deref().map(FileWatch::check) {
            Some(Err(message)) => Err(StoreError::unavailable(Cause::text(format!(
                "{}: {}",
                B::NAME,
                self.url.redact(&message)
            )))),
            _ => Ok(()),
        }
    }

    /// The bb8 pool itself.
    pub fn pool(&self) -> &bb8::Pool<B::Manager> {
        &self.pool
    }

    /// The database URL (redacted in `Debug`).
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// The pool's settings, as adjusted for the backend.
    pub fn settings(&self) -> &PoolSettings {
        &self.settings
    }

    fn unavailable(&self, error: bb8::RunError<PoolError>) -> StoreError {
        let message = match error {
            bb8::RunError::User(e) => self.url.redact(&describe(&e)),
            bb8::RunError::TimedOut => {
                let waited = self.settings.connection_timeout;
                match self.last_error.take() {
                    Some(cause) => format!("{cause} (no connection within {waited:?})"),
                    None => format!(
                        "no connection became free within {waited:?}; all {} are in use",
                        self.settings.max_size
                    ),
                }
            }
        };
        StoreError::unavailable(Cause(
            format!("{}: {message}", B::NAME),
            self.health.last_failure(),
        ))
    }
}
