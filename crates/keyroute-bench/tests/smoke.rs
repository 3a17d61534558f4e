//! The HTTP benchmark, small and in a debug build: every mode answers 2xx over real
//! sockets, a mode that does not is caught, the client process answers over its
//! pipes, and the report prints. Correctness only: speed is the benchmark's own
//! business (`bash scripts/bench http`), never asserted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use keyroute::store::{DatabaseUrl, Sqlite};
use keyroute_bench::load::{self, ClientArgs, LoadPlan, LoadResult};
use keyroute_bench::report::Figure;
use keyroute_bench::{BackendKind, BenchError, Mode, Options, service};

/// The benchmark binary: the client process it starts is itself, which from a test
/// is Cargo's build of it rather than the test's own executable.
fn bench_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_keyroute-bench"))
}

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
    options.client_program = Some(bench_binary());
    options
}

/// Every mode serves 2xx to every request over real sockets, and the report prints
/// each mode's figures, the medians, the ratios with their targets, and the defaults.
/// `keyroute-valkey` needs a Valkey server (a Docker engine): without one it is
/// skipped, and the report says why.
#[tokio::test(flavor = "multi_thread")]
async fn every_mode_serves_2xx_and_the_report_prints() {
    let mut out = Vec::new();
    let reports = keyroute_bench::run(&small(), &mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(reports.len(), 1, "{text}");
    let skipped = |mode: Mode| reports[0].skipped.iter().any(|(m, _)| *m == mode);
    assert!(
        reports[0].skipped.iter().all(|(m, _)| matches!(
            m,
            Mode::KeyrouteValkey | Mode::KeyrouteRls | Mode::KeyrouteSchema
        )),
        "{text}"
    );
    // Tenancy binds the tenant in PostgreSQL only: skipped on SQLite, saying so.
    for mode in [Mode::KeyrouteRls, Mode::KeyrouteSchema] {
        let reason = reports[0].skipped.iter().find(|(m, _)| *m == mode);
        assert!(
            reason.is_some_and(|(_, why)| why.starts_with("PostgreSQL only")),
            "{text}"
        );
    }
    assert!(reports[0].round_trips.is_empty(), "{text}");
    for (mode, reason) in &reports[0].skipped {
        let line = format!("{}: skipped: {reason}", mode.name());
        assert!(text.contains(&line), "missing {line:?} in\n{text}");
    }
    for mode in Mode::ALL.into_iter().filter(|m| !skipped(*m)) {
        let sample = reports[0]
            .samples
            .iter()
            .find(|s| s.mode == mode)
            .unwrap_or_else(|| panic!("no sample of {}: {text}", mode.name()));
        assert!(sample.requests > 0, "{}: no requests\n{text}", mode.name());
        assert_eq!(sample.non_2xx, 0, "{}\n{text}", mode.name());
        assert!(text.contains(&sample.line()), "{text}");
        // Primed first: every key sent once, each response counted.
        let (_, primed) = reports[0]
            .primed
            .iter()
            .find(|(m, _)| *m == mode)
            .unwrap_or_else(|| panic!("{} not primed\n{text}", mode.name()));
        assert_eq!(primed.requests, small().keys as u64, "{text}");
        assert_eq!(primed.non_2xx, 0, "{text}");
        let line = format!("  {:<18} {:>7} requests in", mode.name(), small().keys);
        assert!(text.contains(&line), "missing {line:?} in\n{text}");
        // On Linux the client reads the server's CPU time and the machine's from
        // /proc over its measured window; serving a request costs the server something.
        if cfg!(target_os = "linux") {
            let cpu = sample
                .cpu
                .unwrap_or_else(|| panic!("{}: no CPU figures\n{text}", mode.name()));
            assert!(
                cpu.server_us > 0.0 && cpu.serving_us() >= cpu.server_us,
                "{}: {cpu:?}\n{text}",
                mode.name()
            );
            assert!(text.contains(&cpu.describe()), "{text}");
        }
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
        "keyroute / naive-plain",
        "keyroute / open-plain",
        "open / open-plain",
        "target >= 1.50 x",
        "target <= 1.20 x",
        "plain pools (open-plain, naive-plain): bb8 + diesel-async",
        "placement: not pinned",
        "server threads ",
        "keyroute-limited / keyroute",
        "keyroute-valkey / keyroute",
        "target >= 0.70 x",
        "keyroute-limited: keyroute's settings",
        "keyroute-rls / keyroute        req/s      n/a   target >= 0.90 x: not measured",
        "keyroute-schema / keyroute     p99        n/a   no target",
        "keyroute-rls: skipped: PostgreSQL only",
        "p99 and cpu per request served: lower is better",
        "keyroute / open-plain          cpu ",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(
        reports[0]
            .ratios()
            .iter()
            .filter(|r| !skipped(r.mode) && !skipped(r.baseline))
            .filter(|r| r.figure != Figure::Cpu || cfg!(target_os = "linux"))
            .all(|r| r.value.is_some()),
        "{text}"
    );
    if !skipped(Mode::KeyrouteValkey) {
        let valkey = reports[0]
            .samples
            .iter()
            .find(|s| s.mode == Mode::KeyrouteValkey)
            .unwrap();
        let commands = valkey.valkey_commands.unwrap();
        assert!(
            commands.scripts > 0.0 && commands.total >= commands.scripts,
            "{text}"
        );
        assert!(text.contains("valkey per request: "), "{text}");
        assert!(text.contains("EVALSHA/EVAL sent"), "{text}");
    }
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

/// `--modes` measures only the modes named: no sample of any other, the ratio the two
/// make is computed and the others say "not measured"; no mode at all is refused.
#[tokio::test(flavor = "multi_thread")]
async fn only_the_modes_named_are_measured() {
    let mut options = small();
    options.modes = vec![Mode::OpenPlain, Mode::Open];
    let mut out = Vec::new();
    let reports = keyroute_bench::run(&options, &mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    let mut measured: Vec<Mode> = reports[0].samples.iter().map(|s| s.mode).collect();
    measured.sort();
    assert_eq!(measured, [Mode::Open, Mode::OpenPlain], "{text}");
    assert!(text.contains("1 rounds x 2 modes"), "{text}");
    let ratios = reports[0].ratios();
    let open = ratios
        .iter()
        .find(|r| r.mode == Mode::Open && r.baseline == Mode::OpenPlain)
        .unwrap();
    assert!(open.value.is_some_and(|v| v > 0.0), "{text}");
    assert!(
        ratios
            .iter()
            .filter(|r| r.mode != Mode::Open)
            .all(|r| r.value.is_none()),
        "{text}"
    );
    assert!(text.contains("not measured"), "{text}");
    // Only the modes named are primed; without priming no mode is.
    let primed = text.lines().filter(|l| l.contains(" requests in ")).count();
    assert!(text.contains("sqlite priming: "), "{text}");
    assert_eq!(primed, 2, "{text}");
    options.prime = false;
    let mut out = Vec::new();
    keyroute_bench::run(&options, &mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(!text.contains("priming"), "{text}");

    options.modes.clear();
    let error = keyroute_bench::run(&options, &mut Vec::new())
        .await
        .unwrap_err();
    assert!(error.to_string().contains("--modes"), "{error}");
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

/// The client process round trip: the binary started as `client`, the keys written
/// to its stdin, one line of JSON back with counts and HDR percentiles; the keys
/// never appear on its command line or in its answer.
#[tokio::test(flavor = "multi_thread")]
async fn the_client_process_reads_keys_on_stdin_and_answers_json() {
    let files = tempfile::tempdir().unwrap();
    let url = |name: &str| DatabaseUrl::new(files.path().join(name).to_string_lossy().into_owned());
    let (live, test) = (url("live.db"), url("test.db"));
    let mut options = small();
    options.duration = Duration::from_millis(500);
    let served = service::start::<Sqlite>(live, test, Box::new(files), &options)
        .await
        .unwrap();
    let plan = LoadPlan::new(served.addr, Mode::NaivePlain, served.keys.clone(), &options);
    let argv = ClientArgs::of(&plan).to_argv();
    let keys: Vec<String> = served
        .keys
        .iter()
        .map(|k| k.to_str().unwrap().to_owned())
        .collect();
    assert!(
        keys.iter()
            .all(|key| argv.iter().all(|arg| !arg.contains(key.as_str()))),
        "{argv:?}"
    );
    let output = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(bench_binary())
            .arg("client")
            .args(&argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        for key in &keys {
            writeln!(stdin, "{key}").unwrap();
        }
        drop(stdin);
        (child.wait_with_output().unwrap(), keys)
    });
    let (output, keys) = output.await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(keys.iter().all(|key| !stdout.contains(key.as_str())));
    for field in [
        "\"requests\"",
        "\"non_2xx\"",
        "\"first_failure\"",
        "\"p50\"",
        "\"p90\"",
        "\"p99\"",
        "\"p99.9\"",
        "\"max\"",
    ] {
        assert!(stdout.contains(field), "no {field} in {stdout}");
    }
    let result: LoadResult = serde_json::from_str(stdout.trim()).unwrap();
    assert!(result.requests > 0, "{stdout}");
    assert_eq!(result.non_2xx, 0, "{stdout}");
    // The server is this test's process, named on the client's command line: the
    // client measured its CPU time over the window.
    assert!(argv_names_this_process(&ClientArgs::of(&plan).to_argv()));
    if cfg!(target_os = "linux") {
        let cpu = result.cpu.expect("CPU figures on Linux");
        assert!(cpu.server_us > 0.0 && cpu.client_us > 0.0, "{stdout}");
    }
    let l = result.latency_us;
    assert!(
        0 < l.p50 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p99_9 && l.p99_9 <= l.max,
        "{stdout}"
    );
}

/// `--server-pid <this process>` is on the client's command line.
fn argv_names_this_process(argv: &[String]) -> bool {
    let pid = std::process::id().to_string();
    argv.windows(2)
        .any(|pair| pair[0] == "--server-pid" && pair[1] == pid)
}

/// A client process that fails (nothing listens at its address) is an error that
/// carries the child's own message, not a hang or an empty result.
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_client_process_is_reported() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut options = small();
    options.warmup = Duration::ZERO;
    options.duration = Duration::from_millis(100);
    let keys = Arc::new(vec![HeaderValue::from_static("sk_live_x")]);
    let error = load::drive(LoadPlan::new(addr, Mode::Open, keys, &options))
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(text.contains("the client process failed"), "{text}");
    assert!(text.contains(&format!("connecting to {addr}")), "{text}");
}
