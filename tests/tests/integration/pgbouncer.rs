//! keyroute behind a real PgBouncer 1.18 in transaction mode, built from `keyroute.toml`
//! settings as a service would be: `[pools] pooler = "transaction"`, the connections
//! and the store through the pooler, `[store] direct_url` for the feed and migrations.
//!
//! - `build()` refuses the pooler without a direct URL, and refuses a feed whose
//!   `LISTEN` goes through a pooler nobody declared.
//! - Three instances route test keys to the test database and live keys to the live one
//!   under concurrent load, through the pooler, with no error; a key revoked on one is
//!   refused by the others within the documented bound (the feed on the direct URL).
//! - A handler that leaves session state on its connection (`search_path`,
//!   `statement_timeout`) leaks nothing to the next request, though PgBouncer has one
//!   server connection for all of them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test
#![allow(clippy::print_stdout)] // the measured figures are this test's report

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::common::bearer;
use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};
use keyroute::store::{DatabaseUrl, Postgres};
use keyroute::{
    AuthError, BuildError, Config, Environment, IncomingRequest, KeyType, Keyroute, NewUser,
};
use keyroute_testing::dedicated::{DedicatedServer, postgres_restartable};
use keyroute_testing::{PgBouncerOptions, TestPgBouncer, pgbouncer};
use tokio::sync::OnceCell;

/// The documented bound on revocation across instances, and a margin for a loaded
/// 2-core machine (as `many_instances`).
const BOUND: Duration = Duration::from_secs(1);
const MARGIN: Duration = Duration::from_secs(4);

static SERVER: OnceCell<DedicatedServer> = OnceCell::const_new();

async fn server() -> &'static DedicatedServer {
    SERVER
        .get_or_init(|| async {
            postgres_restartable()
                .await
                .expect("a PostgreSQL container")
        })
        .await
}

/// A PgBouncer in transaction mode with `servers` server connections per database.
async fn bouncer(servers: u32) -> TestPgBouncer {
    let mut options = PgBouncerOptions::default();
    options.default_pool_size = servers;
    options.max_client_conn = 400;
    pgbouncer(server().await, options).await.unwrap()
}

/// A new database: pooled and direct URLs.
async fn database(bouncer: &TestPgBouncer, what: &str) -> (DatabaseUrl, DatabaseUrl, String) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!("{what}_{}", NEXT.fetch_add(1, Ordering::Relaxed));
    let (pooled, direct) = bouncer.create_database(&name).await.unwrap();
    (pooled, direct, name)
}

/// keyroute.toml for live and test through the pooler, keys in the live database.
fn config(
    live: &DatabaseUrl,
    test: &DatabaseUrl,
    direct: Option<&DatabaseUrl>,
    pooler: &str,
) -> Config {
    let direct = direct.map_or_else(String::new, |d| {
        format!("direct_url = {:?}\n", d.expose_secret())
    });
    Config::from_toml_str(&format!(
        "[apikey]\ndangerous_accept_plain_http = true\n\
         [store]\n{direct}\
         [connections]\nlive = {:?}\ntest = {:?}\n\
         [pools]\npooler = {pooler:?}\nmax_size = 4\n",
        live.expose_secret(),
        test.expose_secret(),
    ))
    .unwrap()
}

#[derive(QueryableByName)]
struct Text1 {
    #[diesel(sql_type = Text)]
    value: String,
}

async fn text(conn: &mut diesel_async::AsyncPgConnection, sql: &str) -> String {
    diesel::sql_query(sql)
        .get_result::<Text1>(conn)
        .await
        .unwrap()
        .value
}

/// Without a direct URL the pooler's mode cannot carry the feed: refused at build, with
/// the option to set. A pooler nobody declared is found out by the feed's probe.
/// Without a cache or migrations, no direct URL is needed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_refuses_a_feed_the_pooler_cannot_carry() {
    let bouncer = bouncer(4).await;
    let (live, _, _) = database(&bouncer, "refused").await;
    let declared =
        Keyroute::<Postgres>::from_config(config(&live, &live, None, "transaction")).await;
    let Err(BuildError::Config(error)) = declared else {
        panic!("built without a direct URL: {declared:?}")
    };
    assert!(error.to_string().contains("direct_url"), "{error}");

    let undeclared = Keyroute::<Postgres>::from_config(config(&live, &live, None, "session")).await;
    let error = undeclared
        .map(drop)
        .expect_err("a feed through the pooler refused")
        .to_string();
    assert!(
        error.contains("LISTEN") && error.contains("[store] direct_url"),
        "{error}"
    );

    // With no cache to keep fresh and no migrations to apply, nothing needs a session.
    let mut neither = config(&live, &live, None, "transaction");
    neither.apikey.session_cache_duration = None;
    neither.apikey.init_schema = false;
    Keyroute::<Postgres>::from_config(neither).await.unwrap();
}

