//! Defect tests: each is named after a defect found in review and failed before its fix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::Duration;

use keyroute_core::{AuthMethod, Environment, KeyOptions, KeyType, Principal, Tenant};
use keyroute_router::{ConnectionRouter, KeyResolver, RouteError, RoutingPolicy, Template};
use keyroute_store::{PoolSettings, Sqlite};
use proptest::prelude::*;

fn principal(tenant: &str, env: &str) -> Principal {
    Principal::from_claims(AuthMethod::ApiKey, Environment::new(env).unwrap())
        .with_tenant(Some(Tenant::new(tenant).unwrap()))
}

/// `{tenant}-{env}` sent tenant `acme-eu` in `live` and tenant `acme` in `eu-live` to one connection.
#[test]
fn template_names_collide_across_tenants_and_environments() {
    match Template::parse("{tenant}-{env}") {
        Err(RouteError::Config(reason)) => {
            assert_eq!(reason.option, "template", "names the option: {reason}");
        }
        Ok(template) => {
            let a = template
                .route(&principal("acme-eu", "live"))
                .unwrap()
                .into_owned();
            let b = template
                .route(&principal("acme", "eu-live"))
                .unwrap()
                .into_owned();
            assert_ne!(a, b, "two tenants share the connection {a}");
            panic!("an ambiguous template was accepted");
        }
        Err(other) => panic!("wrong error: {other}"),
    }
    let template = Template::parse("{tenant}_{env}").unwrap();
    assert_ne!(
        template.route(&principal("acme-eu", "live")).unwrap(),
        template.route(&principal("acme", "eu-live")).unwrap()
    );
}

/// One piece of a generated template.
#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Placeholder(&'static str),
}

fn template_strategy() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => prop::sample::select(vec!["{env}", "{tenant}", "{key_type}"]).prop_map(Piece::Placeholder),
        2 => "[a-c0-9_./-]{1,3}".prop_map(Piece::Text),
    ];
    prop::collection::vec(piece, 1..6).prop_map(|pieces| {
        pieces
            .into_iter()
            .map(|p| match p {
                Piece::Text(t) => t,
                Piece::Placeholder(p) => p.to_owned(),
            })
            .collect()
    })
}

