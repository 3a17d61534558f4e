//! A database that goes down fails fast, the other one does not notice, and service
//! comes back by itself (issue 13, "Fast failure and recovery").
//!
//! Two PostgreSQL stores under concurrent load: "live" on this binary's shared
//! container, "test" on a container of its own on a fixed host port. The test
//! database's container is stopped (`docker stop`) and started again; the port is
//! fixed so the store's URL stays valid, as a production database's address does
//! (testcontainers would otherwise pick a new random port on restart).
//!
//! Asserted: while it is down, every failed request to "test" is a typed
//! `Unavailable`, and the circuit breaker answers (before the fix, each request waited
//! the pool's whole `connection_timeout`, then failed with bb8's timeout); "live" has
//! no failure; no row lands in the wrong database; "test" serves again after the
//! restart. Printed (not asserted): failure latencies, live p99 before and during the
//! outage, and the time to recovery.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)] // test code

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use keyroute_core::{ErrorKind, KeyOptions, KeyService, KeyServiceError, NewUser, UserStore};
use keyroute_store::{PoolSettings, PostgresStore};
use tokio::sync::Mutex;

/// One request: when it started (since the run began), how long it took, and how it ended.
#[derive(Debug, Clone)]
struct Sample {
    at: Duration,
    took: Duration,
    /// `None` on success; the error text otherwise.
    error: Option<(ErrorKind, String)>,
}

