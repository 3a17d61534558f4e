//! Unit tests of the limiter step (`mod.rs`): which limits apply, and what the
//! in-process engine decides without a future.

use std::sync::Arc;

use keyroute_core::{ApiKey, AuthMethod, Environment, KeyHash, KeyId, KeyType, Tenant, UserId};

use super::*;

/// The in-process engine decides without a future: admitted with its usage, then
/// refused, with no store; a key with credits to spend, or a shared engine, is
/// handed to `admit`, and a cost of 0 spends no credit, so it is decided here.
#[test]
fn in_process_decisions_take_no_future() {
    let limit = RateLimit::new("r", 2, Duration::from_secs(60)).unwrap();
    let config = LimitsConfig {
        default: vec![DefaultLimit::new(limit)],
        ..LimitsConfig::default()
    };
    let limiter = Limiter::in_process(&config);
    let mut key = ApiKey::new(
        KeyId::new("k1").unwrap(),
        KeyType::SECRET,
        Environment::LIVE,
        KeyHash::of("x"),
        "h",
        chrono::Utc::now(),
    );
    let caller = Principal::from_api_key(Arc::new(key.clone()), None);
    for admitted in [true, true, false] {
        match limiter.admit_in_process(caller.clone(), 1) {
            Admission::Decided(Ok(p)) if admitted => assert_eq!(p.usage().len(), 1),
            Admission::Decided(Err(AuthError::RateLimited(r))) if !admitted => {
                assert_eq!(r.name, "r");
            }
            other => panic!("request {admitted}: {other:?}"),
        }
    }
    key.id = KeyId::new("k2").unwrap();
    key.credits = Some(keyroute_core::limits::Credits::new(5));
    let metered = Principal::from_api_key(Arc::new(key), None);
    assert!(matches!(
        limiter.admit_in_process(metered.clone(), 1),
        Admission::Ask(_)
    ));
    assert!(matches!(
        limiter.admit_in_process(metered, 0),
        Admission::Decided(Ok(_))
    ));
    let none = Limiter::in_process(&LimitsConfig::default());
    match none.admit_in_process(caller, 1) {
        Admission::Decided(Ok(p)) => assert!(p.usage().is_empty()),
        other => panic!("{other:?}"),
    }
}

/// Counters: a key's own, its user's, its tenant's; a session counts as its user,
/// never as one counter shared by every session.
#[test]
fn subjects_name_whose_traffic_counts() {
    let per = |scope| {
        RateLimit::new("r", 1, Duration::from_secs(1))
            .unwrap()
            .per(scope)
    };
    let mut key = ApiKey::new(
        KeyId::new("k1").unwrap(),
        KeyType::SECRET,
        Environment::LIVE,
        KeyHash::of("x"),
        "h",
        chrono::Utc::now(),
    );
    key.user_id = Some(UserId::new("u1").unwrap());
    key.tenant = Some(Tenant::new("acme").unwrap());
    let caller = Principal::from_api_key(Arc::new(key), None);
    assert_eq!(subject(&per(LimitScope::Key), &caller), "key:live:k1:r");
    assert_eq!(subject(&per(LimitScope::User), &caller), "user:live:u1:r");
    assert_eq!(
        subject(&per(LimitScope::Tenant), &caller),
        "tenant:live:acme:r"
    );
    let session = Principal::from_claims(AuthMethod::UserSession, Environment::TEST)
        .with_user_id(Some(UserId::new("u2").unwrap()));
    assert_eq!(subject(&per(LimitScope::Key), &session), "user:test:u2:r");
    assert_eq!(
        subject(&per(LimitScope::Tenant), &session),
        "user:test:u2:r"
    );
}
