//! The resolver's promises: offline rejection, a cache that spares the store, and
//! revocation and expiry that take effect on the next request.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod support;

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use keyroute_core::{
    AuthError, Environment, KeyOptions, KeyRequest, KeyService, KeyType, ManualClock, NewUser,
    PlaintextKey, Registration, TokenError,
};
use keyroute_router::{IncomingRequest, KeyResolver, ResolverBuilder};
use support::{CountingStore, bearer, start};

struct Fixture {
    store: Arc<CountingStore>,
    clock: ManualClock,
    service: KeyService<Arc<CountingStore>>,
    resolver: KeyResolver<Arc<CountingStore>>,
    ada: Registration,
}

fn options(cache: Option<Duration>) -> KeyOptions {
    let mut options = KeyOptions::default();
    options.session_cache_duration = cache;
    options.dangerous_accept_plain_http = true;
    options
}

async fn fixture(cache: Option<Duration>) -> Fixture {
    fixture_with(cache, |builder| builder).await
}

/// [`fixture`], with `adjust` applied to the resolver's builder.
async fn fixture_with(
    cache: Option<Duration>,
    adjust: impl FnOnce(ResolverBuilder<Arc<CountingStore>>) -> ResolverBuilder<Arc<CountingStore>>,
) -> Fixture {
    let store = Arc::new(CountingStore::default());
    let clock = ManualClock::new(start());
    // These cases test the cache itself, on one instance: no change feed runs, so the
    // cache is used without one (the default would serve uncached until a feed is live).
    let builder = KeyResolver::builder(Arc::clone(&store), options(cache))
        .clock(Arc::new(clock.clone()))
        .dangerous_cache_without_feed();
    let resolver = adjust(builder).build().unwrap();
    let service = KeyService::new(Arc::clone(&store), options(cache))
        .unwrap()
        .with_clock(Arc::new(clock.clone()))
        .with_listener(Arc::new(resolver.clone()));
    let ada = service.register_user(NewUser::named("ada")).await.unwrap();
    Fixture {
        store,
        clock,
        service,
        resolver,
        ada,
    }
}

impl Fixture {
    fn key(&self, env: &Environment) -> &PlaintextKey {
        &self.ada.key(&KeyType::SECRET, env).unwrap().plaintext
    }

    async fn resolve(&self, key: &str) -> Result<keyroute_core::Principal, AuthError> {
        let headers = bearer(key);
        self.resolver
            .authenticate(&IncomingRequest::new(&headers))
            .await
    }
}

/// After the first lookup, a cached key resolves with no store call at all.
#[tokio::test]
async fn a_cached_request_makes_no_store_call() {
    let f = fixture(Some(Duration::from_secs(600))).await;
    let key = f.key(&Environment::TEST).expose_secret().to_owned();
    let principal = f.resolve(&key).await.unwrap();
    assert_eq!(principal.environment(), &Environment::TEST);
    assert_eq!(principal.user().unwrap().user_name, "ada");
    assert_eq!(
        f.store.lookups(),
        1,
        "an uncached request is exactly one lookup"
    );
    for _ in 0..100 {
        f.resolve(&key).await.unwrap();
    }
    assert_eq!(f.store.lookups(), 1, "cached requests make no store call");
}

/// Without a cache (ServiceStack's default) every request is one lookup.
#[tokio::test]
async fn without_a_cache_each_request_is_one_lookup() {
    let f = fixture(None).await;
    let key = f.key(&Environment::LIVE).expose_secret().to_owned();
    for _ in 0..3 {
        f.resolve(&key).await.unwrap();
    }
    assert_eq!(f.store.lookups(), 3);
}

/// A key revoked through the service is rejected on the very next request.
#[tokio::test]
async fn a_revoked_key_is_rejected_on_the_next_request() {
    let f = fixture(Some(Duration::from_secs(600))).await;
    let issued = f.ada.key(&KeyType::SECRET, &Environment::LIVE).unwrap();
    let key = issued.plaintext.expose_secret();
    f.resolve(key).await.unwrap();
    f.service.revoke(&issued.key.id).await.unwrap();
    assert!(matches!(f.resolve(key).await, Err(AuthError::Revoked)));
}