/// Three instances through the pooler: every request of a test key reads the test
/// database and every live one the live database, concurrently, with no error; keys
/// revoked on one instance are refused by the others within the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_and_revocation_through_the_pooler() {
    let bouncer = bouncer(4).await;
    let (live, direct, live_name) = database(&bouncer, "live").await;
    let (test, _, test_name) = database(&bouncer, "test").await;
    let mut apps = Vec::new();
    for _ in 0..3 {
        let app =
            Keyroute::<Postgres>::from_config(config(&live, &test, Some(&direct), "transaction"))
                .await
                .unwrap();
        app.spawn_background().unwrap();
        apps.push(app);
    }
    for app in &apps {
        let started = Instant::now();
        while !app.resolver().is_caching() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the feed never went live"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let mut keys = Vec::new();
    for i in 0..10 {
        let user = apps[0]
            .keys()
            .register_user(NewUser::named(format!("u{i}")))
            .await
            .unwrap();
        for (env, db) in [
            (Environment::LIVE, &live_name),
            (Environment::TEST, &test_name),
        ] {
            let key = user.key(&KeyType::SECRET, &env).unwrap();
            keys.push((
                key.key.id.clone(),
                key.plaintext.expose_secret().to_owned(),
                db.clone(),
            ));
        }
    }

    let mut tasks = Vec::new();
    for (n, app) in apps.iter().enumerate() {
        for t in 0..4 {
            let (app, keys) = (app.clone(), keys.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..50 {
                    let (_, secret, db) = &keys[(n * 7 + t * 3 + i) % keys.len()];
                    let headers = bearer(secret);
                    let (_, mut conn) = app.connect(&IncomingRequest::new(&headers)).await.unwrap();
                    assert_eq!(
                        &text(&mut conn, "SELECT current_database()::text AS value").await,
                        db
                    );
                    if i % 2 == 0 {
                        conn.commit().await.unwrap();
                    }
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }

    let mut took = Vec::new();
    for (i, (id, secret, _)) in keys.iter().enumerate() {
        for app in &apps {
            app.resolver().resolve(secret).await.unwrap();
        }
        let revoker = i % apps.len();
        apps[revoker].keys().revoke(id).await.unwrap();
        let revoked = Instant::now();
        for (j, app) in apps.iter().enumerate() {
            if j == revoker {
                continue;
            }
            loop {
                match app.resolver().resolve(secret).await {
                    Err(AuthError::Revoked) => break,
                    Ok(_) => {}
                    Err(other) => panic!("unexpected {other:?}"),
                }
                assert!(
                    revoked.elapsed() < BOUND + MARGIN,
                    "still accepted after {:?}",
                    revoked.elapsed()
                );
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
            took.push(revoked.elapsed());
        }
    }
    took.sort();
    println!(
        "through PgBouncer (transaction mode), feed on the direct URL: {} propagations, p50 {:.1} ms, max {:.1} ms",
        took.len(),
        took[took.len() / 2].as_secs_f64() * 1e3,
        took[took.len() - 1].as_secs_f64() * 1e3
    );
}

/// A handler leaves session state behind and drops its connection (or commits it):
/// the next request, on the same server connection (PgBouncer holds one), sees none of
/// it, and keyroute's own lookups (which a leaked `search_path` would break) work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_leaves_no_session_state_behind() {
    let bouncer = bouncer(1).await;
    let (live, direct, _) = database(&bouncer, "state").await;
    let mut config = config(&live, &live, Some(&direct), "transaction");
    config.apikey.session_cache_duration = None; // every request looks its key up
    let app = Keyroute::<Postgres>::from_config(config).await.unwrap();
    let user = app
        .keys()
        .register_user(NewUser::named("ada"))
        .await
        .unwrap();
    let key = user.key(&KeyType::SECRET, &Environment::LIVE).unwrap();
    let headers = bearer(key.plaintext.expose_secret());
    let defaults = {
        let (_, mut conn) = app.connect(&IncomingRequest::new(&headers)).await.unwrap();
        text(&mut conn, "SELECT current_setting('search_path') AS value").await
    };
    for commit in [false, true] {
        let (_, mut conn) = app.connect(&IncomingRequest::new(&headers)).await.unwrap();
        conn.batch_execute("SET search_path = nowhere; SET statement_timeout = '1ms'")
            .await
            .unwrap();
        if commit {
            conn.commit().await.unwrap();
        } else {
            drop(conn);
        }
        for _ in 0..5 {
            let (_, mut conn) = app.connect(&IncomingRequest::new(&headers)).await.unwrap();
            assert_eq!(
                text(&mut conn, "SELECT current_setting('search_path') AS value").await,
                defaults
            );
            assert_eq!(
                text(
                    &mut conn,
                    "SELECT current_setting('statement_timeout') AS value"
                )
                .await,
                "0"
            );
            conn.commit().await.unwrap();
        }
    }
}

/// A principal of `tenant` with a live key, as the resolver would make it.
fn tenant_principal(tenant: &str) -> keyroute::Principal {
    keyroute::Principal::from_claims(keyroute::auth::AuthMethod::ApiKey, Environment::LIVE)
        .with_tenant(Some(keyroute::keys::Tenant::new(tenant).unwrap()))
}

/// Tenancy's binding is transaction-local, so it holds through the pooler: with one
/// server connection behind four clients, requests of two tenants interleave, each
/// sees its own schema (schema mode) and its own `keyroute.tenant` (row-security
/// mode), though the request before it on that server connection was the other
/// tenant's and left its own session `SET`s behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_binding_holds_through_the_pooler() {
    use keyroute::routing::{ConnectionRouter, Tenancy};

    let bouncer = bouncer(1).await;
    let (pooled, direct, _) = database(&bouncer, "tenancy").await;
    let mut setup = diesel_async::AsyncPgConnection::establish(direct.expose_secret())
        .await
        .unwrap();
    for tenant in ["acme", "globex"] {
        setup
            .batch_execute(&format!(
                "CREATE SCHEMA tenant_{tenant}; \
                 CREATE TABLE tenant_{tenant}.notes (body TEXT NOT NULL); \
                 INSERT INTO tenant_{tenant}.notes VALUES ('{tenant}');"
            ))
            .await
            .unwrap();
    }
    let mut settings = keyroute::store::PoolSettings::default();
    settings.max_size = 4;
    settings.pooler = keyroute::store::Pooler::Transaction;
    let router = |tenancy: Tenancy| {
        ConnectionRouter::<Postgres>::builder()
            .pool_settings(settings.clone())
            .connection("live", pooled.clone())
            .tenancy(Some(tenancy))
            .build()
            .unwrap()
    };
    let schema = router(Tenancy::schema("tenant_{tenant}").unwrap());
    let row_security = router(Tenancy::row_security());
    let mut tasks = Vec::new();
    for worker in 0..4 {
        let (schema, row_security) = (schema.clone(), row_security.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                let (me, other) = if (i + worker) % 2 == 0 {
                    ("acme", "globex")
                } else {
                    ("globex", "acme")
                };
                let p = tenant_principal(me);
                let mut conn = schema.connection(&p).await.unwrap();
                assert_eq!(text(&mut conn, "SELECT body AS value FROM notes").await, me);
                // Left for whoever gets the server connection next.
                conn.batch_execute(&format!("SET SESSION search_path TO tenant_{other}"))
                    .await
                    .unwrap();
                if i % 2 == 0 {
                    conn.commit().await.unwrap();
                } else {
                    drop(conn);
                }
                let mut conn = row_security.connection(&p).await.unwrap();
                assert_eq!(
                    text(
                        &mut conn,
                        "SELECT current_setting('keyroute.tenant') AS value"
                    )
                    .await,
                    me
                );
                conn.batch_execute(&format!("SET SESSION keyroute.tenant = '{other}'"))
                    .await
                    .unwrap();
                conn.commit().await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}
