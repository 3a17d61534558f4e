//! Properties over arbitrary input: a valid token changed in one byte, cut short, or
//! replaced by any string never panics the verifier and never verifies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::{Arc, LazyLock};

use common::{fixture, t0};
use keyroute_core::{AuthError, ManualClock, TokenVerifier, UserId};
use keyroute_jwt::{JwtAlgorithm, JwtConfig, JwtService, SessionRequest, SigningKey};
use proptest::prelude::*;

/// One HS256 and one EdDSA service, each with a valid token.
static CASES: LazyLock<Vec<(JwtService, String)>> = LazyLock::new(|| {
    let clock = ManualClock::new(t0());
    [
        SigningKey::generate_hs256("hs").unwrap(),
        SigningKey::from_pem("ed", JwtAlgorithm::EdDsa, &fixture("ed_private.pem")).unwrap(),
    ]
    .into_iter()
    .map(|key| {
        let jwt = JwtService::builder(JwtConfig::default().with_deny_list_check(false))
            .signing_key(key)
            .clock(Arc::new(clock.clone()))
            .build()
            .unwrap();
        let token = jwt
            .issue_session(SessionRequest::new(UserId::new("u").unwrap()))
            .unwrap()
            .token
            .expose_secret()
            .to_owned();
        (jwt, token)
    })
    .collect()
});

/// A service whose HS256 secret the tests know, to sign arbitrary payloads.
static SIGNED: LazyLock<JwtService> = LazyLock::new(|| {
    let store = Arc::new(keyroute_store::MemoryStore::new());
    common::jwt_service(JwtConfig::default(), &store, &ManualClock::new(t0()))
});

/// Any JSON value, nested a few levels, with claim names likely to be picked.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-z:*_. -]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        let key = prop_oneof![
            Just("env".to_owned()),
            Just("jti".to_owned()),
            Just("kind".to_owned()),
            Just("exp".to_owned()),
            Just("nbf".to_owned()),
            Just("aud".to_owned()),
            Just("sub".to_owned()),
            Just("scopes".to_owned()),
            Just("actions".to_owned()),
            "[a-z]{1,6}",
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key, inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
});

fn verify(service: &JwtService, token: &str) -> Result<keyroute_core::Principal, AuthError> {
    RUNTIME.block_on(service.verify(token))
}

/// The unchanged tokens verify, so the properties below test the changes.
#[test]
fn baseline_tokens_verify() {
    for (jwt, token) in CASES.iter() {
        assert!(verify(jwt, token).is_ok());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// Any single-byte change (to any ASCII byte) of a valid token is refused.
    #[test]
    fn single_byte_changes_never_verify(case in 0..2usize, at in any::<prop::sample::Index>(), byte in 0u8..128) {
        let (jwt, token) = &CASES[case];
        let at = at.index(token.len());
        prop_assume!(token.as_bytes()[at] != byte);
        let mut bytes = token.clone().into_bytes();
        bytes[at] = byte;
        let changed = String::from_utf8(bytes).unwrap();
        prop_assert!(verify(jwt, &changed).is_err(), "{changed}");
    }

    /// Every proper prefix of a valid token is refused.
    #[test]
    fn truncations_never_verify(case in 0..2usize, at in any::<prop::sample::Index>()) {
        let (jwt, token) = &CASES[case];
        let cut = &token[..at.index(token.len())];
        prop_assert!(verify(jwt, cut).is_err());
    }

    /// Inserting or deleting one byte anywhere is refused.
    #[test]
    fn insertions_and_deletions_never_verify(case in 0..2usize, at in any::<prop::sample::Index>(), byte in 0u8..128, insert in any::<bool>()) {
        let (jwt, token) = &CASES[case];
        let mut bytes = token.clone().into_bytes();
        let at = at.index(bytes.len());
        if insert { bytes.insert(at, byte) } else { bytes.remove(at); }
        let changed = String::from_utf8(bytes).unwrap();
        prop_assert!(verify(jwt, &changed).is_err());
    }

    /// Arbitrary strings, including JWT-shaped ones, give an error and never a panic.
    #[test]
    fn arbitrary_input_never_panics(input in prop_oneof![
        ".{0,300}",
        "[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,200}\\.[A-Za-z0-9_-]{0,90}",
        "eyJ[A-Za-z0-9_-]{0,60}\\.eyJ[A-Za-z0-9_-]{0,200}\\.[A-Za-z0-9_-]{0,90}",
    ]) {
        for (jwt, _) in CASES.iter() {
            prop_assert!(verify(jwt, &input).is_err());
        }
    }

    /// Correctly signed tokens with arbitrary JSON (or non-JSON) payloads reach the claim
    /// checks and never panic them.
    #[test]
    fn signed_arbitrary_payloads_never_panic(value in json_value(), text in ".{0,64}", raw in any::<bool>()) {
        let payload = if raw { text } else { value.to_string() };
        let token = common::sign_raw(&common::hs_header().to_string(), &payload, common::SECRET);
        let _ = verify(&SIGNED, &token);
    }

    /// Signed claims that are valid except for random values of the typed claims give
    /// typed errors or a principal, never a panic.
    #[test]
    fn signed_claim_values_never_panic(env in json_value(), scopes in json_value(), exp in json_value()) {
        let now = t0().timestamp();
        let claims = serde_json::json!({
            "jti": "j1", "kind": "exchange", "env": env, "scopes": scopes, "exp": exp,
            "nbf": now, "iat": now,
        });
        let token = common::sign_json(&common::hs_header(), &claims);
        let _ = verify(&SIGNED, &token);
    }
}
