//! Many instances, one truth: three `Keyroute` handles (separate pools, separate
//! caches, each running `background()`) over one store. A key revoked on one is
//! refused by the others within the documented bound, under concurrent request load,
//! on SQLite (a file), PostgreSQL and MariaDB (containers). PostgreSQL also loses its
//! `LISTEN` connections mid-run (`pg_terminate_backend`): keys revoked in the gap are
//! still refused within the bound, and the feed recovers by itself.
//!
//! A narrowing update (a key disabled, a scope taken away, a rate limit set) reaches the others within
//! the same bound: `*_narrowing_updates_reach_every_instance`.
//!
//! Each test prints the propagation times it measured (p50/p99/max, from `revoke`
//! returning to the other instance refusing the key); BENCHMARKS.md ("Revocation across
//! instances") quotes them. Run with `--nocapture` to see them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test
#![allow(clippy::print_stdout)] // the measured figures are this test's report

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use keyroute::keys::{KeyOptions, KeyUpdate};
use keyroute::limits::RateLimit;
use keyroute::store::{DatabaseUrl, Mysql, Postgres, Sqlite, StoreBackend};
use keyroute::{AuthError, Environment, KeyRequest, KeyType, Keyroute, NewUser, Scopes};

/// The documented bound (the guide, `many_instances`): a revocation committed on one
/// instance is refused by every other instance within one second.
const BOUND: Duration = Duration::from_secs(1);
/// Added to the bound before failing: the test machine may be a loaded 2-core box
/// running other test binaries. The real figures are printed, not asserted.
const MARGIN: Duration = Duration::from_secs(4);
const INSTANCES: usize = 3;
const REVOCATIONS: usize = 200;
const LOAD_TASKS: usize = 4;
/// Keys revoked back to back before their propagation is awaited: each revocation is
/// still timed from its own `revoke` returning, and a polled backend's wait (one poll
/// interval) is paid once per wave instead of once per key.
const WAVE: usize = 4;

async fn instance<B: StoreBackend>(url: &DatabaseUrl) -> Keyroute<B> {
    let mut options = KeyOptions::default();
    options.dangerous_accept_plain_http = true;
    assert!(
        options.session_cache_duration.is_some(),
        "cache on by default"
    );
    let app = Keyroute::<B>::builder()
        .connection("live", url.clone())
        .connection("test", url.clone())
        .options(options)
        .build()
        .await
        .unwrap();
    app.spawn_background().unwrap();
    app
}

async fn until(what: &str, mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(30), "never {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    started.elapsed()
}

