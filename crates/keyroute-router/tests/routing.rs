//! End to end: one "create order" handler, called with a live key and with a test
//! key, writes to the live and the test database respectively, and nowhere else.
//! Checked by querying both databases directly, on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod support;

use diesel::prelude::*;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use keyroute_core::{
    AuthError, Environment, KeyId, KeyOptions, KeyRequest, KeyService, KeyType, NewUser,
    Registration,
};
use keyroute_router::{ConnectionRouter, Gateway, IncomingRequest, KeyResolver, RouteError};
use keyroute_store::SqlStore;
use keyroute_testing::TestDatabase;
use support::bearer;

/// The team's own table, in both databases.
mod schema {
    diesel::table! {
        orders (id) {
            id -> Text,
            note -> Text,
            placed_with -> Text,
        }
    }
}
use schema::orders;

const CREATE_ORDERS: &str = "CREATE TABLE orders (id VARCHAR(64) PRIMARY KEY, note TEXT NOT NULL, placed_with VARCHAR(32) NOT NULL)";

fn options() -> KeyOptions {
    let mut options = KeyOptions::default();
    options.environments = vec![
        Environment::LIVE,
        Environment::TEST,
        Environment::new("staging").unwrap(),
    ];
    options
}

/// The databases and keyroute set up the way a team would: keys stored in the live
/// database, an `orders` table in both, `live` and `test` connections.
macro_rules! routing_suite {
    ($backend:ty, $make:expr) => {
        struct World {
            gateway: Gateway<SqlStore<$backend>, $backend>,
            service: KeyService<SqlStore<$backend>>,
            ada: Registration,
            _dbs: (TestDatabase<$backend>, TestDatabase<$backend>),
        }

        async fn world() -> World {
            let (live, test) = $make;
            let store = live.store().await.unwrap();
            let router = ConnectionRouter::<$backend>::builder()
                .connection("live", live.url().clone())
                .connection("test", test.url().clone())
                .build()
                .unwrap();
            for name in ["live", "test"] {
                router
                    .connection_named(name)
                    .await
                    .unwrap()
                    .batch_execute(CREATE_ORDERS)
                    .await
                    .unwrap();
            }
            let resolver = KeyResolver::builder(store.clone(), options())
                .build()
                .unwrap();
            let service = KeyService::new(store, options()).unwrap();
            let ada = service.register_user(NewUser::named("ada")).await.unwrap();
            World {
                gateway: Gateway::new(resolver, router),
                service,
                ada,
                _dbs: (live, test),
            }
        }

        /// The handler under test: the same code whatever key it is called with.
        async fn create_order(
            gateway: &Gateway<SqlStore<$backend>, $backend>,
            headers: &http::HeaderMap,
            note: &str,
        ) -> Result<String, RouteError> {
            let (principal, mut conn) = gateway
                .connect(&IncomingRequest::new(headers).over_tls(true))
                .await?;
            let id = KeyId::random().to_string();
            diesel::insert_into(orders::table)
                .values((
                    orders::id.eq(&id),
                    orders::note.eq(note),
                    orders::placed_with.eq(principal.environment().as_str()),
                ))
                .execute(&mut conn)
                .await
                .unwrap();
            Ok(id)
        }

        /// Every row of the connection `name`, as (id, placed_with).
        async fn rows(
            gateway: &Gateway<SqlStore<$backend>, $backend>,
            name: &str,
        ) -> Vec<(String, String)> {
            let mut conn = gateway.router().connection_named(name).await.unwrap();
            orders::table
                .select((orders::id, orders::placed_with))
                .load(&mut conn)
                .await
                .unwrap()
        }

        /// A live key's order lands only in the live database, a test key's only in the test one.
        #[tokio::test(flavor = "multi_thread")]
        async fn each_key_writes_only_to_its_own_database() {
            let w = world().await;
            let live_key = &w
                .ada
                .key(&KeyType::SECRET, &Environment::LIVE)
                .unwrap()
                .plaintext;
            let test_key = &w
                .ada
                .key(&KeyType::SECRET, &Environment::TEST)
                .unwrap()
                .plaintext;
            let live_order = create_order(&w.gateway, &bearer(live_key.expose_secret()), "real")
                .await
                .unwrap();
            let test_order = create_order(&w.gateway, &bearer(test_key.expose_secret()), "trial")
                .await
                .unwrap();
            assert_eq!(
                rows(&w.gateway, "live").await,
                [(live_order, "live".to_owned())]
            );
            assert_eq!(
                rows(&w.gateway, "test").await,
                [(test_order, "test".to_owned())]
            );
        }

        /// Rejected requests, and a key whose environment has no connection, write nothing anywhere.
        #[tokio::test(flavor = "multi_thread")]
        async fn rejections_write_nothing() {
            let w = world().await;
            let staging = w
                .service
                .issue_key(KeyRequest::new(
                    KeyType::SECRET,
                    Environment::new("staging").unwrap(),
                ))
                .await
                .unwrap();
            let no_route =
                create_order(&w.gateway, &bearer(staging.plaintext.expose_secret()), "x").await;
            assert!(
                matches!(no_route, Err(RouteError::NoRoute { .. })),
                "{no_route:?}"
            );
            let live = w.ada.key(&KeyType::SECRET, &Environment::LIVE).unwrap();
            w.service.revoke(&live.key.id).await.unwrap();
            let revoked =
                create_order(&w.gateway, &bearer(live.plaintext.expose_secret()), "x").await;
            assert!(
                matches!(revoked, Err(RouteError::Auth(AuthError::Revoked))),
                "{revoked:?}"
            );
            let missing = create_order(&w.gateway, &http::HeaderMap::new(), "x").await;
            assert!(
                matches!(missing, Err(RouteError::Auth(AuthError::Credentials(_)))),
                "{missing:?}"
            );
            assert!(rows(&w.gateway, "live").await.is_empty());
            assert!(rows(&w.gateway, "test").await.is_empty());
        }
    };
}

mod sqlite {
    use super::*;
    routing_suite!(
        keyroute_store::Sqlite,
        (
            keyroute_testing::sqlite().unwrap(),
            keyroute_testing::sqlite().unwrap()
        )
    );
}

mod postgres {
    use super::*;
    routing_suite!(keyroute_store::Postgres, {
        let dbs = keyroute_testing::postgres_live_and_test().await.unwrap();
        (dbs.live, dbs.test)
    });
}
