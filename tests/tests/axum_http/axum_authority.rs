//! No key makes a key stronger than itself, over the example service's real HTTP
//! routes: each test is a defect found by trying the routes as an attacker would, and
//! failed before the rules moved into core (`KeyService::acting_as`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use crate::axum_support::{Running, start, start_with};
use http::{Method, StatusCode};
use keyroute::jwt::SessionRequest;
use keyroute::keys::KeyQuery;
use keyroute::{ApiKey, Environment, KeyRequest, KeyType, Scopes, UserId};

/// The id of the user named `name`.
async fn user(s: &Running, name: &str) -> UserId {
    s.keyroute
        .store()
        .find_user_by_name(name)
        .await
        .unwrap()
        .unwrap()
        .id
}

/// Every key `user` holds, in every state.
async fn all_keys(s: &Running, user: &UserId) -> Vec<ApiKey> {
    s.keyroute
        .keys()
        .list_keys(user, &KeyQuery::all())
        .await
        .unwrap()
}

/// A key issued by the application itself: `env`, `scopes`, optional lifetime.
async fn app_key(
    s: &Running,
    user: &UserId,
    env: Environment,
    scopes: &[&str],
    lifetime: Option<Duration>,
) -> (ApiKey, String) {
    let mut request = KeyRequest::new(KeyType::SECRET, env)
        .for_user(user.clone())
        .named("app-made")
        .with_scopes(Scopes::parse(scopes).unwrap());
    if let Some(lifetime) = lifetime {
        request = request.expires_in(lifetime);
    }
    let issued = s.keyroute.keys().issue_key(request).await.unwrap();
    let plaintext = issued.plaintext.expose_secret().to_owned();
    (issued.key, plaintext)
}

/// A test key minted live keys (issue, roll of the user's live key, regenerate of the
/// live environment), and a test key holding the admin scope managed every user's
/// live keys. Each is now refused with `environment_mismatch`, and no live key appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_key_never_acts_on_live_keys() {
    let s = start().await;
    let c = &s.client;
    let ada = user(&s, "ada").await;
    let ops = user(&s, "ops").await;
    let test = s.keys.test.expose_secret();
    let live_before = all_keys(&s, &ada).await.len();
    let ada_live_key = all_keys(&s, &ada)
        .await
        .into_iter()
        .find(|k| k.environment == Environment::LIVE && k.name.as_deref() == Some("demo"))
        .unwrap();
    let (_, test_admin) = app_key(&s, &ops, Environment::TEST, &["admin"], None).await;
    let attempts = [
        (
            "issue a live key",
            c.json(
                Method::POST,
                "/apikeys",
                test,
                r#"{"environment":"live","scopes":["orders:*"]}"#,
            )
            .await,
        ),
        (
            "roll the user's live key",
            c.json(
                Method::POST,
                &format!("/apikeys/{}/roll", ada_live_key.id),
                test,
                "",
            )
            .await,
        ),
        (
            "regenerate live",
            c.json(Method::POST, "/apikeys/regenerate/live", test, "")
                .await,
        ),
        ("list live keys", c.get("/apikeys/live", test).await),
        (
            "a test admin lists ada's live keys",
            c.get(&format!("/apikeys/live?user_id={ada}"), &test_admin)
                .await,
        ),
        (
            "a test admin revokes ada's live key",
            c.json(
                Method::DELETE,
                &format!("/apikeys/{}", ada_live_key.id),
                &test_admin,
                "",
            )
            .await,
        ),
        (
            "a test admin regenerates ada's live keys",
            c.json(
                Method::POST,
                &format!("/apikeys/regenerate/live?user_id={ada}"),
                &test_admin,
                "",
            )
            .await,
        ),
    ];
    for (what, reply) in &attempts {
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (StatusCode::FORBIDDEN, "environment_mismatch"),
            "{what}: {}",
            reply.body
        );
        assert!(!reply.body.contains("key_secret"), "{what}");
    }
    let after = all_keys(&s, &ada).await;
    assert_eq!(after.len(), live_before, "no key was made");
    assert!(
        after.iter().all(|k| k.cancelled_at.is_none()),
        "none revoked"
    );
}

/// A staging deployment that refuses live keys (`accept_environments = ["test"]`)
/// still handed out live keys to its test callers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_only_deployment_hands_out_no_live_keys() {
    let s = start_with(false, "[resolver]\naccept_environments = [\"test\"]\n").await;
    let reply = s
        .client
        .json(
            Method::POST,
            "/apikeys",
            s.keys.test.expose_secret(),
            r#"{"environment":"live"}"#,
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
    assert_eq!(reply.code(), "environment_mismatch");
}

