//! GitHub secret scanning alerts over real HTTP: a correctly signed alert revokes the
//! keyroute keys it reports (or only reports them, by configuration), records them in
//! the audit trail and labels foreign tokens false positives; a bad signature, an
//! unknown signing key, a replay or a malformed body are refused and revoke nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use crate::axum_support::{Client, service};
use base64::Engine as _;
use http::{Method, StatusCode};
use keyroute::Keyroute;
use keyroute::axum::SecretScanning;
use keyroute::keys::{AuditAction, AuditQuery, KeyHash, LeakResponse};
use keyroute::store::{AuditLog as _, Sqlite};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::EncodePublicKey as _;

const PATH: &str = "/github/secret-scanning";

/// A signing key of the test's own, as GitHub would hold its.
fn signer(seed: u8) -> SigningKey {
    SigningKey::from_slice(&[seed; 32]).unwrap()
}

/// GitHub's published-keys JSON for these (identifier, key) pairs.
fn published(keys: &[(&str, &SigningKey)]) -> String {
    let entries: Vec<serde_json::Value> = keys
        .iter()
        .map(|(id, key)| {
            let pem = key
                .verifying_key()
                .to_public_key_pem(p256::pkcs8::LineEnding::LF)
                .unwrap();
            serde_json::json!({ "key_identifier": id, "key": pem, "is_current": true })
        })
        .collect();
    serde_json::json!({ "public_keys": entries }).to_string()
}

struct Running {
    client: Client,
    keyroute: Keyroute<Sqlite>,
    keys: service::DemoKeys,
    _dir: tempfile::TempDir,
}

async fn start(response: LeakResponse) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let (router, keyroute, keys) = service::app_from(&service::config(dir.path()))
        .await
        .unwrap();
    let scanning = SecretScanning::from_github_keys(&published(&[("key-1", &signer(7))]))
        .unwrap()
        .response(response);
    let router = router.merge(scanning.router(PATH).with_state(keyroute.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(service::serve(listener, router));
    Running {
        client: Client::new(addr),
        keyroute,
        keys,
        _dir: dir,
    }
}

/// Posts `body` signed by `key` under `identifier`.
async fn alert(
    client: &Client,
    body: &str,
    identifier: &str,
    key: &SigningKey,
) -> crate::axum_support::Reply {
    let signature: Signature = key.sign(body.as_bytes());
    let signature = base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes());
    client
        .send(
            Method::POST,
            PATH,
            &[
                ("content-type", b"application/json"),
                ("github-public-key-identifier", identifier.as_bytes()),
                ("github-public-key-signature", signature.as_bytes()),
            ],
            body,
        )
        .await
}

fn body(tokens: &[&str]) -> String {
    let matches: Vec<serde_json::Value> = tokens
        .iter()
        .map(|t| serde_json::json!({ "token": t, "type": "acme_api_key", "url": "https://github.com/someone/repo/blob/main/.env", "source": "content" }))
        .collect();
    serde_json::Value::Array(matches).to_string()
}

