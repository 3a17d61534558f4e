//! What `#[keyroute_testing::test]` expands to calls: build the app on a runtime of
//! its own, run the test's body with it.

use std::future::Future;

use crate::{TestApp, TestAppBuilder, TestBackend};

/// Runs `test` with the app `builder` builds, on a fresh multi-threaded Tokio runtime
/// (two workers), as `#[tokio::test(flavor = "multi_thread")]` would. A fixture that
/// cannot be built fails the test with its error, as a failed `assert!` does.
#[doc(hidden)]
#[allow(clippy::panic)] // a test harness reports failure by panicking, like assert!
pub fn run<B, F, Fut, T>(builder: TestAppBuilder<B>, test: F) -> T
where
    B: TestBackend,
    F: FnOnce(TestApp<B>) -> Fut,
    Fut: Future<Output = T>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("keyroute_testing::test: cannot start a Tokio runtime: {e}"));
    runtime.block_on(async move {
        let app = builder
            .build()
            .await
            .unwrap_or_else(|e| panic!("keyroute_testing::test: the test's app: {e}"));
        test(app).await
    })
}