/// A key holding only `orders:read` rolled the user's admin key into a fresh admin
/// plaintext (and could revoke or regenerate the broader keys); a person's session
/// rolled it too, around the rule that sessions never grant `admin`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narrow_key_never_rolls_into_a_broader_one() {
    let s = start().await;
    let c = &s.client;
    let ada = user(&s, "ada").await;
    let (_, narrow) = app_key(&s, &ada, Environment::LIVE, &["orders:read"], None).await;
    let (admin_key, _) = app_key(&s, &ada, Environment::LIVE, &["admin"], None).await;
    let session = s
        .keyroute
        .jwt()
        .unwrap()
        .issue_session(SessionRequest::new(ada.clone()).in_environment(Environment::LIVE))
        .unwrap();
    let session = session.token.expose_secret();
    let roll = format!("/apikeys/{}/roll", admin_key.id);
    let attempts = [
        (
            "narrow key rolls the admin key",
            c.json(Method::POST, &roll, &narrow, "").await,
        ),
        (
            "narrow key revokes the admin key",
            c.json(
                Method::DELETE,
                &format!("/apikeys/{}", admin_key.id),
                &narrow,
                "",
            )
            .await,
        ),
        (
            "narrow key regenerates live (the admin key among them)",
            c.json(Method::POST, "/apikeys/regenerate/live", &narrow, "")
                .await,
        ),
        (
            "a session rolls the admin key",
            c.json(Method::POST, &roll, session, "").await,
        ),
        (
            "a session regenerates live (the admin key among them)",
            c.json(Method::POST, "/apikeys/regenerate/live", session, "")
                .await,
        ),
        (
            "a session issues an admin key",
            c.json(
                Method::POST,
                "/apikeys",
                session,
                r#"{"environment":"live","scopes":["*"]}"#,
            )
            .await,
        ),
    ];
    for (what, reply) in &attempts {
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (StatusCode::FORBIDDEN, "scope_exceeds_caller"),
            "{what}: {}",
            reply.body
        );
        assert!(!reply.body.contains("key_secret"), "{what}");
    }
    let stored = s.keyroute.store().get_api_key(&admin_key.id).await.unwrap();
    assert_eq!(
        stored.unwrap().cancelled_at,
        None,
        "the admin key is untouched"
    );
    // Its own scope it may roll.
    let mine = c.get("/apikeys/live", &narrow).await.json();
    let own = mine
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["scopes"] == serde_json::json!(["orders:read"]))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rolled = c
        .json(Method::POST, &format!("/apikeys/{own}/roll"), &narrow, "")
        .await;
    assert_eq!(rolled.status, StatusCode::OK, "{}", rolled.body);
    assert_eq!(
        rolled.json()["issued"]["scopes"],
        serde_json::json!(["orders:read"])
    );
}

/// From a key that expires in an hour, a roll returned a replacement with no expiry,
/// an issue without `expires_*` a key with no expiry, and a regenerate keys with only
/// the default expiry. Now nothing it makes outlives it, and asking for more is
/// refused with `expiry_exceeds_caller`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_never_escapes_its_own_expiry() {
    let s = start().await;
    let c = &s.client;
    let ada = user(&s, "ada").await;
    let (parent, plain) = app_key(
        &s,
        &ada,
        Environment::LIVE,
        &["orders:*"],
        Some(Duration::from_secs(3600)),
    )
    .await;
    let limit = serde_json::to_value(parent.expires_at.unwrap()).unwrap();

    let issued = c
        .json(
            Method::POST,
            "/apikeys",
            &plain,
            r#"{"environment":"live"}"#,
        )
        .await;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.body);
    assert_eq!(issued.json()["expires_at"], limit, "issue without expiry");

    let longer = c
        .json(
            Method::POST,
            "/apikeys",
            &plain,
            r#"{"environment":"live","expires_in":"30days"}"#,
        )
        .await;
    assert_eq!(
        (longer.status, longer.code().as_str()),
        (StatusCode::FORBIDDEN, "expiry_exceeds_caller"),
        "{}",
        longer.body
    );

    // The user's other live keys do not expire; regenerated from this key, none may
    // outlive it.
    let regenerated = c
        .json(Method::POST, "/apikeys/regenerate/live", &plain, "")
        .await;
    assert_eq!(regenerated.status, StatusCode::OK, "{}", regenerated.body);
    let keys = regenerated.json();
    assert!(!keys.as_array().unwrap().is_empty());
    for key in keys.as_array().unwrap() {
        let expires: chrono::DateTime<chrono::Utc> =
            serde_json::from_value(key["expires_at"].clone()).unwrap();
        assert!(expires <= parent.expires_at.unwrap(), "{key}");
    }

    // A roll keeps the old key's expiry.
    let (short, _) = app_key(
        &s,
        &ada,
        Environment::LIVE,
        &["orders:read"],
        Some(Duration::from_secs(600)),
    )
    .await;
    let fresh = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["scopes"] == serde_json::json!(["orders:*"]))
        .unwrap()["key_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let rolled = c
        .json(
            Method::POST,
            &format!("/apikeys/{}/roll", short.id),
            &fresh,
            "",
        )
        .await;
    assert_eq!(rolled.status, StatusCode::OK, "{}", rolled.body);
    assert_eq!(
        rolled.json()["issued"]["expires_at"],
        serde_json::to_value(short.expires_at.unwrap()).unwrap(),
        "roll keeps the old key's expiry"
    );
}

