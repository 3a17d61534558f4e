//! Defect tests: each is named after a defect found in review and failed before its fix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::hs_key;
use keyroute_core::{JwtError, ManualClock};
use keyroute_jwt::{JwtAlgorithm, JwtConfig, JwtService, JwtServiceError, SigningKey};
use keyroute_store::MemoryStore;

/// A deny-cache TTL of 2 000 years passed validation and then panicked inside moka.
#[test]
fn deny_cache_ttl_over_1000_years_panics_in_moka() {
    let two_thousand_years = Duration::from_secs(2_000 * 31_557_600);
    let built =
        JwtService::builder(JwtConfig::default().with_deny_cache(two_thousand_years, 1_000))
            .signing_key(hs_key())
            .deny_list(Arc::new(MemoryStore::new()))
            .build();
    match built {
        Err(JwtServiceError::Config(reason)) => {
            assert!(reason.contains("deny_cache_ttl"), "{reason}")
        }
        other => panic!(
            "expected a Config error naming deny_cache_ttl, got {:?}",
            other.err()
        ),
    }
}

/// RFC 7515 Appendix A.1: an HS256 JWS with no `kid`, verbatim.
const RFC7515_A1_TOKEN: &str = concat!(
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9",
    ".",
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ",
    ".",
    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
);

/// The `k` of RFC 7515 Appendix A.1's JWK: the HMAC secret, base64url.
const RFC7515_A1_K: &str =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";

/// A service whose only key is RFC 7515 A.1's (plus `extra`), on a clock at `now`.
fn rfc_service(now: chrono::DateTime<chrono::Utc>, extra: Option<SigningKey>) -> JwtService {
    use base64::Engine as _;
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(RFC7515_A1_K)
        .unwrap();
    let mut builder = JwtService::builder(JwtConfig::default().with_deny_list_check(false))
        .signing_key(
            SigningKey::from_hmac_secret("rfc7515-a1", JwtAlgorithm::Hs256, &secret).unwrap(),
        )
        .clock(Arc::new(ManualClock::new(now)));
    if let Some(key) = extra {
        builder = builder.verification_key(key.verification_key().clone());
    }
    builder.build().unwrap()
}

/// The RFC 7515 A.1 token names no `kid`; it was refused as UnknownKeyId instead of Expired.
#[test]
fn standard_jwt_without_kid_is_unknown_key_id() {
    let now = common::t0();
    assert_eq!(
        rfc_service(now, None).decode(RFC7515_A1_TOKEN).unwrap_err(),
        JwtError::Expired,
        "the signature checks out with the one HS256 key, and exp (2011) has passed"
    );
    // Before its exp the signature and times pass, and keyroute's own claims are missing.
    let before = chrono::DateTime::from_timestamp(1_300_819_000, 0).unwrap();
    assert_eq!(
        rfc_service(before, None)
            .decode(RFC7515_A1_TOKEN)
            .unwrap_err(),
        JwtError::MissingClaim("kind")
    );
    // A tampered signature is still caught first.
    let tampered = format!("{}A", &RFC7515_A1_TOKEN[..RFC7515_A1_TOKEN.len() - 1]);
    assert_eq!(
        rfc_service(before, None).decode(&tampered).unwrap_err(),
        JwtError::BadSignature
    );
    // With two HS256 keys the token cannot say which: MissingKeyId, not UnknownKeyId.
    let second = SigningKey::generate_hs256("second").unwrap();
    assert_eq!(
        rfc_service(now, Some(second))
            .decode(RFC7515_A1_TOKEN)
            .unwrap_err(),
        JwtError::MissingKeyId
    );
}

