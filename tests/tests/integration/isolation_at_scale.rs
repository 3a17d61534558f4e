//! Isolation at scale: generated request sequences, sent concurrently through the front
//! door, across two tenants (a `{tenant}_{env}` template over four databases) and every
//! kind of credential a service meets: live and test keys, JWTs exchanged for them, a
//! rolled key inside its grace period, and revoked, expired, rolled-out, forged,
//! mistyped, wrongly typed, tampered-JWT and unrouted ones. Over 100 000 requests on
//! SQLite files (and a smaller run on PostgreSQL): zero rows in a wrong database, zero
//! accepted bad credentials, every rejection its typed error. The counts are printed.
//!
//! The sequences come from proptest with a fixed seed, so a CI run cannot meet a new
//! case by chance; a failure shrinks to the shortest sequence that shows it.
//!
//! Just past 500 lines on purpose: the credential kinds, the generator and the
//! checks of each outcome are one property, read together.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test
#![allow(clippy::print_stdout)] // the counts are part of the result: CI prints them

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::common::bearer;
use diesel::prelude::*;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use keyroute::auth::JwtError;
use keyroute::keys::{Tenant, TokenError};
use keyroute::routing::RoutedConnection;
use keyroute::store::{Postgres, Sqlite, StoreBackend};
use keyroute::test_util::ManualClock;
use keyroute::{
    AuthError, Config, Environment, IncomingRequest, KeyRequest, KeyType, Keyroute, NewUser,
    PlaintextKey, RouteError,
};
use proptest::prelude::*;
use proptest::test_runner::{
    Config as RunnerConfig, RngAlgorithm, TestCaseError, TestRng, TestRunner,
};

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

/// Reads a counter (`load` would name diesel's `RunQueryDsl::load` here).
trait Count {
    fn load_count(&self) -> u64;
}

impl Count for AtomicU64 {
    fn load_count(&self) -> u64 {
        AtomicU64::load(self, Ordering::Relaxed)
    }
}

/// The team's table on each backend: one insert and one read, written once.
#[async_trait::async_trait]
trait Events: StoreBackend + Sized {
    async fn record(conn: &mut RoutedConnection<Self>, tag: String);
    async fn tags(conn: &mut RoutedConnection<Self>) -> Vec<String>;
}

macro_rules! events_on {
    ($($backend:ty),*) => {$(
        #[async_trait::async_trait]
        impl Events for $backend {
            async fn record(conn: &mut RoutedConnection<Self>, tag: String) {
                diesel::insert_into(events::table)
                    .values(events::placed_with.eq(tag))
                    .execute(&mut **conn)
                    .await
                    .unwrap();
            }
            async fn tags(conn: &mut RoutedConnection<Self>) -> Vec<String> {
                events::table
                    .select(events::placed_with)
                    .load(&mut **conn)
                    .await
                    .unwrap()
            }
        }
    )*};
}
events_on!(Sqlite, Postgres);

/// The databases the template names.
const DATABASES: [&str; 4] = ["acme_live", "acme_test", "globex_live", "globex_test"];

/// Who sends a request, and what must happen to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Caller {
    AcmeLive,
    AcmeTest,
    GlobexLive,
    GlobexTest,
    AcmeLiveJwt,
    GlobexTestJwt,
    RolledInGrace,
    Revoked,
    Expired,
    RolledOut,
    Forged,
    Mistyped,
    WrongType,
    RevokedJwt,
    TamperedJwt,
    Unrouted,
}

impl Caller {
    /// The database an accepted request must land in; `None` for one that must be refused.
    fn database(self) -> Option<&'static str> {
        match self {
            Self::AcmeLive | Self::AcmeLiveJwt => Some("acme_live"),
            Self::AcmeTest | Self::RolledInGrace => Some("acme_test"),
            Self::GlobexLive => Some("globex_live"),
            Self::GlobexTest | Self::GlobexTestJwt => Some("globex_test"),
            _ => None,
        }
    }

    /// Whether `outcome` is exactly what this caller deserves.
    fn deserves(self, outcome: &Result<(), RouteError>) -> bool {
        use AuthError as A;
        match (self.database(), outcome) {
            (Some(_), Ok(())) => true,
            (Some(_), Err(_)) | (None, Ok(())) => false,
            (None, Err(RouteError::Auth(error))) => matches!(
                (self, error),
                (Self::Revoked | Self::RolledOut, A::Revoked)
                    | (Self::Expired, A::Expired)
                    | (Self::Forged, A::UnknownKey)
                    | (Self::Mistyped, A::Token(TokenError::BadChecksum))
                    | (Self::WrongType, A::KeyTypeNotAllowed(_))
                    | (Self::RevokedJwt, A::Jwt(JwtError::Revoked))
                    | (Self::TamperedJwt, A::Jwt(JwtError::BadSignature))
            ),
            (None, Err(RouteError::NoRoute { tenant, .. })) => {
                self == Self::Unrouted && tenant.as_ref().map(Tenant::as_str) == Some("initech")
            }
            (None, Err(_)) => false,
        }
    }
}

