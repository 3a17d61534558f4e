//! The key routes over real HTTP: who may do what (own keys, another user's, the
//! admin scope, a publishable key, a key of no user, a person's JWT session), body
//! validation, and the secrets they return only once and never cached.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use crate::axum_support::{Reply, start};
use http::{Method, StatusCode};
use keyroute::jwt::SessionRequest;
use keyroute::{Environment, KeyRequest, KeyType, NewUser};

/// The authorization matrix: each caller against each route, by status and code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_manage_whose_keys() {
    let s = start().await;
    let keys = s.keyroute.keys();
    let bob = keys.register_user(NewUser::named("bob")).await.unwrap();
    let bob_key = bob
        .key(&KeyType::SECRET, &Environment::LIVE)
        .unwrap()
        .key
        .id
        .clone();
    let ada_id = keys
        .store()
        .find_user_by_name("ada")
        .await
        .unwrap()
        .unwrap()
        .id;
    let orphan = keys
        .issue_key(KeyRequest::new(KeyType::SECRET, Environment::LIVE))
        .await
        .unwrap();
    let session = s
        .keyroute
        .jwt()
        .unwrap()
        .issue_session(SessionRequest::new(ada_id.clone()).in_environment(Environment::LIVE))
        .unwrap();
    let (ada, ada_test, admin, pk) = (
        s.keys.live.expose_secret(),
        s.keys.test.expose_secret(),
        s.keys.admin.expose_secret(),
        s.keys.publishable.expose_secret(),
    );
    let orphan = orphan.plaintext.expose_secret();
    let session = session.token.expose_secret();
    // A key acts only on keys of its own environment: the live admin on bob's live keys.
    let bob_list = format!("/apikeys/live?user_id={}", bob.user.id);
    let bob_delete = format!("/apikeys/{bob_key}");
    let issue = r#"{"environment":"test","scopes":["orders:read"]}"#;
    let c = &s.client;
    let matrix: Vec<(&str, Reply, StatusCode, &str)> = vec![
        (
            "own list",
            c.get("/apikeys/test", ada_test).await,
            StatusCode::OK,
            "",
        ),
        (
            "own issue",
            c.json(Method::POST, "/apikeys", ada_test, issue).await,
            StatusCode::CREATED,
            "",
        ),
        (
            "other's list",
            c.get(&bob_list, ada).await,
            StatusCode::FORBIDDEN,
            "not_your_keys",
        ),
        (
            "other's revoke",
            c.json(Method::DELETE, &bob_delete, ada, "").await,
            StatusCode::NOT_FOUND,
            "key_not_found",
        ),
        (
            "other's roll",
            c.json(Method::POST, &format!("{bob_delete}/roll"), ada, "")
                .await,
            StatusCode::NOT_FOUND,
            "key_not_found",
        ),
        (
            "admin lists bob's",
            c.get(&bob_list, admin).await,
            StatusCode::OK,
            "",
        ),
        (
            "publishable list",
            c.get("/apikeys/test", pk).await,
            StatusCode::FORBIDDEN,
            "publishable_key",
        ),
        (
            "publishable issue",
            c.json(Method::POST, "/apikeys", pk, issue).await,
            StatusCode::FORBIDDEN,
            "publishable_key",
        ),
        (
            "no user list",
            c.get("/apikeys/live", orphan).await,
            StatusCode::FORBIDDEN,
            "no_user",
        ),
        (
            "no user regenerate",
            c.json(Method::POST, "/apikeys/regenerate/live", orphan, "")
                .await,
            StatusCode::FORBIDDEN,
            "no_user",
        ),
        (
            "session list",
            c.get("/apikeys/live", session).await,
            StatusCode::OK,
            "",
        ),
        (
            "session exchange",
            c.json(Method::POST, "/token", session, "").await,
            StatusCode::OK,
            "",
        ),
        (
            "scope beyond the caller's",
            c.json(
                Method::POST,
                "/apikeys",
                ada,
                r#"{"environment":"live","scopes":["admin"]}"#,
            )
            .await,
            StatusCode::FORBIDDEN,
            "scope_exceeds_caller",
        ),
        (
            "admin revokes bob's",
            c.json(Method::DELETE, &bob_delete, admin, "").await,
            StatusCode::OK,
            "",
        ),
    ];
    for (name, reply, status, code) in &matrix {
        assert_eq!(reply.status, *status, "{name}: {}", reply.body);
        assert_eq!(reply.code(), *code, "{name}: {}", reply.body);
    }
    let listed = &matrix[0].1;
    assert!(!listed.body.contains("hash") && !listed.body.contains("key_secret"));
    assert!(!listed.body.contains(s.keys.test.expose_secret()));
    assert!(
        listed
            .json()
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["hint"].is_string())
    );
    let issued = &matrix[1].1;
    assert_eq!(issued.header("cache-control"), "no-store");
    assert!(
        issued.json()["key_secret"]
            .as_str()
            .unwrap()
            .starts_with("sk_test_")
    );
    assert_eq!(matrix[11].1.header("cache-control"), "no-store");
    // Bob's key, revoked by the admin, stops working at once.
    let bob_plain = bob
        .key(&KeyType::SECRET, &Environment::LIVE)
        .unwrap()
        .plaintext
        .expose_secret();
    assert_eq!(
        c.get("/apikeys/live", bob_plain).await.code(),
        "revoked_key"
    );
}

