//! The backends the benchmark runs on: the tables, and the handlers' queries written
//! once in diesel and compiled per backend.

use std::future::Future;

use diesel::prelude::*;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use keyroute::store::{Backend, Postgres, Sqlite, StoreBackend};

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

/// A backend the benchmark runs on: its schema and the handlers' queries.
pub trait BenchDb: StoreBackend + Sized {
    /// Creates `orders` and fills it with `n` rows (ids 1..=n).
    fn orders_sql(n: u64) -> String;

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

/// The queries are the same diesel code on every backend; only the connection type
/// (and so the trait impl) differs.
macro_rules! queries {
    () => {
        fn order(
            conn: &mut Self::Connection,
            id: i64,
        ) -> impl Future<Output = QueryResult<String>> + Send {
            // `find` + `get_result`: no bound LIMIT, so the statement is prepared once
            // per connection and reused.
            orders::table
                .find(id)
                .select(orders::item)
                .get_result::<String>(conn)
        }

        fn plain_key(
            conn: &mut Self::Connection,
            key: &str,
        ) -> impl Future<Output = QueryResult<Option<(String, String)>>> + Send {
            let query = plain_keys::table
                .find(key.to_owned())
                .select((plain_keys::user_id, plain_keys::environment));
            async move { query.get_result(conn).await.optional() }
        }
    };
}

impl BenchDb for Sqlite {
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
    queries!();
}

impl BenchDb for Postgres {
    fn insert_plain_keys(
        conn: &mut Self::Connection,
        rows: &[(String, String, String)],
    ) -> impl Future<Output = QueryResult<usize>> + Send {
        let values: Vec<_> = rows.iter().map(plain_key_row).collect();
        diesel::insert_into(plain_keys::table)
            .values(values)
            .execute(conn)
    }

    fn orders_sql(n: u64) -> String {
        format!(
            "CREATE TABLE orders (id BIGINT PRIMARY KEY, item TEXT NOT NULL);
             INSERT INTO orders (id, item) SELECT i, 'order ' || i FROM generate_series(1, {n}) AS i;
             ANALYZE orders;"
        )
    }
    queries!();
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

pub(crate) const PLAIN_KEYS_SQL: &str = "CREATE TABLE plain_keys (key TEXT PRIMARY KEY, \
     user_id TEXT NOT NULL, environment TEXT NOT NULL)";