/// A front door over four tenant databases, and one credential per caller.
struct World<B: Events> {
    app: Keyroute<B>,
    credentials: Vec<(Caller, PlaintextKey)>,
    /// Accepted requests per database, counted as they are answered.
    expected: BTreeMap<&'static str, AtomicU64>,
    /// Requests per caller.
    sent: BTreeMap<Caller, AtomicU64>,
}

/// The configuration: the template, keys cached (so cache and revocation meet), JWTs
/// on, secret and publishable keys issued but only secret ones accepted.
fn config(store: &str, urls: &[(&str, String)]) -> Config {
    let mut toml = String::from(
        "[apikey]\nkey_types = [\"secret\", \"publishable\"]\n\
         dangerous_accept_plain_http = true\nsession_cache_duration = \"1h\"\n\
         [resolver]\naccept_key_types = [\"secret\"]\n\
         [routing]\ntemplate = \"{tenant}_{env}\"\n\
         [jwt]\nenabled = true\nsecret = \"an-hmac-secret-of-at-least-32-bytes!\"\n\
         deny_cache_ttl = \"1h\"\n\
         [connections]\n",
    );
    for (name, url) in urls {
        toml.push_str(&format!("{name} = {url:?}\n"));
    }
    toml.push_str(&format!("[store]\nurl = {store:?}\n"));
    Config::from_toml_str(&toml).unwrap()
}

fn secret_of(issued: &keyroute::keys::Registration, environment: &Environment) -> PlaintextKey {
    issued
        .key(&KeyType::SECRET, environment)
        .unwrap()
        .plaintext
        .clone()
}

