//! Usage limits and credits over real HTTP: 429 with `Retry-After` and the IETF
//! draft's `RateLimit` headers, credits spent and refused at zero and refilled, a
//! refusal that spends nothing, limits and credits kept within the caller's on issue,
//! update and roll, and the README's walk-through run as written with the real curl.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use crate::axum_support::{Client, start, start_with};
use axum::routing::get;
use axum::{Extension, Router};
use http::{Method, StatusCode};
use keyroute::axum::{AuthLayer, Caller, RequestCost};

const TEST_LIMIT: &str = "\n[[limits.default]]\nname = \"requests\"\nlimit = 3\nwindow = \"1m\"\nenvironment = \"test\"\n";

/// The caller's limits as the handler sees them: `name=remaining`.
async fn usage(Caller(caller): Caller) -> String {
    caller
        .usage()
        .iter()
        .map(|u| format!("{}={}", u.name, u.remaining))
        .collect::<Vec<_>>()
        .join(",")
}

/// A route charges its own cost (`RequestCost`), 0 only looks; behind `AuthLayer` an
/// admitted response carries the `RateLimit` headers too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_charges_its_cost_and_the_layer_adds_the_headers() {
    let s = start_with(false, &TEST_LIMIT.replace("limit = 3", "limit = 10")).await;
    let router = Router::new()
        .route("/export", get(usage).layer(Extension(RequestCost(4))))
        .route("/peek", get(usage).layer(Extension(RequestCost(0))))
        .route("/one", get(usage))
        .with_state(s.keyroute.clone())
        .merge(
            Router::new()
                .route("/layered", get(|| async { "ok" }))
                .layer(AuthLayer::new(s.keyroute.axum_state())),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = Client::new(listener.local_addr().unwrap());
    tokio::spawn(crate::axum_support::service::serve(listener, router));
    let key = s.keys.test.expose_secret().to_owned();
    for (path, expected) in [
        ("/peek", "requests=10"),
        ("/export", "requests=6"),
        ("/one", "requests=5"),
        ("/export", "requests=1"),
        ("/peek", "requests=1"),
    ] {
        let reply = client.get(path, &key).await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (StatusCode::OK, expected),
            "{path}"
        );
    }
    let refused = client.get("/export", &key).await;
    assert_eq!(refused.code(), "rate_limited", "4 units asked, 1 left");
    assert_eq!(
        client.get("/one", &key).await.body,
        "requests=0",
        "the refusal spent nothing"
    );

    let other = s.keys.publishable.expose_secret().to_owned();
    let admitted = client.get("/layered", &other).await;
    assert_eq!(admitted.status, StatusCode::OK);
    assert_eq!(
        admitted.header("ratelimit-policy"),
        "\"requests\";q=10;w=60"
    );
    assert!(
        admitted
            .header("ratelimit")
            .starts_with("\"requests\";r=9;t="),
        "{}",
        admitted.header("ratelimit")
    );
}