/// Another instance caching without a change feed, whose cache was not told, stops
/// accepting a revoked key once its cached copy is older than the cache duration.
#[tokio::test]
async fn without_a_feed_other_instances_see_a_revocation_within_the_cache_duration() {
    let f = fixture(Some(Duration::from_secs(60))).await;
    let other = KeyResolver::builder(Arc::clone(&f.store), options(Some(Duration::from_secs(60))))
        .clock(Arc::new(f.clock.clone()))
        .dangerous_cache_without_feed()
        .build()
        .unwrap();
    let issued = f.ada.key(&KeyType::SECRET, &Environment::LIVE).unwrap();
    let headers = bearer(issued.plaintext.expose_secret());
    let request = IncomingRequest::new(&headers);
    other.authenticate(&request).await.unwrap();
    f.service.revoke(&issued.key.id).await.unwrap();
    f.clock.advance(TimeDelta::seconds(59));
    assert!(
        other.authenticate(&request).await.is_ok(),
        "still cached on the other instance"
    );
    f.clock.advance(TimeDelta::seconds(1));
    assert!(
        matches!(other.authenticate(&request).await, Err(AuthError::Revoked)),
        "refetched after the TTL"
    );
}

/// An expiry that passes while the key is cached takes effect.
#[tokio::test]
async fn an_expired_cached_key_is_rejected() {
    let f = fixture(Some(Duration::from_secs(3600))).await;
    let issued = f
        .service
        .issue_key(
            KeyRequest::new(KeyType::SECRET, Environment::TEST).expires_in(Duration::from_secs(30)),
        )
        .await
        .unwrap();
    let key = issued.plaintext.expose_secret();
    f.resolve(key).await.unwrap();
    f.clock.advance(TimeDelta::seconds(30));
    assert!(matches!(f.resolve(key).await, Err(AuthError::Expired)));
    assert_eq!(
        f.store.lookups(),
        1,
        "the expiry was seen in the cached copy"
    );
}

/// Malformed, mistyped and mis-checksummed keys are rejected with no store call.
#[tokio::test]
async fn offline_rejections_make_no_io() {
    let f = fixture(Some(Duration::from_secs(600))).await;
    let mut key = f.key(&Environment::LIVE).expose_secret().to_owned();
    let last = key.pop().unwrap();
    key.push(if last == 'A' { 'B' } else { 'A' });
    assert!(matches!(
        f.resolve(&key).await,
        Err(AuthError::Token(TokenError::BadChecksum))
    ));
    assert!(matches!(
        f.resolve("sk_live_short").await,
        Err(AuthError::Token(TokenError::Truncated))
    ));
    assert!(matches!(
        f.resolve("pk_live_whatever").await,
        Err(AuthError::Token(TokenError::KeyTypeNotEnabled(_)))
    ));
    assert_eq!(f.store.lookups(), 0);
}

/// A forged key with a valid checksum costs one lookup, then none while remembered.
#[tokio::test]
async fn unknown_keys_are_remembered() {
    let f = fixture(None).await;
    let forged = f
        .service
        .format()
        .generate(&KeyType::SECRET, &Environment::LIVE)
        .unwrap();
    for _ in 0..5 {
        assert!(matches!(
            f.resolve(forged.expose_secret()).await,
            Err(AuthError::UnknownKey)
        ));
    }
    assert_eq!(f.store.lookups(), 1);
}

/// Concurrent requests with one uncached key share one lookup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_share_one_lookup() {
    let f = Arc::new(fixture(Some(Duration::from_secs(600))).await);
    let key = f.key(&Environment::LIVE).expose_secret().to_owned();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (f, key) = (Arc::clone(&f), key.clone());
            tokio::spawn(async move { f.resolve(&key).await.map(|_| ()) })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(f.store.lookups(), 1);
}

