//! Exchanging an API key for a short-lived JWT, and revoking the key it came from.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use common::{Setup, jwt_service, part, setup, t0};
use keyroute_core::{
    AuthError, AuthMethod, Environment, IssuedKey, JwtError, KeyRequest, KeyType, NewUser,
    Principal, Scopes, Tenant, TokenVerifier, UserId,
};
use keyroute_jwt::{JwtConfig, JwtServiceError, TokenKind};

/// Registers user `u1` (tenant `acme`) and issues them a scoped test key.
async fn user_key(s: &Setup, expires_in: Option<Duration>) -> IssuedKey {
    let user = UserId::new("u1").unwrap();
    s.keys
        .register_user(
            NewUser::named("alice")
                .with_id(user.clone())
                .with_tenant(Tenant::new("acme").unwrap()),
        )
        .await
        .unwrap();
    let mut request = KeyRequest::new(KeyType::SECRET, Environment::TEST)
        .for_user(user)
        .with_scopes(Scopes::parse(["orders:read", "users:*"]).unwrap());
    if let Some(lifetime) = expires_in {
        request = request.expires_in(lifetime);
    }
    s.keys.issue_key(request).await.unwrap()
}

fn principal_of(issued: &IssuedKey) -> Principal {
    Principal::from_api_key(Arc::new(issued.key.clone()), None)
}

/// An API key's principal survives the exchange: same environment, key id, key type,
/// scopes, user and tenant, with method `KeyJwt`.
#[tokio::test]
async fn exchange_round_trip() {
    let s = setup(JwtConfig::default());
    let issued = user_key(&s, None).await;
    let source = principal_of(&issued);

    let token = s.jwt.exchange(&source).unwrap();
    assert_eq!(token.kind, TokenKind::Exchange);
    assert_eq!(token.expires_at, t0() + TimeDelta::minutes(15));
    let claims = part(token.token.expose_secret(), 1);
    assert_eq!(claims["kind"], "exchange");
    assert_eq!(claims["env"], "test");

    let p = s.jwt.verify(token.token.expose_secret()).await.unwrap();
    assert_eq!(p.method(), AuthMethod::KeyJwt);
    assert_eq!(p.environment(), source.environment());
    assert_eq!(p.key_id(), source.key_id());
    assert_eq!(p.key_type(), source.key_type());
    assert_eq!(p.scopes(), source.scopes());
    assert_eq!(p.user_id(), source.user_id());
    assert_eq!(p.tenant().map(Tenant::as_str), Some("acme"));
    assert!(p.has_scope("users:write") && !p.has_scope("orders:write"));
    assert!(p.api_key().is_none(), "a JWT principal has no store record");
}

/// An exchanged token lives the exchange lifetime, capped at its key's own expiry, and
/// a key that no longer works cannot be exchanged.
#[tokio::test]
async fn exchange_lifetime_and_key_expiry() {
    let s = setup(JwtConfig::default().with_leeway(Duration::ZERO));
    let short = user_key(&s, Some(Duration::from_secs(300))).await;
    let token = s.jwt.exchange(&principal_of(&short)).unwrap();
    assert_eq!(token.expires_at, t0() + TimeDelta::minutes(5));
    s.clock.advance(TimeDelta::seconds(299));
    assert!(s.jwt.verify(token.token.expose_secret()).await.is_ok());
    s.clock.advance(TimeDelta::seconds(1));
    assert!(matches!(
        s.jwt.verify(token.token.expose_secret()).await,
        Err(AuthError::Jwt(JwtError::Expired))
    ));
    assert!(matches!(
        s.jwt.exchange(&principal_of(&short)),
        Err(JwtServiceError::InvalidRequest(_))
    ));
}

/// Revoking the API key an exchanged token came from refuses the token at once on
/// this instance (deny-list check on).
#[tokio::test]
async fn revoking_the_source_key_rejects_at_once() {
    let s = setup(JwtConfig::default());
    let issued = user_key(&s, None).await;
    let token = s.jwt.exchange(&principal_of(&issued)).unwrap();
    let token = token.token.expose_secret();
    assert!(s.jwt.verify(token).await.is_ok(), "cached as not denied");

    s.keys.revoke(&issued.key.id).await.unwrap();
    assert!(matches!(
        s.jwt.verify(token).await,
        Err(AuthError::Jwt(JwtError::Revoked))
    ));
    // The denial outlives every token the key could have been exchanged for.
    use keyroute_core::DenyList as _;
    let later = t0() + TimeDelta::minutes(15);
    assert!(
        s.store
            .is_denied(&[issued.key.id.as_str()], later)
            .await
            .unwrap()
    );
    assert!(
        !s.store
            .is_denied(&[issued.key.id.as_str()], later + TimeDelta::minutes(1))
            .await
            .unwrap()
    );
}