fn remaining_credits(key: &keyroute::ApiKey) -> u64 {
    key.credits.expect("the key is metered").remaining
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_up_limit_answers_429_with_the_drafts_headers() {
    let s = start_with(false, TEST_LIMIT).await;
    let test = s.keys.test.expose_secret().to_owned();
    for _ in 0..3 {
        let reply = s.client.get("/orders", &test).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    let refused = s.client.get("/orders", &test).await;
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        refused.body
    );
    assert_eq!(refused.code(), "rate_limited");
    assert_eq!(refused.header("content-type"), "application/problem+json");
    let retry: u64 = refused.header("retry-after").parse().unwrap();
    assert!(
        (1..=20).contains(&retry),
        "one unit comes back every 20 s: {retry}"
    );
    assert_eq!(refused.header("ratelimit-policy"), "\"requests\";q=3;w=60");
    assert!(
        refused
            .header("ratelimit")
            .starts_with("\"requests\";r=0;t="),
        "{}",
        refused.header("ratelimit")
    );
    assert!(!refused.mentions(&test));
    // The default is for test keys: live keys are not limited.
    let live = s.keys.live.expose_secret().to_owned();
    for _ in 0..5 {
        assert_eq!(s.client.get("/orders", &live).await.status, StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credits_are_spent_refused_at_zero_topped_up_and_refilled() {
    let s = start().await;
    let ada = s.keys.live.expose_secret().to_owned();
    let (id, key) = s
        .issue(
            &ada,
            r#"{"environment":"live","scopes":["orders:read"],"credits":{"remaining":2}}"#,
        )
        .await;
    for _ in 0..2 {
        assert_eq!(s.client.get("/orders", &key).await.status, StatusCode::OK);
    }
    let refused = s.client.get("/orders", &key).await;
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        refused.body
    );
    assert_eq!(refused.code(), "credits_exhausted");
    assert_eq!(
        remaining_credits(&s.stored(&id).await),
        0,
        "never below zero"
    );

    // A new balance outright, shown by the listing; then unmetered.
    let reply = s
        .client
        .patch_key(&id, &ada, r#"{"credits":{"remaining":3}}"#)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.json()["credits"]["remaining"], 3);
    assert_eq!(s.client.get("/orders", &key).await.status, StatusCode::OK);
    let listed = s.client.get("/apikeys/live", &ada).await;
    let json = listed.json();
    let keys = json
        .as_array()
        .or_else(|| json["keys"].as_array())
        .unwrap_or_else(|| panic!("a list of keys: {}", listed.body));
    let shown = keys.iter().find(|k| k["id"] == id.as_str()).unwrap();
    assert_eq!(shown["credits"]["remaining"], 2, "{}", listed.body);
    let reply = s.client.patch_key(&id, &ada, r#"{"credits":null}"#).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    for _ in 0..5 {
        assert_eq!(s.client.get("/orders", &key).await.status, StatusCode::OK);
    }

    // A refill sets the balance back once per period.
    let (_, refilled) = s.issue(&ada,
        r#"{"environment":"live","scopes":["orders:read"],"credits":{"remaining":1,"refill":"2/1s"}}"#,
    )
    .await;
    assert_eq!(
        s.client.get("/orders", &refilled).await.status,
        StatusCode::OK
    );
    let refused = s.client.get("/orders", &refilled).await;
    assert_eq!(refused.code(), "credits_exhausted");
    assert!(
        !refused.header("retry-after").is_empty(),
        "the refill's time"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    for _ in 0..2 {
        assert_eq!(
            s.client.get("/orders", &refilled).await.status,
            StatusCode::OK
        );
    }
    assert_eq!(
        s.client.get("/orders", &refilled).await.code(),
        "credits_exhausted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_spends_nothing_from_limits_or_credits() {
    let s = start().await;
    let ada = s.keys.live.expose_secret().to_owned();
    // Refused by the rate limit: the credits are untouched.
    let (id, key) = s.issue(&ada,
        r#"{"environment":"live","scopes":["orders:read"],"limits":[{"name":"r","limit":2,"window":"1h"}],"credits":{"remaining":10}}"#,
    )
    .await;
    for expected in [
        StatusCode::OK,
        StatusCode::OK,
        StatusCode::TOO_MANY_REQUESTS,
        StatusCode::TOO_MANY_REQUESTS,
    ] {
        assert_eq!(s.client.get("/orders", &key).await.status, expected);
    }
    assert_eq!(remaining_credits(&s.stored(&id).await), 8);

    // Refused for its credits: the rate limit gets the unit back.
    let (id, key) = s.issue(&ada,
        r#"{"environment":"live","scopes":["orders:read"],"limits":[{"name":"r","limit":3,"window":"1h"}],"credits":{"remaining":1}}"#,
    )
    .await;
    assert_eq!(s.client.get("/orders", &key).await.status, StatusCode::OK);
    for _ in 0..3 {
        assert_eq!(
            s.client.get("/orders", &key).await.code(),
            "credits_exhausted"
        );
    }
    s.client
        .patch_key(&id, &ada, r#"{"credits":{"remaining":10}}"#)
        .await;
    for _ in 0..2 {
        assert_eq!(s.client.get("/orders", &key).await.status, StatusCode::OK);
    }
    assert_eq!(s.client.get("/orders", &key).await.code(), "rate_limited");
    assert_eq!(remaining_credits(&s.stored(&id).await), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_and_credits_stay_within_the_callers() {
    let s = start().await;
    let ada = s.keys.live.expose_secret().to_owned();
    let (child_id, child) = s.issue(&ada,
        r#"{"environment":"live","scopes":["orders:read"],"limits":[{"name":"r","limit":100,"window":"1h"}]}"#,
    )
    .await;
    // A key it makes without limits gets the caller's; a looser one is refused.
    let (grandchild, _) = s
        .issue(&child, r#"{"environment":"live","scopes":["orders:read"]}"#)
        .await;
    let limits = &s.stored(&grandchild).await.limits;
    assert_eq!(limits.len(), 1);
    assert_eq!((limits[0].name(), limits[0].limit()), ("r", 100));
    let looser = s
        .client
        .json(
            Method::POST,
            "/apikeys",
            &child,
            r#"{"environment":"live","scopes":["orders:read"],"limits":[{"name":"r","limit":101,"window":"1h"}]}"#,
        )
        .await;
    assert_eq!(looser.status, StatusCode::FORBIDDEN, "{}", looser.body);
    assert_eq!(looser.code(), "limit_exceeds_caller");
    // It cannot lift its own limit, nor drop it.
    for body in [
        r#"{"limits":[{"name":"r","limit":1000,"window":"1h"}]}"#,
        r#"{"limits":[]}"#,
        r#"{"limits":[{"name":"r","limit":100,"window":"1h","burst":101}]}"#,
    ] {
        let reply = s.client.patch_key(&child_id, &child, body).await;
        assert_eq!(
            reply.code(),
            "limit_exceeds_caller",
            "{body}: {}",
            reply.body
        );
    }
    // A stricter one is fine; a roll keeps it.
    let reply = s
        .client
        .patch_key(
            &child_id,
            &child,
            r#"{"limits":[{"name":"r","limit":50,"window":"1h"}]}"#,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let rolled = s
        .client
        .json(
            Method::POST,
            &format!("/apikeys/{child_id}/roll"),
            &ada,
            "{}",
        )
        .await;
    assert_eq!(rolled.status, StatusCode::OK, "{}", rolled.body);
    assert_eq!(
        rolled.json()["issued"]["limits"][0]["limit"],
        50,
        "{}",
        rolled.body
    );

    // A metered key makes only metered keys, with no more than it has (each of its
    // requests, these included, spends a credit).
    let (metered_id, metered) = s.issue(&ada,
        r#"{"environment":"live","scopes":["orders:read"],"credits":{"remaining":50,"refill":"50/daily"}}"#,
    )
    .await;
    for (body, code) in [
        (
            r#"{"environment":"live","scopes":["orders:read"]}"#,
            "credits_exceed_caller",
        ),
        (
            r#"{"environment":"live","scopes":["orders:read"],"credits":{"remaining":51}}"#,
            "credits_exceed_caller",
        ),
        (
            r#"{"environment":"live","scopes":["orders:read"],"credits":{"remaining":3,"refill":"60/daily"}}"#,
            "credits_exceed_caller",
        ),
    ] {
        let reply = s
            .client
            .json(Method::POST, "/apikeys", &metered, body)
            .await;
        assert_eq!(reply.code(), code, "{body}: {}", reply.body);
    }
    s.issue(
        &metered,
        r#"{"environment":"live","scopes":["orders:read"],"credits":{"remaining":3}}"#,
    )
    .await;
    let reply = s
        .client
        .patch_key(&metered_id, &metered, r#"{"credits":{"remaining":500}}"#)
        .await;
    assert_eq!(reply.code(), "credits_exceed_caller", "{}", reply.body);
    let reply = s
        .client
        .patch_key(&metered_id, &metered, r#"{"credits":null}"#)
        .await;
    assert_eq!(reply.code(), "credits_exceed_caller", "{}", reply.body);
    // Two keys spending one balance side by side would double it: no grace period.
    let graced = s
        .client
        .json(
            Method::POST,
            &format!("/apikeys/{metered_id}/roll"),
            &ada,
            r#"{"grace":"1h"}"#,
        )
        .await;
    assert_eq!(
        graced.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        graced.body
    );
    // Nor can it escape them through a JWT.
    let token = s.client.json(Method::POST, "/token", &metered, "").await;
    assert!(token.status.is_client_error(), "{}", token.body);
    assert!(
        token.body.contains("rate limits or credits"),
        "{}",
        token.body
    );
}

/// The README's limits walk-through, run as written with the real curl.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_limits_walk_through_works_as_written() {
    let blocks = crate::axum_support::readme_sh_blocks("### Usage limits");
    let s = start().await;
    let envs = [
        ("LIVE_KEY", s.keys.live.expose_secret().to_owned()),
        ("TEST_KEY", s.keys.test.expose_secret().to_owned()),
    ];
    let mut outputs = Vec::new();
    for line in &blocks[0] {
        let line = line.replace("localhost:8080", &s.addr.to_string());
        outputs.push(crate::axum_support::run_readme_line(&line, s.dir.path(), &envs).await);
    }
    let last = outputs.last().unwrap().to_ascii_lowercase();
    assert!(last.starts_with("http/1.1 429"), "{last}");
    for header in [
        "retry-after:",
        "ratelimit-policy: \"requests\";q=2;w=60",
        "ratelimit: \"requests\";r=0;t=",
    ] {
        assert!(last.contains(header), "{header} in {last}");
    }
    assert!(last.contains("\"code\":\"rate_limited\""), "{last}");
}
