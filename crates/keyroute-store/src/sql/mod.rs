//! The SQL backends on diesel + diesel-async, pooled with bb8.
//!
//! Layout: this module holds what every backend shares (the [`SqlStore`] type, pool
//! settings, the redacted [`DatabaseUrl`], error mapping); `queries.rs` holds the store
//! implementation, written once and compiled inside each backend module
//! (`postgres.rs`, `mysql.rs`, `sqlite.rs`), which supplies its own `schema`, its
//! timestamp type and its migrations. Writing the queries once keeps the backends from
//! drifting apart; compiling them per backend keeps diesel's types concrete, where a
//! generic implementation would drown in trait bounds.
//!
//! Schema: `keyroute_users` and `keyroute_api_keys` (prefixed, since teams embed keyroute
//! in their own databases). Keys are found by `hash` only, under a unique index; an
//! index on `(user_id, environment)` serves listing, regeneration and backfill.
//! Migrations live in `migrations/<backend>/` at the workspace root and are embedded.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bb8::PooledConnection;
use chrono::{DateTime, Utc};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::AsyncConnection;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, PoolError, RecyclingMethod,
};
use keyroute_core::{BoxError, StoreError, StoreResult};

#[cfg(feature = "mysql")]
pub mod mysql;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

/// The tables, for every backend: only the timestamp column type differs.
macro_rules! keyroute_schema {
    ($timestamp:ident) => {
        diesel::table! {
            keyroute_users (id) {
                id -> Text,
                user_name -> Text,
                email -> Nullable<Text>,
                tenant -> Nullable<Text>,
                created_at -> $timestamp,
                meta -> Text,
            }
        }

        diesel::table! {
            keyroute_api_keys (id) {
                id -> Text,
                user_id -> Nullable<Text>,
                tenant -> Nullable<Text>,
                key_type -> Text,
                environment -> Text,
                hash -> Binary,
                hint -> Text,
                name -> Nullable<Text>,
                created_at -> $timestamp,
                expires_at -> Nullable<$timestamp>,
                cancelled_at -> Nullable<$timestamp>,
                last_used_at -> Nullable<$timestamp>,
                scopes -> Text,
                notes -> Nullable<Text>,
                ref_id -> Nullable<Text>,
                meta -> Text,
            }
        }

        diesel::table! {
            keyroute_denylist (id) {
                id -> Text,
                expires_at -> $timestamp,
            }
        }

        diesel::joinable!(keyroute_api_keys -> keyroute_users (user_id));
        diesel::allow_tables_to_appear_in_same_query!(keyroute_users, keyroute_api_keys);
    };
}
pub(crate) use keyroute_schema;

/// Rows per multi-row `INSERT`: 1000 rows × 16 columns stays under every backend's
/// bind-parameter limit (SQLite's is the lowest, 32 766).
const INSERT_CHUNK: usize = 1000;

/// A database connection URL. Its `Debug` hides the password, and errors that quote
/// the URL are scrubbed of it.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL itself, password included. Only for opening connections.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// The password in the URL, if any (`scheme://user:password@host`, or a
    /// `password=` query parameter).
    fn password(&self) -> Option<&str> {
        let after_scheme = self
            .0
            .split_once("://")
            .map_or(self.0.as_str(), |(_, rest)| rest);
        let from_userinfo = after_scheme
            .split_once('@')
            .and_then(|(userinfo, _)| userinfo.split_once(':'))
            .map(|(_, password)| password);
        let from_query = self
            .0
            .split_once('?')
            .into_iter()
            .flat_map(|(_, query)| query.split('&'))
            .find_map(|pair| pair.strip_prefix("password="));
        from_userinfo.or(from_query).filter(|p| !p.is_empty())
    }

    /// `text` with the password replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        match self.password() {
            Some(password) => text.replace(password, "***"),
            None => text.to_owned(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({:?})", self.redact(&self.0))
    }
}

impl From<&str> for DatabaseUrl {
    fn from(url: &str) -> Self {
        Self::new(url)
    }
}

impl From<String> for DatabaseUrl {
    fn from(url: String) -> Self {
        Self::new(url)
    }
}

/// How pooled connections are checked when taken from the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RecyclingCheck {
    /// Only check the connection is not mid-transaction. Fastest; a connection the
    /// server dropped fails its first query and is then discarded.
    Fast,
    /// Also run `SELECT 1` on every checkout: one more round trip, no stale connections.
    #[default]
    Verified,
}