fn hex(text: &str) -> String {
    KeyHash::of(text)
        .as_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_alert_revokes_the_leaked_key() {
    let s = start(LeakResponse::Revoke).await;
    let leaked = s.keys.live.expose_secret().to_owned();
    assert_eq!(
        s.client.get("/orders", &leaked).await.status,
        StatusCode::OK
    );
    let foreign = "ghp_0123456789abcdefghijABCDEFGHIJ012345";
    let payload = body(&[&leaked, foreign]);
    let reply = alert(&s.client, &payload, "key-1", &signer(7)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(
        !reply.mentions(&leaked),
        "the answer names tokens by hash only"
    );
    assert_eq!(
        reply.json(),
        serde_json::json!([
            { "token_hash": hex(&leaked), "token_type": "acme_api_key", "label": "true_positive" },
            { "token_hash": hex(foreign), "token_type": "acme_api_key", "label": "false_positive" },
        ])
    );
    let refused = s.client.get("/orders", &leaked).await;
    assert_eq!(refused.code(), "revoked_key", "{}", refused.body);
    let records = s
        .keyroute
        .store()
        .audit_records(&AuditQuery::new().limit(1000))
        .await
        .unwrap();
    let leak = records
        .iter()
        .find(|r| r.action == AuditAction::KeyLeaked)
        .expect("the leak is on the record");
    assert_eq!(leak.actor, "operator:github-secret-scanning");
    assert_eq!(leak.details["revoked"], true);
    assert_eq!(
        leak.details["url"],
        "https://github.com/someone/repo/blob/main/.env"
    );

    // The same alert again: a replay, refused.
    let again = alert(&s.client, &payload, "key-1", &signer(7)).await;
    assert_eq!(
        (again.status, again.code().as_str()),
        (StatusCode::CONFLICT, "replayed_alert")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unverified_alerts_revoke_nothing() {
    let s = start(LeakResponse::Revoke).await;
    let leaked = s.keys.test.expose_secret().to_owned();
    let payload = body(&[&leaked]);
    // Signed by another key under the configured identifier.
    let forged = alert(&s.client, &payload, "key-1", &signer(9)).await;
    assert_eq!(
        (forged.status, forged.code().as_str()),
        (StatusCode::UNAUTHORIZED, "bad_signature")
    );
    // A signing key that is not configured.
    let unknown = alert(&s.client, &payload, "key-2", &signer(7)).await;
    assert_eq!(unknown.code(), "unknown_signing_key");
    // A signature over another body.
    let signature: Signature = signer(7).sign(b"[]");
    let signature = base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes());
    let swapped = s
        .client
        .send(
            Method::POST,
            PATH,
            &[
                ("github-public-key-identifier", b"key-1"),
                ("github-public-key-signature", signature.as_bytes()),
            ],
            &payload,
        )
        .await;
    assert_eq!(swapped.code(), "bad_signature");
    // No signature at all, and one that is not base64 DER.
    let bare = s.client.send(Method::POST, PATH, &[], &payload).await;
    assert_eq!(bare.code(), "signature_missing");
    let garbage = s
        .client
        .send(
            Method::POST,
            PATH,
            &[
                ("github-public-key-identifier", b"key-1"),
                ("github-public-key-signature", b"not base64!"),
            ],
            &payload,
        )
        .await;
    assert_eq!(garbage.code(), "bad_signature");
    // Correctly signed, but not an alert.
    let malformed = alert(&s.client, r#"{"token":"x"}"#, "key-1", &signer(7)).await;
    assert_eq!(
        (malformed.status, malformed.code().as_str()),
        (StatusCode::BAD_REQUEST, "malformed_alert")
    );
    // Through all of it, the key kept working.
    assert_eq!(
        s.client.get("/orders", &leaked).await.status,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_only_leaves_the_key_working_and_on_the_record() {
    let s = start(LeakResponse::ReportOnly).await;
    let leaked = s.keys.live.expose_secret().to_owned();
    let reply = alert(&s.client, &body(&[&leaked]), "key-1", &signer(7)).await;
    assert_eq!(reply.json()[0]["label"], "true_positive");
    assert_eq!(
        s.client.get("/orders", &leaked).await.status,
        StatusCode::OK
    );
    let records = s
        .keyroute
        .store()
        .audit_records(&AuditQuery::new().limit(1000))
        .await
        .unwrap();
    let leak = records
        .iter()
        .find(|r| r.action == AuditAction::KeyLeaked)
        .unwrap();
    assert_eq!(leak.details["revoked"], false);
}

#[test]
fn bad_key_files_are_typed_errors() {
    for json in [
        "not json",
        r#"{"public_keys": []}"#,
        r#"{"public_keys": [{"key_identifier": "k", "key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"}]}"#,
    ] {
        let error = SecretScanning::from_github_keys(json).unwrap_err();
        assert!(!error.to_string().is_empty());
    }
}

/// The README's leak-response walk-through, run as written: its openssl lines make the
/// stand-in GitHub key and the published-keys file, the example service serves the
/// route with that file (as `KEYROUTE_GITHUB_KEYS` does), and its curl lines leak the
/// live key, see it refused and find the leak in the audit trail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_leak_walk_through_works_as_written() {
    let blocks = crate::axum_support::readme_sh_blocks("### Leak response");
    assert_eq!(
        blocks.len(),
        2,
        "a set-up block and a curl block: {blocks:?}"
    );
    let run = crate::axum_support::run_readme_line;
    let work = tempfile::tempdir().unwrap();
    let (set_up, start_line) = blocks[0].split_at(blocks[0].len() - 1);
    assert!(start_line[0].contains("KEYROUTE_GITHUB_KEYS=github-keys.json"));
    for line in set_up {
        run(line, work.path(), &[]).await;
    }

    // The service as `KEYROUTE_GITHUB_KEYS=github-keys.json cargo run --example service` starts it.
    let data = tempfile::tempdir().unwrap();
    let (router, keyroute, keys) = service::app_from(&service::config(data.path()))
        .await
        .unwrap();
    let router =
        service::with_secret_scanning(router, &keyroute, &work.path().join("github-keys.json"))
            .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(service::serve(listener, router));
    let envs = [
        ("LIVE_KEY", keys.live.expose_secret().to_owned()),
        ("TEST_KEY", keys.test.expose_secret().to_owned()),
        ("ADMIN_KEY", keys.admin.expose_secret().to_owned()),
    ];
    let mut outputs = Vec::new();
    for line in &blocks[1] {
        let line = line.replace("localhost:8080", &addr.to_string());
        let line = if line.starts_with("curl ") {
            format!("{} -sS", line.split(" # ").next().unwrap())
        } else {
            line
        };
        outputs.push(run(&line, work.path(), &envs).await);
    }
    assert!(
        outputs[1].contains("\"label\":\"true_positive\""),
        "{}",
        outputs[1]
    );
    assert!(outputs[2].contains("revoked_key"), "{}", outputs[2]);
    assert!(
        outputs[3].contains("\"action\":\"key_leaked\""),
        "{}",
        outputs[3]
    );
}
