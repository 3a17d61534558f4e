//! The `keyroute` command once against PostgreSQL live and test databases in containers.

mod common;

use common::{Project, one_error_line};
use diesel_migrations::FileBasedMigrations;
use keyroute::store::PostgresStore;
use keyroute::store::UserStore;
use keyroute::{User, UserId};

/// The operator flow on PostgreSQL: app migrations on live and test, keys issued,
/// verified (routed to test), revoked, regenerated, backfilled; doctor catches drift
/// after a migration reaches live only, and never prints the password.
#[tokio::test(flavor = "multi_thread")]
async fn operator_session_on_postgres() {
    let dbs = keyroute_testing::postgres_live_and_test().await.unwrap();
    let toml = format!(
        "[connections]\nlive = \"{}\"\ntest = \"{}\"\n",
        dbs.live.url().expose_secret(),
        dbs.test.url().expose_secret()
    );
    let p = Project::with_toml(&toml);
    p.add_migration(
        "2026-01-01-000000_orders",
        "CREATE TABLE orders (id TEXT PRIMARY KEY);",
        "DROP TABLE orders;",
    );
    let app = p.app_dir();
    let app = app.to_str().unwrap();

    let migrated = p.json(&["migrate", "--app", app]);
    for c in migrated["connections"].as_array().unwrap() {
        assert_eq!(c["status"], "migrated", "{migrated}");
    }
    p.json(&["users", "add", "ada"]);
    let issued = p.json(&[
        "keys",
        "issue",
        "--user",
        "ada",
        "--env",
        "test",
        "--scope",
        "orders:write",
    ]);
    let key_id = issued["keys"][0]["id"].as_str().unwrap().to_owned();
    let plaintext = issued["keys"][0]["plaintext"].as_str().unwrap().to_owned();
    let verified = p.json_stdin(&["verify"], &plaintext);
    assert_eq!(verified["connection"], "test");
    p.json(&["keys", "revoke", &key_id]);
    let rejected = p
        .keyroute(&["verify"])
        .write_stdin(plaintext)
        .output()
        .unwrap();
    assert!(one_error_line(&rejected).contains("revoked"));
    let regenerated = p.json(&[
        "keys",
        "regenerate",
        "--user",
        "ada",
        "--env",
        "live",
        "--yes",
    ]);
    assert!(
        regenerated["keys"][0]["plaintext"]
            .as_str()
            .unwrap()
            .starts_with("sk_live_")
    );

    let store = PostgresStore::connect(dbs.live.url().clone())
        .await
        .unwrap();
    let now = chrono::Utc::now();
    let users: Vec<User> = (0..200)
        .map(|i| User::new(UserId::random(), format!("u{i}"), now))
        .collect();
    store.import_users(&users).await.unwrap();
    assert_eq!(p.json(&["backfill", "--batch", "50"])["users"], 200);
    assert_eq!(p.json(&["backfill"])["users"], 0);

    assert!(p.keyroute(&["doctor"]).output().unwrap().status.success());
    p.add_migration(
        "2026-02-01-000000_refunds",
        "CREATE TABLE refunds (id TEXT);",
        "DROP TABLE refunds;",
    );
    let source = FileBasedMigrations::from_path(p.app_dir()).unwrap();
    assert_eq!(
        dbs.live.apply_migrations(source).await.unwrap(),
        ["20260201000000"]
    );
    let drift = p.keyroute(&["doctor"]).output().unwrap();
    assert_eq!(drift.status.code(), Some(1));
    let line = one_error_line(&drift);
    assert!(line.contains("20260201000000"), "{line}");
    let password_free = |bytes: &[u8]| !String::from_utf8_lossy(bytes).contains(":keyroute@");
    assert!(password_free(&drift.stdout) && password_free(&drift.stderr));
}

