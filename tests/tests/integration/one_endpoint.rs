//! One endpoint for people and keys (seeds 002 and 003): a single guard accepts a
//! person's session JWT, an API key, a JWT issued as a key or one exchanged for a key;
//! it enforces the required scope on keys, routes each to its environment's database,
//! and `required_user_id` answers however the caller authenticated.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use http::HeaderMap;
use keyroute::auth::KeyResolver;
use keyroute::jwt::{
    JwtConfig, JwtKeyRequest, JwtService, ScopeFormat, SessionRequest, SigningKey,
};
use keyroute::keys::{KeyOptions, KeyService};
use keyroute::routing::{ConnectionRouter, Gateway};
use keyroute::store::{MemoryStore, Sqlite};
use keyroute::test_util::CountingStore;
use keyroute::{AuthError, Environment, KeyRequest, KeyType, NewUser, Scopes, UserId};
use keyroute::{IncomingRequest, RouteError};

type Store = Arc<CountingStore<MemoryStore>>;

struct World {
    gateway: Gateway<Store, Sqlite>,
    service: KeyService<Store>,
    jwt: Arc<JwtService>,
    store: Store,
    ada: UserId,
    _dbs: Vec<keyroute_testing::TestDatabase<Sqlite>>,
}

async fn world() -> World {
    let store: Store = Arc::new(CountingStore::new(MemoryStore::new()));
    let mut options = KeyOptions::default();
    options.session_cache_duration = Some(std::time::Duration::from_secs(60));
    let jwt = Arc::new(
        JwtService::builder(JwtConfig::default())
            .signing_key(SigningKey::generate_hs256("k1").unwrap())
            .deny_list(store.clone())
            .build()
            .unwrap(),
    );
    let resolver = KeyResolver::builder(store.clone(), options.clone())
        .verifier(jwt.clone())
        .build()
        .unwrap();
    let service = KeyService::new(store.clone(), options)
        .unwrap()
        .with_listener(Arc::new(resolver.clone()))
        .with_listener(jwt.revocation_listener());
    let dbs = vec![
        keyroute_testing::sqlite().unwrap(),
        keyroute_testing::sqlite().unwrap(),
    ];
    let router = ConnectionRouter::<Sqlite>::builder()
        .connection("live", dbs[0].url().clone())
        .connection("test", dbs[1].url().clone())
        .build()
        .unwrap();
    let ada = service
        .register_user(NewUser::named("ada"))
        .await
        .unwrap()
        .user
        .id;
    World {
        gateway: Gateway::new(resolver, router),
        service,
        jwt,
        store,
        ada,
        _dbs: dbs,
    }
}

/// The endpoint: needs `orders:read` from keys, acts on the caller's own orders.
async fn my_orders(
    gateway: &Gateway<Store, Sqlite>,
    token: &str,
) -> Result<(UserId, String), RouteError> {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    let (principal, conn) = gateway
        .connect_with_scope(
            &IncomingRequest::new(&headers).over_tls(true),
            "orders:read",
        )
        .await?;
    let user = principal.required_user_id()?.clone();
    Ok((user, conn.name().to_owned()))
}

fn scopes(list: &[&str]) -> Scopes {
    Scopes::parse(list).unwrap()
}

/// A person's session and every kind of scoped key reach the endpoint as the same user.
#[tokio::test(flavor = "multi_thread")]
async fn people_and_keys_share_one_endpoint() {
    let w = world().await;
    let session = w
        .jwt
        .issue_session(SessionRequest::new(w.ada.clone()))
        .unwrap();
    assert_eq!(
        my_orders(&w.gateway, session.token.expose_secret())
            .await
            .unwrap(),
        (w.ada.clone(), "live".into())
    );

    let key = w
        .service
        .issue_key(
            KeyRequest::new(KeyType::SECRET, Environment::TEST)
                .for_user(w.ada.clone())
                .with_scopes(scopes(&["orders:read"])),
        )
        .await
        .unwrap();
    assert_eq!(
        my_orders(&w.gateway, key.plaintext.expose_secret())
            .await
            .unwrap(),
        (w.ada.clone(), "test".into())
    );

    let structured = w
        .jwt
        .issue_key(
            &w.service,
            JwtKeyRequest::new(
                KeyRequest::new(KeyType::SECRET, Environment::LIVE)
                    .for_user(w.ada.clone())
                    .with_scopes(scopes(&["orders:read", "orders:create"])),
            )
            .with_scope_format(ScopeFormat::Structured),
        )
        .await
        .unwrap();
    assert_eq!(
        my_orders(&w.gateway, structured.plaintext.expose_secret())
            .await
            .unwrap(),
        (w.ada.clone(), "live".into())
    );
}

/// A JWT exchanged for a scoped test key routes to the test database with no key lookup.
#[tokio::test(flavor = "multi_thread")]
async fn an_exchanged_jwt_routes_without_a_key_lookup() {
    let w = world().await;
    let key = w
        .service
        .issue_key(
            KeyRequest::new(KeyType::SECRET, Environment::TEST)
                .for_user(w.ada.clone())
                .with_scopes(scopes(&["orders:*"])),
        )
        .await
        .unwrap();
    let principal = w
        .gateway
        .resolver()
        .resolve(key.plaintext.expose_secret())
        .await
        .unwrap();
    let token = w.jwt.exchange(&principal).unwrap();
    let lookups = w.store.lookups();
    assert_eq!(
        my_orders(&w.gateway, token.token.expose_secret())
            .await
            .unwrap(),
        (w.ada.clone(), "test".into())
    );
    assert_eq!(
        w.store.lookups(),
        lookups,
        "a JWT is checked and routed without looking its key up"
    );

    w.service.revoke(&key.key.id).await.unwrap();
    let revoked = my_orders(&w.gateway, token.token.expose_secret()).await;
    assert!(
        matches!(
            revoked,
            Err(RouteError::Auth(AuthError::Jwt(
                keyroute::auth::JwtError::Revoked
            )))
        ),
        "{revoked:?}"
    );
}

/// A key without the scope is forbidden; a key of no user cannot act on a user's data.
#[tokio::test(flavor = "multi_thread")]
async fn keys_need_the_scope_and_a_user() {
    let w = world().await;
    let unscoped = w
        .service
        .issue_key(
            KeyRequest::new(KeyType::SECRET, Environment::LIVE)
                .for_user(w.ada.clone())
                .with_scopes(scopes(&["users:read"])),
        )
        .await
        .unwrap();
    match my_orders(&w.gateway, unscoped.plaintext.expose_secret()).await {
        Err(e @ RouteError::Auth(AuthError::InsufficientScope { .. })) => {
            assert_eq!(
                keyroute::axum::http_status(e.class()),
                http::StatusCode::FORBIDDEN
            )
        }
        other => panic!("expected InsufficientScope, got {other:?}"),
    }
    let service_key = w
        .service
        .issue_key(
            KeyRequest::new(KeyType::SECRET, Environment::LIVE)
                .with_scopes(scopes(&["orders:read"])),
        )
        .await
        .unwrap();
    let no_user = my_orders(&w.gateway, service_key.plaintext.expose_secret()).await;
    assert!(
        matches!(
            no_user,
            Err(RouteError::Auth(AuthError::NotAssociatedWithUser))
        ),
        "{no_user:?}"
    );
}
