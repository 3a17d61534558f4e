//! `GET /apikeys/audit` over real HTTP: changes made through the key routes are
//! recorded with their caller, client address and request id; an admin key reads its
//! environment's trail, page by page; any other key only its own user's; bad queries
//! are typed answers. Nothing secret is ever in a record.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use crate::axum_support::start;
use http::{Method, StatusCode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_over_http_are_in_the_trail() {
    let s = start().await;
    let ada = s.keys.live.expose_secret().to_owned();
    let admin = s.keys.admin.expose_secret().to_owned();
    let auth = format!("Bearer {ada}");
    let issued = s
        .client
        .send(
            Method::POST,
            "/apikeys",
            &[
                ("authorization", auth.as_bytes()),
                ("content-type", b"application/json"),
                ("x-request-id", b"req-issue-1"),
            ],
            r#"{"environment":"live","scopes":["orders:read"]}"#,
        )
        .await;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.body);
    let id = issued.json()["id"].as_str().unwrap().to_owned();
    let secret = issued.json()["key_secret"].as_str().unwrap().to_owned();
    let path = format!("/apikeys/{id}");
    let reply = s
        .client
        .json(Method::PATCH, &path, &ada, r#"{"enabled":false}"#)
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    s.client.json(Method::DELETE, &path, &ada, "").await;

    let reply = s
        .client
        .get(&format!("/apikeys/audit?key_id={id}"), &admin)
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(!reply.mentions(&secret) && !reply.mentions(&ada));
    let page = reply.json();
    let records = page["records"].as_array().unwrap();
    let actions: Vec<&str> = records
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["key_issued", "key_updated", "key_revoked"]);
    for record in records {
        assert!(
            record["actor"].as_str().unwrap().starts_with("key:"),
            "{record}"
        );
        assert_eq!(record["source"], "127.0.0.1");
        assert_eq!(record["environment"], "live");
    }
    assert_eq!(records[0]["request_id"], "req-issue-1");
    assert_eq!(
        records[0]["details"]["scopes"],
        serde_json::json!(["orders:read"])
    );
    assert_eq!(
        records[1]["details"]["changed"]["enabled"],
        serde_json::json!({ "from": true, "to": false })
    );
    assert_eq!(page["next_after"], serde_json::Value::Null);

    // Page by page: each page's next_after starts the next.
    let mut seen = 0;
    let mut after: Option<u64> = None;
    loop {
        let path = match after {
            Some(a) => format!("/apikeys/audit?limit=2&after={a}"),
            None => "/apikeys/audit?limit=2".to_owned(),
        };
        let page = s.client.get(&path, &admin).await.json();
        seen += page["records"].as_array().unwrap().len();
        match page["next_after"].as_u64() {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let everything = s
        .client
        .get("/apikeys/audit?limit=1000", &admin)
        .await
        .json();
    assert_eq!(seen, everything["records"].as_array().unwrap().len());
    assert!(
        seen >= 5,
        "registrations, the demo's keys, and the three above"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_reads_what_and_bad_queries() {
    let s = start().await;
    let ada = s.keys.live.expose_secret().to_owned();
    let test = s.keys.test.expose_secret().to_owned();
    // A key without the admin scope reads its own user's records, of its environment.
    for (key, environment) in [(&ada, "live"), (&test, "test")] {
        let page = s.client.get("/apikeys/audit", key).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let page = page.json();
        let records = page["records"].as_array().unwrap();
        assert!(!records.is_empty());
        for record in records {
            assert!(
                record["environment"].is_null() || record["environment"] == environment,
                "{record}"
            );
            assert!(!record["user_id"].is_null());
        }
        let users: std::collections::HashSet<&str> = records
            .iter()
            .map(|r| r["user_id"].as_str().unwrap())
            .collect();
        assert_eq!(users.len(), 1, "one user's records only");
    }
    let ops = s
        .client
        .get("/apikeys/users", s.keys.admin.expose_secret())
        .await
        .json();
    let ops_id = ops["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user_name"] == "ops")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (path, key, status, code) in [
        (
            format!("/apikeys/audit?user_id={ops_id}"),
            ada.as_str(),
            StatusCode::FORBIDDEN,
            "not_your_keys",
        ),
        (
            "/apikeys/audit".to_owned(),
            s.keys.publishable.expose_secret(),
            StatusCode::FORBIDDEN,
            "publishable_key",
        ),
        (
            "/apikeys/audit?limit=0".to_owned(),
            ada.as_str(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_limit",
        ),
        (
            "/apikeys/audit?since=yesterday".to_owned(),
            ada.as_str(),
            StatusCode::BAD_REQUEST,
            "malformed_query",
        ),
        (
            "/apikeys/audit?colour=blue".to_owned(),
            ada.as_str(),
            StatusCode::BAD_REQUEST,
            "malformed_query",
        ),
    ] {
        let reply = s.client.get(&path, key).await;
        assert_eq!(
            (reply.status, reply.code().as_str()),
            (status, code),
            "{path}: {}",
            reply.body
        );
    }
    // A time window.
    let page = s
        .client
        .get(
            "/apikeys/audit?since=2999-01-01T00:00:00Z",
            s.keys.admin.expose_secret(),
        )
        .await
        .json();
    assert!(page["records"].as_array().unwrap().is_empty());
}
