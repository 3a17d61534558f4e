//! The backends the benchmark runs on: the tables, the plain pools' connections, and
//! the handlers' queries written once in diesel and compiled per backend and per
//! connection type (keyroute's and the plain pools').

use std::future::Future;

use diesel::prelude::*;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, PoolError, RecyclingMethod,
};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{
    AsyncConnection, AsyncMysqlConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection,
};
use keyroute::store::{Backend, Mysql, Postgres, RecyclingCheck, Sqlite, StoreBackend};

mod schema {
    diesel::table! {
        /// The handler's own data: one small indexed read per request.
        orders (id) {
            id -> BigInt,
            item -> Text,
        }
    }
    diesel::table! {
        /// The naive mode's keys: plaintext, looked up per request.
        plain_keys (key) {
            key -> Text,
            user_id -> Text,
            environment -> Text,
        }
    }
}
use schema::{orders, plain_keys};

/// The pragmas keyroute's SQLite pools set on every connection
/// (`crates/keyroute-pool/src/sqlite.rs`), set on the plain pools' connections too, so
/// the pool and its executor are the only difference.
pub const SQLITE_PRAGMAS: &str = "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; \
                                  PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;";

/// A backend the benchmark runs on: its schema, its plain pools' connections and the
/// handlers' queries.
pub trait BenchDb: StoreBackend + Sized {
    /// A plain pool's connection: diesel-async's own type for this database, with
    /// SQLite's on diesel-async's default executor (`spawn_blocking`).
    type Plain: Send + 'static;
    /// A plain pool's connection manager: diesel-async's `AsyncDieselConnectionManager`.
    type PlainManager: bb8::ManageConnection<Connection = Self::Plain, Error = PoolError>;

    /// Creates `orders` and fills it with `n` rows (ids 1..=n).
    fn orders_sql(n: u64) -> String;

    /// Creates `plain_keys`.
    fn plain_keys_sql() -> &'static str;

    /// The plain pools' manager for `url`: connections as diesel-async opens them
    /// (plus [`SQLITE_PRAGMAS`] on SQLite), checked on checkout as `check` says.
    fn plain_manager(url: &str, check: RecyclingCheck) -> Self::PlainManager;

    /// The item of order `id`, on a plain pool's connection.
    fn plain_order(
        conn: &mut Self::Plain,
        id: i64,
    ) -> impl Future<Output = QueryResult<String>> + Send;

    /// The naive lookup on a plain pool's connection.
    fn plain_lookup(
        conn: &mut Self::Plain,
        key: &str,
    ) -> impl Future<Output = QueryResult<Option<(String, String)>>> + Send;

    /// The item of order `id`.
    fn order(
        conn: &mut Self::Connection,
        id: i64,
    ) -> impl Future<Output = QueryResult<String>> + Send;

    /// The naive lookup: the user and environment of the plaintext `key`, if any.
    fn plain_key(
        conn: &mut Self::Connection,
        key: &str,
    ) -> impl Future<Output = QueryResult<Option<(String, String)>>> + Send;

    /// Stores `(key, user_id, environment)` rows in `plain_keys`.
    fn insert_plain_keys(
        conn: &mut Self::Connection,
        rows: &[(String, String, String)],
    ) -> impl Future<Output = QueryResult<usize>> + Send;
}

/// The queries are the same diesel code on every backend and connection type; only
/// the connection type (and so the trait impl) differs.
macro_rules! queries {
    ($order:ident, $plain_key:ident, $conn:ty) => {
        fn $order(conn: &mut $conn, id: i64) -> impl Future<Output = QueryResult<String>> + Send {
            // `find` + `get_result`: no bound LIMIT, so the statement is prepared once
            // per connection and reused.
            orders::table
                .find(id)
                .select(orders::item)
                .get_result::<String>(conn)
        }

        fn $plain_key(
            conn: &mut $conn,
            key: &str,
        ) -> impl Future<Output = QueryResult<Option<(String, String)>>> + Send {
            let query = plain_keys::table
                .find(key.to_owned())
                .select((plain_keys::user_id, plain_keys::environment));
            async move { query.get_result(conn).await.optional() }
        }
    };
}

/// `insert_plain_keys` as one multi-row `INSERT` (PostgreSQL, MariaDB; SQLite's
/// wrapper has none and writes its own).
macro_rules! multi_row_insert {
    () => {
        fn insert_plain_keys(
            conn: &mut Self::Connection,
            rows: &[(String, String, String)],
        ) -> impl Future<Output = QueryResult<usize>> + Send {
            let values: Vec<_> = rows.iter().map(plain_key_row).collect();
            diesel::insert_into(plain_keys::table)
                .values(values)
                .execute(conn)
        }
    };
}

/// The plain pools' manager: `setup` opens a connection; the check is keyroute's
/// where diesel-async has it (`Fast`), else diesel-async's default `Verified`.
macro_rules! plain_manager {
    ($setup:expr) => {
        fn plain_manager(url: &str, check: RecyclingCheck) -> Self::PlainManager {
            let mut config = ManagerConfig::<Self::Plain>::default();
            config.custom_setup = Box::new($setup);
            config.recycling_method = match check {
                RecyclingCheck::Fast => RecyclingMethod::Fast,
                _ => RecyclingMethod::Verified,
            };
            AsyncDieselConnectionManager::new_with_config(url, config)
        }
    };
}