/// With `[tenancy] mode = "row_security"`, doctor reports what `build()` refuses: here
/// the connections' role is the server's superuser, which bypasses every policy, and
/// a tenant table has row-level security off. `--json` lists them under
/// `row_security`.
#[tokio::test(flavor = "multi_thread")]
async fn doctor_reports_what_would_bypass_row_security() {
    let dbs = keyroute_testing::postgres_live_and_test().await.unwrap();
    let toml = format!(
        "[connections]\nlive = \"{}\"\ntest = \"{}\"\n[tenancy]\nmode = \"row_security\"\n",
        dbs.live.url().expose_secret(),
        dbs.test.url().expose_secret()
    );
    let p = Project::with_toml(&toml);
    p.add_migration(
        "2026-01-01-000000_notes",
        "CREATE TABLE notes (id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL);",
        "DROP TABLE notes;",
    );
    let app = p.app_dir();
    p.json(&["migrate", "--app", app.to_str().unwrap()]);
    let doctor = p.keyroute(&["doctor"]).output().unwrap();
    assert_eq!(doctor.status.code(), Some(1));
    let line = one_error_line(&doctor);
    assert!(line.contains("is a superuser"), "{line}");
    assert!(
        line.contains("public.notes has the tenant column but row-level security is off"),
        "{line}"
    );
    let json = p.keyroute(&["doctor", "--json"]).output().unwrap();
    let stdout = String::from_utf8(json.stdout).unwrap();
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    // Two connections, each: the superuser and the unguarded table.
    assert_eq!(
        report["row_security"].as_array().unwrap().len(),
        4,
        "{report}"
    );
}

/// With `[tenancy] mode = "schema"`, `keyroute migrate --app` applies the app's
/// migrations in every tenant's schema (each tenant keyroute's users belong to, in
/// each environment's database), creating the schema; a second run finds them all
/// current; doctor reports a tenant's schema that fell behind.
#[tokio::test(flavor = "multi_thread")]
async fn migrate_applies_the_app_in_every_tenant_schema() {
    use diesel::QueryableByName;
    use diesel::sql_types::BigInt;
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

    let dbs = keyroute_testing::postgres_live_and_test().await.unwrap();
    let toml = format!(
        "[connections]\nlive = \"{}\"\ntest = \"{}\"\n[tenancy]\nmode = \"schema\"\n",
        dbs.live.url().expose_secret(),
        dbs.test.url().expose_secret()
    );
    let p = Project::with_toml(&toml);
    p.json(&["migrate"]);
    let store = PostgresStore::connect(dbs.live.url().clone())
        .await
        .unwrap();
    let now = chrono::Utc::now();
    let users: Vec<User> = ["acme", "globex", "initech"]
        .iter()
        .map(|t| {
            let mut user = User::new(UserId::random(), format!("owner-{t}"), now);
            user.tenant = Some(keyroute::keys::Tenant::new(t).unwrap());
            user
        })
        .collect();
    store.import_users(&users).await.unwrap();
    p.add_migration(
        "2026-01-01-000000_orders",
        "CREATE TABLE orders (id TEXT PRIMARY KEY);",
        "DROP TABLE orders;",
    );
    let app = p.app_dir();
    let app = app.to_str().unwrap();

    let first = p.json(&["migrate", "--app", app]);
    let tenants = first["tenants"].as_array().unwrap();
    assert_eq!(tenants.len(), 6, "{first}"); // 3 tenants x live, test
    for t in tenants {
        assert_eq!(t["status"], "migrated", "{first}");
    }
    assert_eq!(tenants[0]["tenant"], "live/tenant_acme", "{first}");

    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    for db in [&dbs.live, &dbs.test] {
        let mut conn = AsyncPgConnection::establish(db.url().expose_secret())
            .await
            .unwrap();
        let n: N = diesel::sql_query(
            "SELECT count(*) AS n FROM information_schema.tables \
             WHERE table_name = 'orders' AND table_schema LIKE 'tenant_%'",
        )
        .get_result(&mut conn)
        .await
        .unwrap();
        assert_eq!(n.n, 3);
    }

    let again = p.json(&["migrate", "--app", app]);
    for t in again["tenants"].as_array().unwrap() {
        assert_eq!(t["status"], "current", "{again}");
    }

    // Doctor compares every tenant's schema with live: in step, then one that fell
    // behind is named.
    assert!(p.keyroute(&["doctor"]).output().unwrap().status.success());
    let mut live = AsyncPgConnection::establish(dbs.live.url().expose_secret())
        .await
        .unwrap();
    diesel::sql_query("DELETE FROM tenant_globex.__diesel_schema_migrations")
        .execute(&mut live)
        .await
        .unwrap();
    let drift = p.keyroute(&["doctor"]).output().unwrap();
    assert_eq!(drift.status.code(), Some(1));
    let line = one_error_line(&drift);
    assert!(line.contains("live/tenant_globex"), "{line}");
    assert!(line.contains("20260101000000"), "{line}");
}
