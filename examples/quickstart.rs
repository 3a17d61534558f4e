//! keyroute in one screen, on SQLite files (no server): a user gets a live and a test
//! key; one "create order" handler, called with each (and with a JWT the test key was
//! exchanged for), writes to the live and the test database; then four bad keys are
//! rejected with typed errors.
//!
//! Run with `cargo run --example quickstart`.
#![allow(clippy::print_stdout)] // a demo's output is its point

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use http::HeaderMap;
use keyroute::jwt::{JwtConfig, JwtService, SigningKey};
use keyroute::router::{ConnectionRouter, Gateway, IncomingRequest, KeyResolver, RouteError};
use keyroute::store::{CountingStore, Sqlite, SqliteStore};
use keyroute::{Environment, KeyOptions, KeyRequest, KeyService, KeyType, NewUser};

mod schema {
    diesel::table! {
        orders (id) {
            id -> Text,
            item -> Text,
        }
    }
}
use schema::orders;

/// Keys live in SQLite; the count of store calls is for showing what a request costs.
type KeyStore = std::sync::Arc<CountingStore<SqliteStore>>;
type App = Gateway<KeyStore, Sqlite>;

/// What the handler can fail with: keyroute refused the request, or the query failed.
#[derive(Debug)]
enum HandlerError {
    Route(RouteError),
    Query(diesel::result::Error),
}

impl std::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandlerError::Route(e) => write!(f, "refused: {e}"),
            HandlerError::Query(e) => write!(f, "query failed: {e}"),
        }
    }
}

impl std::error::Error for HandlerError {}

/// The handler: it never looks at the environment, yet lands in the right database.
async fn create_order(app: &App, headers: &HeaderMap, item: &str) -> Result<String, HandlerError> {
    // Pass whether the request came over TLS; keys sent over plain HTTP are refused.
    let request = IncomingRequest::new(headers).over_tls(true);
    let (_principal, mut db) = app.connect(&request).await.map_err(HandlerError::Route)?;
    let id = keyroute::KeyId::random().to_string()[..8].to_owned();
    diesel::insert_into(orders::table)
        .values((orders::id.eq(&id), orders::item.eq(item)))
        .execute(&mut db)
        .await
        .map_err(HandlerError::Query)?;
    Ok(id)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let (live_db, test_db) = (dir.path().join("live.db"), dir.path().join("test.db"));
    let (live_url, test_url) = (
        live_db.to_string_lossy().into_owned(),
        test_db.to_string_lossy().into_owned(),
    );

    // Keys live in the live database; keyroute's migrations create their tables.
    let store: KeyStore = std::sync::Arc::new(CountingStore::new(
        SqliteStore::connect(live_url.as_str()).await?,
    ));
    let options = KeyOptions::default();
    let service = KeyService::new(store.clone(), options.clone())?;
    service.init().await?;
    let router = ConnectionRouter::<Sqlite>::builder()
        .connection("live", live_url.as_str())
        .connection("test", test_url.as_str())
        .build()?;
    for name in ["live", "test"] {
        let mut db = router.connection_named(name).await?;
        db.batch_execute("CREATE TABLE orders (id TEXT PRIMARY KEY, item TEXT NOT NULL)")
            .await?;
    }
    // JWTs carry their environment, so verifying one needs no store. With the deny-list
    // check off, as here, revoking a key cuts off its JWTs within their 15 minutes.
    let jwt = std::sync::Arc::new(
        JwtService::builder(JwtConfig::default().with_deny_list_check(false))
            .signing_key(SigningKey::generate_hs256("quickstart-1")?)
            .build()?,
    );
    let resolver = KeyResolver::builder(std::sync::Arc::clone(&store), options)
        .verifier(jwt.clone())
        .build()?;
    let service = service.with_listener(std::sync::Arc::new(resolver.clone()));
    let app = Gateway::new(resolver, router);
    println!(
        "live and test databases (SQLite, migrated) in {}",
        dir.path().display()
    );

    let ada = service.register_user(NewUser::named("ada")).await?;
    let live = ada
        .key(&KeyType::SECRET, &Environment::LIVE)
        .ok_or("no live key")?;
    let test = ada
        .key(&KeyType::SECRET, &Environment::TEST)
        .ok_or("no test key")?;
    println!("\nregistered user 'ada'; her keys are shown once and stored only as SHA-256:");
    println!("  live key: {}", live.plaintext.expose_secret());
    println!("  test key: {}", test.plaintext.expose_secret());

    println!("\none handler, called with each key:");
    let mut orders = Vec::new();
    for (name, issued) in [("live", live), ("test", test)] {
        let order = create_order(
            &app,
            &bearer(issued.plaintext.expose_secret())?,
            "espresso machine",
        )
        .await?;
        println!("  create_order({name} key) -> order {order}");
        orders.push(order);
    }

    let principal = app
        .resolver()
        .resolve(test.plaintext.expose_secret())
        .await?;
    let token = jwt.exchange(&principal)?;
    let before = store.calls();
    let jwt_order = create_order(
        &app,
        &bearer(token.token.expose_secret())?,
        "espresso machine",
    )
    .await?;
    println!(
        "  create_order(JWT exchanged for the test key) -> order {jwt_order}, {} store calls",
        store.calls() - before
    );

    println!("\neach database, queried directly:");
    let mut live_orders = vec![orders[0].clone()];
    let mut test_orders = vec![orders[1].clone(), jwt_order];
    for (name, expected) in [("live", &mut live_orders), ("test", &mut test_orders)] {
        let mut db = app.router().connection_named(name).await?;
        let mut ids: Vec<String> = orders::table.select(orders::id).load(&mut db).await?;
        ids.sort();
        expected.sort();
        println!("  {name}.db orders: {ids:?}");
        if ids != *expected {
            return Err(format!(
                "isolation broken: {name}.db holds {ids:?}, expected {expected:?}"
            )
            .into());
        }
    }
    println!(
        "  isolation: ok - the live order is only in live.db; the test and JWT orders only in test.db"
    );

    println!("\nbad keys, each rejected with its typed error:");
    let revoked = service
        .issue_key(
            KeyRequest::new(KeyType::SECRET, Environment::LIVE).for_user(ada.user.id.clone()),
        )
        .await?;
    service.revoke(&revoked.key.id).await?;
    let expiring = service
        .issue_key(
            KeyRequest::new(KeyType::SECRET, Environment::TEST)
                .expires_in(Duration::from_millis(50)),
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let forged = service
        .format()
        .generate(&KeyType::SECRET, &Environment::LIVE)?;
    let mut flipped = live.plaintext.expose_secret().to_owned();
    let last = flipped.pop().ok_or("empty key")?;
    flipped.push(if last == 'A' { 'B' } else { 'A' });
    for (what, key) in [
        ("revoked key", revoked.plaintext.expose_secret()),
        ("expired key", expiring.plaintext.expose_secret()),
        ("forged key", forged.expose_secret()),
        ("flipped checksum", flipped.as_str()),
    ] {
        match create_order(&app, &bearer(key)?, "anything").await {
            Err(HandlerError::Route(RouteError::Auth(e))) => {
                println!("  {what:<17} -> {:<38} AuthError::{e:?}", e.to_string());
            }
            other => return Err(format!("{what} was not rejected as expected: {other:?}").into()),
        }
    }
    Ok(())
}

fn bearer(key: &str) -> Result<HeaderMap, http::header::InvalidHeaderValue> {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {key}").parse()?,
    );
    Ok(headers)
}