/// Pool settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PoolSettings {
    /// Most connections open at once. Default 10.
    pub max_size: u32,
    /// Connections kept open while idle. Default none.
    pub min_idle: Option<u32>,
    /// How long to wait for a connection before giving up. Default 5 s: a request
    /// should fail fast, with the cause, rather than hang.
    pub connection_timeout: Duration,
    /// Idle connections are closed after this long. Default 10 minutes.
    pub idle_timeout: Option<Duration>,
    /// Connections are replaced after this long. Default 30 minutes.
    pub max_lifetime: Option<Duration>,
    /// The check run on checkout. Default [`RecyclingCheck::Verified`].
    pub recycling_check: RecyclingCheck,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_size: 10,
            min_idle: None,
            connection_timeout: Duration::from_secs(5),
            idle_timeout: Some(Duration::from_secs(600)),
            max_lifetime: Some(Duration::from_secs(1800)),
            recycling_check: RecyclingCheck::Verified,
        }
    }
}

/// A connection being opened.
type ConnectFuture<C> = Pin<Box<dyn Future<Output = diesel::ConnectionResult<C>> + Send>>;

/// A pooled connection that can move to a blocking thread.
type OwnedConnection<B> = PooledConnection<'static, <B as Backend>::Manager>;

/// A SQL database backend. Sealed: implemented by [`Postgres`](postgres::Postgres),
/// [`Mysql`](mysql::Mysql) and [`Sqlite`](sqlite::Sqlite).
pub trait Backend: sealed::Sealed + Send + Sync + 'static {
    /// The diesel-async connection type.
    type Connection: AsyncConnection + Send + 'static;

    /// The bb8 connection manager: diesel-async's, with keyroute's connection set-up.
    type Manager: bb8::ManageConnection<Connection = Self::Connection, Error = PoolError>;

    /// The backend's name, for messages.
    const NAME: &'static str;

    /// Adjusts settings the backend cannot honour (an in-memory SQLite database lives
    /// in one connection, so its pool holds exactly one).
    fn adjust(_url: &DatabaseUrl, settings: PoolSettings) -> PoolSettings {
        settings
    }

    /// The connection manager for `url`.
    #[doc(hidden)]
    fn manager(url: &DatabaseUrl, recycling: RecyclingCheck) -> Self::Manager;

    /// Runs the embedded migrations on `conn`. Called on a blocking thread.
    #[doc(hidden)]
    fn run_migrations(conn: OwnedConnection<Self>) -> Result<(), BoxError>;
}

/// diesel-async's connection manager, opening connections with `establish`.
fn manager<C: AsyncConnection + 'static>(
    url: &DatabaseUrl,
    recycling: RecyclingCheck,
    establish: fn(String) -> ConnectFuture<C>,
) -> AsyncDieselConnectionManager<C> {
    let mut config = ManagerConfig::<C>::default();
    config.custom_setup = Box::new(move |url| establish(url.to_owned()));
    config.recycling_method = match recycling {
        RecyclingCheck::Fast => RecyclingMethod::Fast,
        RecyclingCheck::Verified => RecyclingMethod::Verified,
    };
    AsyncDieselConnectionManager::new_with_config(url.expose_secret(), config)
}

mod sealed {
    pub trait Sealed {}
}

/// Keeps the last connection error bb8 saw, because bb8 reports a checkout that
/// failed to connect as a bare timeout.
#[derive(Clone, Default)]
struct LastError(Arc<Mutex<Option<String>>>);

impl fmt::Debug for LastError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LastError")
    }
}

