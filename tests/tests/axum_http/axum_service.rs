//! The example service over real HTTP: orders land in the database their key's
//! environment selects, checked by querying both; the real `curl` binary with
//! `-u key:`; and every `curl` line of the README's service section, run as written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use crate::axum_support::{items_in, start};
use http::{Method, StatusCode};

/// Live-key orders only in the live database, test-key orders only in the test
/// database, whichever way the key is sent (Bearer, Basic, X-Api-Key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_land_in_the_database_of_the_keys_environment() {
    let s = start().await;
    let live = s.keys.live.expose_secret();
    let test = s.keys.test.expose_secret();
    let basic = |key: &str| {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{key}:"))
        )
    };
    let sends: [(&str, String, &str); 4] = [
        ("authorization", format!("Bearer {live}"), "live-bearer"),
        ("authorization", basic(test), "test-basic"),
        ("x-api-key", live.to_owned(), "live-header"),
        ("x-api-key", test.to_owned(), "test-header"),
    ];
    for (header, value, item) in &sends {
        let reply = s
            .client
            .send(Method::POST, "/orders", &[(header, value.as_bytes())], item)
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let env = &item[..4];
        assert!(
            reply.body.contains(&format!("the {env} database")),
            "{}",
            reply.body
        );
    }
    let mut live_items = items_in(&s.keyroute, "live").await;
    let mut test_items = items_in(&s.keyroute, "test").await;
    live_items.sort();
    test_items.sort();
    assert_eq!(live_items, ["live-bearer", "live-header"]);
    assert_eq!(test_items, ["test-basic", "test-header"]);
    let listed = s.client.get("/orders", test).await;
    assert!(
        listed.body.starts_with("2 orders in the test database"),
        "{}",
        listed.body
    );
}

/// The real `curl` binary, sending the key as `-u key:`, places an order in the
/// live database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_with_the_key_as_user_name() {
    let s = start().await;
    let live = s.keys.live.expose_secret();
    let output = tokio::process::Command::new("curl")
        .args(["-sS", "-u", &format!("{live}:"), "-d", "from curl"])
        .arg(format!("http://{}/orders", s.addr))
        .output()
        .await
        .unwrap_or_else(|e| panic!("the `curl` binary is needed for this test ({e}); install it: apt-get install -y curl"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("stored in the live database"), "{stdout}");
    assert_eq!(items_in(&s.keyroute, "live").await, ["from curl"]);
    assert!(items_in(&s.keyroute, "test").await.is_empty());
}

/// Every `curl` line in the README's service section works as written (with the
/// service's printed keys exported and its port in place of 8080): none fails, and
/// the orders they place land where the README says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_curl_lines_work_as_written() {
    let readme = include_str!("../../../README.md");
    let section = readme
        .split("## An HTTP service")
        .nth(1)
        .expect("the README has a section '## An HTTP service'")
        .split("\n## ")
        .next()
        .unwrap()
        // Its walk-throughs that follow run in tests of their own: usage limits in
        // axum_limits.rs (its last line answers 429 on purpose), leak response in
        // axum_leaks.rs (on a service started with the key file it makes).
        .split("\n### Usage limits")
        .next()
        .unwrap()
        .split("\n### Leak response")
        .next()
        .unwrap();
    let lines: Vec<&str> = section
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("curl "))
        .collect();
    assert!(
        lines.len() >= 8,
        "the README shows the curl lines: {lines:?}"
    );
    let s = start().await;
    for line in &lines {
        let command = line
            .split(" # ")
            .next()
            .unwrap()
            .replace("localhost:8080", &s.addr.to_string());
        let output = tokio::process::Command::new("bash")
            .args(["-c", &format!("set -e; {command} --fail-with-body -sS")])
            .env("LIVE_KEY", s.keys.live.expose_secret())
            .env("TEST_KEY", s.keys.test.expose_secret())
            .env("PK_KEY", s.keys.publishable.expose_secret())
            .env("ADMIN_KEY", s.keys.admin.expose_secret())
            .env("LIVE_KEY_ID", s.keys.live_id.as_str())
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "README line failed: {line}\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_eq!(items_in(&s.keyroute, "live").await, ["espresso machine"]);
    assert_eq!(items_in(&s.keyroute, "test").await, ["grinder"]);
}
