//! A real service: axum on two SQLite files (live and test), an `orders` resource
//! whose handlers never mention environments, keyroute's key routes under `/apikeys`
//! and `POST /token`. At start-up it registers two users and prints their keys, once,
//! as `export` lines for the README's `curl` commands.
//!
//! ```sh
//! cargo run --example service --features axum          # listens on 127.0.0.1:8080
//! KEYROUTE_SERVICE_ADDR=127.0.0.1:9000 cargo run --example service --features axum
//! KEYROUTE_GITHUB_KEYS=github-keys.json cargo run --example service --features axum  # + leak alerts
//! ```
//!
//! Plain HTTP is accepted because its configuration says so
//! (`dangerous_accept_plain_http = true`), which is right for localhost only. Behind a
//! TLS-terminating proxy, drop that line and list the proxy in
//! `[resolver] trusted_proxies` instead.
#![allow(clippy::print_stdout)] // a demo's output is its point
#![allow(dead_code, unreachable_pub)] // also compiled into the tests as a module

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use axum::Router;
use axum::routing::post;
use diesel::prelude::*;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use keyroute::axum::{Connected, Problem, Scoped, SecretScanning, key_routes, scope};
use keyroute::store::Sqlite;
use keyroute::{Config, Environment, KeyRequest, KeyType, Keyroute, NewUser, PlaintextKey, Scopes};

mod schema {
    diesel::table! {
        orders (id) {
            id -> Text,
            item -> Text,
        }
    }
}
use schema::orders;

scope!(
    /// Reading orders.
    pub OrdersRead = "orders:read"
);
scope!(
    /// Placing orders.
    pub OrdersWrite = "orders:write"
);

/// The service's configuration: what a `keyroute.toml` would hold.
pub fn config(dir: &Path) -> String {
    format!(
        "[apikey]\n\
         key_types = [\"secret\", \"publishable\"]\n\
         # plain HTTP on localhost only; behind TLS remove this line\n\
         dangerous_accept_plain_http = true\n\
         [connections]\nlive = {:?}\ntest = {:?}\n\
         [pools]\nmax_size = 8\n\
         [jwt]\nenabled = true\n",
        dir.join("live.db"),
        dir.join("test.db"),
    )
}

/// `POST /orders`: the body is the item. Lands in the caller's database.
async fn create_order(
    _scope: Scoped<OrdersWrite>,
    Connected { mut db, .. }: Connected<Sqlite>,
    item: String,
) -> Result<String, Problem> {
    let id = keyroute::KeyId::random().to_string()[..8].to_owned();
    diesel::insert_into(orders::table)
        .values((orders::id.eq(&id), orders::item.eq(item.trim())))
        .execute(&mut *db)
        .await
        .map_err(|e| Problem::internal(&e))?;
    Ok(format!("order {id} stored in the {} database\n", db.name()))
}

/// `GET /orders`: the orders of the caller's database.
async fn list_orders(
    _scope: Scoped<OrdersRead>,
    Connected { mut db, .. }: Connected<Sqlite>,
) -> Result<String, Problem> {
    let items: Vec<(String, String)> = orders::table
        .select((orders::id, orders::item))
        .order(orders::id)
        .load(&mut *db)
        .await
        .map_err(|e| Problem::internal(&e))?;
    let mut out = format!("{} orders in the {} database\n", items.len(), db.name());
    for (id, item) in items {
        out.push_str(&format!("  {id} {item}\n"));
    }
    Ok(out)
}

/// The keys made at start-up, shown once.
#[derive(Debug)]
pub struct DemoKeys {
    /// Ada's live secret key (orders:*).
    pub live: PlaintextKey,
    /// Ada's test secret key (orders:*).
    pub test: PlaintextKey,
    /// Ada's test publishable key (orders:read).
    pub publishable: PlaintextKey,
    /// The operator's live key with the admin scope.
    pub admin: PlaintextKey,
    /// The id of Ada's live key (not secret: what `PATCH /apikeys/{id}` names).
    pub live_id: keyroute::KeyId,
}

/// What [`app`] returns: the router, the handle, and the keys made at start-up.
pub type App = (Router, Keyroute<Sqlite>, DemoKeys);

