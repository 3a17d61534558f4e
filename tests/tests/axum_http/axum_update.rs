//! `PATCH /apikeys/{id}` over real HTTP: a key's settings change after issue, within
//! the caller's authority; a disabled key is refused until enabled again; a key bound
//! to allowed networks is refused elsewhere, the client address read through trusted
//! proxies. Every refusal is core's typed answer, and nothing is half-applied.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use crate::axum_support::{start, start_with};
use http::{Method, StatusCode};
use keyroute::KeyId;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_is_changed_within_the_callers_authority() {
    let s = start().await;
    let ada = s.keys.live.expose_secret().to_owned();
    let (id, child) = s
        .issue(
            &ada,
            r#"{"environment":"live","name":"ci","scopes":["orders:read","orders:write"]}"#,
        )
        .await;
    assert_eq!(s.client.get("/orders", &child).await.status, StatusCode::OK);

    // Rename, note and narrow: each change applied and named.
    let reply = s
        .client
        .patch_key(
            &id,
            &ada,
            r#"{"name":"ci deploy","notes":"read only from now on","scopes":["orders:read"]}"#,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let json = reply.json();
    assert_eq!(json["name"], "ci deploy");
    assert_eq!(json["scopes"], serde_json::json!(["orders:read"]));
    assert_eq!(
        json["changed"],
        serde_json::json!(["name", "scopes", "notes"])
    );
    assert_eq!(json["enabled"], true);
    assert!(!reply.mentions(&child), "no secret in the answer");
    let write = s
        .client
        .json(Method::POST, "/orders", &child, "\"book\"")
        .await;
    assert_eq!(write.status, StatusCode::FORBIDDEN, "{}", write.body);
    assert_eq!(write.code(), "insufficient_scope");
    // `null` removes; an update that changes nothing writes nothing.
    let reply = s.client.patch_key(&id, &ada, r#"{"notes":null}"#).await;
    assert_eq!(reply.json()["notes"], serde_json::Value::Null);
    let revision = s.stored(&id).await.revision;
    let reply = s.client.patch_key(&id, &ada, r#"{"notes":null}"#).await;
    assert_eq!(reply.json()["changed"], serde_json::json!([]));
    assert_eq!(s.stored(&id).await.revision, revision);

    // The narrowed key may not widen itself back, nor outlive its parent's choice.
    let before = s.stored(&id).await;
    let admin = s.keys.admin.expose_secret().to_owned();
    let test = s.keys.test.expose_secret().to_owned();
    let publishable = s.keys.publishable.expose_secret().to_owned();
    for (key, body, status, code) in [
        (
            child.as_str(),
            r#"{"scopes":["orders:*"]}"#,
            StatusCode::FORBIDDEN,
            "scope_exceeds_caller",
        ),
        (
            ada.as_str(),
            r#"{"scopes":["admin"]}"#,
            StatusCode::FORBIDDEN,
            "scope_exceeds_caller",
        ),
        (
            test.as_str(),
            r#"{"name":"from test"}"#,
            StatusCode::FORBIDDEN,
            "environment_mismatch",
        ),
        (
            publishable.as_str(),
            r#"{"enabled":false}"#,
            StatusCode::FORBIDDEN,
            "publishable_key",
        ),
        (
            ada.as_str(),
            r#"{"allowed_networks":["10.0.0.0/33"]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_network",
        ),
        (
            ada.as_str(),
            r#"{"allowed_networks":["not a network"]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_network",
        ),
        (
            ada.as_str(),
            r#"{"expires_at":"2001-01-01T00:00:00Z"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "expiry_in_past",
        ),
        (
            ada.as_str(),
            r#"{"expires_at":"2999-01-01T00:00:00Z","expires_in":"1h"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "ambiguous_expiry",
        ),
        (
            ada.as_str(),
            r#"{"scopes":["orders read"]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_scope",
        ),
        (
            ada.as_str(),
            r#"{"name":"bad\u001b[2Jname"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            ada.as_str(),
            r#"{"meta":{"format":"jwt"}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
        ),
        (
            ada.as_str(),
            "",
            StatusCode::UNPROCESSABLE_ENTITY,
            "empty_update",
        ),
        (
            ada.as_str(),
            r#"{"colour":"blue"}"#,
            StatusCode::BAD_REQUEST,
            "malformed_body",
        ),
    ] {
        let reply = s.client.patch_key(&id, key, body).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.body);
        assert_eq!(reply.code(), code, "{body}: {}", reply.body);
        assert_eq!(s.stored(&id).await, before, "{body}: nothing applied");
    }
    // Unknown ids, and keys the caller may not see, are no key.
    for unknown in [KeyId::random().to_string(), "not%20a%20key%20id".to_owned()] {
        let reply = s.client.patch_key(&unknown, &ada, r#"{"name":"x"}"#).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.body);
        assert_eq!(reply.code(), "key_not_found");
    }
    let (ops_key, _) = s.issue(&admin, r#"{"environment":"live"}"#).await;
    let reply = s
        .client
        .patch_key(&ops_key, &ada, r#"{"name":"mine now"}"#)
        .await;
    assert_eq!(reply.code(), "key_not_found", "another user's key");
    // An admin key of the environment changes anyone's key.
    let reply = s
        .client
        .patch_key(&id, &admin, r#"{"name":"by ops"}"#)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_is_bounded_by_the_caller_on_update() {
    let s = start().await;
    let ada = s.keys.live.expose_secret().to_owned();
    let (id, short) = s
        .issue(
            &ada,
            r#"{"environment":"live","scopes":["orders:read"],"expires_in":"1h"}"#,
        )
        .await;
    let before = s.stored(&id).await;
    for body in [r#"{"expires_in":"90days"}"#, r#"{"expires_at":null}"#] {
        let reply = s.client.patch_key(&id, &short, body).await;
        assert_eq!(
            reply.status,
            StatusCode::FORBIDDEN,
            "{body}: {}",
            reply.body
        );
        assert_eq!(reply.code(), "expiry_exceeds_caller", "{body}");
        assert_eq!(s.stored(&id).await, before, "{body}: nothing applied");
    }
    // Shortening its own life is its right; its owner may extend it.
    let reply = s
        .client
        .patch_key(&id, &short, r#"{"expires_in":"30m"}"#)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let reply = s
        .client
        .patch_key(&id, &ada, r#"{"expires_in":"90days"}"#)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json()["changed"], serde_json::json!(["expires_at"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_key_is_refused_until_enabled() {
    let s = start().await;
    let ada = s.keys.live.expose_secret().to_owned();
    let (id, child) = s
        .issue(&ada, r#"{"environment":"live","scopes":["orders:read"]}"#)
        .await;
    assert_eq!(s.client.get("/orders", &child).await.status, StatusCode::OK);
    let reply = s
        .client
        .patch_key(&id, &child, r#"{"enabled":false}"#)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "a key may switch itself off");
    assert_eq!(reply.json()["enabled"], false);
    for _ in 0..3 {
        // Cached or not: refused on every request.
        let refused = s.client.get("/orders", &child).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
        assert_eq!(refused.code(), "disabled_key");
        assert!(
            refused.header("www-authenticate").contains("invalid_token"),
            "{:?}",
            refused.headers
        );
    }
    let reply = s.client.patch_key(&id, &child, r#"{"enabled":true}"#).await;
    assert_eq!(
        reply.code(),
        "disabled_key",
        "a disabled key cannot enable itself"
    );
    let reply = s.client.patch_key(&id, &ada, r#"{"enabled":true}"#).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(s.client.get("/orders", &child).await.status, StatusCode::OK);
    // The same secret works again: nothing was re-issued.
    assert!(s.stored(&id).await.enabled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_works_only_from_its_allowed_networks() {
    let s = start().await;
    let ada = s.keys.live.expose_secret().to_owned();
    let (id, child) = s
        .issue(
            &ada,
            r#"{"environment":"live","scopes":["orders:read"],"allowed_networks":["10.0.0.0/8"]}"#,
        )
        .await;
    let refused = s.client.get("/orders", &child).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(refused.code(), "network_not_allowed");
    // A forwarded address counts only from a trusted proxy: 127.0.0.1 is not one here.
    let forwarded = s
        .client
        .send(
            Method::GET,
            "/orders",
            &[
                ("authorization", format!("Bearer {child}").as_bytes()),
                ("x-forwarded-for", b"10.1.2.3"),
            ],
            "",
        )
        .await;
    assert_eq!(
        forwarded.code(),
        "network_not_allowed",
        "a client's own claim"
    );

    let reply = s
        .client
        .patch_key(&id, &ada, r#"{"allowed_networks":["127.0.0.0/8"]}"#)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        reply.json()["allowed_networks"],
        serde_json::json!(["127.0.0.0/8"])
    );
    assert_eq!(s.client.get("/orders", &child).await.status, StatusCode::OK);

    // A key bound to networks makes keys only within them, and cannot unbind itself.
    let reply = s
        .client
        .json(
            Method::POST,
            "/apikeys",
            &child,
            r#"{"environment":"live","allowed_networks":["0.0.0.0/0"]}"#,
        )
        .await;
    assert_eq!(reply.code(), "network_exceeds_caller", "{}", reply.body);
    let reply = s
        .client
        .patch_key(&id, &child, r#"{"allowed_networks":[]}"#)
        .await;
    assert_eq!(reply.code(), "network_exceeds_caller", "{}", reply.body);
    let reply = s
        .client
        .json(
            Method::POST,
            "/apikeys",
            &child,
            r#"{"environment":"live"}"#,
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(
        reply.json()["allowed_networks"],
        serde_json::json!(["127.0.0.0/8"]),
        "inherited"
    );
    // Nor can it be exchanged for a JWT, which any address could present.
    let token = s.client.json(Method::POST, "/token", &child, "").await;
    assert_eq!(
        token.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        token.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_forwarded_address_counts() {
    let s = start_with(false, "[resolver]\ntrusted_proxies = [\"127.0.0.1/32\"]\n").await;
    let ada = s.keys.live.expose_secret().to_owned();
    let (_, child) = s.issue(&ada,
        r#"{"environment":"live","scopes":["orders:read"],"allowed_networks":["192.0.2.0/24"]}"#,
    )
    .await;
    let auth = format!("Bearer {child}");
    for (forwarded, status) in [
        (&b"192.0.2.9"[..], StatusCode::OK),
        (b"198.51.100.1", StatusCode::FORBIDDEN),
        // The client wrote the first value; the proxy appended what it saw.
        (b"192.0.2.9, 198.51.100.1", StatusCode::FORBIDDEN),
        (b"198.51.100.1, 192.0.2.9", StatusCode::OK),
        (b"not an address", StatusCode::FORBIDDEN),
    ] {
        let reply = s
            .client
            .send(
                Method::GET,
                "/orders",
                &[
                    ("authorization", auth.as_bytes()),
                    ("x-forwarded-for", forwarded),
                ],
                "",
            )
            .await;
        assert_eq!(
            reply.status,
            status,
            "{}: {}",
            String::from_utf8_lossy(forwarded),
            reply.body
        );
    }
}

/// Tokens exchanged from a key carry its authority at the time; a narrowing update ends
/// them (they would keep the scope taken away, or outlive the disabling), while a
/// rename leaves them working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn narrowing_a_key_ends_the_tokens_exchanged_from_it() {
    let s = start().await;
    let ada = s.keys.live.expose_secret().to_owned();
    for narrowing in [r#"{"enabled":false}"#, r#"{"scopes":["orders:write"]}"#] {
        let (id, child) = s
            .issue(
                &ada,
                r#"{"environment":"live","scopes":["orders:read","orders:write"]}"#,
            )
            .await;
        let token = s.client.json(Method::POST, "/token", &child, "").await;
        assert_eq!(token.status, StatusCode::OK, "{}", token.body);
        let jwt = token.json()["access_token"].as_str().unwrap().to_owned();
        assert_eq!(s.client.get("/orders", &jwt).await.status, StatusCode::OK);
        let renamed = s.client.patch_key(&id, &ada, r#"{"name":"renamed"}"#).await;
        assert_eq!(renamed.status, StatusCode::OK);
        assert_eq!(
            s.client.get("/orders", &jwt).await.status,
            StatusCode::OK,
            "a rename takes nothing away"
        );
        let reply = s.client.patch_key(&id, &ada, narrowing).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let refused = s.client.get("/orders", &jwt).await;
        assert_eq!(
            refused.status,
            StatusCode::UNAUTHORIZED,
            "{narrowing}: {}",
            refused.body
        );
        assert_eq!(refused.code(), "revoked_token", "{narrowing}");
    }
}
