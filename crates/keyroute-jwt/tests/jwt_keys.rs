//! JWTs issued as scoped API keys: recorded in the store, listed with the user's keys,
//! revoked like any key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use chrono::TimeDelta;
use common::{Setup, part, setup, t0};
use keyroute_core::{
    ApiKeyStore as _, AuthError, AuthMethod, Environment, JwtError, KeyHash, KeyQuery, KeyRequest,
    KeyType, NewUser, Scopes, TokenVerifier, UserId,
};
use keyroute_jwt::{JwtConfig, JwtKeyRequest, JwtServiceError, META_FORMAT, META_JWT, ScopeFormat};

async fn register(s: &Setup) -> UserId {
    let user = UserId::new("u1").unwrap();
    s.keys
        .register_user(NewUser::named("alice").with_id(user.clone()))
        .await
        .unwrap();
    user
}

/// A flat-scoped JWT key is stored (id = jti, SHA-256 hash, hint, `format = jwt`),
/// listed with the user's keys, and verifies to a `ScopedJwt` principal.
#[tokio::test]
async fn flat_scoped_key_is_recorded_and_verifies() {
    let s = setup(JwtConfig::default());
    let user = register(&s).await;
    let scopes = Scopes::parse(["users:read", "orders:*"]).unwrap();
    let issued = s
        .jwt
        .issue_key(
            &s.keys,
            KeyRequest::new(KeyType::SECRET, Environment::TEST)
                .for_user(user.clone())
                .named("ci")
                .with_scopes(scopes.clone())
                .expires_in(Duration::from_secs(90 * 24 * 3600)),
        )
        .await
        .unwrap();
    let token = issued.plaintext.expose_secret();

    let claims = part(token, 1);
    assert_eq!(claims["jti"], issued.key.id.as_str());
    assert_eq!(claims["kind"], "key");
    assert_eq!(
        claims["scopes"],
        serde_json::json!(["orders:*", "users:read"])
    );

    let record = &issued.key;
    assert_eq!(record.hash, KeyHash::of(token));
    assert_eq!(
        record.hint,
        format!("{}…{}", &token[..8], &token[token.len() - 4..])
    );
    assert_eq!(
        record.meta.get(META_FORMAT).map(String::as_str),
        Some(META_JWT)
    );
    assert_eq!(record.expires_at, Some(t0() + TimeDelta::days(90)));
    assert_eq!(record.scopes, scopes);
    assert_eq!(record.user_id.as_ref(), Some(&user));
    assert_eq!(record.key_type, KeyType::SECRET);

    let listed = s.keys.list_keys(&user, &KeyQuery::all()).await.unwrap();
    assert!(listed.contains(record), "{listed:?}");
    let by_hash = s
        .store
        .get_api_key_by_hash(&KeyHash::of(token))
        .await
        .unwrap();
    assert_eq!(by_hash.map(|r| r.key.id), Some(record.id.clone()));

    let p = s.jwt.verify(token).await.unwrap();
    assert_eq!(p.method(), AuthMethod::ScopedJwt);
    assert_eq!(p.key_id(), Some(&record.id));
    assert_eq!(p.user_id(), Some(&user));
    assert_eq!(p.environment(), &Environment::TEST);
    assert_eq!(p.scopes(), &scopes);
    assert!(p.require_scope("orders:write").is_ok());
    assert!(p.require_scope("users:write").is_err());
}

/// Structured scopes are written grouped by resource and read back as `resource:action`.
#[tokio::test]
async fn structured_scopes() {
    let s = setup(JwtConfig::default());
    let scopes = Scopes::parse(["users:read", "users:create", "users_app_metadata:read"]).unwrap();
    let issued = s
        .jwt
        .issue_key(
            &s.keys,
            JwtKeyRequest::new(
                KeyRequest::new(KeyType::SECRET, Environment::LIVE).with_scopes(scopes.clone()),
            )
            .with_scope_format(ScopeFormat::Structured),
        )
        .await
        .unwrap();
    let token = issued.plaintext.expose_secret();
    assert_eq!(
        part(token, 1)["scopes"],
        serde_json::json!({
            "users": {"actions": ["create", "read"]},
            "users_app_metadata": {"actions": ["read"]},
        })
    );
    let p = s.jwt.verify(token).await.unwrap();
    assert_eq!(p.scopes(), &scopes);
    assert!(p.user_id().is_none(), "a key for no user");
    assert_eq!(p.environment(), &Environment::LIVE);
    assert!(issued.key.expires_at.is_none());
    assert!(s.store.get_api_key(&issued.key.id).await.unwrap().is_some());
}

/// Revoking a JWT key through the key service refuses it at once.
#[tokio::test]
async fn revoked_jwt_key_is_refused_at_once() {
    let s = setup(JwtConfig::default());
    let user = register(&s).await;
    let issued = s
        .jwt
        .issue_key(
            &s.keys,
            KeyRequest::new(KeyType::SECRET, Environment::TEST).for_user(user),
        )
        .await
        .unwrap();
    let token = issued.plaintext.expose_secret();
    assert!(s.jwt.verify(token).await.is_ok());

    s.keys.revoke(&issued.key.id).await.unwrap();
    assert!(matches!(
        s.jwt.verify(token).await,
        Err(AuthError::Jwt(JwtError::Revoked))
    ));
    // A key without expiry stays denied for good.
    use keyroute_core::DenyList as _;
    let much_later = t0() + TimeDelta::days(365 * 100);
    assert!(
        s.store
            .is_denied(&[issued.key.id.as_str()], much_later)
            .await
            .unwrap()
    );
}

