//! `keyroute doctor` behind a real PgBouncer in transaction mode: with the store's
//! change feed through the pooler it reports that `LISTEN` receives nothing and names
//! `[store] direct_url`; with the direct URL it reports a feed that delivers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod common;

use common::{Project, one_error_line};
use keyroute::store::{PoolSettings, Pooler, PostgresStore};
use keyroute_testing::dedicated::postgres_restartable;
use keyroute_testing::{PgBouncerOptions, pgbouncer};

#[tokio::test(flavor = "multi_thread")]
async fn doctor_finds_a_feed_through_the_pooler() {
    let postgres = postgres_restartable().await.unwrap();
    let bouncer = pgbouncer(&postgres, PgBouncerOptions::default())
        .await
        .unwrap();
    let (pooled, direct) = bouncer.create_database("doctor").await.unwrap();
    let mut settings = PoolSettings::default();
    settings.pooler = Pooler::Transaction;
    PostgresStore::connect_with(pooled.clone(), settings)
        .await
        .unwrap()
        .with_direct_url(direct.clone())
        .migrate()
        .await
        .unwrap();
    let toml = |store: &str| {
        format!(
            "{store}[connections]\nlive = \"{0}\"\ntest = \"{0}\"\n[pools]\npooler = \"transaction\"\n",
            pooled.expose_secret()
        )
    };

    let through = Project::with_toml(&toml(""));
    let found = through.keyroute(&["doctor"]).output().unwrap();
    assert_eq!(found.status.code(), Some(1));
    let line = one_error_line(&found);
    assert!(
        line.contains("LISTEN") && line.contains("[store] direct_url"),
        "{line}"
    );

    let direct_store = format!("[store]\ndirect_url = \"{}\"\n", direct.expose_secret());
    let fixed = Project::with_toml(&toml(&direct_store));
    let ok = fixed.keyroute(&["doctor"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(stdout.contains("change feed: ok"), "{stdout}");
}

/// `keyroute migrate --app` behind the pooler: without a direct URL for a connection
/// it refuses that connection, naming `[direct]` (diesel's harness needs a session);
/// with `[direct]` it migrates each connection through its direct URL, and doctor
/// reads the schemas back in step.
#[tokio::test(flavor = "multi_thread")]
async fn app_migrations_go_around_the_pooler() {
    let postgres = postgres_restartable().await.unwrap();
    let bouncer = pgbouncer(&postgres, PgBouncerOptions::default())
        .await
        .unwrap();
    let (live, live_direct) = bouncer.create_database("migrate_live").await.unwrap();
    let (test, test_direct) = bouncer.create_database("migrate_test").await.unwrap();
    let toml = |direct: &str| {
        format!(
            "[store]\ndirect_url = \"{}\"\n[connections]\nlive = \"{}\"\ntest = \"{}\"\n\
             [pools]\npooler = \"transaction\"\n{direct}",
            live_direct.expose_secret(),
            live.expose_secret(),
            test.expose_secret(),
        )
    };
    let migration = |p: &Project| {
        p.add_migration(
            "2026-01-01-000000_orders",
            "CREATE TABLE orders (id TEXT PRIMARY KEY);",
            "DROP TABLE orders;",
        );
        p.app_dir().to_str().unwrap().to_owned()
    };

    let without = Project::with_toml(&toml(""));
    let app = migration(&without);
    let refused = without
        .keyroute(&["migrate", "--app", &app])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(text.contains("[direct] live"), "{text}");

    let with = Project::with_toml(&toml(&format!(
        "[direct]\nlive = \"{}\"\ntest = \"{}\"\n",
        live_direct.expose_secret(),
        test_direct.expose_secret()
    )));
    let app = migration(&with);
    let migrated = with.json(&["migrate", "--app", &app]);
    for c in migrated["connections"].as_array().unwrap() {
        assert_eq!(c["status"], "migrated", "{migrated}");
    }
    let doctor = with.keyroute(&["doctor"]).output().unwrap();
    assert!(
        doctor.status.success(),
        "{}{}",
        String::from_utf8_lossy(&doctor.stdout),
        String::from_utf8_lossy(&doctor.stderr)
    );
}
