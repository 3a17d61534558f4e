//! The resolver on the change feed: its cache is used only while the feed is live,
//! another instance's revocation evicts through it, and an interrupted feed clears
//! the cache and serves uncached until it is back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use keyroute_core::{
    AuthError, ChangeFeed, Environment, FeedListener, FeedSettings, KeyOptions, KeyService,
    KeyType, NewUser,
};
use keyroute_router::{KeyResolver, follow_feed};
use support::CountingStore;

fn options() -> KeyOptions {
    let mut options = KeyOptions::default();
    options.dangerous_accept_plain_http = true;
    options
}

/// The default resolver caches (5 minutes) but, with no live feed, serves every
/// request uncached: a cache no feed keeps fresh could accept a key revoked elsewhere.
#[tokio::test]
async fn without_a_live_feed_the_default_resolver_serves_uncached() {
    let store = Arc::new(CountingStore::default());
    assert!(
        options().session_cache_duration.is_some(),
        "cache on by default"
    );
    let resolver = KeyResolver::builder(Arc::clone(&store), options())
        .build()
        .unwrap();
    let ada = KeyService::new(Arc::clone(&store), options())
        .unwrap()
        .register_user(NewUser::named("ada"))
        .await
        .unwrap();
    let key = ada.key(&KeyType::SECRET, &Environment::LIVE).unwrap();
    for _ in 0..3 {
        resolver
            .resolve(key.plaintext.expose_secret())
            .await
            .unwrap();
    }
    assert!(!resolver.is_caching());
    assert_eq!(store.lookups(), 3, "one lookup per request");

    // Once the feed is live, the cache serves.
    resolver.feed_live().await;
    assert!(resolver.is_caching());
    for _ in 0..3 {
        resolver
            .resolve(key.plaintext.expose_secret())
            .await
            .unwrap();
    }
    assert_eq!(store.lookups(), 4, "one lookup, then cached");

    // Interrupted: cleared, uncached again.
    resolver.feed_interrupted().await;
    resolver
        .resolve(key.plaintext.expose_secret())
        .await
        .unwrap();
    resolver
        .resolve(key.plaintext.expose_secret())
        .await
        .unwrap();
    assert_eq!(store.lookups(), 6, "uncached while the feed is down");
}

/// Two instances over one store, each with its own cache and service: a key revoked
/// on A is refused by B (which had it cached) once B's feed delivers the event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_instance_evicts_on_another() {
    let store = Arc::new(CountingStore::default());
    let a_resolver = KeyResolver::builder(Arc::clone(&store), options())
        .build()
        .unwrap();
    let a_keys = KeyService::new(Arc::clone(&store), options())
        .unwrap()
        .with_listener(Arc::new(a_resolver.clone()));
    let b_resolver = KeyResolver::builder(Arc::clone(&store), options())
        .build()
        .unwrap();
    let subscription = store.subscribe(&FeedSettings::default()).await.unwrap();
    let follower = tokio::spawn(follow_feed(
        subscription,
        vec![Arc::new(b_resolver.clone()) as Arc<dyn FeedListener>],
    ));
    let started = Instant::now();
    while !b_resolver.is_caching() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "feed never live"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let ada = a_keys.register_user(NewUser::named("ada")).await.unwrap();
    let key = ada.key(&KeyType::SECRET, &Environment::LIVE).unwrap();
    let secret = key.plaintext.expose_secret();
    b_resolver.resolve(secret).await.unwrap();
    let before = store.lookups();
    b_resolver.resolve(secret).await.unwrap();
    assert_eq!(store.lookups(), before, "B serves the key from its cache");

    a_keys.revoke(&key.key.id).await.unwrap();
    let revoked = Instant::now();
    loop {
        match b_resolver.resolve(secret).await {
            Err(AuthError::Revoked) => break,
            Ok(_) => assert!(
                revoked.elapsed() < Duration::from_secs(5),
                "B still accepts the revoked key"
            ),
            Err(other) => panic!("unexpected {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    follower.abort();
}