/// Writes to `service` until `stop`: a user per request, named `{prefix}-{n}`.
/// Returns the samples and the names written.
async fn load(
    service: Arc<KeyService<PostgresStore>>,
    prefix: &'static str,
    start: Instant,
    stop: Arc<AtomicBool>,
    counter: Arc<AtomicU64>,
    samples: Arc<Mutex<Vec<Sample>>>,
    written: Arc<Mutex<Vec<String>>>,
) {
    while !stop.load(Ordering::Relaxed) {
        let n = counter.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}-{n}");
        let at = start.elapsed();
        let began = Instant::now();
        let outcome = service.register_user(NewUser::named(name.clone())).await;
        let took = began.elapsed();
        let error = match outcome {
            Ok(_) => {
                written.lock().await.push(name);
                None
            }
            Err(KeyServiceError::Store(e)) => Some((e.kind(), e.to_string())),
            Err(other) => Some((ErrorKind::Other, other.to_string())),
        };
        samples.lock().await.push(Sample { at, took, error });
        // A steady rate, not a spin: about 100 requests a second per task.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn percentile(mut values: Vec<Duration>, p: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    values.sort();
    let rank = ((values.len() as f64) * p).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_database_fails_fast_recovers_and_leaves_the_other_alone() {
    let live_db = keyroute_testing::postgres().await.expect("live database");
    let test_server = keyroute_testing::dedicated::postgres_restartable()
        .await
        .expect("restartable PostgreSQL");

    let mut settings = PoolSettings::default();
    settings.max_size = 4;
    // The default: what a request used to wait for its 503 before the fix.
    settings.connection_timeout = Duration::from_secs(5);
    let live = live_db.store_with(settings.clone()).await.unwrap();
    let test = PostgresStore::connect_with(test_server.url("127.0.0.1", ""), settings)
        .await
        .unwrap();
    test.migrate().await.unwrap();
    let live = Arc::new(KeyService::new(live, KeyOptions::default()).unwrap());
    let test = Arc::new(KeyService::new(test, KeyOptions::default()).unwrap());

    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let live_samples = Arc::new(Mutex::new(Vec::new()));
    let test_samples = Arc::new(Mutex::new(Vec::new()));
    let live_written = Arc::new(Mutex::new(Vec::new()));
    let test_written = Arc::new(Mutex::new(Vec::new()));
    let (live_n, test_n) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut tasks = Vec::new();
    for _ in 0..3 {
        tasks.push(tokio::spawn(load(
            Arc::clone(&live),
            "live",
            start,
            Arc::clone(&stop),
            Arc::clone(&live_n),
            Arc::clone(&live_samples),
            Arc::clone(&live_written),
        )));
        tasks.push(tokio::spawn(load(
            Arc::clone(&test),
            "test",
            start,
            Arc::clone(&stop),
            Arc::clone(&test_n),
            Arc::clone(&test_samples),
            Arc::clone(&test_written),
        )));
    }

    // One second of warm-up (pools filling), then two of steady load before the stop.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let down_at = start.elapsed();
    test_server.stop().await.unwrap();
    let stopped_at = start.elapsed();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let restart_at = start.elapsed();
    test_server.start().await.unwrap();
    let started_at = start.elapsed();

    // Wait (bounded) for the first success on "test" after the restart.
    let deadline = Instant::now() + Duration::from_secs(60);
    let recovered_at = loop {
        let first_ok = test_samples
            .lock()
            .await
            .iter()
            .filter(|s| s.at >= started_at && s.error.is_none())
            .map(|s| s.at + s.took)
            .min();
        if let Some(at) = first_ok {
            break at;
        }
        assert!(
            Instant::now() < deadline,
            "the test database never served again after its restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }

    let live_samples = live_samples.lock().await.clone();
    let test_samples = test_samples.lock().await.clone();

    // Every failure on "test" is a typed Unavailable, and the breaker answered some.
    let failures: Vec<&Sample> = test_samples.iter().filter(|s| s.error.is_some()).collect();
    assert!(
        !failures.is_empty(),
        "stopping the database caused no failure"
    );
    for f in &failures {
        let (kind, text) = f.error.as_ref().unwrap();
        assert_eq!(*kind, ErrorKind::Unavailable, "{text}");
        assert!(!text.contains(":keyroute@"), "password in: {text}");
    }
    let fast: Vec<&&Sample> = failures
        .iter()
        .filter(|s| s.error.as_ref().unwrap().1.contains("failing fast"))
        .collect();
    assert!(
        !fast.is_empty(),
        "no failure came from the circuit breaker; e.g.: {}",
        failures[0].error.as_ref().unwrap().1
    );

    // "live" never failed.
    let live_failures: Vec<&Sample> = live_samples.iter().filter(|s| s.error.is_some()).collect();
    assert!(
        live_failures.is_empty(),
        "live failed: {:?}",
        live_failures.first()
    );

    // No row in the wrong database, every acknowledged write in its own.
    let live_written = live_written.lock().await.clone();
    let test_written = test_written.lock().await.clone();
    for name in test_written.iter().take(50) {
        assert!(
            live.store()
                .find_user_by_name(name)
                .await
                .unwrap()
                .is_none(),
            "{name} in live"
        );
        assert!(
            test.store()
                .find_user_by_name(name)
                .await
                .unwrap()
                .is_some(),
            "{name} lost"
        );
    }
    for name in live_written.iter().take(50) {
        assert!(
            test.store()
                .find_user_by_name(name)
                .await
                .unwrap()
                .is_none(),
            "{name} in test"
        );
        assert!(
            live.store()
                .find_user_by_name(name)
                .await
                .unwrap()
                .is_some(),
            "{name} lost"
        );
    }

    // Figures.
    let took = |s: &[&Sample]| s.iter().map(|s| s.took).collect::<Vec<_>>();
    let outage = |s: &&Sample| s.at >= down_at && s.at < restart_at;
    let warm = Duration::from_secs(1);
    let live_before: Vec<&Sample> = live_samples
        .iter()
        .filter(|s| s.at >= warm && s.at < down_at)
        .collect();
    let live_during: Vec<&Sample> = live_samples.iter().filter(outage).collect();
    let during_failures: Vec<&Sample> = failures.iter().copied().filter(outage).collect();
    println!(
        "fast failure: test database stopped at {down_at:.2?} (docker stop returned at {stopped_at:.2?}), \
         started at {restart_at:.2?} (returned at {started_at:.2?})"
    );
    println!(
        "  test failures during the outage: {} requests ({} answered by the breaker), latency p50 {:.2?}, p99 {:.2?}, max {:.2?}",
        during_failures.len(),
        during_failures
            .iter()
            .filter(|s| s.error.as_ref().unwrap().1.contains("failing fast"))
            .count(),
        percentile(took(&during_failures), 0.50),
        percentile(took(&during_failures), 0.99),
        percentile(took(&during_failures), 1.0),
    );
    println!(
        "  live p99: before {:.2?} ({} requests), during the outage {:.2?} ({} requests); live failures: 0",
        percentile(took(&live_before), 0.99),
        live_before.len(),
        percentile(took(&live_during), 0.99),
        live_during.len(),
    );
    println!(
        "  test served again {:.2?} after `docker start` returned ({:.2?} after it was called)",
        recovered_at.saturating_sub(started_at),
        recovered_at.saturating_sub(restart_at),
    );
    println!(
        "  rows: {} written to live, {} to test, none in the wrong database",
        live_written.len(),
        test_written.len()
    );
}