/// A principal built from generated names, `-` included.
fn named(tenant: &str, env: &str, key_type: &str) -> Principal {
    Principal::from_claims(AuthMethod::ApiKey, Environment::new(env).unwrap())
        .with_tenant(Some(Tenant::new(tenant).unwrap()))
        .with_key_type(Some(KeyType::new(key_type).unwrap()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Under any accepted template, principals that differ in a value it uses get different names.
    #[test]
    fn accepted_templates_are_injective(
        template in template_strategy(),
        a in ("[a-z0-9][a-z0-9-]{0,6}", "[a-z][a-z0-9-]{0,6}", "[a-z][a-z0-9-]{0,4}"),
        b in ("[a-z0-9][a-z0-9-]{0,6}", "[a-z][a-z0-9-]{0,6}", "[a-z][a-z0-9-]{0,4}"),
        splits in any::<prop::sample::Index>(),
        resplit_b in any::<bool>(),
    ) {
        let Ok(policy) = Template::parse(&template) else {
            return Ok(());
        };
        // Half the time, b is a re-split of a's tenant and environment (acme-eu + live
        // against acme + eu-live), the collision the separator rule exists for.
        let joined = format!("{}-{}", a.0, a.1);
        let cut = splits.index(joined.len());
        let resplit = (joined[..cut].trim_end_matches('-'), joined[cut..].trim_start_matches('-'));
        let b = match resplit {
            (t, e) if resplit_b && !t.is_empty() && e.starts_with(|c: char| c.is_ascii_lowercase())
                && Tenant::new(t).is_ok() && Environment::new(e).is_ok() =>
            {
                (t.to_owned(), e.to_owned(), b.2)
            }
            _ => b,
        };
        let (pa, pb) = (named(&a.0, &a.1, &a.2), named(&b.0, &b.1, &b.2));
        let (na, nb) = (policy.route(&pa).unwrap(), policy.route(&pb).unwrap());
        let differs = (template.contains("{tenant}") && a.0 != b.0)
            || (template.contains("{env}") && a.1 != b.1)
            || (template.contains("{key_type}") && a.2 != b.2);
        prop_assert!(template.contains("{env}"), "accepted without {{env}}: {template}");
        if differs {
            prop_assert_ne!(na, nb, "template {} maps {:?} and {:?} to one name", template, a, b);
        }
    }
}

/// Two pools near u32::MAX connections each overflowed the budget sum (a panic in debug).
#[tokio::test]
async fn pool_budget_sum_overflows_u32() {
    let (live, test) = (
        keyroute_testing::sqlite().unwrap(),
        keyroute_testing::sqlite().unwrap(),
    );
    let mut settings = PoolSettings::default();
    settings.max_size = u32::MAX - 1;
    let router = ConnectionRouter::<Sqlite>::builder()
        .pool_settings(settings)
        .connection_budget(u32::MAX)
        .connection("live", live.url().clone())
        .connection("test", test.url().clone())
        .build()
        .unwrap();
    let live_key = Principal::from_claims(AuthMethod::ApiKey, Environment::LIVE);
    let test_key = Principal::from_claims(AuthMethod::ApiKey, Environment::TEST);
    assert_eq!(router.connection(&live_key).await.unwrap().name(), "live");
    assert_eq!(router.connection(&test_key).await.unwrap().name(), "test");
    assert_eq!(
        router.open_pools(),
        ["test"],
        "the two pools together exceed the budget, so the first one closed"
    );
}

/// Pool bounds the router cannot honour are typed errors naming the option at build time.
#[test]
fn pool_bounds_are_refused_at_build_time() {
    let build = |settings: PoolSettings, budget: u32| {
        ConnectionRouter::<Sqlite>::builder()
            .pool_settings(settings)
            .connection_budget(budget)
            .connection("live", "sqlite://unused.db")
            .build()
            .map(drop)
    };
    let mut zero = PoolSettings::default();
    zero.max_size = 0;
    let mut huge = PoolSettings::default();
    huge.max_size = u32::MAX;
    let mut idle = PoolSettings::default();
    idle.min_idle = Some(11);
    let mut timeout = PoolSettings::default();
    timeout.connection_timeout = std::time::Duration::ZERO;
    let mut connect = PoolSettings::default();
    connect.connect_timeout = std::time::Duration::ZERO;
    let mut backoff = PoolSettings::default();
    backoff.retry_backoff = std::time::Duration::ZERO;
    let mut backoff_max = PoolSettings::default();
    backoff_max.retry_backoff_max = std::time::Duration::from_millis(10);
    for (settings, budget, option) in [
        (PoolSettings::default(), 0, "connection_budget"),
        (zero, 512, "max_size"),
        (huge, 512, "connection_budget"),
        (idle, 512, "min_idle"),
        (timeout, 512, "connection_timeout"),
        (connect, 512, "connect_timeout"),
        (backoff, 512, "retry_backoff"),
        (backoff_max, 512, "retry_backoff_max"),
    ] {
        match build(settings, budget) {
            Err(RouteError::Config(reason)) => {
                assert!(reason.to_string().contains(option), "{reason}")
            }
            other => panic!("expected a Config error naming {option}, got {other:?}"),
        }
    }
}

/// A session cache or negative-cache TTL over 1 000 years panicked inside moka at build time.
#[test]
fn cache_durations_over_1000_years_panic_in_moka() {
    use keyroute_core::ConfigError;
    use keyroute_store::MemoryStore;

    let two_thousand_years = Duration::from_secs(2_000 * 31_557_600);
    let mut options = KeyOptions::default();
    options.session_cache_duration = Some(two_thousand_years);
    match KeyResolver::builder(Arc::new(MemoryStore::new()), options).build() {
        Err(ConfigError { option, .. }) => {
            assert_eq!(option, "session_cache_duration");
        }
        other => panic!(
            "expected an invalid session_cache_duration, got {:?}",
            other.err()
        ),
    }
    let built = KeyResolver::builder(Arc::new(MemoryStore::new()), KeyOptions::default())
        .negative_cache(two_thousand_years, 10)
        .build();
    match built {
        Err(ConfigError { option, .. }) => assert_eq!(option, "negative_cache_ttl"),
        other => panic!(
            "expected an invalid negative_cache_ttl, got {:?}",
            other.err()
        ),
    }
}

/// A store whose next key lookup, once armed, reads the record and then waits to be
/// released before returning it: how a revoke lands in the middle of a cache fill.
struct GatedLookups {
    inner: Arc<keyroute_store::MemoryStore>,
    armed: std::sync::atomic::AtomicBool,
    read: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

#[async_trait::async_trait]
impl keyroute_core::ApiKeyStore for GatedLookups {
    async fn init_schema(&self) -> keyroute_core::StoreResult<()> {
        self.inner.init_schema().await
    }
    async fn api_key_exists(
        &self,
        hash: &keyroute_core::KeyHash,
    ) -> keyroute_core::StoreResult<bool> {
        self.inner.api_key_exists(hash).await
    }
    async fn get_api_key_by_hash(
        &self,
        hash: &keyroute_core::KeyHash,
    ) -> keyroute_core::StoreResult<Option<keyroute_core::ResolvedKey>> {
        let found = self.inner.get_api_key_by_hash(hash).await;
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.read.notify_one();
            self.release.notified().await;
        }
        found
    }
    async fn get_api_key(
        &self,
        id: &keyroute_core::KeyId,
    ) -> keyroute_core::StoreResult<Option<keyroute_core::ApiKey>> {
        self.inner.get_api_key(id).await
    }
    async fn get_user_api_keys(
        &self,
        user_id: &keyroute_core::UserId,
        query: &keyroute_core::KeyQuery,
    ) -> keyroute_core::StoreResult<Vec<keyroute_core::ApiKey>> {
        self.inner.get_user_api_keys(user_id, query).await
    }
    async fn store_all(
        &self,
        keys: &[keyroute_core::ApiKey],
        audit: &[keyroute_core::AuditRecord],
    ) -> keyroute_core::StoreResult<()> {
        self.inner.store_all(keys, audit).await
    }
    async fn cancel_key(
        &self,
        id: &keyroute_core::KeyId,
        at: chrono::DateTime<chrono::Utc>,
        audit: &[keyroute_core::AuditRecord],
    ) -> keyroute_core::StoreResult<Option<keyroute_core::ApiKey>> {
        self.inner.cancel_key(id, at, audit).await
    }
    async fn roll_key(
        &self,
        old: &keyroute_core::KeyId,
        replacement: &keyroute_core::ApiKey,
        cancel_at: chrono::DateTime<chrono::Utc>,
        audit: &[keyroute_core::AuditRecord],
    ) -> keyroute_core::StoreResult<Option<keyroute_core::ApiKey>> {
        self.inner
            .roll_key(old, replacement, cancel_at, audit)
            .await
    }
    async fn update_key(
        &self,
        key: &keyroute_core::ApiKey,
        expected_revision: u64,
        audit: &[keyroute_core::AuditRecord],
    ) -> keyroute_core::StoreResult<Option<keyroute_core::ApiKey>> {
        self.inner.update_key(key, expected_revision, audit).await
    }
    async fn set_credits(
        &self,
        id: &keyroute_core::KeyId,
        credits: Option<&keyroute_core::limits::Credits>,
        audit: &[keyroute_core::AuditRecord],
    ) -> keyroute_core::StoreResult<Option<keyroute_core::ApiKey>> {
        self.inner.set_credits(id, credits, audit).await
    }
    async fn spend_credits(
        &self,
        id: &keyroute_core::KeyId,
        cost: u64,
        now: chrono::DateTime<chrono::Utc>,
    ) -> keyroute_core::StoreResult<keyroute_core::limits::CreditSpend> {
        self.inner.spend_credits(id, cost, now).await
    }
    async fn regenerate(
        &self,
        regeneration: &keyroute_core::Regeneration,
        audit: &[keyroute_core::AuditRecord],
    ) -> keyroute_core::StoreResult<Vec<keyroute_core::ApiKey>> {
        self.inner.regenerate(regeneration, audit).await
    }
    async fn touch_last_used(
        &self,
        ids: &[keyroute_core::KeyId],
        at: chrono::DateTime<chrono::Utc>,
    ) -> keyroute_core::StoreResult<u64> {
        self.inner.touch_last_used(ids, at).await
    }
}

/// A revoke that ran while a cache fill for the same key was in flight was undone by
/// the fill, which then cached the pre-revocation record for the whole cache TTL.
#[tokio::test]
async fn revoke_racing_a_cache_fill_is_not_undone() {
    use keyroute_core::{AuthError, KeyService, NewUser};

    let memory = Arc::new(keyroute_store::MemoryStore::new());
    let gated = Arc::new(GatedLookups {
        inner: Arc::clone(&memory),
        armed: std::sync::atomic::AtomicBool::new(false),
        read: tokio::sync::Notify::new(),
        release: tokio::sync::Notify::new(),
    });
    let mut options = KeyOptions::default();
    options.session_cache_duration = Some(Duration::from_secs(3600));
    // The race is in the cache itself: used without a change feed here.
    let resolver = KeyResolver::builder(Arc::clone(&gated), options.clone())
        .dangerous_cache_without_feed()
        .build()
        .unwrap();
    let service = KeyService::new(Arc::clone(&memory), options)
        .unwrap()
        .with_listener(Arc::new(resolver.clone()));
    let ada = service.register_user(NewUser::named("ada")).await.unwrap();
    let key = ada
        .key(&KeyType::SECRET, &Environment::LIVE)
        .unwrap()
        .clone();

    gated.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let fill = {
        let resolver = resolver.clone();
        let token = key.plaintext.expose_secret().to_owned();
        tokio::spawn(async move { resolver.resolve(&token).await.map(|_| ()) })
    };
    gated.read.notified().await; // the fill has read the still-active record
    service.revoke(&key.key.id).await.unwrap();
    gated.release.notify_one();
    // The request that was in flight may finish either way; what follows may not.
    let _ = fill.await.unwrap();
    assert!(matches!(
        resolver.resolve(key.plaintext.expose_secret()).await,
        Err(AuthError::Revoked)
    ));
}
