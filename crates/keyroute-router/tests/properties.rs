//! A property test of isolation: random sequences of requests with random keys (live,
//! test, revoked, expired, forged, mistyped, another tenant's) put zero rows in a wrong
//! database, and every rejection is the typed error that key deserves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod support;

use std::sync::Arc;
use std::time::Duration;

use diesel::prelude::*;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use keyroute_core::{
    AuthError, Environment, KeyOptions, KeyRequest, KeyService, KeyType, ManualClock, NewUser,
    PlaintextKey, Tenant, TokenError,
};
use keyroute_router::{
    ConnectionRouter, Gateway, IncomingRequest, KeyResolver, RouteError, Template,
};
use keyroute_store::{MemoryStore, Sqlite};
use keyroute_testing::TestDatabase;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use support::bearer;

/// The team's own table, in every tenant database.
mod schema {
    diesel::table! {
        events (id) {
            id -> Integer,
            placed_with -> Text,
        }
    }
}
use schema::events;

#[derive(Debug, Clone, Copy)]
enum Caller {
    AcmeLive,
    AcmeTest,
    Revoked,
    Expired,
    Forged,
    Mistyped,
    OtherTenant,
}

struct World {
    gateway: Gateway<Arc<MemoryStore>, Sqlite>,
    keys: Vec<(Caller, PlaintextKey)>,
    _dbs: Vec<TestDatabase<Sqlite>>,
}