impl LastError {
    fn take(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

/// The sink bb8 reports connection errors to; keeps the newest, scrubbed of the password.
#[derive(Debug, Clone)]
struct ErrorSink {
    last: LastError,
    url: DatabaseUrl,
}

impl bb8::ErrorSink<PoolError> for ErrorSink {
    fn sink(&self, error: PoolError) {
        let message = self.url.redact(&describe(&error));
        tracing::warn!(error = %message, "keyroute: database connection failed");
        *self.last.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(message);
    }

    fn boxed_clone(&self) -> Box<dyn bb8::ErrorSink<PoolError>> {
        Box::new(self.clone())
    }
}

/// An error whose message was scrubbed of secrets; the source of `Unavailable` errors.
#[derive(Debug)]
struct Cause(String);

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Cause {}

/// A bb8 pool of diesel-async connections to one database, with keyroute's handling of
/// its failures: a checkout that fails says why (bb8 alone reports a bare timeout), and
/// the URL's password never shows. [`SqlStore`] keeps its keys in one; the connection
/// router keeps one per named connection.
pub struct DbPool<B: Backend> {
    pool: bb8::Pool<B::Manager>,
    url: DatabaseUrl,
    settings: PoolSettings,
    last_error: LastError,
}

impl<B: Backend> Clone for DbPool<B> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            url: self.url.clone(),
            settings: self.settings.clone(),
            last_error: self.last_error.clone(),
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
    /// [`StoreError::Unavailable`] outside a Tokio runtime: the pool's reaper (which
    /// closes idle and old connections) is a task on the current runtime.
    pub fn lazy(url: impl Into<DatabaseUrl>, settings: PoolSettings) -> StoreResult<Self> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StoreError::Unavailable(Box::new(Cause(
                "a connection pool can only be created inside a Tokio runtime".into(),
            ))));
        }
        let url = url.into();
        let settings = B::adjust(&url, settings);
        let last_error = LastError::default();
        let manager = B::manager(&url, settings.recycling_check);
        let pool = bb8::Pool::builder()
            .max_size(settings.max_size.max(1))
            .min_idle(settings.min_idle)
            .connection_timeout(settings.connection_timeout)
            .idle_timeout(settings.idle_timeout)
            .max_lifetime(settings.max_lifetime)
            .error_sink(Box::new(ErrorSink {
                last: last_error.clone(),
                url: url.clone(),
            }))
            .build_unchecked(manager);
        Ok(Self {
            pool,
            url,
            settings,
            last_error,
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
    /// [`StoreError::Unavailable`] when no connection can be had within the timeout.
    pub async fn get(&self) -> StoreResult<PooledConnection<'_, B::Manager>> {
        self.pool.get().await.map_err(|e| self.unavailable(e))
    }

    /// A pooled connection that does not borrow the pool, so it can move between tasks.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub async fn get_owned(&self) -> StoreResult<PooledConnection<'static, B::Manager>> {
        self.pool.get_owned().await.map_err(|e| self.unavailable(e))
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
        StoreError::Unavailable(Box::new(Cause(format!("{}: {message}", B::NAME))))
    }
}

/// A store on a SQL database: [`PostgresStore`](postgres::PostgresStore),
/// [`MysqlStore`](mysql::MysqlStore) or [`SqliteStore`](sqlite::SqliteStore).
pub struct SqlStore<B: Backend> {
    db: DbPool<B>,
    _backend: PhantomData<B>,
}

impl<B: Backend> Clone for SqlStore<B> {
    fn clone(&self) -> Self {
        Self {
            db: self.db.clone(),
            _backend: PhantomData,
        }
    }
}

impl<B: Backend> fmt::Debug for SqlStore<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore").field("db", &self.db).finish()
    }
}

impl<B: Backend> SqlStore<B> {
    /// Connects with default pool settings and checks the database answers.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] with the real cause when no connection can be made.
    pub async fn connect(url: impl Into<DatabaseUrl>) -> StoreResult<Self> {
        Self::connect_with(url, PoolSettings::default()).await
    }

    /// Connects with `settings` and checks the database answers.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] with the real cause when no connection can be made.
    pub async fn connect_with(
        url: impl Into<DatabaseUrl>,
        settings: PoolSettings,
    ) -> StoreResult<Self> {
        Ok(Self::from_pool(DbPool::connect(url, settings).await?))
    }

    /// A store on an existing pool (keys in the same database as the team's data).
    pub fn from_pool(db: DbPool<B>) -> Self {
        Self {
            db,
            _backend: PhantomData,
        }
    }

    /// Runs the embedded migrations (idempotent). Works on either Tokio runtime flavour:
    /// the migration harness blocks, so it runs on a blocking thread.
    ///
    /// # Errors
    /// [`StoreError::Migration`] when a migration fails, `Unavailable` when the database
    /// cannot be reached.
    pub async fn migrate(&self) -> StoreResult<()> {
        let conn = self.db.get_owned().await?;
        tokio::task::spawn_blocking(move || B::run_migrations(conn))
            .await
            .map_err(|e| StoreError::Migration(Box::new(e)))?
            .map_err(StoreError::Migration)
    }

    /// The store's pool.
    pub fn db(&self) -> &DbPool<B> {
        &self.db
    }

    /// The bb8 pool, for queries of the team's own.
    pub fn pool(&self) -> &bb8::Pool<B::Manager> {
        self.db.pool()
    }

    /// The database URL (redacted in `Debug`).
    pub fn url(&self) -> &DatabaseUrl {
        self.db.url()
    }

    /// A pooled connection, or `Unavailable` with the real cause.
    async fn conn(&self) -> StoreResult<PooledConnection<'_, B::Manager>> {
        self.db.get().await
    }
}

/// An error and its causes on one line: "error connecting to server: Connection refused".
fn describe(error: &dyn std::error::Error) -> String {
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

/// Maps a diesel error to the backend-independent [`StoreError`].
fn map_error(error: DieselError) -> StoreError {
    match &error {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
            let what = info.constraint_name().unwrap_or_else(|| info.message());
            StoreError::Conflict(conflict_message(what))
        }
        DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, _) => {
            StoreError::Conflict("the key's owner does not exist".into())
        }
        DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => {
            StoreError::Unavailable(Box::new(error))
        }
        DieselError::DeserializationError(e) => StoreError::InvalidData(e.to_string()),
        _ => StoreError::Database(Box::new(error)),
    }
}

