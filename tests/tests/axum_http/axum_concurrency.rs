//! 2 000 requests, 64 at a time, over pools of 8, live and test keys mixed: no
//! errors, and not one row in the wrong database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use crate::axum_support::{items_in, start};
use http::{Method, StatusCode};
use tokio::sync::Semaphore;

const REQUESTS: usize = 2_000;
const CONCURRENCY: usize = 64;

/// Every request succeeds and every order lands in its key's database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_keys_under_load_never_cross_databases() {
    let s = start().await;
    let keys = Arc::new([
        s.keys.live.expose_secret().to_owned(),
        s.keys.test.expose_secret().to_owned(),
    ]);
    let gate = Arc::new(Semaphore::new(CONCURRENCY));
    let started = std::time::Instant::now();
    let mut tasks = Vec::with_capacity(REQUESTS);
    for i in 0..REQUESTS {
        let (client, keys, gate) = (s.client.clone(), Arc::clone(&keys), Arc::clone(&gate));
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.unwrap();
            let (env, key) = if i % 2 == 0 {
                ("live", &keys[0])
            } else {
                ("test", &keys[1])
            };
            let auth = format!("Bearer {key}");
            let reply = client
                .send(
                    Method::POST,
                    "/orders",
                    &[("authorization", auth.as_bytes())],
                    &format!("{env}-{i}"),
                )
                .await;
            (reply.status, reply.body)
        }));
    }
    let mut errors = Vec::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        if status != StatusCode::OK {
            errors.push(format!("{status} {body}"));
        }
    }
    let elapsed = started.elapsed();
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        errors.first()
    );
    let live = items_in(&s.keyroute, "live").await;
    let test = items_in(&s.keyroute, "test").await;
    assert_eq!((live.len(), test.len()), (REQUESTS / 2, REQUESTS / 2));
    assert!(
        live.iter().all(|i| i.starts_with("live-")),
        "a test order in live.db"
    );
    assert!(
        test.iter().all(|i| i.starts_with("test-")),
        "a live order in test.db"
    );
    println!("{REQUESTS} requests at {CONCURRENCY} concurrent in {elapsed:?}");
}
