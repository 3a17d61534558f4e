//! A query whose future is dropped midway (a client that disconnected while its
//! handler ran) leaves nothing the next checkout of its connection reads: on MariaDB,
//! whose driver is not cancel-safe, the checkout check finds a connection left out of
//! step and discards it, so every later query gets its own answer. Under both checks
//! that verify: `Verified` on every checkout, and the default `Idle`, which verifies
//! a connection whose last query was dropped before it finished (a query dropped
//! while its rows are read, mysql_async drains before the next command). Under
//! `Fast` this test fails within the first second.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use diesel::sql_types::{BigInt, Text};
use diesel::{IntoSql, QueryableByName};
use diesel_async::RunQueryDsl;
use keyroute_pool::{DbPool, Mysql, PoolSettings, RecyclingCheck};

#[derive(QueryableByName)]
struct Big {
    #[diesel(sql_type = Text)]
    #[allow(dead_code)] // read only to be dropped midway
    body: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_dropped_midway_does_not_reach_the_next_checkout_on_mariadb() {
    dropped_queries_never_reach_the_next_checkout(PoolSettings::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nor_under_the_verified_check() {
    let mut settings = PoolSettings::default();
    settings.recycling_check = RecyclingCheck::Verified;
    dropped_queries_never_reach_the_next_checkout(settings).await;
}

/// 300 queries of a few megabytes, each dropped at another point (before it is
/// sent, while its answer arrives, while its rows are read), each followed by a
/// query that must read its own answer, all on one connection.
async fn dropped_queries_never_reach_the_next_checkout(mut settings: PoolSettings) {
    let db = keyroute_testing::mariadb().await.unwrap();
    // One connection: every query below runs on the one a dropped query left behind.
    settings.max_size = 1;
    let pool = DbPool::<Mysql>::connect(db.url().clone(), settings)
        .await
        .unwrap();
    let mut dropped = 0;
    for i in 0..300_i64 {
        // An answer of a few megabytes, its future dropped at a different point each time.
        let after = Duration::from_micros(30 + u64::try_from(i % 40).unwrap() * 40);
        let big = tokio::time::timeout(after, async {
            let mut conn = pool.get().await.unwrap();
            diesel::sql_query("SELECT REPEAT('x', 4000000) AS body")
                .load::<Big>(&mut conn)
                .await
        })
        .await;
        if big.is_err() {
            dropped += 1;
        }
        let sent = 1_000_000 + i;
        let mut conn = pool.get().await.unwrap();
        let got: i64 = diesel::select(sent.into_sql::<BigInt>())
            .get_result(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("query {i} after a dropped one failed: {e}"));
        assert_eq!(got, sent, "query {i} read another query's answer");
    }
    assert!(dropped > 0, "no query was dropped midway");
}