/// A principal from an exchanged JWT carried no key record, so re-exchange dropped the key's expiry cap.
#[tokio::test]
async fn re_exchange_outlives_the_key() {
    use keyroute_core::{Environment, KeyRequest, KeyType, Principal, TokenVerifier};

    let s = common::setup(JwtConfig::default());
    let issued = s
        .keys
        .issue_key(
            KeyRequest::new(KeyType::SECRET, Environment::TEST).expires_in(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let first = s
        .jwt
        .exchange(&Principal::from_api_key(Arc::new(issued.key.clone()), None))
        .unwrap();
    assert_eq!(
        first.expires_at,
        common::t0() + chrono::TimeDelta::seconds(60)
    );

    s.clock.advance(chrono::TimeDelta::seconds(50));
    let caller = s.jwt.verify(first.token.expose_secret()).await.unwrap();
    let second = s.jwt.exchange(&caller).unwrap();
    assert!(
        second.expires_at <= first.expires_at,
        "re-exchange extended the token to {}",
        second.expires_at
    );

    s.clock.advance(chrono::TimeDelta::seconds(600));
    assert!(
        s.jwt.verify(second.token.expose_secret()).await.is_err(),
        "a token derived from a key that expired ten minutes ago still works"
    );
    assert!(
        s.jwt.exchange(&caller).is_err(),
        "an expired chain cannot be re-exchanged"
    );
    assert_eq!(
        common::part(first.token.expose_secret(), 1)["key_exp"],
        first.expires_at.timestamp(),
        "the key's expiry travels in the token"
    );

    // A key without expiry: re-exchange is capped by the presented token's own exp.
    let forever = s
        .keys
        .issue_key(KeyRequest::new(KeyType::SECRET, Environment::TEST))
        .await
        .unwrap();
    let first = s
        .jwt
        .exchange(&Principal::from_api_key(Arc::new(forever.key), None))
        .unwrap();
    s.clock.advance(chrono::TimeDelta::minutes(10));
    let caller = s.jwt.verify(first.token.expose_secret()).await.unwrap();
    let second = s.jwt.exchange(&caller).unwrap();
    assert_eq!(second.expires_at, first.expires_at);
}

/// A deny-list whose next read, once armed, answers and then waits to be released:
/// how a revocation lands while a "not denied" answer is on its way to the cache.
struct GatedDenyList {
    inner: Arc<MemoryStore>,
    armed: std::sync::atomic::AtomicBool,
    read: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

#[async_trait::async_trait]
impl keyroute_core::DenyList for GatedDenyList {
    async fn deny(
        &self,
        id: &str,
        from: Option<chrono::DateTime<chrono::Utc>>,
        until: chrono::DateTime<chrono::Utc>,
    ) -> keyroute_core::StoreResult<()> {
        self.inner.deny(id, from, until).await
    }
    async fn denial(
        &self,
        ids: &[&str],
        now: chrono::DateTime<chrono::Utc>,
    ) -> keyroute_core::StoreResult<keyroute_core::Denial> {
        let answer = self.inner.denial(ids, now).await;
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.read.notify_one();
            self.release.notified().await;
        }
        answer
    }
    async fn purge_denied(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> keyroute_core::StoreResult<u64> {
        self.inner.purge_denied(now).await
    }
}

/// An in-flight "not denied" answer overwrote the listener's "denied" in the deny
/// cache, so the revoking instance accepted the revoked key's JWT for the cache TTL.
#[tokio::test]
async fn revocation_racing_a_deny_cache_fill_is_not_undone() {
    use keyroute_core::{
        AuthError, Environment, KeyOptions, KeyRequest, KeyService, KeyType, Principal,
        TokenVerifier,
    };

    let store = Arc::new(MemoryStore::new());
    let gated = Arc::new(GatedDenyList {
        inner: Arc::clone(&store),
        armed: std::sync::atomic::AtomicBool::new(false),
        read: tokio::sync::Notify::new(),
        release: tokio::sync::Notify::new(),
    });
    let clock = ManualClock::new(common::t0());
    let jwt = Arc::new(
        JwtService::builder(JwtConfig::default().with_deny_cache(Duration::from_secs(600), 100))
            .signing_key(hs_key())
            .deny_list(gated.clone())
            .clock(Arc::new(clock.clone()))
            .build()
            .unwrap(),
    );
    let keys = KeyService::new(Arc::clone(&store), KeyOptions::default())
        .unwrap()
        .with_clock(Arc::new(clock))
        .with_listener(jwt.revocation_listener());
    let issued = keys
        .issue_key(KeyRequest::new(KeyType::SECRET, Environment::TEST))
        .await
        .unwrap();
    let principal = Principal::from_api_key(Arc::new(issued.key.clone()), None);
    let token = jwt.exchange(&principal).unwrap();

    gated.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let in_flight = {
        let jwt = Arc::clone(&jwt);
        let token = token.token.expose_secret().to_owned();
        tokio::spawn(async move { jwt.verify(&token).await.map(|_| ()) })
    };
    gated.read.notified().await; // "not denied" has been read, not yet cached
    keys.revoke(&issued.key.id).await.unwrap();
    gated.release.notify_one();
    let _ = in_flight.await.unwrap();
    assert!(matches!(
        jwt.verify(token.token.expose_secret()).await,
        Err(AuthError::Jwt(JwtError::Revoked))
    ));
}

/// A user's test keys rolled at `t0` with a 5-minute grace period by a key service
/// that tells `here` of revocations; `elsewhere` shares the store and the clock.
struct Rolled {
    clock: ManualClock,
    store: Arc<MemoryStore>,
    here: Arc<JwtService>,
    elsewhere: Arc<JwtService>,
    /// The rolled API key and JWT key.
    old_keys: [keyroute_core::KeyId; 2],
    /// A JWT exchanged for the rolled key, and a JWT key of the same user.
    tokens: [String; 2],
}

/// The grace period of [`roll_with_grace`].
const GRACE: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// Rolls a user's keys as [`Rolled`] says; with `follow_feed`, `here`'s deny cache
/// follows the change feed (told it is live) and `elsewhere`'s does not.
async fn roll_with_grace(follow_feed: bool) -> Rolled {
    use keyroute_core::{
        Environment, FeedListener as _, KeyOptions, KeyRequest, KeyService, KeyType, NewUser,
        Principal,
    };

    let store = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(common::t0());
    let instance = |follow_feed: bool| {
        let builder = JwtService::builder(JwtConfig::default())
            .signing_key(hs_key())
            .deny_list(store.clone())
            .clock(Arc::new(clock.clone()));
        let builder = if follow_feed {
            builder.deny_cache_follows_feed()
        } else {
            builder
        };
        Arc::new(builder.build().unwrap())
    };
    let (here, elsewhere) = (instance(follow_feed), instance(false));
    if follow_feed {
        here.feed_listener().feed_live().await;
    }
    let keys = KeyService::new(Arc::clone(&store), KeyOptions::default())
        .unwrap()
        .with_clock(Arc::new(clock.clone()))
        .with_listener(here.revocation_listener())
        .with_minter(keyroute_jwt::META_JWT, here.key_minter());
    let ada = keys.register_user(NewUser::named("ada")).await.unwrap();
    let api_key = ada.key(&KeyType::SECRET, &Environment::TEST).unwrap();
    let principal = Principal::from_api_key(Arc::new(api_key.key.clone()), None);
    let exchanged = here.exchange(&principal).unwrap();
    let jwt_key = here
        .issue_key(
            &keys,
            KeyRequest::new(KeyType::SECRET, Environment::TEST).for_user(ada.user.id.clone()),
        )
        .await
        .unwrap();
    keys.regenerate(&ada.user.id, &Environment::TEST, GRACE.to_std().ok())
        .await
        .unwrap();
    Rolled {
        clock,
        store,
        here,
        elsewhere,
        old_keys: [api_key.key.id.clone(), jwt_key.key.id.clone()],
        tokens: [
            exchanged.token.expose_secret().to_owned(),
            jwt_key.plaintext.expose_secret().to_owned(),
        ],
    }
}

/// Whether `jwt` refuses every one of `tokens` as revoked.
async fn refuses_all(jwt: &JwtService, tokens: &[String]) -> bool {
    use keyroute_core::{AuthError, TokenVerifier as _};
    for token in tokens {
        if !matches!(
            jwt.verify(token).await,
            Err(AuthError::Jwt(JwtError::Revoked))
        ) {
            return false;
        }
    }
    true
}

/// Keys rolled with a grace period were skipped by the revocation listener and nothing
/// denied them when the grace ended, so a JWT exchanged for one, and a JWT issued as a
/// key, outlived the grace period, here and on other instances.
#[tokio::test]
async fn rolled_keys_stop_their_jwts_when_the_grace_ends() {
    use keyroute_core::TokenVerifier as _;

    let rolled = roll_with_grace(false).await;
    rolled.clock.advance(chrono::TimeDelta::minutes(4));
    for jwt in [&rolled.here, &rolled.elsewhere] {
        for token in &rolled.tokens {
            jwt.verify(token)
                .await
                .expect("still within the grace period");
        }
    }
    rolled.clock.advance(chrono::TimeDelta::minutes(2));
    for jwt in [&rolled.here, &rolled.elsewhere] {
        assert!(
            refuses_all(jwt, &rolled.tokens).await,
            "a token of a rolled key outlived the grace period"
        );
    }
}

/// An instance that verified a rolled key's JWTs shortly before the grace ended cached
/// "not denied" and kept accepting them for the deny cache's TTL (10 s) after it,
/// though the deny-list entry it read named the grace's end as its start.
#[tokio::test]
async fn a_cached_answer_outlived_the_grace_end_on_other_instances() {
    use chrono::TimeDelta;
    use keyroute_core::TokenVerifier as _;

    let rolled = roll_with_grace(false).await;
    rolled.clock.advance(GRACE - TimeDelta::seconds(5));
    for jwt in [&rolled.here, &rolled.elsewhere] {
        for token in &rolled.tokens {
            jwt.verify(token)
                .await
                .expect("still within the grace period");
        }
    }
    rolled.clock.advance(TimeDelta::seconds(5));
    for (name, jwt) in [("here", &rolled.here), ("elsewhere", &rolled.elsewhere)] {
        assert!(
            refuses_all(jwt, &rolled.tokens).await,
            "{name}: a token of a rolled key was accepted when its grace had ended"
        );
    }
}

/// Revokes `rolled`'s old keys at once through another key service, whose listener is
/// `elsewhere`'s: the deny-list entries' start moves to now, and `here` hears of it
/// only through the change feed.
async fn revoke_elsewhere(rolled: &Rolled) {
    use keyroute_core::{KeyOptions, KeyService};
    let keys = KeyService::new(Arc::clone(&rolled.store), KeyOptions::default())
        .unwrap()
        .with_clock(Arc::new(rolled.clock.clone()))
        .with_listener(rolled.elsewhere.revocation_listener());
    for id in &rolled.old_keys {
        keys.revoke(id).await.unwrap();
    }
}

/// A cached "denied from the grace's end" answered "not denied" while the change feed
/// was down, so a revoke made elsewhere during the grace (which only the feed would
/// have told of) did not stop the keys' JWTs here.
#[tokio::test]
async fn a_pending_denial_was_trusted_while_the_feed_was_down() {
    use keyroute_core::{FeedListener as _, TokenVerifier as _};

    let rolled = roll_with_grace(true).await;
    rolled.here.feed_listener().feed_interrupted().await;
    for token in &rolled.tokens {
        rolled.here.verify(token).await.expect("within the grace");
    }
    revoke_elsewhere(&rolled).await;
    assert!(
        refuses_all(&rolled.here, &rolled.tokens).await,
        "a revoke missed while the feed was down was not honoured"
    );
}

/// A cached "denied from the grace's end" survived the feed coming back, though events
/// were missed while it was down, so a revoke made elsewhere meanwhile did not stop
/// the key's JWTs here.
#[tokio::test]
async fn a_pending_denial_survived_the_feed_coming_back() {
    use keyroute_core::{FeedListener as _, TokenVerifier as _};

    let rolled = roll_with_grace(true).await;
    for token in &rolled.tokens {
        rolled.here.verify(token).await.expect("within the grace");
    }
    let feed = rolled.here.feed_listener();
    feed.feed_interrupted().await;
    revoke_elsewhere(&rolled).await;
    feed.feed_live().await;
    assert!(
        refuses_all(&rolled.here, &rolled.tokens).await,
        "a revoke missed while the feed was down was not honoured once it was back"
    );
}

/// A token whose `env` differs from the environment of the key it names (a forged
/// `env: live` on a test key) is refused when the service knows the key store.
#[tokio::test]
async fn a_token_must_carry_the_environment_of_its_key() {
    use keyroute_core::{
        AuthError, Environment, KeyOptions, KeyRequest, KeyService, KeyType, TokenVerifier,
    };

    let store = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(common::t0());
    let jwt = JwtService::builder(JwtConfig::default())
        .signing_key(hs_key())
        .deny_list(store.clone())
        .key_store(store.clone())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let keys = KeyService::new(Arc::clone(&store), KeyOptions::default())
        .unwrap()
        .with_clock(Arc::new(clock));
    let test_key = keys
        .issue_key(KeyRequest::new(KeyType::SECRET, Environment::TEST))
        .await
        .unwrap();
    let now = common::t0().timestamp();
    let claims = |env: &str| {
        serde_json::json!({
            "kind": "exchange", "env": env, "key_id": test_key.key.id.as_str(),
            "key_type": "secret", "jti": "0a1b2c3d", "iat": now, "nbf": now, "exp": now + 600,
        })
    };
    let honest = common::sign_json(&common::hs_header(), &claims("test"));
    jwt.verify(&honest).await.unwrap();
    let forged = common::sign_json(&common::hs_header(), &claims("live"));
    assert!(matches!(
        jwt.verify(&forged).await,
        Err(AuthError::Jwt(JwtError::InvalidClaim("env")))
    ));
}