/// A message naming what was duplicated, from the constraint (or the database's
/// message, which names it): never the duplicated value, which may be a key hash.
fn conflict_message(what: &str) -> String {
    let what = what.to_ascii_lowercase();
    let subject = if what.contains("hash") {
        "a key with the same hash"
    } else if what.contains("user_name") {
        "a user with that user name"
    } else if what.contains("api_keys") {
        "a key with that id"
    } else if what.contains("users") {
        "a user with that id"
    } else if what.contains("primary") {
        "a record with that id"
    } else {
        "a record with a unique value"
    };
    format!("{subject} already exists")
}

/// Timestamps as each backend stores them: `TIMESTAMPTZ` (PostgreSQL), `DATETIME(6)`
/// in UTC (MySQL), microseconds since the epoch (SQLite, where text timestamps would
/// compare as strings).
trait Timestamp: Sized {
    fn from_instant(at: DateTime<Utc>) -> Self;
    fn into_instant(self) -> StoreResult<DateTime<Utc>>;
}

impl Timestamp for DateTime<Utc> {
    fn from_instant(at: DateTime<Utc>) -> Self {
        at
    }
    fn into_instant(self) -> StoreResult<DateTime<Utc>> {
        Ok(self)
    }
}

impl Timestamp for chrono::NaiveDateTime {
    fn from_instant(at: DateTime<Utc>) -> Self {
        at.naive_utc()
    }
    fn into_instant(self) -> StoreResult<DateTime<Utc>> {
        Ok(self.and_utc())
    }
}

impl Timestamp for i64 {
    fn from_instant(at: DateTime<Utc>) -> Self {
        at.timestamp_micros()
    }
    fn into_instant(self) -> StoreResult<DateTime<Utc>> {
        DateTime::from_timestamp_micros(self)
            .ok_or_else(|| StoreError::InvalidData(format!("timestamp {self} is out of range")))
    }
}

/// Reads a stored value of a validated type back, or says which column is wrong.
fn decode<'a, T, E: fmt::Display>(
    column: &str,
    value: &'a str,
    parse: impl FnOnce(&'a str) -> Result<T, E>,
) -> StoreResult<T> {
    parse(value).map_err(|e| StoreError::InvalidData(format!("{column}: {e}")))
}

fn encode_meta(meta: &keyroute_core::Meta) -> String {
    // A map of strings always serialises.
    serde_json::to_string(meta).unwrap_or_else(|_| "{}".to_owned())
}

fn decode_meta(column: &str, json: &str) -> StoreResult<keyroute_core::Meta> {
    decode(column, json, serde_json::from_str)
}

fn encode_scopes(scopes: &keyroute_core::Scopes) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn decode_scopes(text: &str) -> StoreResult<keyroute_core::Scopes> {
    decode("scopes", text, |t| {
        keyroute_core::Scopes::parse(t.split_whitespace())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Passwords never survive into Debug output or scrubbed messages.
    #[test]
    fn urls_are_redacted() {
        let url = DatabaseUrl::new("postgres://app:s3cr3t@db:5432/keys");
        assert_eq!(
            format!("{url:?}"),
            "DatabaseUrl(\"postgres://app:***@db:5432/keys\")"
        );
        assert_eq!(
            url.redact("cannot reach postgres://app:s3cr3t@db"),
            "cannot reach postgres://app:***@db"
        );
        let query = DatabaseUrl::new("postgres://db/keys?user=app&password=hunter2");
        assert!(!format!("{query:?}").contains("hunter2"));
        assert_eq!(
            DatabaseUrl::new("sqlite.db").redact("sqlite.db"),
            "sqlite.db"
        );
    }

    /// Conflict messages name the rule, never the value.
    #[test]
    fn conflicts_name_the_rule() {
        assert_eq!(
            conflict_message("keyroute_api_keys_hash_key"),
            "a key with the same hash already exists"
        );
        assert_eq!(
            conflict_message("UNIQUE constraint failed: keyroute_users.user_name"),
            "a user with that user name already exists"
        );
        assert_eq!(
            conflict_message("keyroute_api_keys_pkey"),
            "a key with that id already exists"
        );
    }

    /// SQLite's microsecond timestamps round-trip.
    #[test]
    fn micros_round_trip() {
        let at = DateTime::from_timestamp_micros(1_767_323_045_678_901).unwrap();
        assert_eq!(
            <i64 as Timestamp>::from_instant(at).into_instant().unwrap(),
            at
        );
        assert!(i64::MAX.into_instant().is_err());
    }
}
