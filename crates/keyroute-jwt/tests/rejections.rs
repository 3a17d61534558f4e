//! Every way a token can be wrong, each rejected with its own typed error.
//!
//! One service (issuer and audience configured, an HS256 signing key and an RSA
//! verification key) and one clock; every row is verified the way the router would,
//! through `TokenVerifier`, and must name the exact `JwtError`. No row may panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod common;

use common::{
    HS_KID, RSA_KID, SECRET, b64, fixture, hs_header, now_secs, setup, sign_json, sign_raw,
};
use keyroute_core::{AuthError, JwtError, TokenVerifier};
use keyroute_jwt::JwtConfig;
use serde_json::{Value, json};

/// Claims that pass every check at `now`; rows change one thing.
fn valid_claims(now: i64) -> Value {
    json!({
        "iss": "keyroute-test",
        "aud": "api",
        "jti": "0123456789abcdef0123456789abcdef",
        "kind": "exchange",
        "env": "test",
        "key_id": "fedcba9876543210fedcba9876543210",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "scopes": ["orders:read"],
    })
}

/// `valid_claims` with `key` set to `value` (or removed, for `Value::Null`).
fn with(now: i64, key: &str, value: Value) -> Value {
    let mut claims = valid_claims(now);
    let map = claims.as_object_mut().unwrap();
    if value.is_null() {
        map.remove(key);
    } else {
        map.insert(key.to_owned(), value);
    }
    claims
}

