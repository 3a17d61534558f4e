//! Schema parity through the library: an app's migrations on every connection of a
//! router, and drift between live and test named by version.

use diesel_migrations::FileBasedMigrations;
use keyroute_router::ConnectionRouter;
use keyroute_store::{Sqlite, keyroute_migration_versions};

fn migration(dir: &std::path::Path, name: &str, up: &str) -> std::io::Result<()> {
    let dir = dir.join(name);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("up.sql"), up)?;
    std::fs::write(dir.join("down.sql"), "SELECT 1;")
}

/// migrate_each applies the app's migrations once per connection; drift names the
/// versions a connection lacks, and keyroute's own migrations never count as drift.
#[tokio::test(flavor = "multi_thread")]
async fn app_migrations_reach_every_connection_and_drift_is_named() {
    let files = tempfile::tempdir().unwrap();
    let app = files.path().join("app");
    migration(
        &app,
        "2026-01-01-000000_orders",
        "CREATE TABLE orders (id TEXT);",
    )
    .unwrap();
    // The front door tells the router keyroute's own versions; the router knows no store.
    let router = ConnectionRouter::<Sqlite>::builder()
        .keyroute_versions(keyroute_migration_versions::<Sqlite>())
        .connection(
            "live",
            files.path().join("live.db").to_string_lossy().as_ref(),
        )
        .connection(
            "test",
            files.path().join("test.db").to_string_lossy().as_ref(),
        )
        .build()
        .unwrap();

    let report = router
        .migrate_each(FileBasedMigrations::from_path(&app).unwrap())
        .await;
    assert_eq!(report.connections.len(), 2);
    for c in &report.connections {
        assert_eq!(
            c.versions.as_ref().unwrap(),
            &["20260101000000"],
            "{}",
            c.connection
        );
    }
    let again = router
        .migrate_each(FileBasedMigrations::from_path(&app).unwrap())
        .await;
    assert!(
        again
            .connections
            .iter()
            .all(|c| c.versions.as_ref().unwrap().is_empty())
    );
    assert!(router.applied_migrations().await.drift().is_empty());

    // keyroute's own tables on live only: not drift.
    let store = keyroute_store::SqliteStore::connect(
        files.path().join("live.db").to_string_lossy().as_ref(),
    )
    .await
    .unwrap();
    store.migrate().await.unwrap();
    let applied = router.applied_migrations().await;
    assert!(applied.drift().is_empty(), "{:?}", applied.drift());
    assert!(!keyroute_migration_versions::<Sqlite>().is_empty());

    // A migration on live only is drift, named.
    migration(
        &app,
        "2026-02-01-000000_refunds",
        "CREATE TABLE refunds (id TEXT);",
    )
    .unwrap();
    let live = router.pool_named("live").unwrap();
    live.run_migrations_from(FileBasedMigrations::from_path(&app).unwrap())
        .await
        .unwrap();
    let drift = router.applied_migrations().await.drift();
    assert_eq!(drift.len(), 1);
    assert_eq!(drift[0].connection, "test");
    assert_eq!(drift[0].missing, ["20260201000000"]);
    assert!(drift[0].to_string().contains("20260201000000"));
}
