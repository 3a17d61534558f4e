//! Every kind of rejected request, over real HTTP: status, `WWW-Authenticate`,
//! problem code, and that the secret presented appears nowhere in the response.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use crate::axum_support::start_with;
use base64::Engine as _;
use http::{Method, StatusCode};
use keyroute::{Environment, KeyRequest, KeyType};

const CHALLENGE: &str =
    "Bearer realm=\"keyroute\", error=\"invalid_token\", Basic realm=\"keyroute\"";
const BAD_REQUEST: &str =
    "Bearer realm=\"keyroute\", error=\"invalid_request\", Basic realm=\"keyroute\"";

/// One rejected request: what is sent, the secret in it, what must come back.
struct Case {
    name: &'static str,
    headers: Vec<(&'static str, Vec<u8>)>,
    secret: String,
    status: StatusCode,
    challenge: &'static str,
    code: &'static str,
}

fn case(
    name: &'static str,
    headers: Vec<(&'static str, Vec<u8>)>,
    secret: &str,
    expect: (StatusCode, &'static str, &'static str),
) -> Case {
    Case {
        name,
        headers,
        secret: secret.to_owned(),
        status: expect.0,
        challenge: expect.1,
        code: expect.2,
    }
}

fn bearer(token: &str) -> Vec<(&'static str, Vec<u8>)> {
    vec![("authorization", format!("Bearer {token}").into_bytes())]
}

/// The table: no credential, wrong scheme, revoked, expired, forged, flipped
/// checksum, a 20 kB header, an `alg: none` JWT, a key in two places, a header that
/// is not UTF-8, and a spoofed `X-Forwarded-Proto`, each with its exact answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_requests_answer_exactly_and_never_echo_the_secret() {
    let s = start_with(
        true,
        "[resolver]\ndangerous_trust_any_proxy = true\ntrusted_proxies = [\"127.0.0.1/32\"]\n",
    )
    .await;
    let keys = s.keyroute.keys();
    let live = s.keys.live.expose_secret().to_owned();
    let issue = |lifetime: Option<Duration>| {
        let mut request = KeyRequest::new(KeyType::SECRET, Environment::LIVE);
        request.expires_in = lifetime;
        keys.issue_key(request)
    };
    let revoked = issue(None).await.unwrap();
    keys.revoke(&revoked.key.id).await.unwrap();
    let expired = issue(Some(Duration::from_secs(1))).await.unwrap();
    let forged = keys
        .format()
        .generate(&KeyType::SECRET, &Environment::LIVE)
        .unwrap();
    let mut flipped = live.clone();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'A' { 'B' } else { 'A' });
    let long = "k".repeat(20 * 1024);
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let alg_none = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(r#"{"sub":"ada","env":"live","kind":"exchange","exp":4102444800}"#)
    );
    tokio::time::sleep(Duration::from_millis(1100)).await; // `expired` has expired
    let revoked = revoked.plaintext.expose_secret().to_owned();
    let expired = expired.plaintext.expose_secret().to_owned();
    let forged = forged.expose_secret().to_owned();
    let unauthorized = StatusCode::UNAUTHORIZED;
    let mut spoofed = bearer(&live);
    spoofed.push(("x-forwarded-proto", b"https, http".to_vec()));
    let cases = vec![
        case(
            "no credential",
            vec![("x-forwarded-proto", b"https".to_vec())],
            "",
            (
                unauthorized,
                "Bearer realm=\"keyroute\", Basic realm=\"keyroute\"",
                "no_credentials",
            ),
        ),
        case(
            "wrong scheme",
            vec![("authorization", format!("Digest {live}").into_bytes())],
            &live,
            (unauthorized, CHALLENGE, "unsupported_scheme"),
        ),
        case(
            "revoked",
            bearer(&revoked),
            &revoked,
            (unauthorized, CHALLENGE, "revoked_key"),
        ),
        case(
            "expired",
            bearer(&expired),
            &expired,
            (unauthorized, CHALLENGE, "expired_key"),
        ),
        case(
            "forged",
            bearer(&forged),
            &forged,
            (unauthorized, CHALLENGE, "unknown_key"),
        ),
        case(
            "flipped checksum",
            bearer(&flipped),
            &flipped,
            (unauthorized, CHALLENGE, "invalid_key"),
        ),
        case(
            "20 kB header",
            bearer(&long),
            &long[..64],
            (
                StatusCode::BAD_REQUEST,
                BAD_REQUEST,
                "malformed_credentials",
            ),
        ),
        case(
            "alg none JWT",
            bearer(&alg_none),
            &alg_none,
            (unauthorized, CHALLENGE, "invalid_token"),
        ),
        case(
            "key in two places",
            vec![
                ("authorization", format!("Bearer {live}").into_bytes()),
                ("x-api-key", live.clone().into_bytes()),
            ],
            &live,
            (
                StatusCode::BAD_REQUEST,
                BAD_REQUEST,
                "ambiguous_credentials",
            ),
        ),
        case(
            "non-UTF-8 header value",
            vec![("x-api-key", [live.as_bytes(), b"\xff"].concat())],
            &live,
            (
                StatusCode::BAD_REQUEST,
                BAD_REQUEST,
                "malformed_credentials",
            ),
        ),
        case(
            "forwarded-proto spoofing",
            spoofed,
            &live,
            (StatusCode::FORBIDDEN, "", "insecure_connection"),
        ),
    ];
    for case in &cases {
        // Every case also claims HTTPS through the trusted proxy, so the transport
        // rule is not what refuses them (except the spoofing case itself).
        let mut headers: Vec<(&str, &[u8])> = case
            .headers
            .iter()
            .map(|(n, v)| (*n, v.as_slice()))
            .collect();
        if !case.headers.iter().any(|(n, _)| *n == "x-forwarded-proto") {
            headers.push(("x-forwarded-proto", b"https"));
        }
        let reply = s.client.send(Method::GET, "/orders", &headers, "").await;
        let name = case.name;
        assert_eq!(reply.status, case.status, "{name}: {}", reply.body);
        assert_eq!(reply.header("www-authenticate"), case.challenge, "{name}");
        assert_eq!(reply.code(), case.code, "{name}: {}", reply.body);
        assert_eq!(
            reply.header("content-type"),
            "application/problem+json",
            "{name}"
        );
        if !case.secret.is_empty() {
            assert!(!reply.mentions(&case.secret), "{name} echoed the secret");
        }
    }
    let detail = s
        .client
        .send(
            Method::GET,
            "/orders",
            &cases[10]
                .headers
                .iter()
                .map(|(n, v)| (*n, v.as_slice()))
                .collect::<Vec<_>>(),
            "",
        )
        .await
        .json();
    assert!(
        detail["detail"]
            .as_str()
            .unwrap()
            .contains("trusted_proxies"),
        "the refusal names the setting: {detail}"
    );
    // The same key, honestly forwarded by the trusted proxy, is accepted.
    let mut honest = bearer(&live);
    honest.push(("x-forwarded-proto", b"http, https".to_vec()));
    let headers: Vec<(&str, &[u8])> = honest.iter().map(|(n, v)| (*n, v.as_slice())).collect();
    let reply = s.client.send(Method::GET, "/orders", &headers, "").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

/// A key without the route's scope gets 403 `insufficient_scope` naming the scope,
/// and a missing connection (no anonymous route) is 401, never a fallback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_guard_and_no_anonymous_route() {
    let s = start_with(false, "").await;
    let pk = s.keys.publishable.expose_secret();
    let reply = s
        .client
        .send(
            Method::POST,
            "/orders",
            &[("x-api-key", pk.as_bytes())],
            "not allowed",
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.code(), "insufficient_scope");
    assert_eq!(
        reply.header("www-authenticate"),
        "Bearer realm=\"keyroute\", error=\"insufficient_scope\", scope=\"orders:write\""
    );
    assert!(!reply.mentions(pk));
    assert!(
        crate::axum_support::items_in(&s.keyroute, "test")
            .await
            .is_empty()
    );
}
