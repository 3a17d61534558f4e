//! What the PostgreSQL fixture costs a test, printed (run with `--nocapture`; `bash
//! scripts/test` does): the first app of a binary after the container is up (it
//! migrates the template), and each further app (copies of the template). Figures,
//! not assertions: these machines are shared and noisy.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout
)] // test code; printing its figures is its point

use std::path::Path;
use std::time::{Duration, Instant};

use keyroute::store::Postgres;
use keyroute_testing::TestApp;

const FURTHER: usize = 20;

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixture_timing() {
    let migrations = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/migrations");
    // The container first, so its start is not counted.
    let started = Instant::now();
    keyroute_testing::postgres().await.unwrap();
    let container = started.elapsed();

    // The app built (databases and keyroute), then a test's first use of it: a user,
    // a key, a routed connection (whose pool opens then).
    let build = || async {
        let started = Instant::now();
        let app = TestApp::<Postgres>::builder()
            .migrations(&migrations)
            .build()
            .await
            .unwrap();
        let built = started.elapsed();
        let ada = app.user("ada").await.unwrap();
        app.key(&ada).test().await.unwrap();
        app.connection("test").await.unwrap();
        (built, started.elapsed(), app)
    };
    let (first, first_used, _app) = build().await;
    let mut built = Vec::new();
    let mut used = Vec::new();
    for _ in 0..FURTHER {
        let (b, u, _) = build().await;
        built.push(b);
        used.push(u);
    }
    let summary = |mut v: Vec<Duration>| {
        v.sort();
        format!(
            "median {}, min {}, max {}",
            ms(v[FURTHER / 2]),
            ms(v[0]),
            ms(v[FURTHER - 1])
        )
    };
    println!(
        "PostgreSQL fixture (container up in {}):\n  \
         first app of the binary: built in {} (template migrated), {} with a user, a key \
         and a connection\n  \
         {FURTHER} further apps, back to back: built in {}; with a user, a key and a \
         connection: {}",
        ms(container),
        ms(first),
        ms(first_used),
        summary(built),
        summary(used),
    );
}