/// With the deny-list check off, a revoked JWT key keeps working until it expires, and
/// keys without expiry are refused (nothing could revoke them).
#[tokio::test]
async fn with_the_check_off_a_revoked_key_works_until_expiry() {
    let s = setup(JwtConfig::default().with_deny_list_check(false));
    let issued = s
        .jwt
        .issue_key(
            &s.keys,
            KeyRequest::new(KeyType::SECRET, Environment::TEST)
                .expires_in(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    let token = issued.plaintext.expose_secret();
    s.keys.revoke(&issued.key.id).await.unwrap();
    assert!(s.jwt.verify(token).await.is_ok());
    s.clock.advance(TimeDelta::hours(1) + TimeDelta::seconds(5));
    assert!(matches!(
        s.jwt.verify(token).await,
        Err(AuthError::Jwt(JwtError::Expired))
    ));

    let forever = s
        .jwt
        .issue_key(&s.keys, KeyRequest::new(KeyType::SECRET, Environment::TEST))
        .await;
    assert!(matches!(forever, Err(JwtServiceError::InvalidRequest(_))));
}

/// The key service's rules apply: unknown owners, disabled types and environments, and
/// structured scopes without a resource are refused, and nothing is stored.
#[tokio::test]
async fn refused_requests() {
    let s = setup(JwtConfig::default());
    let unknown = s
        .jwt
        .issue_key(
            &s.keys,
            KeyRequest::new(KeyType::SECRET, Environment::TEST)
                .for_user(UserId::new("ghost").unwrap()),
        )
        .await;
    assert!(matches!(
        unknown,
        Err(JwtServiceError::Service(
            keyroute_core::KeyServiceError::UnknownUser(_)
        ))
    ));
    let restricted = s
        .jwt
        .issue_key(
            &s.keys,
            KeyRequest::new(KeyType::RESTRICTED, Environment::TEST),
        )
        .await;
    assert!(matches!(
        restricted,
        Err(JwtServiceError::Service(
            keyroute_core::KeyServiceError::KeyTypeNotEnabled(_)
        ))
    ));
    let staging = s
        .jwt
        .issue_key(
            &s.keys,
            KeyRequest::new(KeyType::SECRET, Environment::new("staging").unwrap()),
        )
        .await;
    assert!(matches!(
        staging,
        Err(JwtServiceError::Service(
            keyroute_core::KeyServiceError::EnvironmentNotEnabled(_)
        ))
    ));
    let admin = s
        .jwt
        .issue_key(
            &s.keys,
            JwtKeyRequest::new(
                KeyRequest::new(KeyType::SECRET, Environment::TEST)
                    .with_scopes(Scopes::parse(["admin"]).unwrap()),
            )
            .with_scope_format(ScopeFormat::Structured),
        )
        .await;
    assert!(matches!(admin, Err(JwtServiceError::InvalidRequest(_))));
}

/// A JWT key verifies with no store lookup when the deny-list check is off: the
/// environment in the token is all routing needs.
#[tokio::test]
async fn tokens_route_without_the_key_record() {
    let s = setup(JwtConfig::default().with_deny_list_check(false));
    let issued = s
        .jwt
        .issue_key(
            &s.keys,
            KeyRequest::new(KeyType::SECRET, Environment::TEST).expires_in(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    // A different service sharing only the key, with no store at all.
    let stateless =
        keyroute_jwt::JwtService::builder(JwtConfig::default().with_deny_list_check(false))
            .signing_key(common::hs_key())
            .clock(std::sync::Arc::new(s.clock.clone()))
            .build()
            .unwrap();
    let p = stateless
        .verify(issued.plaintext.expose_secret())
        .await
        .unwrap();
    assert_eq!(p.environment(), &Environment::TEST);
}

/// JWT keys are minted through the key service: its `on_create_key` hook runs first,
/// and the scopes and expiry it sets are the ones signed into the token.
#[tokio::test]
async fn the_creation_hook_shapes_the_signed_token() {
    use std::sync::Arc;

    let mut options = keyroute_core::KeyOptions::default();
    options.on_create_key = Some(Arc::new(|key: &mut keyroute_core::ApiKey| {
        key.name = Some("hooked".to_owned());
        key.scopes = Scopes::parse(["reports:read"]).unwrap();
        key.expires_at = Some(key.created_at + TimeDelta::days(7));
    }));
    let s = setup(JwtConfig::default());
    let keys = keyroute_core::KeyService::new(s.store.clone(), options)
        .unwrap()
        .with_clock(Arc::new(s.clock.clone()));
    let issued = s
        .jwt
        .issue_key(&keys, KeyRequest::new(KeyType::SECRET, Environment::TEST))
        .await
        .unwrap();
    assert_eq!(issued.key.name.as_deref(), Some("hooked"));
    let claims = part(issued.plaintext.expose_secret(), 1);
    assert_eq!(claims["scopes"], serde_json::json!(["reports:read"]));
    assert_eq!(
        claims["exp"].as_i64(),
        issued.key.expires_at.map(|at| at.timestamp())
    );
    let caller = s
        .jwt
        .verify(issued.plaintext.expose_secret())
        .await
        .unwrap();
    assert!(caller.has_scope("reports:read"));
}