async fn world<B: Events>(config: Config) -> World<B> {
    let clock = ManualClock::new(chrono::Utc::now());
    let app = Keyroute::<B>::builder()
        .config(config)
        .clock(Arc::new(clock.clone()))
        .build()
        .await
        .unwrap();
    // The change feed runs here, so the resolver's cache is on as in production.
    app.spawn_background().unwrap();
    for name in DATABASES {
        let mut conn = app.router().connection_named(name).await.unwrap();
        conn.batch_execute(
            "CREATE TABLE events (id SERIAL PRIMARY KEY, placed_with TEXT NOT NULL)"
                .replace(
                    "SERIAL",
                    if B::NAME == "SQLite" {
                        "INTEGER"
                    } else {
                        "SERIAL"
                    },
                )
                .as_str(),
        )
        .await
        .unwrap();
    }
    let keys = app.keys();
    let register =
        |name: &str, tenant: &str| NewUser::named(name).with_tenant(Tenant::new(tenant).unwrap());
    let acme = keys
        .register_user(register("acme-admin", "acme"))
        .await
        .unwrap();
    let globex = keys
        .register_user(register("globex-admin", "globex"))
        .await
        .unwrap();
    let initech = keys
        .register_user(register("initech-admin", "initech"))
        .await
        .unwrap();
    let acme_user = acme.user.id.clone();
    let issue = |environment: Environment, key_type: KeyType| {
        KeyRequest::new(key_type, environment).for_user(acme_user.clone())
    };
    let revoked = keys
        .issue_key(issue(Environment::LIVE, KeyType::SECRET))
        .await
        .unwrap();
    let expired = keys
        .issue_key(issue(Environment::TEST, KeyType::SECRET).expires_in(Duration::from_secs(60)))
        .await
        .unwrap();
    let rolled_in_grace = keys
        .issue_key(issue(Environment::TEST, KeyType::SECRET))
        .await
        .unwrap();
    let rolled_out = keys
        .issue_key(issue(Environment::LIVE, KeyType::SECRET))
        .await
        .unwrap();
    let revoked_for_jwt = keys
        .issue_key(issue(Environment::LIVE, KeyType::SECRET))
        .await
        .unwrap();

    // JWTs are exchanged for keys that work, before any revocation.
    let jwt = app.jwt().unwrap();
    let exchange = |key: PlaintextKey| {
        let app = app.clone();
        async move {
            let principal = app
                .authenticate(&IncomingRequest::new(&bearer(key.expose_secret())))
                .await
                .unwrap();
            PlaintextKey::new(jwt.exchange(&principal).unwrap().token.expose_secret())
        }
    };
    let acme_live_jwt = exchange(secret_of(&acme, &Environment::LIVE)).await;
    let globex_test_jwt = exchange(secret_of(&globex, &Environment::TEST)).await;
    let revoked_jwt = exchange(revoked_for_jwt.plaintext.clone()).await;
    let tampered_jwt = {
        let token = acme_live_jwt.expose_secret();
        let (body, signature) = token.rsplit_once('.').unwrap();
        let flipped = if signature.starts_with('A') { 'B' } else { 'A' };
        PlaintextKey::new(format!("{body}.{flipped}{}", &signature[1..]))
    };

    // Each key is cached by a first request, then revoked, rolled or left to expire,
    // so the cache must not serve what the store has ended.
    for key in [&revoked, &rolled_in_grace, &rolled_out, &revoked_for_jwt] {
        app.authenticate(&IncomingRequest::new(&bearer(
            key.plaintext.expose_secret(),
        )))
        .await
        .unwrap();
    }
    keys.revoke(&revoked.key.id).await.unwrap();
    keys.revoke(&revoked_for_jwt.key.id).await.unwrap();
    keys.roll(&rolled_in_grace.key.id, Some(Duration::from_secs(86_400)))
        .await
        .unwrap()
        .unwrap();
    keys.roll(&rolled_out.key.id, None).await.unwrap().unwrap();
    clock.advance(chrono::TimeDelta::minutes(5)); // past the expiring key's minute

    let forged = keys
        .format()
        .generate(&KeyType::SECRET, &Environment::LIVE)
        .unwrap();
    let mut mistyped = secret_of(&acme, &Environment::LIVE)
        .expose_secret()
        .to_owned();
    let last = mistyped.pop().unwrap();
    mistyped.push(if last == 'x' { 'y' } else { 'x' });
    let wrong_type = acme
        .key(&KeyType::PUBLISHABLE, &Environment::LIVE)
        .unwrap()
        .plaintext
        .clone();

    let credentials = vec![
        (Caller::AcmeLive, secret_of(&acme, &Environment::LIVE)),
        (Caller::AcmeTest, secret_of(&acme, &Environment::TEST)),
        (Caller::GlobexLive, secret_of(&globex, &Environment::LIVE)),
        (Caller::GlobexTest, secret_of(&globex, &Environment::TEST)),
        (Caller::AcmeLiveJwt, acme_live_jwt),
        (Caller::GlobexTestJwt, globex_test_jwt),
        (Caller::RolledInGrace, rolled_in_grace.plaintext),
        (Caller::Revoked, revoked.plaintext),
        (Caller::Expired, expired.plaintext),
        (Caller::RolledOut, rolled_out.plaintext),
        (Caller::Forged, forged),
        (Caller::Mistyped, PlaintextKey::new(mistyped)),
        (Caller::WrongType, wrong_type),
        (Caller::RevokedJwt, revoked_jwt),
        (Caller::TamperedJwt, tampered_jwt),
        (Caller::Unrouted, secret_of(&initech, &Environment::LIVE)),
    ];
    World {
        app,
        expected: DATABASES.iter().map(|&d| (d, AtomicU64::new(0))).collect(),
        sent: credentials
            .iter()
            .map(|&(caller, _)| (caller, AtomicU64::new(0)))
            .collect(),
        credentials,
    }
}

/// The handler: record the caller's environment in whichever database they reach.
async fn record_event<B: Events>(app: &Keyroute<B>, key: &PlaintextKey) -> Result<(), RouteError> {
    let headers = bearer(key.expose_secret());
    let (principal, mut conn) = app.connect(&IncomingRequest::new(&headers)).await?;
    let tag = format!(
        "{}_{}",
        principal.tenant().map_or("-", Tenant::as_str),
        principal.environment().as_str()
    );
    B::record(&mut conn, tag).await;
    Ok(())
}