/// `cache_capacity` at its extremes (it comes from configuration): 0 keeps nothing, so
/// every request is a lookup; `u64::MAX` allocates nothing up front and caches.
#[tokio::test]
async fn cache_capacity_extremes() {
    for (capacity, lookups) in [(0, 3), (u64::MAX, 1)] {
        let f = fixture_with(Some(Duration::from_secs(600)), |builder| {
            builder.cache_capacity(capacity)
        })
        .await;
        let key = f.key(&Environment::LIVE).expose_secret().to_owned();
        for _ in 0..3 {
            f.resolve(&key).await.unwrap();
        }
        assert_eq!(f.store.lookups(), lookups, "cache_capacity {capacity}");
    }
}

/// Keys over plain HTTP are refused when secure connections are required; a proxy's
/// X-Forwarded-Proto counts only when trusted.
#[tokio::test]
async fn secure_connection_rules() {
    let store = Arc::new(CountingStore::default());
    let service = KeyService::new(Arc::clone(&store), KeyOptions::default()).unwrap();
    let ada = service.register_user(NewUser::named("ada")).await.unwrap();
    let key = ada.keys[0].plaintext.expose_secret();
    let strict = KeyResolver::builder(Arc::clone(&store), KeyOptions::default())
        .build()
        .unwrap();
    let mut headers = bearer(key);
    assert!(matches!(
        strict.authenticate(&IncomingRequest::new(&headers)).await,
        Err(AuthError::InsecureConnection)
    ));
    assert!(
        strict
            .authenticate(&IncomingRequest::new(&headers).over_tls(true))
            .await
            .is_ok()
    );
    headers.insert("x-forwarded-proto", "https".parse().unwrap());
    assert!(matches!(
        strict.authenticate(&IncomingRequest::new(&headers)).await,
        Err(AuthError::InsecureConnection)
    ));
    let behind_proxy = KeyResolver::builder(Arc::clone(&store), KeyOptions::default())
        .dangerous_trust_any_proxy(true)
        .build()
        .unwrap();
    assert!(
        behind_proxy
            .authenticate(&IncomingRequest::new(&headers))
            .await
            .is_ok()
    );
    assert_eq!(store.lookups(), 2, "the insecure attempts made no lookup");
}

/// A resolver can accept only some environments and key types, and refuses JWTs
/// unless it has a verifier.
#[tokio::test]
async fn accepted_environments_types_and_jwts() {
    let f = fixture(None).await;
    let test_only = KeyResolver::builder(Arc::clone(&f.store), options(None))
        .accept_environments(vec![Environment::TEST])
        .build()
        .unwrap();
    let live = bearer(f.key(&Environment::LIVE).expose_secret());
    assert!(matches!(
        test_only.authenticate(&IncomingRequest::new(&live)).await,
        Err(AuthError::EnvironmentNotAllowed(e)) if e == Environment::LIVE
    ));
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln";
    assert!(matches!(
        f.resolve(jwt).await,
        Err(AuthError::JwtNotAccepted)
    ));
}

/// Uses are written in batches: many requests, one write per flush, and the store
/// records when the key was used.
#[tokio::test]
async fn last_used_times_are_written_in_batches() {
    let f = fixture(Some(Duration::from_secs(600))).await;
    let issued = f.ada.key(&KeyType::SECRET, &Environment::LIVE).unwrap();
    for _ in 0..20 {
        f.resolve(issued.plaintext.expose_secret()).await.unwrap();
    }
    assert_eq!(f.store.touches(), 0, "no write per request");
    assert_eq!(f.resolver.flush_last_used().await.unwrap(), 1);
    assert_eq!(f.store.touches(), 1);
    let stored = keyroute_core::ApiKeyStore::get_api_key(f.store.inner(), &issued.key.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.last_used_at, Some(start()));
    assert_eq!(
        f.resolver.flush_last_used().await.unwrap(),
        0,
        "nothing new to write"
    );
}