/// Opens a plain SQLite connection on diesel-async's default executor and sets
/// [`SQLITE_PRAGMAS`], as keyroute's pool does on its own.
async fn plain_sqlite(
    url: String,
) -> ConnectionResult<SyncConnectionWrapper<diesel::SqliteConnection>> {
    let mut conn = SyncConnectionWrapper::<diesel::SqliteConnection>::establish(&url).await?;
    conn.batch_execute(SQLITE_PRAGMAS)
        .await
        .map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

/// Opens a plain connection as diesel-async does by default.
fn plain_default<C: AsyncConnection + 'static>(
    url: &str,
) -> std::pin::Pin<Box<dyn Future<Output = ConnectionResult<C>> + Send + '_>> {
    Box::pin(C::establish(url))
}

impl BenchDb for Sqlite {
    type Plain = SyncConnectionWrapper<diesel::SqliteConnection>;
    type PlainManager = AsyncDieselConnectionManager<Self::Plain>;

    plain_manager!(|url: &str| Box::pin(plain_sqlite(url.to_owned())));

    fn plain_keys_sql() -> &'static str {
        PLAIN_KEYS_SQL
    }

    /// diesel-async's SQLite wrapper has no multi-row INSERT: one row at a time, in
    /// one transaction so the set-up stays quick.
    async fn insert_plain_keys(
        conn: &mut Self::Connection,
        rows: &[(String, String, String)],
    ) -> QueryResult<usize> {
        conn.batch_execute("BEGIN").await?;
        let mut stored = 0_usize;
        for row in rows {
            match insert_plain_key(conn, row).await {
                Ok(n) => stored = stored.saturating_add(n),
                Err(e) => {
                    conn.batch_execute("ROLLBACK").await?;
                    return Err(e);
                }
            }
        }
        conn.batch_execute("COMMIT").await?;
        Ok(stored)
    }

    fn orders_sql(n: u64) -> String {
        // INTEGER PRIMARY KEY: the rowid itself, SQLite's indexed read by id.
        format!(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT NOT NULL);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n})
             INSERT INTO orders (id, item) SELECT i, 'order ' || i FROM n;"
        )
    }
    queries!(order, plain_key, Self::Connection);
    queries!(plain_order, plain_lookup, Self::Plain);
}

impl BenchDb for Postgres {
    type Plain = AsyncPgConnection;
    type PlainManager = AsyncDieselConnectionManager<Self::Plain>;

    plain_manager!(plain_default::<Self::Plain>);

    fn plain_keys_sql() -> &'static str {
        PLAIN_KEYS_SQL
    }

    multi_row_insert!();

    fn orders_sql(n: u64) -> String {
        format!(
            "CREATE TABLE orders (id BIGINT PRIMARY KEY, item TEXT NOT NULL);
             INSERT INTO orders (id, item) SELECT i, 'order ' || i FROM generate_series(1, {n}) AS i;
             ANALYZE orders;"
        )
    }
    queries!(order, plain_key, Self::Connection);
    queries!(plain_order, plain_lookup, Self::Plain);
}

impl BenchDb for Mysql {
    type Plain = AsyncMysqlConnection;
    type PlainManager = AsyncDieselConnectionManager<Self::Plain>;

    plain_manager!(plain_default::<Self::Plain>);

    /// `key` is a reserved word, and a key compares byte for byte (MariaDB's default
    /// collation ignores case): an ASCII binary column.
    fn plain_keys_sql() -> &'static str {
        "CREATE TABLE plain_keys (`key` VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin \
         PRIMARY KEY, user_id VARCHAR(255) NOT NULL, environment VARCHAR(16) NOT NULL)"
    }

    multi_row_insert!();

    /// A recursive CTE counts the ids; MariaDB stops recursion at
    /// `max_recursive_iterations`, so the session allows `n`.
    fn orders_sql(n: u64) -> String {
        format!(
            "CREATE TABLE orders (id BIGINT PRIMARY KEY, item TEXT NOT NULL);
             SET SESSION max_recursive_iterations = {n};
             INSERT INTO orders (id, item)
               WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {n})
               SELECT i, CONCAT('order ', i) FROM seq;
             ANALYZE TABLE orders;"
        )
    }
    queries!(order, plain_key, Self::Connection);
    queries!(plain_order, plain_lookup, Self::Plain);
}

type PlainKeyRow<'a> = (
    diesel::dsl::Eq<plain_keys::key, &'a str>,
    diesel::dsl::Eq<plain_keys::user_id, &'a str>,
    diesel::dsl::Eq<plain_keys::environment, &'a str>,
);

fn plain_key_row((key, user, env): &(String, String, String)) -> PlainKeyRow<'_> {
    (
        plain_keys::key.eq(key.as_str()),
        plain_keys::user_id.eq(user.as_str()),
        plain_keys::environment.eq(env.as_str()),
    )
}

async fn insert_plain_key(
    conn: &mut <Sqlite as Backend>::Connection,
    row: &(String, String, String),
) -> QueryResult<usize> {
    diesel::insert_into(plain_keys::table)
        .values(plain_key_row(row))
        .execute(conn)
        .await
}

const PLAIN_KEYS_SQL: &str = "CREATE TABLE plain_keys (key TEXT PRIMARY KEY, \
     user_id TEXT NOT NULL, environment TEXT NOT NULL)";
