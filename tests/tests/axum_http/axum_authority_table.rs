//! The guide's authorization table (`src/guide/authority.md`), cell by cell, against the example service over
//! real HTTP: each cell gets a fresh service (so a roll or revoke in one cell cannot
//! change another), the caller of its row and the request of its column, and must
//! answer the status and problem code the guide prints.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use crate::axum_support::{Reply, Running, start};
use http::{Method, StatusCode};
use keyroute::jwt::SessionRequest;
use keyroute::{ApiKey, Environment, KeyRequest, KeyType, NewUser, Scopes, UserId};

/// The table under "## What each caller may do" in the guide's authority chapter: the header's columns and each
/// row's caller and cells.
fn table() -> (Vec<String>, Vec<(String, Vec<String>)>) {
    let readme = include_str!("../../../src/guide/authority.md");
    let section = readme
        .split("## What each caller may do")
        .nth(1)
        .expect("the guide's authority chapter has a section '## What each caller may do'");
    let rows: Vec<Vec<String>> = section
        .lines()
        .take_while(|l| !l.starts_with("## "))
        .filter(|l| l.starts_with('|'))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .collect();
    let (header, body) = rows.split_first().expect("a table");
    let columns = header[1..].to_vec();
    let rows = body[1..]
        .iter()
        .map(|r| (r[0].clone(), r[1..].to_vec()))
        .collect();
    (columns, rows)
}

/// `200`, or `403 environment_mismatch`, as status and code.
fn expected(cell: &str) -> (StatusCode, String) {
    let mut parts = cell.splitn(2, ' ');
    let status = parts.next().unwrap().parse::<u16>().unwrap();
    let code = parts.next().unwrap_or("").trim_matches('`').to_owned();
    (StatusCode::from_u16(status).unwrap(), code)
}

/// One cell's world: the service, ada's keys the columns act on, bob's key.
struct World {
    s: Running,
    ada: UserId,
    bob: UserId,
    narrow: ApiKey,
    admin: (ApiKey, String),
    bobs_key: ApiKey,
}

async fn issue(
    s: &Running,
    user: Option<&UserId>,
    key_type: KeyType,
    scopes: &[&str],
) -> (ApiKey, String) {
    let mut request =
        KeyRequest::new(key_type, Environment::LIVE).with_scopes(Scopes::parse(scopes).unwrap());
    if let Some(user) = user {
        request = request.for_user(user.clone());
    }
    let issued = s.keyroute.keys().issue_key(request).await.unwrap();
    let plaintext = issued.plaintext.expose_secret().to_owned();
    (issued.key, plaintext)
}

async fn world() -> World {
    let s = start().await;
    let ada = s
        .keyroute
        .store()
        .find_user_by_name("ada")
        .await
        .unwrap()
        .unwrap()
        .id;
    let bob = s
        .keyroute
        .keys()
        .register_user(NewUser::named("bob"))
        .await
        .unwrap();
    let bobs_key = bob
        .key(&KeyType::SECRET, &Environment::LIVE)
        .unwrap()
        .key
        .clone();
    let narrow = issue(&s, Some(&ada), KeyType::SECRET, &["orders:read"])
        .await
        .0;
    let admin = issue(&s, Some(&ada), KeyType::SECRET, &["admin"]).await;
    World {
        s,
        ada,
        bob: bob.user.id,
        narrow,
        admin,
        bobs_key,
    }
}

/// The credential of a row's caller.
async fn caller(w: &World, row: &str) -> String {
    let s = &w.s;
    match row {
        "ada's `orders:*` key" => s.keys.live.expose_secret().to_owned(),
        "ada's `admin` key" => w.admin.1.clone(),
        "a JWT exchanged for ada's `orders:*` key" => {
            let reply = s
                .client
                .json(Method::POST, "/token", s.keys.live.expose_secret(), "")
                .await;
            reply.json()["access_token"].as_str().unwrap().to_owned()
        }
        "ada's session" => s
            .keyroute
            .jwt()
            .unwrap()
            .issue_session(SessionRequest::new(w.ada.clone()).in_environment(Environment::LIVE))
            .unwrap()
            .token
            .expose_secret()
            .to_owned(),
        "ada's publishable key" => {
            issue(s, Some(&w.ada), KeyType::PUBLISHABLE, &["orders:read"])
                .await
                .1
        }
        "a key of no user (`orders:*`)" => issue(s, None, KeyType::SECRET, &["orders:*"]).await.1,
        other => panic!("the test does not know the caller '{other}'"),
    }
}

/// The request of a column, made with `key`.
async fn request(w: &World, column: &str, key: &str) -> Reply {
    let c = &w.s.client;
    let post = |path: String, body: &'static str| async move {
        c.json(Method::POST, &path, key, body).await
    };
    match column {
        "list own" => c.get("/apikeys/live", key).await,
        "list `test`" => c.get("/apikeys/test", key).await,
        "list bob's" => {
            c.get(&format!("/apikeys/live?user_id={}", w.bob), key)
                .await
        }
        "issue `orders:read`" => {
            post(
                "/apikeys".into(),
                r#"{"environment":"live","scopes":["orders:read"]}"#,
            )
            .await
        }
        "issue `admin`" => {
            post(
                "/apikeys".into(),
                r#"{"environment":"live","scopes":["admin"]}"#,
            )
            .await
        }
        "issue a `test` key" => post("/apikeys".into(), r#"{"environment":"test"}"#).await,
        "roll the `orders:read` key" => post(format!("/apikeys/{}/roll", w.narrow.id), "").await,
        "roll the `admin` key" => post(format!("/apikeys/{}/roll", w.admin.0.id), "").await,
        "revoke the `admin` key" => {
            c.json(
                Method::DELETE,
                &format!("/apikeys/{}", w.admin.0.id),
                key,
                "",
            )
            .await
        }
        "revoke bob's key" => {
            c.json(
                Method::DELETE,
                &format!("/apikeys/{}", w.bobs_key.id),
                key,
                "",
            )
            .await
        }
        "regenerate `live`" => post("/apikeys/regenerate/live".into(), "").await,
        "widen the `orders:read` key to `admin`" => {
            let path = format!("/apikeys/{}", w.narrow.id);
            c.json(
                Method::PATCH,
                &path,
                key,
                r#"{"scopes":["orders:read","admin"]}"#,
            )
            .await
        }
        "disable the `admin` key" => {
            let path = format!("/apikeys/{}", w.admin.0.id);
            c.json(Method::PATCH, &path, key, r#"{"enabled":false}"#)
                .await
        }
        other => panic!("the test does not know the column '{other}'"),
    }
}

/// Every cell of the guide's authorization table is what the service answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guides_authorization_table_is_what_the_routes_answer() {
    let (columns, rows) = table();
    assert!(columns.len() >= 10 && rows.len() >= 6, "{columns:?}");
    let mut checked = 0;
    for (row, cells) in &rows {
        assert_eq!(cells.len(), columns.len(), "row '{row}'");
        for (column, cell) in columns.iter().zip(cells) {
            let w = world().await;
            let key = caller(&w, row).await;
            let reply = request(&w, column, &key).await;
            let (status, code) = expected(cell);
            assert_eq!(
                (reply.status, reply.code()),
                (status, code),
                "{row} × {column}: {}",
                reply.body
            );
            checked += 1;
        }
    }
    assert_eq!(checked, rows.len() * columns.len());
}