/// The app: keyroute from [`config`], the orders tables, users and their keys.
pub async fn app(dir: &Path) -> Result<App, Box<dyn std::error::Error>> {
    app_from(&config(dir)).await
}

/// The app, configured by the TOML document `config`.
pub async fn app_from(config: &str) -> Result<App, Box<dyn std::error::Error>> {
    let keyroute = Keyroute::<Sqlite>::from_config(Config::from_toml_str(config)?).await?;
    keyroute.spawn_background()?;
    for name in ["live", "test"] {
        let mut db = keyroute.router().connection_named(name).await?;
        db.batch_execute(
            "CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, item TEXT NOT NULL)",
        )
        .await?;
    }
    let keys = keyroute.keys();
    let ada = keys.register_user(NewUser::named("ada")).await?.user;
    let ops = keys.register_user(NewUser::named("ops")).await?.user;
    let issue = |user: &keyroute::UserId, key_type, env, scopes: &[&str]| {
        let request = KeyRequest::new(key_type, env)
            .for_user(user.clone())
            .named("demo")
            .with_scopes(Scopes::parse(scopes.iter().copied()).unwrap_or_else(|_| Scopes::none()));
        keys.issue_key(request)
    };
    let live = issue(&ada.id, KeyType::SECRET, Environment::LIVE, &["orders:*"]).await?;
    let demo = DemoKeys {
        live_id: live.key.id,
        live: live.plaintext,
        test: issue(&ada.id, KeyType::SECRET, Environment::TEST, &["orders:*"])
            .await?
            .plaintext,
        publishable: issue(
            &ada.id,
            KeyType::PUBLISHABLE,
            Environment::TEST,
            &["orders:read"],
        )
        .await?
        .plaintext,
        admin: issue(&ops.id, KeyType::SECRET, Environment::LIVE, &["admin"])
            .await?
            .plaintext,
    };
    let router = Router::new()
        .route("/orders", post(create_order).get(list_orders))
        .merge(key_routes())
        .with_state(keyroute.clone());
    Ok((router, keyroute, demo))
}

/// Where the secret-scanning route listens (the URL an app registers with GitHub).
pub const SECRET_SCANNING_PATH: &str = "/github/secret-scanning";

/// `router` with GitHub's secret-scanning alerts taken at [`SECRET_SCANNING_PATH`],
/// verified with the published keys in `keys_file` (GitHub's public_keys JSON).
pub fn with_secret_scanning(
    router: Router,
    keyroute: &Keyroute<Sqlite>,
    keys_file: &Path,
) -> Result<Router, Box<dyn std::error::Error>> {
    let scanning = SecretScanning::from_github_keys_file(keys_file)?;
    Ok(router.merge(
        scanning
            .router(SECRET_SCANNING_PATH)
            .with_state(keyroute.clone()),
    ))
}

/// Serves `router` on `listener`, with the peer address forwarded headers are checked against.
pub async fn serve(listener: tokio::net::TcpListener, router: Router) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir: PathBuf = std::env::temp_dir().join("keyroute-service");
    let _ = std::fs::remove_dir_all(&dir); // a fresh start on every run
    std::fs::create_dir_all(&dir)?;
    let addr = std::env::var("KEYROUTE_SERVICE_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let (mut router, keyroute, keys) = app(&dir).await?;
    // With GitHub's secret scanning keys (the README's leak-response walk-through).
    if let Ok(keys_file) = std::env::var("KEYROUTE_GITHUB_KEYS") {
        router = with_secret_scanning(router, &keyroute, Path::new(&keys_file))?;
        println!("secret scanning alerts: POST {SECRET_SCANNING_PATH}");
    }
    println!("keyroute service on http://{}", listener.local_addr()?);
    println!(
        "databases: {}/live.db and {}/test.db",
        dir.display(),
        dir.display()
    );
    println!("keys, shown once (paste these lines into your shell):");
    println!("export LIVE_KEY={}", keys.live.expose_secret());
    println!("export TEST_KEY={}", keys.test.expose_secret());
    println!("export PK_KEY={}", keys.publishable.expose_secret());
    println!("export ADMIN_KEY={}", keys.admin.expose_secret());
    println!("export LIVE_KEY_ID={}", keys.live_id);
    serve(listener, router).await?;
    Ok(())
}