/// Regenerating a user's named, scoped test keys gave unnamed keys with no scopes, so
/// the new secret key got 403 on the app's own scoped routes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regenerate_keeps_what_the_keys_were() {
    let s = start().await;
    let c = &s.client;
    let ada = user(&s, "ada").await;
    let before: Vec<ApiKey> = all_keys(&s, &ada)
        .await
        .into_iter()
        .filter(|k| k.environment == Environment::TEST)
        .collect();
    let reply = c
        .json(
            Method::POST,
            "/apikeys/regenerate/test",
            s.keys.test.expose_secret(),
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let new_keys = reply.json();
    let new_keys = new_keys.as_array().unwrap();
    assert_eq!(new_keys.len(), before.len(), "one replacement per key");
    for old in &before {
        let scopes: Vec<&str> = old.scopes.iter().map(|s| s.as_str()).collect();
        assert!(
            new_keys.iter().any(|k| k["type"] == old.key_type.as_str()
                && k["name"] == serde_json::json!(old.name)
                && k["scopes"] == serde_json::json!(scopes)),
            "no replacement for {:?} {:?} {scopes:?}",
            old.key_type,
            old.name
        );
    }
    let secret = new_keys
        .iter()
        .find(|k| k["type"] == "secret" && k["name"] == "demo")
        .unwrap()["key_secret"]
        .as_str()
        .unwrap();
    let order = c.json(Method::POST, "/orders", secret, "grinder").await;
    assert_eq!(order.status, StatusCode::OK, "{}", order.body);
}

/// A key name with escape sequences and a newline was stored (201) and printed raw by
/// tools; names, notes and reference ids with control characters are now refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_with_control_characters_are_refused() {
    let s = start().await;
    let ada = user(&s, "ada").await;
    let before = all_keys(&s, &ada).await.len();
    for body in [
        r#"{"environment":"test","name":"\u001b[2J\u001b[Hfake\nrow"}"#,
        r#"{"environment":"test","notes":"line one\rline two"}"#,
    ] {
        let reply = s
            .client
            .json(Method::POST, "/apikeys", s.keys.test.expose_secret(), body)
            .await;
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
            "{}",
            reply.body
        );
        assert!(!reply.body.contains("fake"), "the text is not echoed");
    }
    assert_eq!(all_keys(&s, &ada).await.len(), before, "nothing stored");
}

/// One caller could fill the store with keys: at most `max_keys_per_user` work at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_holds_at_most_max_keys_per_user() {
    let s = start_with(false, "").await;
    let ada = user(&s, "ada").await;
    let limit = s.keyroute.keys().options().max_keys_per_user;
    let working = s
        .keyroute
        .keys()
        .list_keys(&ada, &KeyQuery::active_at(chrono::Utc::now()))
        .await
        .unwrap()
        .len();
    let body = r#"{"environment":"test"}"#;
    let test = s.keys.test.expose_secret();
    for n in working..limit {
        let reply = s.client.json(Method::POST, "/apikeys", test, body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "key {n}: {}", reply.body);
    }
    let reply = s.client.json(Method::POST, "/apikeys", test, body).await;
    assert_eq!(
        (reply.status, reply.code().as_str()),
        (StatusCode::FORBIDDEN, "too_many_keys"),
        "{}",
        reply.body
    );
}
