//! The `keyroute` command end to end on SQLite files, as an operator runs it.

mod common;

use common::{Project, one_error_line};
use keyroute::store::UserStore;
use keyroute::store::{DbPool, PoolSettings, Sqlite, SqliteStore};
use keyroute::{User, UserId};

/// migrate, users add, keys issue/list/revoke, verify, regenerate and doctor work
/// together, and doctor names the versions when live and test drift apart.
#[test]
fn operator_session_on_sqlite_files() {
    let p = Project::sqlite();
    let app = p.app_dir();
    let app = app.to_str().unwrap();

    // The app's migrations reach live and test.
    let migrated = p.json(&["migrate", "--app", app]);
    for c in migrated["connections"].as_array().unwrap() {
        assert_eq!(c["status"], "migrated", "{migrated}");
        assert_eq!(c["applied"][0], "20260101000000");
    }
    assert_eq!(migrated["connections"].as_array().unwrap().len(), 2);
    // Again: nothing left to apply.
    let again = p.json(&["migrate", "--app", app]);
    assert_eq!(again["connections"][0]["status"], "current");

    let ada = p.json(&["users", "add", "ada", "--email", "ada@example.com"]);
    assert_eq!(ada["extra"]["user"]["user_name"], "ada");
    assert_eq!(
        ada["keys"].as_array().unwrap().len(),
        2,
        "one key per environment"
    );

    let issued = p.json(&[
        "keys",
        "issue",
        "--user",
        "ada",
        "--env",
        "test",
        "--name",
        "ci",
        "--scope",
        "orders:read",
        "--expires-in",
        "30days",
    ]);
    let key = &issued["keys"][0];
    let key_id = key["id"].as_str().unwrap().to_owned();
    let plaintext = key["plaintext"].as_str().unwrap().to_owned();
    assert!(plaintext.starts_with("sk_test_"));
    assert_eq!(key["scopes"][0], "orders:read");
    assert!(key["expires_at"].is_string());

    // Lists show hints, never plaintexts.
    let listed = p
        .keyroute(&["keys", "list", "--user", "ada"])
        .output()
        .unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(
        listed.contains(&key_id) && !listed.contains(&plaintext),
        "{listed}"
    );

    // verify reads stdin and names the connection the key routes to.
    let verified = p
        .keyroute(&["verify", "--json"])
        .write_stdin(format!("{plaintext}\n"))
        .output()
        .unwrap();
    assert!(verified.status.success());
    let verified: serde_json::Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!(verified["user"], "ada");
    assert_eq!(verified["connection"], "test");
    assert_eq!(verified["scopes"][0], "orders:read");

    let revoked = p.json(&["keys", "revoke", &key_id]);
    assert!(revoked["cancelled_at"].is_string());
    let rejected = p
        .keyroute(&["verify"])
        .write_stdin(plaintext.clone())
        .output()
        .unwrap();
    assert_eq!(rejected.status.code(), Some(1));
    assert!(one_error_line(&rejected).contains("revoked"));

    // regenerate refuses without a terminal unless --yes.
    let refused = p
        .keyroute(&["keys", "regenerate", "--user", "ada", "--env", "live"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(one_error_line(&refused).contains("--yes"));
    let old_live = ada["keys"][0]["plaintext"].as_str().unwrap().to_owned();
    let regenerated = p.json(&[
        "keys",
        "regenerate",
        "--user",
        "ada",
        "--env",
        "live",
        "--yes",
    ]);
    let new_live = regenerated["keys"][0]["plaintext"].as_str().unwrap();
    assert!(new_live.starts_with("sk_live_") && new_live != old_live);
    let routed = p.json_stdin(&["verify"], new_live);
    assert_eq!(routed["connection"], "live");
    assert!(
        p.keyroute(&["verify"])
            .write_stdin(old_live)
            .output()
            .unwrap()
            .status
            .code()
            == Some(1)
    );

    assert!(p.keyroute(&["doctor"]).output().unwrap().status.success());

    // A migration applied to live only: doctor fails and names the version.
    p.add_migration(
        "2026-02-01-000000_refunds",
        "CREATE TABLE refunds (id TEXT);",
        "DROP TABLE refunds;",
    );
    let live = p.path().join("live.db");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let pool =
            DbPool::<Sqlite>::connect(live.to_string_lossy().as_ref(), PoolSettings::default())
                .await
                .unwrap();
        let source = diesel_migrations::FileBasedMigrations::from_path(p.app_dir()).unwrap();
        assert_eq!(
            pool.run_migrations_from(source).await.unwrap(),
            ["20260201000000"]
        );
    });
    let drift = p.keyroute(&["doctor"]).output().unwrap();
    assert_eq!(drift.status.code(), Some(1));
    let line = one_error_line(&drift);
    assert!(
        line.contains("'test' differs from 'live'") && line.contains("20260201000000"),
        "{line}"
    );
    let report = p.keyroute(&["doctor", "--json"]).output().unwrap();
    let report: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&report.stdout)
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(report["drift"][0]["missing"][0], "20260201000000");
}

/// Backfill keys 10 000 imported users with progress, and a second run makes no keys.
#[test]
fn backfill_of_ten_thousand_users_is_safe_to_rerun() {
    let p = Project::sqlite();
    p.json(&["migrate"]);
    let live = p.path().join("live.db");
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = SqliteStore::connect(live.to_string_lossy().as_ref())
            .await
            .unwrap();
        let now = chrono::Utc::now();
        let users: Vec<User> = (0..10_000)
            .map(|i| User::new(UserId::random(), format!("user-{i:05}"), now))
            .collect();
        store.import_users(&users).await.unwrap();
    });
    let started = std::time::Instant::now();
    let first = p
        .keyroute(&["backfill", "--batch", "1000"])
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&first.stdout);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "{stderr}");
    assert!(stdout.contains("10000 users got 20000 keys"), "{stdout}");
    assert!(
        stderr.contains("backfill: 1000/10000 users"),
        "progress per batch: {stderr}"
    );
    assert!(stderr.contains("backfill: 10000/10000 users"), "{stderr}");
    eprintln!("backfill of 10 000 users: {elapsed:?}");

    let second = p.json(&["backfill"]);
    assert_eq!(second["users"], 0);
    assert_eq!(second["keys"], 0);
}

/// `keys regenerate` turned a user's named, scoped keys into unnamed keys with no
/// scopes; each replacement now keeps its type, name and scopes.
#[test]
fn regenerate_keeps_names_and_scopes() {
    let p = Project::sqlite();
    p.json(&["migrate"]);
    p.json(&["users", "add", "ada"]);
    p.json(&[
        "keys",
        "issue",
        "--user",
        "ada",
        "--env",
        "test",
        "--name",
        "ci deploy",
        "--scope",
        "orders:read",
        "--scope",
        "orders:write",
    ]);
    let regenerated = p.json(&[
        "keys",
        "regenerate",
        "--user",
        "ada",
        "--env",
        "test",
        "--yes",
    ]);
    let keys = regenerated["keys"].as_array().unwrap();
    assert_eq!(
        keys.len(),
        2,
        "the registration key and the named one: {keys:?}"
    );
    let named = keys
        .iter()
        .find(|k| k["name"] == "ci deploy")
        .unwrap_or_else(|| panic!("no replacement named 'ci deploy': {keys:?}"));
    assert_eq!(
        named["scopes"],
        serde_json::json!(["orders:read", "orders:write"])
    );
}