/// Another instance trusts its cached "not denied" for the cache TTL, then sees the
/// revocation through the shared deny-list.
#[tokio::test]
async fn other_instances_see_revocation_within_the_cache_ttl() {
    let s = setup(JwtConfig::default());
    let other = jwt_service(
        JwtConfig::default().with_deny_cache(Duration::from_secs(10), 1000),
        &s.store,
        &s.clock,
    );
    let issued = user_key(&s, None).await;
    let token = s.jwt.exchange(&principal_of(&issued)).unwrap();
    let token = token.token.expose_secret();
    assert!(other.verify(token).await.is_ok());

    s.keys.revoke(&issued.key.id).await.unwrap();
    s.clock.advance(TimeDelta::seconds(9));
    assert!(other.verify(token).await.is_ok(), "still cached");
    s.clock.advance(TimeDelta::seconds(1));
    assert!(matches!(
        other.verify(token).await,
        Err(AuthError::Jwt(JwtError::Revoked))
    ));
}

/// With the deny-list check off, a revoked key's exchanged token works until it expires.
#[tokio::test]
async fn with_the_check_off_revocation_waits_for_expiry() {
    let s = setup(JwtConfig::default().with_deny_list_check(false));
    let issued = user_key(&s, None).await;
    let token = s.jwt.exchange(&principal_of(&issued)).unwrap();
    let token = token.token.expose_secret();
    s.keys.revoke(&issued.key.id).await.unwrap();
    assert!(s.jwt.verify(token).await.is_ok());
    s.clock
        .advance(TimeDelta::minutes(15) + TimeDelta::seconds(5));
    assert!(matches!(
        s.jwt.verify(token).await,
        Err(AuthError::Jwt(JwtError::Expired))
    ));
}

/// Regenerating an environment denies the retired keys' tokens; a grace period leaves
/// them working.
#[tokio::test]
async fn regeneration_denies_retired_keys() {
    let s = setup(JwtConfig::default());
    let issued = user_key(&s, None).await;
    let user = issued.key.user_id.clone().unwrap();
    let token = s.jwt.exchange(&principal_of(&issued)).unwrap();
    let token = token.token.expose_secret();

    s.keys
        .regenerate(&user, &Environment::TEST, Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(s.jwt.verify(token).await.is_ok(), "grace period");
    s.keys
        .regenerate(&user, &Environment::TEST, None)
        .await
        .unwrap();
    assert!(matches!(
        s.jwt.verify(token).await,
        Err(AuthError::Jwt(JwtError::Revoked))
    ));
}

/// A session principal exchanges into a session token; an environment the service does
/// not accept cannot be exchanged.
#[tokio::test]
async fn exchanging_sessions_and_refused_environments() {
    let s = setup(JwtConfig::default());
    let session = Principal::from_claims(AuthMethod::UserSession, Environment::LIVE)
        .with_user_id(Some(UserId::new("u9").unwrap()));
    let token = s.jwt.exchange(&session).unwrap();
    assert_eq!(token.kind, TokenKind::Session);
    let p = s.jwt.verify(token.token.expose_secret()).await.unwrap();
    assert_eq!(p.method(), AuthMethod::UserSession);
    assert_eq!(p.user_id().map(UserId::as_str), Some("u9"));

    let staging = Principal::from_claims(AuthMethod::ApiKey, Environment::new("staging").unwrap());
    assert!(matches!(
        s.jwt.exchange(&staging),
        Err(JwtServiceError::InvalidRequest(_))
    ));
}

/// A logged-out token (revoked by its jti) is refused; other tokens of the same user are not.
#[tokio::test]
async fn revoking_one_token() {
    let s = setup(JwtConfig::default());
    let request = || keyroute_jwt::SessionRequest::new(UserId::new("u").unwrap());
    let a = s.jwt.issue_session(request()).unwrap();
    let b = s.jwt.issue_session(request()).unwrap();
    let verified = s.jwt.verify_token(a.token.expose_secret()).await.unwrap();
    s.jwt.revoke_token(&verified).await.unwrap();
    assert!(matches!(
        s.jwt.verify(a.token.expose_secret()).await,
        Err(AuthError::Jwt(JwtError::Revoked))
    ));
    assert!(s.jwt.verify(b.token.expose_secret()).await.is_ok());
}
