//! The orders service tested as a team tests its own: only keyroute-testing's public
//! API, the service's real `keyroute.toml` and migrations, real HTTP. Every case runs
//! on SQLite (no server) and on PostgreSQL (a container), each with fresh databases.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use keyroute_testing::reqwest::StatusCode;
use keyroute_testing::{TestApp, TestBackend, TestServer};
use orders::{NewOrder, Order, OrdersDb, Placed};
use serde_json::{Value, json};

type Outcome = Result<(), Box<dyn std::error::Error>>;

/// The orders stored in connection `name`'s database, read directly.
async fn stored<B: OrdersDb + TestBackend>(app: &TestApp<B>, name: &str) -> Vec<Order> {
    let mut db = app.connection(name).await.unwrap();
    B::list_orders(&mut db).await.unwrap()
}

/// The service on a port of its own.
async fn serve<B: OrdersDb + TestBackend>(app: &TestApp<B>) -> TestServer {
    app.serve(orders::router(app.keyroute().clone()))
        .await
        .unwrap()
}

fn order(item: &str) -> NewOrder {
    NewOrder {
        item: item.to_owned(),
        quantity: 2,
    }
}

/// The problem code of a refusal.
async fn code(reply: keyroute_testing::reqwest::Response) -> String {
    let body: Value = reply.json().await.unwrap();
    body["code"].as_str().unwrap_or_default().to_owned()
}

/// An order placed with a live key lands in the tenant's live database, one placed
/// with a test key in its test database, and nowhere else.
async fn orders_land_in_their_database<B: OrdersDb + TestBackend>(app: TestApp<B>) -> Outcome {
    let ada = app.user_in("ada", "acme").await?;
    let live = app.key(&ada).scopes(["orders:*"]).await?;
    let test = app.key(&ada).test().scopes(["orders:*"]).await?;
    let server = serve(&app).await;

    let reply = server
        .with_key(&live.plaintext)
        .post("/orders")
        .json(&order("tea"))
        .send()
        .await?;
    assert_eq!(reply.status(), StatusCode::CREATED);
    let placed: Placed = reply.json().await?;
    assert_eq!(placed.database, "acme_live");
    assert_eq!(placed.order.tenant, "acme");
    let reply = server
        .with_key(&test.plaintext)
        .post("/orders")
        .json(&order("test tea"))
        .send()
        .await?;
    assert_eq!(reply.json::<Placed>().await?.database, "acme_test");

    assert_eq!(stored(&app, "acme_live").await, [placed.order]);
    let in_test = stored(&app, "acme_test").await;
    assert_eq!(in_test.len(), 1);
    assert_eq!(in_test[0].item, "test tea");
    for other in ["globex_live", "globex_test"] {
        assert!(stored(&app, other).await.is_empty(), "{other}");
    }
    // What each key lists is its own database's.
    let listed: Vec<Order> = server
        .with_key(&test.plaintext)
        .get("/orders")
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(listed, in_test);
    Ok(())
}

/// A tenant never sees another's orders, through the service or in its databases.
async fn tenants_never_see_each_other<B: OrdersDb + TestBackend>(app: TestApp<B>) -> Outcome {
    let ada = app.user_in("ada", "acme").await?;
    let gus = app.user_in("gus", "globex").await?;
    let acme = app.key(&ada).scopes(["orders:*"]).await?;
    let globex = app.key(&gus).scopes(["orders:*"]).await?;
    let server = serve(&app).await;
    for (key, item) in [(&acme, "acme anvil"), (&globex, "globex gear")] {
        let reply = server
            .with_key(&key.plaintext)
            .post("/orders")
            .json(&order(item))
            .send()
            .await?;
        assert_eq!(reply.status(), StatusCode::CREATED);
    }
    for (key, item) in [(&acme, "acme anvil"), (&globex, "globex gear")] {
        let listed: Vec<Order> = server
            .with_key(&key.plaintext)
            .get("/orders")
            .send()
            .await?
            .json()
            .await?;
        let items: Vec<&str> = listed.iter().map(|o| o.item.as_str()).collect();
        assert_eq!(items, [item]);
    }
    assert_eq!(stored(&app, "acme_live").await[0].tenant, "acme");
    assert_eq!(stored(&app, "globex_live").await[0].tenant, "globex");
    Ok(())
}

/// A revoked key is refused at the very next request.
async fn a_revoked_key_is_refused_at_once<B: OrdersDb + TestBackend>(app: TestApp<B>) -> Outcome {
    let ada = app.user_in("ada", "acme").await?;
    let key = app.key(&ada).scopes(["orders:*"]).await?;
    let server = serve(&app).await;
    let client = server.with_key(&key.plaintext);
    assert_eq!(client.get("/orders").send().await?.status(), StatusCode::OK);

    let revoked = client
        .delete(&format!("/apikeys/{}", key.key.id))
        .send()
        .await?;
    assert_eq!(revoked.status(), StatusCode::OK);
    let refused = client.get("/orders").send().await?;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let refused = client.post("/orders").json(&order("tea")).send().await?;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(stored(&app, "acme_live").await.is_empty());
    Ok(())
}

