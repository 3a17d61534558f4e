//! keyroute in one screen, on SQLite files (no server): a user gets a live and a test
//! key; one "create order" handler, called with each (and with a JWT the test key was
//! exchanged for), writes to the live and the test database; then four bad keys are
//! rejected with typed errors.
//!
//! Run with `cargo run --example quickstart`. The databases stay in
//! `<temp dir>/keyroute-quickstart/` afterwards, for a look with `sqlite3`.
#![allow(clippy::print_stdout)] // a demo's output is its point

use std::sync::Arc;
use std::time::Duration;

use diesel::prelude::*;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use http::HeaderMap;
use keyroute::store::{Sqlite, SqliteStore};
use keyroute::test_util::CountingStore;
use keyroute::{
    Config, Environment, IncomingRequest, KeyRequest, KeyType, Keyroute, NewUser, RouteError,
};

mod schema {
    diesel::table! {
        orders (id) {
            id -> Text,
            item -> Text,
        }
    }
}
use schema::orders;

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
async fn create_order(
    app: &Keyroute<Sqlite>,
    headers: &HeaderMap,
    item: &str,
) -> Result<String, HandlerError> {
    // Whether the request came over TLS is the server's to say; this demo has no
    // network, and its config says `dangerous_accept_plain_http` instead.
    let request = IncomingRequest::new(headers);
    let (_caller, mut db) = app.connect(&request).await.map_err(HandlerError::Route)?;
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
    let dir = std::env::temp_dir().join("keyroute-quickstart");
    let _ = std::fs::remove_dir_all(&dir); // a fresh start on every run
    std::fs::create_dir_all(&dir)?;
    let (live, test) = (dir.join("live.db"), dir.join("test.db"));

    // The whole set-up: two named databases, JWTs on; keys live in the live database
    // (counted here, to show what a request costs) and init_schema creates their tables.
    let store = Arc::new(CountingStore::new(
        SqliteStore::connect(live.to_string_lossy().as_ref()).await?,
    ));
    let config = Config::from_toml_str(&format!(
        "[apikey]\ndangerous_accept_plain_http = true\n\
         [connections]\nlive = {live:?}\ntest = {test:?}\n\
         [jwt]\nenabled = true\ncheck_deny_list = false\n"
    ))?;
    let app = Keyroute::<Sqlite>::builder()
        .config(config)
        .shared_store(store.clone())
        .build()
        .await?;

    for name in ["live", "test"] {
        let mut db = app.router().connection_named(name).await?;
        db.batch_execute("CREATE TABLE orders (id TEXT PRIMARY KEY, item TEXT NOT NULL)")
            .await?;
    }
    println!(
        "live and test databases (SQLite, migrated) in {}",
        dir.display()
    );

    let ada = app.keys().register_user(NewUser::named("ada")).await?;
    let live_key = ada
        .key(&KeyType::SECRET, &Environment::LIVE)
        .ok_or("no live key")?;
    let test_key = ada
        .key(&KeyType::SECRET, &Environment::TEST)
        .ok_or("no test key")?;
    println!("\nregistered user 'ada'; her keys are shown once and stored only as SHA-256:");
    println!("  live key: {}", live_key.plaintext.expose_secret());
    println!("  test key: {}", test_key.plaintext.expose_secret());

    println!("\none handler, called with each key:");
    let mut orders = Vec::new();
    for (name, issued) in [("live", live_key), ("test", test_key)] {
        let headers = bearer(issued.plaintext.expose_secret())?;
        let order = create_order(&app, &headers, "espresso machine").await?;
        println!("  create_order({name} key) -> order {order}");
        orders.push(order);
    }

    // JWTs carry their environment, so their requests need no key lookup. Only the
    // first token of a key costs one store read (checking that the token's environment
    // is its key's, remembered afterwards); later tokens of that key cost none. With the
    // deny-list check off, as here, revoking a key cuts off its JWTs within their 15 minutes.
    let jwt = app.jwt().ok_or("JWTs are enabled in the config")?;
    let principal = app
        .resolver()
        .resolve(test_key.plaintext.expose_secret())
        .await?;
    let token = jwt.exchange(&principal)?;
    let before = store.calls();
    let headers = bearer(token.token.expose_secret())?;
    let jwt_order = create_order(&app, &headers, "espresso machine").await?;
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
    println!(
        "  look for yourself: sqlite3 {} 'SELECT * FROM orders'",
        test.display()
    );

    println!("\nbad keys, each rejected with its typed error:");
    let keys = app.keys();
    let revoked = keys
        .issue_key(
            KeyRequest::new(KeyType::SECRET, Environment::LIVE).for_user(ada.user.id.clone()),
        )
        .await?;
    keys.revoke(&revoked.key.id).await?;
    let expiring = keys
        .issue_key(
            KeyRequest::new(KeyType::SECRET, Environment::TEST)
                .expires_in(Duration::from_millis(50)),
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let forged = keys
        .format()
        .generate(&KeyType::SECRET, &Environment::LIVE)?;
    let mut flipped = live_key.plaintext.expose_secret().to_owned();
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
                // The variant first: it has a fixed width; the message ends the line.
                let variant = format!("AuthError::{e:?}");
                println!("  {what:<16} -> {variant:<30} \"{e}\"");
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
