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
