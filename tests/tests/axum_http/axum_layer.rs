//! The tower layer and the optional-caller extractor, over real HTTP: the layer puts
//! the `Principal` into the extensions and rejects exactly as the extractors do; a
//! request with no credential gets the anonymous route, a bad one never does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use crate::axum_support::{Client, start_with};
use axum::Router;
use axum::routing::get;
use http::{Method, StatusCode};
use keyroute::Principal;
use keyroute::axum::{AuthLayer, Connected};
use keyroute::store::Sqlite;

async fn whoami(axum::Extension(caller): axum::Extension<Principal>) -> String {
    format!("{}", caller.environment())
}

async fn maybe(Connected { caller, db }: Connected<Sqlite, Option<Principal>>) -> String {
    format!("{} {}", caller.is_some(), db.name())
}

/// Serves `router` on a port of its own and returns a client for it.
async fn serve(router: Router) -> Client {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(crate::axum_support::service::serve(listener, router));
    Client::new(addr)
}

/// Behind `AuthLayer`, a handler with no keyroute extractor sees the caller; a
/// request without a key gets the same 401 problem an extractor gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_layer_authenticates_for_any_service() {
    let s = start_with(false, "").await;
    let router = Router::new()
        .route("/whoami", get(whoami))
        .layer(AuthLayer::new(s.keyroute.axum_state()));
    let client = serve(router).await;
    let reply = client.get("/whoami", s.keys.test.expose_secret()).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (StatusCode::OK, "test")
    );
    let refused = client.send(Method::GET, "/whoami", &[], "").await;
    let by_extractor = s.client.send(Method::GET, "/orders", &[], "").await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.code(), "no_credentials");
    assert_eq!(refused.body, by_extractor.body);
    assert_eq!(
        refused.header("www-authenticate"),
        by_extractor.header("www-authenticate")
    );
}

/// With an anonymous route, no credential gets its connection and no caller; a
/// forged key is still 401, never anonymous; a key gets its own database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_credential_gets_the_anonymous_route_a_bad_one_never() {
    let s = start_with(false, "[routing]\nanonymous = \"test\"\n").await;
    let router = Router::new()
        .route("/maybe", get(maybe))
        .with_state(s.keyroute.clone());
    let client = serve(router).await;
    let anonymous = client.send(Method::GET, "/maybe", &[], "").await;
    assert_eq!(anonymous.body, "false test");
    let keyed = client.get("/maybe", s.keys.live.expose_secret()).await;
    assert_eq!(keyed.body, "true live");
    let forged = client
        .get("/maybe", "sk_live_forgedforgedforgedforgedforged")
        .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
}

async fn caller_env(keyroute::axum::Caller(caller): keyroute::axum::Caller) -> String {
    format!("{}", caller.environment())
}

/// With plain HTTP refused (the default), the server's word decides: a request its TLS
/// acceptor marked with `TlsConnection` is accepted, the same request unmarked is
/// 403 `insecure_connection`, naming the setting to change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_says_whether_the_socket_was_tls() {
    let s = start_with(true, "").await;
    let plain = Router::new()
        .route("/env", get(caller_env))
        .with_state(s.keyroute.clone());
    let tls = plain
        .clone()
        .layer(axum::Extension(keyroute::axum::TlsConnection));
    let (plain, tls) = (serve(plain).await, serve(tls).await);
    let key = s.keys.live.expose_secret();
    let refused = plain.get("/env", key).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.code(), "insecure_connection");
    assert!(
        refused.json()["detail"]
            .as_str()
            .unwrap()
            .contains("trusted_proxies")
    );
    let accepted = tls.get("/env", key).await;
    assert_eq!(
        (accepted.status, accepted.body.as_str()),
        (StatusCode::OK, "live")
    );
}

async fn connected(
    keyroute::axum::Connected { db, .. }: keyroute::axum::Connected<Sqlite>,
) -> String {
    db.name().to_owned()
}

/// A database that cannot be reached is 503 `unavailable` with `Retry-After`, and
/// only for the keys routed to it: the other environment's database keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_503_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let config = keyroute::Config::from_toml_str(&format!(
        "[apikey]\ndangerous_accept_plain_http = true\n\
         [connections]\nlive = {:?}\ntest = {:?}\n\
         [pools]\nconnection_timeout = \"500ms\"\n",
        dir.path().join("live.db"),
        dir.path().join("missing").join("dir").join("test.db"),
    ))
    .unwrap();
    let keyroute = keyroute::Keyroute::<Sqlite>::from_config(config)
        .await
        .unwrap();
    let ada = keyroute
        .keys()
        .register_user(keyroute::NewUser::named("ada"))
        .await
        .unwrap();
    let key = |env| {
        ada.key(&keyroute::KeyType::SECRET, &env)
            .unwrap()
            .plaintext
            .expose_secret()
            .to_owned()
    };
    let router = Router::new()
        .route("/db", get(connected))
        .with_state(keyroute.clone());
    let client = serve(router).await;
    let test_key = key(keyroute::Environment::TEST);
    let down = client.get("/db", &test_key).await;
    assert_eq!(
        down.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        down.body
    );
    assert_eq!(down.code(), "unavailable");
    assert_eq!(down.header("retry-after"), "5");
    assert!(!down.mentions(&test_key) && !down.body.contains("missing"));
    let up = client.get("/db", &key(keyroute::Environment::LIVE)).await;
    assert_eq!((up.status, up.body.as_str()), (StatusCode::OK, "live"));
}
