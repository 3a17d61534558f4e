//! keyroute in one screen, on SQLite files (no server): a user gets a live and a test
//! key; one "create order" handler, called with each, writes to the live and the test
//! database; then four bad keys are rejected with typed errors.
//!
//! Run with `cargo run --example quickstart`.
#![allow(clippy::print_stdout)] // a demo's output is its point

use std::time::Duration;

use diesel::prelude::*;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use http::HeaderMap;
use keyroute::router::{ConnectionRouter, Gateway, IncomingRequest, KeyResolver, RouteError};
use keyroute::store::{Sqlite, SqliteStore};
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

type App = Gateway<SqliteStore, Sqlite>;

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
    let store = SqliteStore::connect(live_url.as_str()).await?;
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
    let resolver = KeyResolver::builder(store, options).build()?;
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
    let (live_order, test_order) = (&orders[0], &orders[1]);

    println!("\neach database, queried directly:");
    let mut isolated = true;
    for (name, own, other) in [
        ("live", live_order, test_order),
        ("test", test_order, live_order),
    ] {
        let mut db = app.router().connection_named(name).await?;
        let ids: Vec<String> = orders::table.select(orders::id).load(&mut db).await?;
        println!("  {name}.db orders: {ids:?}");
        isolated &= ids.contains(own) && !ids.contains(other);
    }
    if !isolated {
        return Err("isolation broken: an order is in the wrong database".into());
    }
    println!("  isolation: ok - the live order is only in live.db, the test order only in test.db");

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