/// Waits until `app` refuses `secret` as revoked; how long that took from `since`.
async fn refused_after<B: StoreBackend>(
    app: &Keyroute<B>,
    secret: &str,
    since: Instant,
) -> Duration {
    loop {
        match app.resolver().resolve(secret).await {
            Err(AuthError::Revoked) => {
                let took = since.elapsed();
                assert!(took < BOUND + MARGIN, "refused only after {took:?}");
                return took;
            }
            Ok(_) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
        let waited = since.elapsed();
        assert!(
            waited < BOUND + MARGIN,
            "an instance still accepted a revoked key after {waited:?}"
        );
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

struct Figures(Vec<Duration>);

impl Figures {
    fn at(&self, q: f64) -> Duration {
        let mut sorted = self.0.clone();
        sorted.sort();
        let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
        sorted[i.min(sorted.len() - 1)]
    }

    fn print(&self, backend: &str) {
        println!(
            "{backend}: {} propagations to other instances: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.0.len(),
            self.at(0.5).as_secs_f64() * 1e3,
            self.at(0.99).as_secs_f64() * 1e3,
            self.at(1.0).as_secs_f64() * 1e3,
        );
    }
}

/// Three instances over `url`; 200 keys, each cached everywhere, revoked round-robin
/// on one instance ([`WAVE`] at a time) while every instance serves concurrent
/// requests; each other instance's time to refuse it. `gap` runs once, a third of the way in, and returns
/// how many of the following revocations fall in the gap it made.
async fn propagation<B: StoreBackend>(
    backend: &str,
    url: DatabaseUrl,
    gap: Option<
        &(dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Sync),
    >,
) -> Figures {
    let mut apps = Vec::new();
    for _ in 0..INSTANCES {
        apps.push(instance::<B>(&url).await);
    }
    for app in &apps {
        until("a live feed", || app.resolver().is_caching()).await;
    }
    // 100 users × (live, test) keys.
    let mut secrets = Vec::new();
    for i in 0..REVOCATIONS / 2 {
        let user = apps[0]
            .keys()
            .register_user(NewUser::named(format!("user{i}")))
            .await
            .unwrap();
        for env in [Environment::LIVE, Environment::TEST] {
            let key = user.key(&KeyType::SECRET, &env).unwrap();
            secrets.push((key.key.id.clone(), key.plaintext.expose_secret().to_owned()));
        }
    }
    let secrets = Arc::new(secrets);

    // Concurrent load: LOAD_TASKS tasks per instance, each resolving the keys in turn
    // with a millisecond's pause (a steady request rate, not a busy loop that would
    // starve the 2-core test machine and measure the scheduler instead).
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for app in &apps {
        for task in 0..LOAD_TASKS {
            let (app, secrets, stop) = (app.clone(), Arc::clone(&secrets), Arc::clone(&stop));
            load.push(tokio::spawn(async move {
                let mut served = 0u64;
                let mut i = task;
                while !stop.load(Ordering::Relaxed) {
                    let (_, secret) = &secrets[i % secrets.len()];
                    let _ = app.resolver().resolve(secret).await;
                    served += 1;
                    i += LOAD_TASKS;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                served
            }));
        }
    }

    let mut figures = Vec::new();
    for (w, wave) in secrets.chunks(WAVE).enumerate() {
        // Every instance accepts (and caches) the wave's keys first.
        for (_, secret) in wave {
            for app in &apps {
                app.resolver().resolve(secret).await.unwrap();
            }
        }
        if w == REVOCATIONS / WAVE / 3
            && let Some(gap) = gap
        {
            gap().await;
        }
        // Each other instance starts watching for a key's refusal as soon as it is
        // revoked, while the wave's next keys are revoked.
        let mut watching = Vec::new();
        for (k, (id, secret)) in wave.iter().enumerate() {
            let revoker = (w * WAVE + k) % INSTANCES;
            apps[revoker].keys().revoke(id).await.unwrap();
            let revoked = Instant::now();
            for (_, app) in apps.iter().enumerate().filter(|(j, _)| *j != revoker) {
                let (app, secret) = (app.clone(), secret.clone());
                watching.push(tokio::spawn(async move {
                    refused_after(&app, &secret, revoked).await
                }));
            }
        }
        for watcher in watching {
            figures.push(watcher.await.unwrap());
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut served = 0;
    for task in load {
        served += task.await.unwrap();
    }
    assert!(served > 0, "the load ran");
    // After the bound, every revoked key is refused everywhere.
    for app in &apps {
        for (_, secret) in secrets.iter() {
            assert!(matches!(
                app.resolver().resolve(secret).await,
                Err(AuthError::Revoked)
            ));
        }
    }
    let figures = Figures(figures);
    figures.print(backend);
    println!("{backend}: {served} requests served by the load tasks meanwhile");
    figures
}

/// Two instances over `url`. Each of `UPDATES` keys is cached on both, then changed on
/// one: every other key disabled, the rest narrowed from `orders:*` to `orders:read`.
/// The other instance must refuse the key (`disabled_key`), or see only the narrower
/// scope, within the bound; the time from `update_key` returning to that is printed.
async fn update_propagation<B: StoreBackend>(backend: &str, url: DatabaseUrl) {
    const UPDATES: usize = 60;
    let apps = [instance::<B>(&url).await, instance::<B>(&url).await];
    for app in &apps {
        until("a live feed", || app.resolver().is_caching()).await;
    }
    let owner = apps[0]
        .keys()
        .register_user(NewUser::named("owner"))
        .await
        .unwrap()
        .user;
    let mut figures = Vec::new();
    for i in 0..UPDATES {
        let request = KeyRequest::new(KeyType::SECRET, Environment::LIVE)
            .for_user(owner.id.clone())
            .with_scopes(Scopes::parse(["orders:*"]).unwrap());
        let issued = apps[0].keys().issue_key(request).await.unwrap();
        let secret = issued.plaintext.expose_secret().to_owned();
        for app in &apps {
            let caller = app.resolver().resolve(&secret).await.unwrap();
            assert!(caller.has_scope("orders:write"));
        }
        let (changer, other) = (&apps[i % 2], &apps[(i + 1) % 2]);
        // Disabled, a scope taken away, or a rate limit set (an override of limits
        // reaches every instance like any narrowing).
        let (disable, limit) = (i % 6 < 2, i % 6 >= 4);
        let update = if disable {
            KeyUpdate::new().enabled(false)
        } else if limit {
            let one = RateLimit::new("requests", 1, Duration::from_secs(3600)).unwrap();
            KeyUpdate::new().limits(vec![one])
        } else {
            KeyUpdate::new().scopes(Scopes::parse(["orders:read"]).unwrap())
        };
        let updated = changer
            .keys()
            .update_key(&issued.key.id, &update)
            .await
            .unwrap()
            .unwrap();
        assert!(updated.narrowed);
        let since = Instant::now();
        loop {
            let narrowed = match other.resolver().resolve(&secret).await {
                Err(AuthError::Disabled) => disable,
                Ok(caller) if limit => caller.api_key().is_some_and(|k| k.limits.len() == 1),
                Ok(caller) => !disable && !caller.has_scope("orders:write"),
                Err(unexpected) => panic!("unexpected {unexpected:?}"),
            };
            let took = since.elapsed();
            if narrowed {
                figures.push(took);
                break;
            }
            assert!(
                took < BOUND + MARGIN,
                "{backend}: the other instance still had the old authority after {took:?}"
            );
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        // The instance that made the change refused at once.
        let here = changer.resolver().resolve(&secret).await;
        if disable {
            assert!(matches!(here, Err(AuthError::Disabled)), "{here:?}");
        } else if limit {
            assert_eq!(here.unwrap().api_key().unwrap().limits.len(), 1);
        } else {
            assert!(!here.unwrap().has_scope("orders:write"));
        }
    }
    let figures = Figures(figures);
    println!(
        "{backend}: {} narrowing updates reached the other instance: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        figures.0.len(),
        figures.at(0.5).as_secs_f64() * 1e3,
        figures.at(0.99).as_secs_f64() * 1e3,
        figures.at(1.0).as_secs_f64() * 1e3,
    );
}

/// SQLite file: a narrowing update reaches the other instance within the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_narrowing_updates_reach_every_instance() {
    let db = keyroute_testing::sqlite().unwrap();
    update_propagation::<Sqlite>("SQLite", db.url().clone()).await;
}

/// PostgreSQL: a narrowing update reaches the other instance within the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_narrowing_updates_reach_every_instance() {
    let db = keyroute_testing::postgres().await.unwrap();
    update_propagation::<Postgres>("PostgreSQL", db.url().clone()).await;
}

/// MariaDB: a narrowing update reaches the other instance within the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_narrowing_updates_reach_every_instance() {
    let db = keyroute_testing::mariadb().await.unwrap();
    update_propagation::<Mysql>("MariaDB", db.url().clone()).await;
}

/// Terminates the backend of every keyroute `LISTEN` connection to `conn`'s database;
/// how many. Only this database's: the server is shared by every test of the binary
/// (`pg_stat_activity` shows them all), and another test's listeners must neither be
/// cut nor counted.
async fn terminate_listeners(conn: &mut diesel_async::AsyncPgConnection) -> usize {
    let query = diesel::sql_query(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = '{}' AND datname = current_database()",
        keyroute::store::POSTGRES_FEED_APPLICATION_NAME
    ));
    diesel_async::RunQueryDsl::execute(query, conn)
        .await
        .unwrap()
}

/// SQLite file: three instances poll `keyroute_events`; revocations reach the others
/// within the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_revocations_reach_every_instance() {
    let db = keyroute_testing::sqlite().unwrap();
    propagation::<Sqlite>("SQLite", db.url().clone(), None).await;
}

/// MariaDB: three instances poll `keyroute_events`; revocations reach the others
/// within the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_revocations_reach_every_instance() {
    let db = keyroute_testing::mariadb().await.unwrap();
    propagation::<Mysql>("MariaDB", db.url().clone(), None).await;
}

/// PostgreSQL: notifications on one `LISTEN` connection per instance. A third of the
/// way in, every listener's backend is terminated and the next keys are revoked
/// during the gap: none is accepted after the bound, and the feeds recover by
/// themselves (the revocations after recovery propagate too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_revocations_reach_every_instance_even_across_a_lost_listener() {
    let db = keyroute_testing::postgres().await.unwrap();
    let admin = db.store().await.unwrap();
    let terminated = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = Arc::clone(&terminated);
    let gap = move || {
        let admin = admin.clone();
        let counter = Arc::clone(&counter);
        Box::pin(async move {
            let mut conn = admin.pool().get().await.unwrap();
            let killed = terminate_listeners(&mut conn).await;
            counter.store(killed as u64, Ordering::SeqCst);
        }) as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
    };
    let started = Instant::now();
    let figures = propagation::<Postgres>("PostgreSQL", db.url().clone(), Some(&gap)).await;
    assert_eq!(
        terminated.load(Ordering::SeqCst),
        INSTANCES as u64,
        "one LISTEN connection per instance was found and terminated"
    );
    assert_eq!(figures.0.len(), REVOCATIONS * (INSTANCES - 1));
    println!("PostgreSQL: run took {:?}", started.elapsed());
}