impl<B: Events> World<B> {
    /// Sends `callers` over `lanes` concurrent tasks; checks every outcome.
    async fn send(
        self: &Arc<Self>,
        callers: Vec<usize>,
        lanes: usize,
    ) -> Result<(), TestCaseError> {
        let callers = Arc::new(callers);
        let mut tasks = tokio::task::JoinSet::new();
        for lane in 0..lanes {
            let (world, callers) = (Arc::clone(self), Arc::clone(&callers));
            tasks.spawn(async move {
                for &index in callers.iter().skip(lane).step_by(lanes) {
                    let (caller, key) = &world.credentials[index % world.credentials.len()];
                    world.sent[caller].fetch_add(1, Ordering::Relaxed);
                    let outcome = record_event(&world.app, key).await;
                    if !caller.deserves(&outcome) {
                        return Err(format!("{caller:?} got {outcome:?}"));
                    }
                    if let Some(database) = caller.database() {
                        world.expected[database].fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(())
            });
        }
        while let Some(result) = tasks.join_next().await {
            result.unwrap().map_err(TestCaseError::fail)?;
        }
        Ok(())
    }

    /// Every database holds only its own rows, as many as were accepted for it.
    async fn audit(&self) -> u64 {
        let mut rows = 0;
        for name in DATABASES {
            let mut conn = self.app.router().connection_named(name).await.unwrap();
            let tags = B::tags(&mut conn).await;
            let strays: Vec<&String> = tags.iter().filter(|t| t.as_str() != name).collect();
            assert!(
                strays.is_empty(),
                "{} rows in {name} that belong elsewhere: {:?}",
                strays.len(),
                &strays[..strays.len().min(5)]
            );
            assert_eq!(
                tags.len() as u64,
                self.expected[name].load_count(),
                "rows in {name}"
            );
            rows += tags.len() as u64;
        }
        rows
    }

    fn report(&self, backend: &str, elapsed: Duration, rows: u64) {
        let sent: u64 = self.sent.values().map(|n| n.load_count()).sum();
        let per_caller: Vec<String> = self
            .sent
            .iter()
            .map(|(caller, n)| format!("{caller:?} {}", n.load_count()))
            .collect();
        println!(
            "isolation on {backend}: {sent} requests in {:.1} s, {rows} rows written, \
             0 in a wrong database, {} refused with their typed error, 0 bad credentials accepted\n  per caller: {}",
            elapsed.as_secs_f64(),
            sent - rows,
            per_caller.join(", ")
        );
    }
}

/// Runs `cases` generated sequences of `length` requests over `lanes` tasks each.
fn run<B: Events>(
    world: World<B>,
    runtime: &tokio::runtime::Runtime,
    cases: u32,
    length: usize,
    lanes: usize,
) {
    let world = Arc::new(world);
    let callers = world.credentials.len();
    let mut runner = TestRunner::new_with_rng(
        RunnerConfig {
            cases,
            failure_persistence: None,
            ..RunnerConfig::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let started = Instant::now();
    runner
        .run(&prop::collection::vec(0..callers, length), |sequence| {
            runtime.block_on(world.send(sequence, lanes))
        })
        .unwrap();
    let elapsed = started.elapsed();
    let rows = runtime.block_on(world.audit());
    world.report(B::NAME, elapsed, rows);
    assert!(
        world.sent.values().all(|n| n.load_count() > 0),
        "every caller was tried"
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// 100 sequences of 1 000 requests, 16 at a time, on SQLite files.
#[test]
fn a_hundred_thousand_requests_stay_isolated_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let urls: Vec<(&str, String)> = DATABASES
        .iter()
        .map(|&name| {
            (
                name,
                dir.path().join(format!("{name}.db")).display().to_string(),
            )
        })
        .collect();
    let store = dir.path().join("keys.db").display().to_string();
    let runtime = runtime();
    let world = runtime.block_on(world::<Sqlite>(config(&store, &urls)));
    run(world, &runtime, 100, 1_000, 16);
}

/// 10 sequences of 500 requests on PostgreSQL (a container; a database per tenant and
/// environment, and one for the keys).
#[test]
fn requests_stay_isolated_on_postgres() {
    let runtime = runtime();
    let databases: Vec<_> = runtime.block_on(async {
        let mut databases = Vec::new();
        for _ in 0..=DATABASES.len() {
            databases.push(keyroute_testing::postgres().await.unwrap());
        }
        databases
    });
    let urls: Vec<(&str, String)> = DATABASES
        .iter()
        .zip(&databases)
        .map(|(&name, db)| (name, db.url().expose_secret().to_owned()))
        .collect();
    let store = databases[DATABASES.len()].url().expose_secret().to_owned();
    let world = runtime.block_on(world::<Postgres>(config(&store, &urls)));
    run(world, &runtime, 10, 500, 16);
}
