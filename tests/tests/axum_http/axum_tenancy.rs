//! Tenancy over real HTTP: a service with `[tenancy] mode = "row_security"` on
//! PostgreSQL, its handlers written without any tenant filter, served on 127.0.0.1 and
//! called with keys of two tenants. Each key's requests read and write only its
//! tenant's rows, through the write extractor (`Connected`) and the read one
//! (`ConnectedRead`); a key without a tenant gets 403 `no_route`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use crate::tenant_support::{Body, row_security_database};
use axum::Router;
use axum::routing::get;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use http::{Method, StatusCode};
use keyroute::axum::{Connected, ConnectedRead};
use keyroute::keys::Tenant;
use keyroute::store::Postgres;
use keyroute::{Config, Environment, KeyType, Keyroute, NewUser};

/// Every note the caller's connection shows: no `WHERE tenant_id = ...` here.
async fn list(Connected { db, .. }: Connected<Postgres>) -> String {
    bodies(db).await
}

async fn list_read(ConnectedRead { db, .. }: ConnectedRead<Postgres>) -> String {
    bodies(db).await
}

async fn bodies(mut db: keyroute::routing::RoutedConnection<Postgres>) -> String {
    let rows: Vec<Body> = diesel::sql_query("SELECT body FROM notes ORDER BY body")
        .load(&mut *db)
        .await
        .unwrap();
    db.commit().await.unwrap();
    rows.into_iter()
        .map(|r| r.body)
        .collect::<Vec<_>>()
        .join(",")
}

/// Adds a note; its tenant comes from the binding (the column's default).
async fn add(Connected { mut db, .. }: Connected<Postgres>, body: String) -> StatusCode {
    diesel::sql_query("INSERT INTO notes (body) VALUES ($1)")
        .bind::<Text, _>(body)
        .execute(&mut *db)
        .await
        .unwrap();
    db.commit().await.unwrap();
    StatusCode::CREATED
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_key_sees_only_its_tenants_rows_over_http() {
    let live = keyroute_testing::postgres().await.unwrap();
    let app_url = row_security_database(&live).await;
    let config = Config::from_toml_str(&format!(
        "[apikey]\ndangerous_accept_plain_http = true\n\
         [store]\nurl = {:?}\n\
         [connections]\nlive = {:?}\ntest = {:?}\n\
         [tenancy]\nmode = \"row_security\"\n",
        live.url().expose_secret(),
        app_url.expose_secret(),
        app_url.expose_secret(),
    ))
    .unwrap();
    let keyroute = Keyroute::<Postgres>::from_config(config).await.unwrap();
    let key = |user: &keyroute::keys::Registration| {
        user.key(&KeyType::SECRET, &Environment::LIVE)
            .unwrap()
            .plaintext
            .expose_secret()
            .to_owned()
    };
    let mut keys = Vec::new();
    for (name, tenant) in [
        ("ada", Some("acme")),
        ("bob", Some("globex")),
        ("eve", None),
    ] {
        let mut new_user = NewUser::named(name);
        if let Some(tenant) = tenant {
            new_user = new_user.with_tenant(Tenant::new(tenant).unwrap());
        }
        let user = keyroute.keys().register_user(new_user).await.unwrap();
        keys.push(key(&user));
    }
    let router = Router::new()
        .route("/notes", get(list).post(add))
        .route("/notes/read", get(list_read))
        .with_state(keyroute.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(crate::axum_support::service::serve(listener, router));
    let client = crate::axum_support::Client::new(addr);
    let (ada, bob, eve) = (&keys[0], &keys[1], &keys[2]);

    for (key, body) in [(ada, "acme-1"), (bob, "globex-1"), (ada, "acme-2")] {
        let reply = client.json(Method::POST, "/notes", key, body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    }
    for path in ["/notes", "/notes/read"] {
        assert_eq!(client.get(path, ada).await.body, "acme-1,acme-2", "{path}");
        assert_eq!(client.get(path, bob).await.body, "globex-1", "{path}");
        let refused = client.get(path, eve).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(refused.code(), "no_route", "{path}");
    }
}