/// Each row: a name, a token, and the error it must give.
#[tokio::test]
async fn every_rejection_is_typed() {
    let s = setup(
        JwtConfig::default()
            .with_issuer("keyroute-test")
            .with_audience("api"),
    );
    let now = now_secs(&s.clock);
    let valid = sign_json(&hs_header(), &valid_claims(now));
    s.jwt
        .verify(&valid)
        .await
        .expect("the baseline token verifies");

    let [h, p, sig]: [&str; 3] = valid.split('.').collect::<Vec<_>>().try_into().unwrap();
    let rsa_public_pem = fixture("rsa_public.pem");
    let rsa_switch = sign_raw(
        &json!({"alg": "HS256", "typ": "JWT", "kid": RSA_KID}).to_string(),
        &valid_claims(now).to_string(),
        &rsa_public_pem,
    );
    let tampered = format!(
        "{h}.{}.{sig}",
        b64(with(now, "env", json!("live")).to_string())
    );
    let oversized = sign_json(&hs_header(), &with(now, "padding", json!("x".repeat(9000))));

    use JwtError as E;
    let rows: Vec<(&str, String, JwtError)> = vec![
        (
            "alg none, no signature",
            format!(
                "{}.{p}.",
                b64(json!({"alg": "none", "typ": "JWT"}).to_string())
            ),
            E::UnsupportedAlgorithm,
        ),
        (
            "alg none naming a real kid",
            format!(
                "{}.{p}.",
                b64(json!({"alg": "none", "kid": HS_KID}).to_string())
            ),
            E::UnsupportedAlgorithm,
        ),
        (
            "alg missing",
            sign_json(&json!({"kid": HS_KID}), &valid_claims(now)),
            E::UnsupportedAlgorithm,
        ),
        (
            "alg this service never uses (PS256)",
            sign_json(&json!({"alg": "PS256", "kid": HS_KID}), &valid_claims(now)),
            E::UnsupportedAlgorithm,
        ),
        (
            "RS256 to HS256 switch, RSA public key as the HMAC secret",
            rsa_switch,
            E::AlgorithmMismatch,
        ),
        (
            "HS512 claimed for an HS256 key",
            sign_json(&json!({"alg": "HS512", "kid": HS_KID}), &valid_claims(now)),
            E::AlgorithmMismatch,
        ),
        (
            "unknown kid",
            sign_json(&json!({"alg": "HS256", "kid": "nope"}), &valid_claims(now)),
            E::UnknownKeyId,
        ),
        (
            // Without kid, a token is checked with the one key of its alg; none is HS384.
            "missing kid, no key of its alg",
            sign_json(&json!({"alg": "HS384"}), &valid_claims(now)),
            E::MissingKeyId,
        ),
        (
            "kid not a string",
            sign_json(&json!({"alg": "HS256", "kid": 1}), &valid_claims(now)),
            E::UnknownKeyId,
        ),
        (
            "wrong iss",
            sign_json(&hs_header(), &with(now, "iss", json!("someone-else"))),
            E::WrongIssuer,
        ),
        (
            "missing iss",
            sign_json(&hs_header(), &with(now, "iss", Value::Null)),
            E::MissingClaim("iss"),
        ),
        (
            "wrong aud",
            sign_json(&hs_header(), &with(now, "aud", json!("other-api"))),
            E::WrongAudience,
        ),
        (
            "wrong aud in a list",
            sign_json(&hs_header(), &with(now, "aud", json!(["a", "b"]))),
            E::WrongAudience,
        ),
        (
            "missing aud",
            sign_json(&hs_header(), &with(now, "aud", Value::Null)),
            E::MissingClaim("aud"),
        ),
        (
            "expired",
            sign_json(&hs_header(), &with(now, "exp", json!(now - 60))),
            E::Expired,
        ),
        (
            "not yet valid",
            sign_json(&hs_header(), &with(now, "nbf", json!(now + 3600))),
            E::NotYetValid,
        ),
        (
            "exp not a number",
            sign_json(&hs_header(), &with(now, "exp", json!("tomorrow"))),
            E::InvalidClaim("exp"),
        ),
        (
            "exchange token without exp",
            sign_json(&hs_header(), &with(now, "exp", Value::Null)),
            E::MissingClaim("exp"),
        ),
        (
            "tampered payload, original signature",
            tampered,
            E::BadSignature,
        ),
        (
            "signed with another secret",
            sign_raw(
                &hs_header().to_string(),
                &valid_claims(now).to_string(),
                b"another-secret-of-at-least-32-bytes!!",
            ),
            E::BadSignature,
        ),
        (
            "truncated signature",
            valid[..valid.len() - 6].to_owned(),
            E::Malformed,
        ),
        (
            "truncated inside the payload",
            valid[..h.len() + 10].to_owned(),
            E::Malformed,
        ),
        ("empty", String::new(), E::Malformed),
        ("two parts", format!("{h}.{p}"), E::Malformed),
        ("four parts", format!("{valid}.{sig}"), E::Malformed),
        (
            "oversized (over 8 KiB)",
            oversized.clone(),
            E::TooLong {
                len: oversized.len(),
                max: 8192,
            },
        ),
        (
            "oversized garbage",
            "a".repeat(100_000),
            E::TooLong {
                len: 100_000,
                max: 8192,
            },
        ),
        ("garbage base64", "!!!.@@@.###".to_owned(), E::Malformed),
        (
            "padded base64 header",
            format!("{}=.{p}.{sig}", h),
            E::Malformed,
        ),
        (
            "header not JSON",
            format!("{}.{p}.{sig}", b64("{not json")),
            E::Malformed,
        ),
        (
            "header a JSON array",
            format!("{}.{p}.{sig}", b64(r#"["HS256","hs-1"]"#)),
            E::Malformed,
        ),
        (
            "critical header extension",
            sign_json(
                &json!({"alg": "HS256", "kid": HS_KID, "crit": ["exp"]}),
                &valid_claims(now),
            ),
            E::Malformed,
        ),
        (
            "payload not JSON, correctly signed",
            sign_raw(&hs_header().to_string(), "{\"env\": tes", SECRET),
            E::Malformed,
        ),
        (
            "payload a JSON string, correctly signed",
            sign_raw(&hs_header().to_string(), "\"claims\"", SECRET),
            E::Malformed,
        ),
        (
            "payload with a repeated claim",
            sign_raw(
                &hs_header().to_string(),
                r#"{"env":"test","env":"live"}"#,
                SECRET,
            ),
            E::Malformed,
        ),
        (
            "missing env",
            sign_json(&hs_header(), &with(now, "env", Value::Null)),
            E::MissingClaim("env"),
        ),
        (
            "missing jti",
            sign_json(&hs_header(), &with(now, "jti", Value::Null)),
            E::MissingClaim("jti"),
        ),
        (
            "missing kind",
            sign_json(&hs_header(), &with(now, "kind", Value::Null)),
            E::MissingClaim("kind"),
        ),
        (
            "unknown kind",
            sign_json(&hs_header(), &with(now, "kind", json!("admin"))),
            E::InvalidClaim("kind"),
        ),
        (
            "unknown env (valid name, not configured)",
            sign_json(&hs_header(), &with(now, "env", json!("staging"))),
            E::InvalidClaim("env"),
        ),
        (
            "env not a valid name",
            sign_json(&hs_header(), &with(now, "env", json!("LIVE"))),
            E::InvalidClaim("env"),
        ),
        (
            "env not a string",
            sign_json(&hs_header(), &with(now, "env", json!(["test"]))),
            E::InvalidClaim("env"),
        ),
        (
            "invalid scope",
            sign_json(&hs_header(), &with(now, "scopes", json!(["orders read"]))),
            E::InvalidClaim("scopes"),
        ),
        (
            "invalid structured scopes",
            sign_json(
                &hs_header(),
                &with(now, "scopes", json!({"orders": {"actions": "read"}})),
            ),
            E::InvalidClaim("scopes"),
        ),
        (
            "empty jti",
            sign_json(&hs_header(), &with(now, "jti", json!(""))),
            E::InvalidClaim("jti"),
        ),
        (
            "bad key id",
            sign_json(&hs_header(), &with(now, "key_id", json!("a\u{0}b"))),
            E::InvalidClaim("key_id"),
        ),
        (
            "bad tenant",
            sign_json(&hs_header(), &with(now, "tenant", json!("Acme Inc"))),
            E::InvalidClaim("tenant"),
        ),
        (
            "session without sub",
            sign_json(&hs_header(), &with(now, "kind", json!("session"))),
            E::MissingClaim("sub"),
        ),
    ];

    let mut failures = Vec::new();
    for (name, token, expected) in rows {
        match s.jwt.verify(&token).await {
            Err(AuthError::Jwt(got)) if got == expected => {}
            other => failures.push(format!("{name}: expected {expected:?}, got {other:?}")),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Without an audience configured, a token that names one is refused (RFC 7519 §4.1.3).
#[tokio::test]
async fn an_audience_we_do_not_have_is_refused() {
    let s = setup(JwtConfig::default());
    let now = now_secs(&s.clock);
    let mut claims = valid_claims(now);
    claims.as_object_mut().unwrap().remove("iss");
    let without_aud = {
        let mut c = claims.clone();
        c.as_object_mut().unwrap().remove("aud");
        c
    };
    assert!(
        s.jwt
            .verify(&sign_json(&hs_header(), &without_aud))
            .await
            .is_ok()
    );
    assert!(matches!(
        s.jwt.verify(&sign_json(&hs_header(), &claims)).await,
        Err(AuthError::Jwt(JwtError::WrongAudience))
    ));
}

/// A smaller configured cap applies to the length check.
#[tokio::test]
async fn the_length_cap_is_configurable() {
    let s = setup(JwtConfig::default().with_max_token_bytes(600));
    let token = "x".repeat(601);
    assert!(matches!(
        s.jwt.verify(&token).await,
        Err(AuthError::Jwt(JwtError::TooLong { len: 601, max: 600 }))
    ));
}
