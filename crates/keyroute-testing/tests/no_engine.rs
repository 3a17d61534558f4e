//! Without a Docker engine, container tests fail at once with advice; they never hang
//! and never skip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use keyroute_testing::HarnessError;

/// Asks for a database where no engine listens. Run by the test below in a child
/// process, whose `DOCKER_HOST` points at a closed port.
#[tokio::test]
#[ignore = "run by `no_engine_fails_fast_with_advice` in a child process"]
async fn child_asks_for_a_database_without_an_engine() {
    let err = keyroute_testing::postgres().await.unwrap_err();
    assert!(matches!(err, HarnessError::NoEngine { .. }), "{err:?}");
    let again = keyroute_testing::postgres_live_and_test()
        .await
        .unwrap_err();
    assert!(
        matches!(again, HarnessError::NoEngine { .. }),
        "the failure is kept: {again:?}"
    );
    println!("HARNESS SAID: {err}");
    // The whole-app fixture fails the same way, at once.
    let app = keyroute_testing::TestApp::<keyroute::store::Postgres>::builder()
        .build()
        .await
        .unwrap_err();
    assert!(
        matches!(
            app,
            keyroute_testing::TestAppError::Harness(HarnessError::NoEngine { .. })
        ),
        "{app:?}"
    );
    println!("TESTAPP SAID: {app}");
}

/// The child fails fast and its message says how to get an engine.
#[test]
fn no_engine_fails_fast_with_advice() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_asks_for_a_database_without_an_engine",
            "--nocapture",
        ])
        .env("DOCKER_HOST", "tcp://127.0.0.1:9")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A guard against hanging, not a speed claim: the child normally ends in milliseconds.
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("the harness hung without an engine");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("no Docker engine answered at tcp://127.0.0.1:9"),
        "{stdout}"
    );
    assert!(
        stdout.contains("bash scripts/test"),
        "the message says what to do: {stdout}"
    );
    assert!(
        stdout.contains("TESTAPP SAID: no Docker engine answered at tcp://127.0.0.1:9"),
        "{stdout}"
    );
}