/// After its listener is terminated, an instance's feed comes back by itself (it
/// caches again) and an event after the recovery propagates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_feed_recovers_by_itself() {
    let db = keyroute_testing::postgres().await.unwrap();
    let admin = db.store().await.unwrap();
    let (a, b) = (
        instance::<Postgres>(db.url()).await,
        instance::<Postgres>(db.url()).await,
    );
    until("a live feed", || b.resolver().is_caching()).await;
    let mut conn = admin.pool().get().await.unwrap();
    let killed = terminate_listeners(&mut conn).await;
    assert_eq!(killed, 2, "both listeners terminated");
    until("noticed the lost listener", || !b.resolver().is_caching()).await;
    let recovered = until("recovered", || b.resolver().is_caching()).await;
    println!("PostgreSQL: feed live again {recovered:?} after the loss was noticed");

    let ada = a.keys().register_user(NewUser::named("ada")).await.unwrap();
    let key = ada.key(&KeyType::SECRET, &Environment::LIVE).unwrap();
    let secret = key.plaintext.expose_secret();
    b.resolver().resolve(secret).await.unwrap();
    a.keys().revoke(&key.key.id).await.unwrap();
    let took = refused_after(&b, secret, Instant::now()).await;
    println!("PostgreSQL: after recovery, propagated in {took:?}");
}
