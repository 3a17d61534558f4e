//! The HTTP benchmark, small and in a debug build: every mode answers 2xx over real
//! sockets, a mode that does not is caught, and the report prints. Correctness only:
//! speed is the benchmark's own business (`bash scripts/bench http`), never asserted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use keyroute::store::{DatabaseUrl, Sqlite};
use keyroute_bench::load::{self, LoadPlan};
use keyroute_bench::{BackendKind, BenchError, Mode, Options, service};

/// A run small enough for CI: SQLite, one round, about a second per mode.
fn small() -> Options {
    let mut options = Options::default();
    options.backends = vec![BackendKind::Sqlite];
    options.rounds = 1;
    options.warmup = Duration::from_millis(200);
    options.duration = Duration::from_secs(1);
    options.keys = 200;
    options.orders = 100;
    options.connections = 16;
    options
}

/// Every mode serves 2xx to every request over real sockets, and the report prints
/// each mode's figures, the medians, the ratios with their targets, and the defaults.
#[tokio::test(flavor = "multi_thread")]
async fn every_mode_serves_2xx_and_the_report_prints() {
    let mut out = Vec::new();
    let reports = keyroute_bench::run(&small(), &mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(reports.len(), 1, "{text}");
    for mode in Mode::ALL {
        let sample = reports[0]
            .samples
            .iter()
            .find(|s| s.mode == mode)
            .unwrap_or_else(|| panic!("no sample of {}: {text}", mode.name()));
        assert!(sample.requests > 0, "{}: no requests\n{text}", mode.name());
        assert_eq!(sample.non_2xx, 0, "{}\n{text}", mode.name());
        assert!(text.contains(&sample.line()), "{text}");
    }
    for line in [
        "sqlite: medians over 1 rounds",
        "keyroute / naive",
        "keyroute-uncached / naive",
        "keyroute-cached / open",
        "target >= 1.20 x",
        "target >= 0.95 x",
        "keyroute on its defaults: session_cache_duration",
        "load average",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(
        reports[0].ratios().iter().all(|r| r.value.is_some()),
        "{text}"
    );
}

/// Requests the server refuses are counted as non-2xx with the first one kept, so a
/// run that measured errors cannot pass for a fast one.
#[tokio::test(flavor = "multi_thread")]
async fn refused_requests_are_counted() {
    let files = tempfile::tempdir().unwrap();
    let url = |name: &str| DatabaseUrl::new(files.path().join(name).to_string_lossy().into_owned());
    let (live, test) = (url("live.db"), url("test.db"));
    let mut options = small();
    options.duration = Duration::from_millis(300);
    let served = service::start::<Sqlite>(live, test, Box::new(files), &options)
        .await
        .unwrap();
    let forged = Arc::new(vec![HeaderValue::from_static("sk_live_forged")]);
    let result = load::drive(LoadPlan::new(served.addr, Mode::Keyroute, forged, &options))
        .await
        .unwrap();
    assert!(result.non_2xx > 0);
    assert!(result.non_2xx >= result.requests);
    let first = result.first_failure.unwrap();
    assert!(first.starts_with("401"), "{first}");
    // And the genuine keys are served on the same server.
    let genuine = load::drive(LoadPlan::new(
        served.addr,
        Mode::Keyroute,
        served.keys.clone(),
        &options,
    ))
    .await
    .unwrap();
    assert_eq!(genuine.non_2xx, 0, "{:?}", genuine.first_failure);
    assert!(genuine.requests > 0);
}

/// Options that cannot make a measurement are refused, naming the flag.
#[tokio::test(flavor = "multi_thread")]
async fn options_that_measure_nothing_are_refused() {
    let mut options = small();
    options.rounds = 0;
    let error = keyroute_bench::run(&options, &mut Vec::new())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            BenchError::Options {
                option: "rounds",
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("--rounds"), "{error}");
}