/// Bad bodies get typed problems: unknown environment and type, scope syntax,
/// expiry in the past, malformed JSON, an oversized body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_validated_with_typed_problems() {
    let s = start().await;
    let ada = s.keys.live.expose_secret();
    let big = format!(
        r#"{{"environment":"test","notes":"{}"}}"#,
        "n".repeat(20 * 1024)
    );
    let cases: [(&str, &str, StatusCode, &str); 7] = [
        (
            r#"{"environment":"staging"}"#,
            "unknown environment",
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_environment",
        ),
        (
            r#"{"environment":"test","type":"magic"}"#,
            "unknown type",
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_key_type",
        ),
        (
            r#"{"environment":"test","scopes":["orders read"]}"#,
            "scope syntax",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_scope",
        ),
        (
            r#"{"environment":"test","expires_at":"2001-01-01T00:00:00Z"}"#,
            "expiry in the past",
            StatusCode::UNPROCESSABLE_ENTITY,
            "expiry_in_past",
        ),
        (
            r#"{"environment":"test","colour":"red"}"#,
            "unknown field",
            StatusCode::BAD_REQUEST,
            "malformed_body",
        ),
        (
            r#"{"environment":"#,
            "malformed JSON",
            StatusCode::BAD_REQUEST,
            "malformed_body",
        ),
        (
            &big,
            "oversized body",
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
    ];
    for (body, name, status, code) in cases {
        let reply = s.client.json(Method::POST, "/apikeys", ada, body).await;
        assert_eq!(reply.status, status, "{name}: {}", reply.body);
        assert_eq!(reply.code(), code, "{name}");
        assert_eq!(reply.header("content-type"), "application/problem+json");
    }
}

/// Regenerating with a grace period returns new keys once (no-store) while the old
/// key keeps working; rolling one key returns its replacement and caps the grace
/// at the old key's expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regenerate_and_roll() {
    let s = start().await;
    let c = &s.client;
    let (live, test) = (s.keys.live.expose_secret(), s.keys.test.expose_secret());
    let reply = c
        .json(
            Method::POST,
            "/apikeys/regenerate/test",
            test,
            r#"{"grace":"1h"}"#,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.header("cache-control"), "no-store");
    let new_keys = reply.json();
    // The replacement of the caller's own key: a secret key named "demo".
    let new_secret = new_keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["type"] == "secret" && k["name"] == "demo")
        .unwrap()["key_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        c.get("/orders", test).await.status,
        StatusCode::OK,
        "grace keeps the old key"
    );
    assert_eq!(
        c.get("/apikeys/test", &new_secret).await.status,
        StatusCode::OK
    );

    let short = c
        .json(
            Method::POST,
            "/apikeys",
            live,
            r#"{"environment":"live","scopes":["orders:read"],"expires_in":"10m"}"#,
        )
        .await
        .json();
    let (id, secret) = (
        short["id"].as_str().unwrap(),
        short["key_secret"].as_str().unwrap(),
    );
    let rolled = c
        .json(
            Method::POST,
            &format!("/apikeys/{id}/roll"),
            live,
            r#"{"grace":"30days"}"#,
        )
        .await;
    assert_eq!(rolled.status, StatusCode::OK, "{}", rolled.body);
    let rolled = rolled.json();
    assert_eq!(
        rolled["retired"]["cancelled_at"], short["expires_at"],
        "grace capped at expiry"
    );
    assert_eq!(rolled["issued"]["scopes"], short["scopes"]);
    assert_eq!(
        c.get("/orders", secret).await.status,
        StatusCode::OK,
        "old key in grace"
    );
    let again = c
        .json(Method::POST, &format!("/apikeys/{id}/roll"), live, "")
        .await;
    assert_eq!(
        (again.status, again.code().as_str()),
        (StatusCode::CONFLICT, "not_rollable")
    );
    let gone = c
        .json(Method::DELETE, &format!("/apikeys/{id}"), live, "")
        .await;
    assert_eq!(gone.status, StatusCode::OK);
    assert_eq!(c.get("/orders", secret).await.code(), "revoked_key");
}
