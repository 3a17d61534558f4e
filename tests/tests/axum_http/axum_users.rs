//! `GET /apikeys/users` over real HTTP: admin keys page through every user, a tenant's
//! admin key only through its tenant's, and everyone else is refused with core's code.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use crate::axum_support::{Client, start};
use http::StatusCode;
use keyroute::keys::Tenant;
use keyroute::{Environment, KeyRequest, KeyType, NewUser, Scopes};

/// Every user name `key` can list, reading pages of `limit`, and the pages read.
async fn all_pages(client: &Client, key: &str, limit: usize) -> (Vec<String>, usize) {
    let mut names = Vec::new();
    let mut after: Option<String> = None;
    for pages in 1.. {
        let path = match &after {
            Some(id) => format!("/apikeys/users?limit={limit}&after={id}"),
            None => format!("/apikeys/users?limit={limit}"),
        };
        let reply = client.get(&path, key).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let page = reply.json();
        let users = page["users"].as_array().unwrap();
        assert!(users.len() <= limit);
        names.extend(
            users
                .iter()
                .map(|u| u["user_name"].as_str().unwrap().to_owned()),
        );
        match page["next_after"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => {
                names.sort();
                return (names, pages);
            }
        }
    }
    unreachable!()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_keys_page_through_users() {
    let s = start().await;
    let admin = s.keys.admin.expose_secret().to_owned();
    let (names, pages) = all_pages(&s.client, &admin, 1).await;
    assert_eq!(names, ["ada", "ops"]);
    assert_eq!(pages, 3, "two full pages, then an empty last one");
    let (names, pages) = all_pages(&s.client, &admin, 100).await;
    assert_eq!((names.len(), pages), (2, 1));
    // Nothing secret in a listing.
    let reply = s.client.get("/apikeys/users", &admin).await;
    assert!(!reply.mentions(&admin));
    assert!(!reply.body.contains("hash"), "{}", reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admin_keys_list_users() {
    let s = start().await;
    for (key, status, code) in [
        (
            s.keys.live.expose_secret(),
            StatusCode::FORBIDDEN,
            "not_your_keys",
        ),
        (
            s.keys.test.expose_secret(),
            StatusCode::FORBIDDEN,
            "not_your_keys",
        ),
        (
            s.keys.publishable.expose_secret(),
            StatusCode::FORBIDDEN,
            "publishable_key",
        ),
        ("sk_live_not-a-key", StatusCode::UNAUTHORIZED, "invalid_key"),
    ] {
        let reply = s.client.get("/apikeys/users", key).await;
        assert_eq!(reply.status, status, "{}", reply.body);
        assert_eq!(reply.code(), code, "{}", reply.body);
    }
    let admin = s.keys.admin.expose_secret();
    for (query, status, code) in [
        ("limit=0", StatusCode::UNPROCESSABLE_ENTITY, "invalid_limit"),
        (
            "limit=1001",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_limit",
        ),
        ("limit=many", StatusCode::BAD_REQUEST, "malformed_query"),
        (
            "after=line%0Abreak",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_user_id",
        ),
    ] {
        let reply = s
            .client
            .get(&format!("/apikeys/users?{query}"), admin)
            .await;
        assert_eq!(reply.status, status, "{query}: {}", reply.body);
        assert_eq!(reply.code(), code, "{query}: {}", reply.body);
    }
}

/// An admin key of tenant acme lists acme's users only, through pages that skip the
/// other users in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_admin_lists_its_tenant_only() {
    let s = start().await;
    let keys = s.keyroute.keys();
    let acme = Tenant::new("acme").unwrap();
    let mut acme_admin = None;
    for name in ["a1", "a2", "a3"] {
        let user = keys
            .register_user(NewUser::named(name).with_tenant(acme.clone()))
            .await
            .unwrap()
            .user;
        if acme_admin.is_none() {
            let request = KeyRequest::new(KeyType::SECRET, Environment::LIVE)
                .for_user(user.id.clone())
                .with_scopes(Scopes::parse(["admin"]).unwrap());
            acme_admin = Some(keys.issue_key(request).await.unwrap().plaintext);
        }
    }
    for name in ["g1", "g2", "g3", "g4"] {
        let globex = Tenant::new("globex").unwrap();
        keys.register_user(NewUser::named(name).with_tenant(globex))
            .await
            .unwrap();
    }
    let acme_admin = acme_admin.unwrap();
    for limit in [1, 2, 100] {
        let (names, _) = all_pages(&s.client, acme_admin.expose_secret(), limit).await;
        assert_eq!(names, ["a1", "a2", "a3"], "limit {limit}");
    }
    let (names, _) = all_pages(&s.client, s.keys.admin.expose_secret(), 3).await;
    assert_eq!(
        names.len(),
        9,
        "a tenantless admin sees everyone: {names:?}"
    );
}
