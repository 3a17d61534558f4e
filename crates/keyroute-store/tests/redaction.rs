//! No connection-string form shows its password: not in `Debug`, not in the errors of
//! a connection that fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use keyroute_store::{DatabaseUrl, MysqlStore, PoolSettings, PostgresStore, SqliteStore};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// A runner with a fixed seed: CI runs the same cases every time, so a failure is
/// reproducible and a pass means the same cases passed (`PROPTEST_CASES` widens it).
fn runner(cases: u32) -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(cases);
    TestRunner::new_with_rng(
        Config::with_cases(cases),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    )
}

fn debug(url: &str) -> String {
    format!("{:?}", DatabaseUrl::new(url))
}

/// A libpq key-value string's password is hidden, and the other pairs stay readable.
#[test]
fn key_value_passwords_are_hidden() {
    let shown = debug("host=db user=app password=hunter2 dbname=live");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(
        shown.contains("host=db user=app") && shown.contains("dbname=live"),
        "{shown}"
    );
}

/// A quoted key-value password (spaces, escaped quote and backslash) is hidden whole.
#[test]
fn quoted_key_value_passwords_are_hidden() {
    let shown = debug("host=db password='hunter 2' dbname=live");
    assert!(!shown.contains("hunter"), "{shown}");
    assert!(shown.contains("dbname=live"), "{shown}");
    let url = DatabaseUrl::new(r"host=db password = 'it\'s \\ secret' dbname=live");
    let shown = format!("{url:?}");
    assert!(
        !shown.contains("secret") && !shown.contains("it"),
        "{shown}"
    );
    assert_eq!(
        url.redact(r"authentication failed for it's \ secret"),
        "authentication failed for ***"
    );
}

/// A URL password with unencoded `@` is hidden up to the host, for either driver's
/// reading (first `@` for tokio-postgres, last `@` for mysql_async).
#[test]
fn unencoded_at_in_a_url_password_is_hidden() {
    assert_eq!(
        debug("postgres://app:p@ss@db/live"),
        "DatabaseUrl(\"postgres://app:***@db/live\")"
    );
    assert_eq!(
        debug("mysql://app:a@b@c@db:3306/live"),
        "DatabaseUrl(\"mysql://app:***@db:3306/live\")"
    );
    let url = DatabaseUrl::new("postgres://app:p@ss@db/live");
    assert_eq!(
        url.redact("cannot reach postgres://app:p@ss@db/live"),
        "cannot reach postgres://app:***@db/live"
    );
}

/// `password=` query parameters are hidden, including an unencoded `&` in the value,
/// and the other parameters stay readable.
#[test]
fn query_passwords_are_hidden() {
    let shown = debug("postgres://db/live?user=app&password=hunter2&sslmode=disable");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("sslmode=disable"), "{shown}");
    let shown = debug("mysql://db/live?password=a&b&user=app");
    assert!(!shown.contains("a&b"), "{shown}");
    assert!(shown.contains("user=app"), "{shown}");
    // Found by the property below: `&-=` looked like the start of a parameter `-`.
    let shown = debug("postgres://db/live?user=app&password=&-=&sslmode=disable");
    assert!(!shown.contains("&-="), "{shown}");
    assert!(shown.contains("sslmode=disable"), "{shown}");
}

/// Percent-encoded passwords are hidden in both spellings.
#[test]
fn percent_encoded_passwords_are_hidden_in_both_spellings() {
    let url = DatabaseUrl::new("postgres://app:p%40ss%20word@db/live");
    assert!(!format!("{url:?}").contains("p%40ss"));
    assert_eq!(url.redact("bad password p@ss word"), "bad password ***");
}

/// Printable ASCII, with every character that confuses a parser.
fn password() -> impl Strategy<Value = String> {
    "[ -~]{1,40}"
}

/// A libpq single-quoted value.
fn quoted(password: &str) -> String {
    format!("'{}'", password.replace('\\', r"\\").replace('\'', r"\'"))
}

/// Each form a user may write a password in, around `password` (raw or quoted).
fn forms(password: &str) -> Vec<String> {
    let mut forms = vec![
        format!("postgres://app:{password}@db.internal:5432/live"),
        format!("mysql://app:{password}@db.internal:3306/live"),
        format!("postgres://db.internal/live?user=app&password={password}&sslmode=disable"),
        format!("mysql://db.internal/live?password={password}"),
        format!(
            "host=db.internal user=app password={} dbname=live",
            quoted(password)
        ),
    ];
    if !password.contains([' ', '\'', '\\']) {
        forms.push(format!("host=db.internal password={password} dbname=live"));
    }
    forms
}