async fn world() -> World {
    let store = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(support::start());
    let mut options = KeyOptions::default();
    options.dangerous_accept_plain_http = true;
    options.session_cache_duration = Some(Duration::from_secs(60));
    let service = KeyService::new(Arc::clone(&store), options.clone())
        .unwrap()
        .with_clock(Arc::new(clock.clone()));
    let acme = service
        .register_user(NewUser::named("acme-admin").with_tenant(Tenant::new("acme").unwrap()))
        .await
        .unwrap();
    let globex = service
        .register_user(NewUser::named("globex-admin").with_tenant(Tenant::new("globex").unwrap()))
        .await
        .unwrap();
    let revoked = service
        .issue_key(
            KeyRequest::new(KeyType::SECRET, Environment::LIVE).for_user(acme.user.id.clone()),
        )
        .await
        .unwrap();
    service.revoke(&revoked.key.id).await.unwrap();
    let expired = service
        .issue_key(
            KeyRequest::new(KeyType::SECRET, Environment::TEST)
                .for_user(acme.user.id.clone())
                .expires_in(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let forged = service
        .format()
        .generate(&KeyType::SECRET, &Environment::LIVE)
        .unwrap();
    let acme_live = acme
        .key(&KeyType::SECRET, &Environment::LIVE)
        .unwrap()
        .plaintext
        .clone();
    let mut mistyped = acme_live.expose_secret().to_owned();
    let last = mistyped.pop().unwrap();
    mistyped.push(if last == 'x' { 'y' } else { 'x' });
    let keys = vec![
        (Caller::AcmeLive, acme_live),
        (
            Caller::AcmeTest,
            acme.key(&KeyType::SECRET, &Environment::TEST)
                .unwrap()
                .plaintext
                .clone(),
        ),
        (Caller::Revoked, revoked.plaintext),
        (Caller::Expired, expired.plaintext),
        (Caller::Forged, forged),
        (Caller::Mistyped, PlaintextKey::new(mistyped)),
        (
            Caller::OtherTenant,
            globex
                .key(&KeyType::SECRET, &Environment::LIVE)
                .unwrap()
                .plaintext
                .clone(),
        ),
    ];
    let (live, test) = (
        keyroute_testing::sqlite().unwrap(),
        keyroute_testing::sqlite().unwrap(),
    );
    let router = ConnectionRouter::<Sqlite>::builder()
        .connection("acme_live", live.url().clone())
        .connection("acme_test", test.url().clone())
        .policy(Template::parse("{tenant}_{env}").unwrap())
        .build()
        .unwrap();
    for name in ["acme_live", "acme_test"] {
        let mut conn = router.connection_named(name).await.unwrap();
        conn.batch_execute(
            "CREATE TABLE events (id INTEGER PRIMARY KEY, placed_with TEXT NOT NULL)",
        )
        .await
        .unwrap();
    }
    clock.advance(chrono::TimeDelta::minutes(5)); // past the expiring key's minute
    // One instance, its cache used without a change feed: the properties are the cache's.
    let resolver = KeyResolver::builder(store, options)
        .dangerous_cache_without_feed()
        .clock(Arc::new(clock))
        .build()
        .unwrap();
    World {
        gateway: Gateway::new(resolver, router),
        keys,
        _dbs: vec![live, test],
    }
}

/// The handler: record an event in whichever database the caller is routed to.
async fn record_event(
    gateway: &Gateway<Arc<MemoryStore>, Sqlite>,
    key: &PlaintextKey,
) -> Result<(), RouteError> {
    let headers = bearer(key.expose_secret());
    let (principal, mut conn) = gateway.connect(&IncomingRequest::new(&headers)).await?;
    diesel::insert_into(events::table)
        .values(events::placed_with.eq(principal.environment().as_str()))
        .execute(&mut conn)
        .await
        .unwrap();
    Ok(())
}

async fn tags(gateway: &Gateway<Arc<MemoryStore>, Sqlite>, name: &str) -> Vec<String> {
    let mut conn = gateway.router().connection_named(name).await.unwrap();
    events::table
        .select(events::placed_with)
        .load(&mut conn)
        .await
        .unwrap()
}

impl World {
    /// Sends `callers` in order; checks each outcome and, at the end, both databases.
    async fn check(&self, callers: &[usize]) -> Result<(), TestCaseError> {
        let (live_before, test_before) = (
            tags(&self.gateway, "acme_live").await.len(),
            tags(&self.gateway, "acme_test").await.len(),
        );
        let (mut live, mut test) = (0, 0);
        for &index in callers {
            let (caller, key) = &self.keys[index % self.keys.len()];
            let outcome = record_event(&self.gateway, key).await;
            let expected = match (caller, &outcome) {
                (Caller::AcmeLive, Ok(())) => {
                    live += 1;
                    true
                }
                (Caller::AcmeTest, Ok(())) => {
                    test += 1;
                    true
                }
                (Caller::Revoked, Err(RouteError::Auth(AuthError::Revoked))) => true,
                (Caller::Expired, Err(RouteError::Auth(AuthError::Expired))) => true,
                (Caller::Forged, Err(RouteError::Auth(AuthError::UnknownKey))) => true,
                (
                    Caller::Mistyped,
                    Err(RouteError::Auth(AuthError::Token(TokenError::BadChecksum))),
                ) => true,
                (
                    Caller::OtherTenant,
                    Err(RouteError::NoRoute {
                        tenant: Some(t), ..
                    }),
                ) => t.as_str() == "globex",
                _ => false,
            };
            prop_assert!(expected, "{caller:?} got {outcome:?}");
        }
        let live_tags = tags(&self.gateway, "acme_live").await;
        let test_tags = tags(&self.gateway, "acme_test").await;
        prop_assert!(
            live_tags.iter().all(|t| t == "live"),
            "a non-live row in the live database: {live_tags:?}"
        );
        prop_assert!(
            test_tags.iter().all(|t| t == "test"),
            "a non-test row in the test database: {test_tags:?}"
        );
        prop_assert_eq!(live_tags.len(), live_before + live);
        prop_assert_eq!(test_tags.len(), test_before + test);
        Ok(())
    }
}

/// Random request sequences never put a row in the wrong database.
#[test]
fn random_request_sequences_stay_isolated() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let world = runtime.block_on(world());
    let mut runner = TestRunner::new(Config {
        cases: 64,
        ..Config::default()
    });
    runner
        .run(&prop::collection::vec(0usize..7, 1..40), |callers| {
            runtime.block_on(world.check(&callers))
        })
        .unwrap();
}