/// Forwarded headers are read from the right: with `dangerous_trust_any_proxy` on, a
/// client's `https` followed by the proxy's appended `http` is plain HTTP, refused
/// with a message naming the setting to change.
#[tokio::test]
async fn forwarded_proto_is_read_from_the_right() {
    let store = Arc::new(CountingStore::default());
    let service = KeyService::new(Arc::clone(&store), KeyOptions::default()).unwrap();
    let ada = service.register_user(NewUser::named("ada")).await.unwrap();
    let key = ada.keys[0].plaintext.expose_secret();
    let behind_proxy = KeyResolver::builder(Arc::clone(&store), KeyOptions::default())
        .dangerous_trust_any_proxy(true)
        .build()
        .unwrap();
    let mut spoofed = bearer(key);
    spoofed.insert("x-forwarded-proto", "https, http".parse().unwrap());
    let refused = behind_proxy
        .authenticate(&IncomingRequest::new(&spoofed))
        .await
        .unwrap_err();
    assert!(
        matches!(refused, AuthError::InsecureConnection),
        "{refused}"
    );
    assert!(refused.to_string().contains("trusted_proxies"), "{refused}");
    let mut honest = bearer(key);
    honest.insert("x-forwarded-proto", "http, https".parse().unwrap());
    assert!(
        behind_proxy
            .authenticate(&IncomingRequest::new(&honest))
            .await
            .is_ok()
    );
}

/// With `trusted_proxies`, forwarded headers count only from a listed peer, one value
/// per trusted hop, and `Forwarded` (RFC 7239) is read the same way.
#[tokio::test]
async fn forwarded_headers_count_only_from_trusted_proxies() {
    let store = Arc::new(CountingStore::default());
    let service = KeyService::new(Arc::clone(&store), KeyOptions::default()).unwrap();
    let ada = service.register_user(NewUser::named("ada")).await.unwrap();
    let key = ada.keys[0].plaintext.expose_secret();
    let resolver = KeyResolver::builder(Arc::clone(&store), KeyOptions::default())
        .trusted_proxies(vec!["10.0.0.0/8".parse().unwrap()])
        .build()
        .unwrap();
    let proxy = Some("10.1.2.3".parse().unwrap());
    let stranger = Some("192.0.2.9".parse().unwrap());
    let check = |pairs: &[(&'static str, &str)], peer| {
        let mut headers = bearer(key);
        for (name, value) in pairs {
            headers.append(*name, value.parse().unwrap());
        }
        let resolver = resolver.clone();
        async move {
            resolver
                .authenticate(&IncomingRequest::new(&headers).from_peer(peer))
                .await
                .is_ok()
        }
    };
    assert!(check(&[("x-forwarded-proto", "https")], proxy).await);
    assert!(!check(&[("x-forwarded-proto", "https")], stranger).await);
    assert!(!check(&[("x-forwarded-proto", "https")], None).await);
    // Two trusted hops: the edge proxy's value (second from the right) decides.
    let two_hops = [
        ("x-forwarded-for", "198.51.100.7, 10.9.9.9"),
        ("x-forwarded-proto", "https, http"),
    ];
    assert!(check(&two_hops, proxy).await);
    let spoofed = [
        ("x-forwarded-for", "198.51.100.7"),
        ("x-forwarded-proto", "https, http"),
    ];
    assert!(!check(&spoofed, proxy).await);
    assert!(check(&[("forwarded", "for=198.51.100.7;proto=https")], proxy).await);
    assert!(
        !check(
            &[(
                "forwarded",
                "for=1.2.3.4;proto=https, for=198.51.100.7;proto=http"
            )],
            proxy
        )
        .await
    );
    assert!(
        check(
            &[(
                "forwarded",
                "for=198.51.100.7;proto=https, for=\"10.9.9.9:443\";proto=http"
            )],
            proxy
        )
        .await
    );
    assert!(!check(&[("forwarded", "for=198.51.100.7;proto=https")], stranger).await);
}

/// `[resolver] trusted_proxies` takes address ranges; anything else is refused
/// naming the option.
#[test]
fn trusted_proxies_are_address_ranges() {
    let mut config = keyroute_router::ResolverConfig::default();
    config
        .set("trusted_proxies", "127.0.0.1/32, \"10.0.0.0/8\", ::1")
        .unwrap();
    assert_eq!(config.trusted_proxies.len(), 3);
    for bad in ["10.0.0.0/33", "proxy.internal", "::1/129"] {
        let e = config.set("trusted_proxies", bad).unwrap_err();
        assert_eq!(
            (e.section.as_str(), e.option.as_str()),
            ("resolver", "trusted_proxies"),
            "{bad}"
        );
    }
}