/// Whether `shown` reveals `password`, as written or as `Debug` escapes it. A password
/// that is also part of the text around it (`"a"` in `"app"`) proves nothing either
/// way, so it does not count.
fn reveals(shown: &str, password: &str, public: &str) -> bool {
    let escaped = format!("{password:?}");
    let escaped = &escaped[1..escaped.len() - 1];
    (shown.contains(password) && !public.contains(password))
        || (shown.contains(escaped) && !public.contains(escaped))
}

/// For any password in any form, `Debug` never shows it.
#[test]
fn debug_never_shows_a_generated_password() {
    let mut runner = runner(512);
    runner
        .run(&password(), |password| {
            for form in forms(&password) {
                let public = debug(&form.replace(&password, "")) + "***";
                let shown = debug(&form);
                prop_assert!(!reveals(&shown, &password, &public), "{form} -> {shown}");
            }
            Ok(())
        })
        .unwrap();
}

fn quick() -> PoolSettings {
    let mut settings = PoolSettings::default();
    settings.connection_timeout = Duration::from_millis(150);
    settings
}

/// The errors of failed connections, on every backend, for `password` in each form
/// the backend takes, pointed at nothing.
async fn connection_errors(password: &str) -> Vec<(String, String)> {
    let pg = [
        format!("postgres://app:{password}@127.0.0.1:1/live"),
        format!("postgres://127.0.0.1:1/live?user=app&password={password}"),
        format!(
            "host=127.0.0.1 port=1 user=app password={} dbname=live",
            quoted(password)
        ),
    ];
    let my = [
        format!("mysql://app:{password}@127.0.0.1:1/live"),
        format!("mysql://127.0.0.1:1/live?password={password}"),
    ];
    let lite = format!("sqlite:///nonexistent-dir/keys.db?password={password}");
    let (p0, p1, p2, m0, m1, s0) = tokio::join!(
        PostgresStore::connect_with(pg[0].as_str(), quick()),
        PostgresStore::connect_with(pg[1].as_str(), quick()),
        PostgresStore::connect_with(pg[2].as_str(), quick()),
        MysqlStore::connect_with(my[0].as_str(), quick()),
        MysqlStore::connect_with(my[1].as_str(), quick()),
        SqliteStore::connect_with(lite.as_str(), quick()),
    );
    let shown = |result: Result<_, keyroute_core::StoreError>| match result {
        Ok(_) => panic!("a connection to nothing succeeded"),
        Err(e) => format!("{e} {e:?}"),
    };
    vec![
        (pg[0].clone(), shown(p0.map(|_| ()))),
        (pg[1].clone(), shown(p1.map(|_| ()))),
        (pg[2].clone(), shown(p2.map(|_| ()))),
        (my[0].clone(), shown(m0.map(|_| ()))),
        (my[1].clone(), shown(m1.map(|_| ()))),
        (lite.clone(), shown(s0.map(|_| ()))),
    ]
}

/// For any password in any form, the error of a connection that fails never shows it.
#[test]
fn connection_errors_never_show_a_generated_password() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // What the messages say whatever the password: text a password may coincide with.
    let baseline: String = runtime
        .block_on(connection_errors("Sentinel0"))
        .into_iter()
        .map(|(form, shown)| format!("{form} {shown} "))
        .collect();
    let mut runner = runner(24);
    runner
        .run(&password(), |password| {
            for (form, shown) in runtime.block_on(connection_errors(&password)) {
                let public = format!("{} {baseline}", form.replace(&password, ""));
                prop_assert!(!reveals(&shown, &password, &public), "{form} -> {shown}");
            }
            Ok(())
        })
        .unwrap();
}

/// The errors of known leaky shapes hide the password, and the pieces of it that a
/// driver misread as URL syntax (mysql_async: "Unknown connection URL parameter").
#[tokio::test]
async fn connection_errors_hide_awkward_passwords() {
    for password in [
        "p@ss@word",
        "hunter 2 = 'x'",
        "s3cr3t&user=root",
        "p@ss/w?hunter2#x",
    ] {
        for (form, shown) in connection_errors(password).await {
            assert!(!shown.contains(password), "{form} -> {shown}");
            assert!(!shown.contains("hunter2"), "{form} -> {shown}");
        }
    }
}
