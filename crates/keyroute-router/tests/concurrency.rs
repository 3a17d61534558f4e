//! 1 000 concurrent requests over a pool of 8 connections per database finish without
//! deadlock or error, each in its own database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod support;

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use keyroute_core::{Environment, KeyOptions, KeyService, KeyType, NewUser};
use keyroute_router::{ConnectionRouter, Gateway, IncomingRequest, KeyResolver};
use keyroute_store::{PoolSettings, Postgres};
use support::bearer;

/// 1 000 requests, half with a live key and half with a test key, all at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_requests_over_a_pool_of_eight() {
    let dbs = keyroute_testing::postgres_live_and_test().await.unwrap();
    let store = dbs.live.store().await.unwrap();
    let mut options = KeyOptions::default();
    options.session_cache_duration = Some(Duration::from_secs(60));
    let ada = KeyService::new(store.clone(), options.clone())
        .unwrap()
        .register_user(NewUser::named("ada"))
        .await
        .unwrap();
    let mut settings = PoolSettings::default();
    settings.max_size = 8;
    settings.connection_timeout = Duration::from_secs(30);
    let router = ConnectionRouter::<Postgres>::builder()
        .pool_settings(settings)
        .connection("live", dbs.live.url().clone())
        .connection("test", dbs.test.url().clone())
        .build()
        .unwrap();
    for name in ["live", "test"] {
        let mut conn = router.connection_named(name).await.unwrap();
        conn.batch_execute("CREATE TABLE hits (id SERIAL PRIMARY KEY, env TEXT NOT NULL)")
            .await
            .unwrap();
    }
    let gateway = Gateway::new(
        KeyResolver::builder(store, options)
            .dangerous_cache_without_feed()
            .build()
            .unwrap(),
        router,
    );
    let keys = [Environment::LIVE, Environment::TEST].map(|env| {
        ada.key(&KeyType::SECRET, &env)
            .unwrap()
            .plaintext
            .expose_secret()
            .to_owned()
    });

    let tasks: Vec<_> = (0..1_000)
        .map(|i| {
            let (gateway, key) = (gateway.clone(), keys[i % 2].clone());
            tokio::spawn(async move {
                let headers = bearer(&key);
                let (principal, mut conn) = gateway
                    .connect(&IncomingRequest::new(&headers).over_tls(true))
                    .await?;
                diesel::sql_query("INSERT INTO hits (env) VALUES ($1)")
                    .bind::<diesel::sql_types::Text, _>(principal.environment().as_str())
                    .execute(&mut conn)
                    .await
                    .unwrap();
                Ok::<_, keyroute_router::RouteError>(())
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    for (name, env) in [("live", "live"), ("test", "test")] {
        let mut conn = gateway.router().connection_named(name).await.unwrap();
        let all: Count = diesel::sql_query("SELECT count(*) AS n FROM hits")
            .get_result(&mut conn)
            .await
            .unwrap();
        let own: Count = diesel::sql_query("SELECT count(*) AS n FROM hits WHERE env = $1")
            .bind::<diesel::sql_types::Text, _>(env)
            .get_result(&mut conn)
            .await
            .unwrap();
        assert_eq!((all.n, own.n), (500, 500), "{name}");
    }
}