/// The key routes decide who may mint and roll what: never beyond the caller's
/// environment or scopes, never by a publishable key; a key minted over HTTP works at
/// once, with exactly its scopes.
async fn the_key_routes_keep_keys_within_their_caller<B: OrdersDb + TestBackend>(
    app: TestApp<B>,
) -> Outcome {
    let ada = app.user_in("ada", "acme").await?;
    let full = app.key(&ada).scopes(["orders:*"]).await?;
    let reader = app.key(&ada).scopes(["orders:read"]).await?;
    let test = app.key(&ada).test().scopes(["orders:*"]).await?;
    let publishable = app
        .key(&ada)
        .test()
        .publishable()
        .scopes(["orders:read"])
        .await?;
    let server = serve(&app).await;
    let mint = |key: &keyroute::PlaintextKey, body: Value| {
        server.with_key(key).post("/apikeys").json(&body).send()
    };

    let refused = mint(&test.plaintext, json!({"environment": "live"})).await?;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(code(refused).await, "environment_mismatch");
    let refused = mint(
        &reader.plaintext,
        json!({"environment": "live", "scopes": ["admin"]}),
    )
    .await?;
    assert_eq!(code(refused).await, "scope_exceeds_caller");
    let refused = mint(
        &reader.plaintext,
        json!({"environment": "live", "scopes": ["orders:write"]}),
    )
    .await?;
    assert_eq!(code(refused).await, "scope_exceeds_caller");
    let refused = mint(
        &publishable.plaintext,
        json!({"environment": "test", "scopes": ["orders:read"]}),
    )
    .await?;
    assert_eq!(code(refused).await, "publishable_key");
    let refused = server
        .with_key(&reader.plaintext)
        .post(&format!("/apikeys/{}/roll", full.key.id))
        .json(&json!({}))
        .send()
        .await?;
    assert_eq!(code(refused).await, "scope_exceeds_caller");

    // The full key mints a read-only key: it reads at once and cannot write.
    let minted = mint(
        &full.plaintext,
        json!({"environment": "live", "scopes": ["orders:read"]}),
    )
    .await?;
    assert_eq!(minted.status(), StatusCode::CREATED);
    let minted: Value = minted.json().await?;
    let secret = minted["key_secret"].as_str().unwrap();
    let client = server.with_token(secret);
    assert_eq!(client.get("/orders").send().await?.status(), StatusCode::OK);
    let refused = client.post("/orders").json(&order("tea")).send().await?;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // Rolling the reader keeps its scopes: the new key still cannot write.
    let rolled = server
        .with_key(&reader.plaintext)
        .post(&format!("/apikeys/{}/roll", reader.key.id))
        .json(&json!({}))
        .send()
        .await?;
    assert_eq!(rolled.status(), StatusCode::OK);
    let rolled: Value = rolled.json().await?;
    assert_eq!(rolled["issued"]["scopes"], json!(["orders:read"]));
    let client = server.with_token(rolled["issued"]["key_secret"].as_str().unwrap());
    let refused = client.post("/orders").json(&order("tea")).send().await?;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    Ok(())
}

/// Bad orders are refused with a problem naming the field, and store nothing.
async fn bad_orders_are_refused<B: OrdersDb + TestBackend>(app: TestApp<B>) -> Outcome {
    let ada = app.user_in("ada", "acme").await?;
    let key = app.key(&ada).scopes(["orders:*"]).await?;
    let server = serve(&app).await;
    let client = server.with_key(&key.plaintext);
    for (body, expected) in [
        (json!({"item": "tea", "quantity": 0}), "invalid_quantity"),
        (json!({"item": " ", "quantity": 1}), "invalid_item"),
        (
            json!({"item": "x".repeat(201), "quantity": 1}),
            "invalid_item",
        ),
    ] {
        let reply = client.post("/orders").json(&body).send().await?;
        assert_eq!(reply.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(code(reply).await, expected);
    }
    let reply = client.post("/orders").body("not json").send().await?;
    assert!(reply.status().is_client_error());
    assert!(stored(&app, "acme_live").await.is_empty());
    Ok(())
}

/// Each case above, on SQLite and on PostgreSQL, with the service's own migrations
/// and `keyroute.toml` (whose databases the fixture replaces with fresh ones).
macro_rules! on_sqlite_and_postgres {
    ($($case:ident),* $(,)?) => {
        mod on_sqlite {
            use keyroute::store::Sqlite;
            use keyroute_testing::TestApp;
            $(
                #[keyroute_testing::test(migrations = "migrations", config = "keyroute.toml")]
                async fn $case(app: TestApp<Sqlite>) -> super::Outcome {
                    super::$case(app).await
                }
            )*
        }
        mod on_postgres {
            use keyroute::store::Postgres;
            use keyroute_testing::TestApp;
            $(
                #[keyroute_testing::test(migrations = "migrations", config = "keyroute.toml")]
                async fn $case(app: TestApp<Postgres>) -> super::Outcome {
                    super::$case(app).await
                }
            )*
        }
    };
}

on_sqlite_and_postgres!(
    orders_land_in_their_database,
    tenants_never_see_each_other,
    a_revoked_key_is_refused_at_once,
    the_key_routes_keep_keys_within_their_caller,
    bad_orders_are_refused,
);
