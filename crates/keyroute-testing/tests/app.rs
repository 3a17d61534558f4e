//! `TestApp` on SQLite, PostgreSQL and MariaDB: fresh databases per test, migrations on
//! every connection, typed errors for bad migrations and configuration, the key
//! helpers and the HTTP client, the same cases on every backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::path::Path;

use keyroute_testing::{TestApp, TestAppError, TestBackend};

/// The fixtures' directory.
fn fixtures(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

/// A builder with the widgets migrations.
fn widgets<B: TestBackend>() -> keyroute_testing::TestAppBuilder<B> {
    TestApp::<B>::builder().migrations(fixtures("migrations"))
}

/// The same cases on each backend: `$backend` is the marker, `$conn` its connection.
macro_rules! fixture_cases {
    ($module:ident, $backend:ty) => {
        mod $module {
            use std::time::Duration;

            use axum::routing::get;
            use diesel::prelude::*;
            use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
            use keyroute::axum::{Connected, key_routes};
            use keyroute::Keyroute;
            use keyroute_testing::{STORE_DATABASE, TestApp, TestAppError};

            use super::{fixtures, widgets};

            type Backend = $backend;

            diesel::table! {
                widgets (id) {
                    id -> Integer,
                    name -> Text,
                }
            }

            /// Rows in `widgets` on connection `name`.
            async fn count(app: &TestApp<Backend>, name: &str) -> i64 {
                let mut conn = app.connection(name).await.unwrap();
                widgets::table.count().get_result(&mut *conn).await.unwrap()
            }

            fn router(keyroute: Keyroute<Backend>) -> axum::Router {
                async fn whoami(Connected { caller, db }: Connected<Backend>) -> String {
                    format!("{} key on the {} database", caller.environment(), db.name())
                }
                axum::Router::new()
                    .route("/whoami", get(whoami))
                    .merge(key_routes())
                    .with_state(keyroute)
            }

            /// Two apps built side by side get different databases: rows written in
            /// one are not in the other.
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn every_app_gets_fresh_databases() {
                let (a, b) = tokio::join!(widgets::<Backend>().build(), widgets::<Backend>().build());
                let (a, b) = (a.unwrap(), b.unwrap());
                let mut conn = a.connection("live").await.unwrap();
                conn.batch_execute("INSERT INTO widgets (id, name) VALUES (1, 'a')")
                    .await
                    .unwrap();
                drop(conn);
                assert_eq!(count(&a, "live").await, 1);
                assert_eq!(count(&b, "live").await, 0);
                assert_eq!(count(&a, "test").await, 0, "live and test are apart");
                assert_ne!(
                    a.database("live").unwrap().name(),
                    b.database("live").unwrap().name()
                );
                // Users live in each app's own store.
                a.user("ada").await.unwrap();
                b.user("ada").await.unwrap();
            }

            /// The app's migrations reach every connection: environments, tenants, and
            /// the configuration's own connections; the store gets a database of its own
            /// when the configuration gives it a URL.
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn migrations_reach_every_connection() {
                let app = widgets::<Backend>()
                    .config_file(fixtures("keyroute.toml"))
                    .tenants(["acme", "globex"])
                    .build()
                    .await
                    .unwrap();
                let names: Vec<&str> = app.database_names().collect();
                assert_eq!(
                    names,
                    [
                        "acme_live",
                        "acme_test",
                        "globex_live",
                        "globex_test",
                        STORE_DATABASE,
                        "live",
                        "reports",
                        "test",
                    ]
                );
                for name in names.iter().filter(|n| **n != STORE_DATABASE) {
                    assert_eq!(count(&app, name).await, 0, "{name} has the widgets table");
                }
                // The configuration's other options are kept.
                assert_eq!(app.keyroute().keys().options().key_types.len(), 2);
                // Tenants' keys route to their tenant's databases.
                let bob = app.user_in("bob", "acme").await.unwrap();
                let key = app.key(&bob).test().await.unwrap();
                let server = app.serve(router(app.keyroute().clone())).await.unwrap();
                let reply = server.with_key(&key.plaintext).get("/whoami").send().await.unwrap();
                assert_eq!(reply.text().await.unwrap(), "test key on the acme_test database");
            }

            /// A missing directory, a folder without up.sql and failing SQL are typed
            /// errors naming the path or file.
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn bad_migrations_name_the_file() {
                let missing = TestApp::<Backend>::builder()
                    .migrations(fixtures("no-such-dir"))
                    .build()
                    .await
                    .unwrap_err();
                assert!(
                    matches!(&missing, TestAppError::MigrationsDir { path, .. } if path.ends_with("no-such-dir")),
                    "{missing:?}"
                );
                assert!(missing.to_string().contains("no-such-dir"), "{missing}");

                let no_up = TestApp::<Backend>::builder()
                    .migrations(fixtures("missing_up"))
                    .build()
                    .await
                    .unwrap_err();
                assert!(no_up.to_string().contains("has no up.sql"), "{no_up}");

                let broken = TestApp::<Backend>::builder()
                    .migrations(fixtures("broken"))
                    .build()
                    .await
                    .unwrap_err();
                let TestAppError::Migration { file, .. } = &broken else {
                    panic!("{broken:?}");
                };
                assert!(
                    file.ends_with("2024-02-01-000000_gadgets/up.sql"),
                    "{broken}"
                );
                assert!(broken.to_string().contains("gadgets/up.sql"), "{broken}");
            }

            /// Bad names given to the builder and the key helpers are typed errors.
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn bad_names_are_typed_errors() {
                let tenant = TestApp::<Backend>::builder()
                    .tenants(["Acme Corp"])
                    .build()
                    .await
                    .unwrap_err();
                assert!(matches!(tenant, TestAppError::Tenant { .. }), "{tenant:?}");
                let config = TestApp::<Backend>::builder()
                    .config("[apikey]\nkey_sizes = 3\n")
                    .build()
                    .await
                    .unwrap_err();
                assert!(matches!(config, TestAppError::Config(_)), "{config:?}");
                assert!(config.to_string().contains("key_sizes"), "{config}");

                let app = TestApp::<Backend>::builder().build().await.unwrap();
                let ada = app.user("ada").await.unwrap();
                let scope = app.key(&ada).scopes(["Orders Read"]).await.unwrap_err();
                assert!(
                    matches!(scope, TestAppError::Name { what: "scope", .. }),
                    "{scope:?}"
                );
                let env = app.key(&ada).environment("staging").await.unwrap_err();
                assert!(matches!(env, TestAppError::Keys(_)), "{env:?}");
                let taken = app.user("ada").await.unwrap_err();
                assert!(matches!(taken, TestAppError::Keys(_)), "{taken:?}");
            }

            /// Keys made by the helpers work over real HTTP, each reaching its
            /// environment's database; a revoked key is refused at the next request;
            /// the client's Debug output hides the key.
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn keys_and_the_client_over_http() {
                let app = TestApp::<Backend>::builder().build().await.unwrap();
                let ada = app.user("ada").await.unwrap();
                let live = app
                    .key(&ada)
                    .scopes(["orders:read"])
                    .expires_in(Duration::from_secs(3600))
                    .named("ci")
                    .await
                    .unwrap();
                let test = app.key(&ada).test().await.unwrap();
                let server = app.serve(router(app.keyroute().clone())).await.unwrap();

                let client = server.with_key(&live.plaintext);
                assert!(!format!("{client:?}").contains(live.plaintext.expose_secret()));
                let reply = client.get("/whoami").send().await.unwrap();
                assert_eq!(reply.status(), 200);
                assert_eq!(reply.text().await.unwrap(), "live key on the live database");
                let reply = server.with_key(&test.plaintext).get("/whoami").send().await.unwrap();
                assert_eq!(reply.text().await.unwrap(), "test key on the test database");
                assert_eq!(server.get("/whoami").send().await.unwrap().status(), 401);
                assert_eq!(
                    server.with_token("not-a-key").get("/whoami").send().await.unwrap().status(),
                    401
                );

                app.keyroute().keys().revoke(&live.key.id).await.unwrap();
                assert_eq!(client.get("/whoami").send().await.unwrap().status(), 401);
            }
        }
    };
}

fixture_cases!(on_sqlite, keyroute::store::Sqlite);
fixture_cases!(on_postgres, keyroute::store::Postgres);
fixture_cases!(on_mariadb, keyroute::store::Mysql);

/// The attribute builds the app and hands it in, with migrations read relative to the
/// crate's Cargo.toml.
#[keyroute_testing::test(migrations = "tests/fixtures/migrations", tenants = ["acme"])]
async fn the_attribute_hands_in_an_app(app: TestApp<keyroute::store::Sqlite>) {
    assert!(app.database("acme_live").is_some());
    let mut conn = app.connection("acme_test").await.unwrap();
    diesel_async::SimpleAsyncConnection::batch_execute(&mut *conn, "SELECT COUNT(*) FROM widgets")
        .await
        .unwrap();
}

/// A test under the attribute may return a `Result`, and use `?`.
#[keyroute_testing::test]
async fn the_attribute_takes_results(
    app: TestApp<keyroute::store::Postgres>,
) -> Result<(), TestAppError> {
    let ada = app.user("ada").await?;
    app.key(&ada).test().await?;
    Ok(())
}

/// A dropped app's databases are dropped from the shared server, so a long test binary
/// does not fill it; the template they were copied from stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_apps_databases_are_dropped() {
    use diesel::QueryableByName;
    use diesel::sql_types::Text;
    use diesel_async::{AsyncConnection, RunQueryDsl};

    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        datname: String,
    }
    let watcher = keyroute_testing::postgres().await.unwrap();
    let app = TestApp::<keyroute::store::Postgres>::builder()
        .build()
        .await
        .unwrap();
    let names: Vec<String> = app
        .database_names()
        .map(|n| app.database(n).unwrap().name().to_owned())
        .collect();
    let mut conn = diesel_async::AsyncPgConnection::establish(watcher.url().expose_secret())
        .await
        .unwrap();
    let present = async |conn: &mut diesel_async::AsyncPgConnection| {
        let all: Vec<Name> = diesel::sql_query("SELECT datname FROM pg_database")
            .load(conn)
            .await
            .unwrap();
        names
            .iter()
            .filter(|n| all.iter().any(|d| &d.datname == *n))
            .count()
    };
    assert_eq!(present(&mut conn).await, names.len());
    drop(app);
    // A guard against hanging, not a speed claim: drops take milliseconds.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while present(&mut conn).await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "still there: {names:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
