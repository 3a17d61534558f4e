//! A database per tenant, attacked: generated requests over 20 tenants × live/test in
//! 40 SQLite databases behind a `{tenant}_{env}` template, with fewer pools open than
//! databases; and `[routing] url_template`, which opens each tenant's database with no
//! configuration line of its own, within the pool bounds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test
#![allow(clippy::print_stdout)] // the counts are this test's report

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::tenant_support::{
    Body, Counts, ENVS, Gen, TENANTS, WORKERS, bump, principal, quiet_expected_panics, stored_in,
    tenant,
};
use diesel::sql_types::Text;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use keyroute::routing::ConnectionRouter;
use keyroute::store::DatabaseUrl;

/// Requests in the database-per-tenant run (SQLite files): with the two PostgreSQL
/// runs, 100 000 per CI run.
const DATABASE_MODE_REQUESTS: u64 = 80_000;

/// Database per tenant, 20 tenants × live/test through a `{tenant}_{env}` template
/// over 40 SQLite files, with fewer pools allowed open (16) than databases, so pools
/// are closed and reopened under load: every row read is the caller's, every write
/// lands in the caller's database, dropped futures and panicking handlers included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_per_tenant_keeps_every_tenant_to_its_database() {
    use keyroute::routing::Template;
    use keyroute::store::Sqlite;

    let dir = tempfile::tempdir().unwrap();
    let mut settings = keyroute::store::PoolSettings::default();
    settings.max_size = 2;
    let mut builder = ConnectionRouter::<Sqlite>::builder()
        .pool_settings(settings)
        .policy(Template::parse("{tenant}_{env}").unwrap())
        .max_pools(16)
        .connection_budget(32);
    let mut names = Vec::new();
    for i in 0..TENANTS {
        for env in ENVS {
            let name = format!("{}_{env}", tenant(i));
            let file = dir.path().join(format!("{name}.db")).display().to_string();
            builder = builder.connection(name.clone(), DatabaseUrl::new(file));
            names.push(name);
        }
    }
    let router = builder.build().unwrap();
    for name in &names {
        let mut conn = router.connection_named(name).await.unwrap();
        conn.batch_execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
            .await
            .unwrap();
    }

    quiet_expected_panics();
    let counts = Arc::new(Counts::default());
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let router = router.clone();
        let counts = Arc::clone(&counts);
        workers.push(tokio::spawn(async move {
            let mut g = Gen(0xD1B5_4A32_D192_ED03 ^ (w + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            for _ in 0..DATABASE_MODE_REQUESTS / WORKERS {
                let me = tenant(g.below(TENANTS as u64) as usize);
                let env = ENVS[g.below(2) as usize];
                let marker = format!("{me}|{env}");
                let p = principal(env, Some(&me));
                bump(&counts.requests);
                match g.below(10) {
                    0..=5 => {
                        let mut conn = router.connection(&p).await.unwrap();
                        // The newest rows (every stored row is checked at the end).
                        let rows: Vec<Body> =
                            diesel::sql_query("SELECT body FROM notes ORDER BY id DESC LIMIT 32")
                                .load(&mut *conn)
                                .await
                                .unwrap();
                        counts.read(&marker, rows.iter().map(|r| r.body.as_str()));
                    }
                    6..=7 => {
                        let mut conn = router.connection(&p).await.unwrap();
                        diesel::sql_query("INSERT INTO notes (body) VALUES ($1)")
                            .bind::<Text, _>(&marker)
                            .execute(&mut *conn)
                            .await
                            .unwrap();
                        bump(&counts.writes);
                    }
                    n => counts.interrupted(&router, p, n == 8).await,
                }
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    let mut stored = 0;
    for name in &names {
        let mut conn = router.connection_named(name).await.unwrap();
        let rows: Vec<Body> = diesel::sql_query("SELECT body FROM notes")
            .load(&mut *conn)
            .await
            .unwrap();
        stored += stored_in(name, &rows);
    }
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let open = router.open_pools().len();
    println!(
        "tenancy property (database per tenant, SQLite): {} requests over {TENANTS} tenants x live/test in 40 databases, at most 16 pools open (open now: {open}): {} reads ({} rows, all the caller's), {} writes ({stored} rows stored, all in their tenant's database), {} futures dropped, {} handlers panicked; leaks: {}",
        get(&counts.requests),
        get(&counts.reads),
        get(&counts.rows_read),
        get(&counts.writes),
        get(&counts.dropped),
        get(&counts.panicked),
        get(&counts.leaks),
    );
    assert_eq!(get(&counts.leaks), 0);
    assert!(open <= 16);
    assert!(stored >= get(&counts.writes) && get(&counts.rows_read) > 0);
}

/// `[routing] url_template`: 100 tenants × live/test, each in a database of its own
/// that no configuration line names, opened at the URL the template gives, named
/// `{tenant}_{env}`, at most 8 pools open at once; each database holds only its
/// tenant's row when visited again. A key without a tenant gets no connection, and
/// the template's mistakes are configuration errors naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_template_opens_each_tenants_database_within_the_bounds() {
    use keyroute::store::Sqlite;
    use keyroute::{Config, RouteError};

    // 200 databases, 25 times the pools allowed open. Each costs a file, its WAL and
    // their fsyncs to create (about 40 ms on CI's disk), so more only adds minutes.
    const MANY: usize = 100;
    let dir = tempfile::tempdir().unwrap();
    let template = format!("{}/{{tenant}}_{{env}}.db", dir.path().display());
    let config = Config::from_toml_str(&format!(
        "[routing]\nurl_template = {template:?}\ntenant_pool_size = 1\n\
         [pools]\nmax_pools = 8\nconnection_budget = 8\n"
    ))
    .unwrap();
    let router = config.router.router::<Sqlite>().unwrap();
    let mut most_open = 0;
    for visit in 0..2 {
        for i in 0..MANY {
            for env in ENVS {
                let me = format!("tenant-{i}");
                let marker = format!("{me}|{env}");
                let mut conn = router.connection(&principal(env, Some(&me))).await.unwrap();
                assert_eq!(conn.name(), format!("{me}_{env}"));
                if visit == 0 {
                    conn.batch_execute(&format!(
                        "CREATE TABLE notes (body TEXT NOT NULL); INSERT INTO notes VALUES ('{marker}')"
                    ))
                    .await
                    .unwrap();
                } else {
                    let rows: Vec<Body> = diesel::sql_query("SELECT body FROM notes")
                        .load(&mut *conn)
                        .await
                        .unwrap();
                    let bodies: Vec<&str> = rows.iter().map(|r| r.body.as_str()).collect();
                    assert_eq!(bodies, [marker.as_str()]);
                }
                most_open = most_open.max(router.open_pools().len());
            }
        }
    }
    assert!(most_open <= 8, "{most_open} pools were open at once");
    assert!(
        dir.path()
            .join(format!("tenant-{}_test.db", MANY - 1))
            .exists()
    );
    println!(
        "url_template: {} tenant databases opened and revisited with no configuration line each, at most {most_open} pools open",
        MANY * 2
    );

    let err = router
        .connection(&principal("live", None))
        .await
        .unwrap_err();
    assert!(matches!(err, RouteError::NoRoute { .. }), "{err}");

    for (toml, needle) in [
        (
            "[routing]\nurl_template = \"/tmp/{env}.db\"",
            "[routing] option `url_template`",
        ),
        (
            "[routing]\nurl_template = \"/tmp/{tenant}_{env}.db\"\ntemplate = \"{tenant}_{env}\"",
            "remove template and table",
        ),
        (
            "[routing]\ntenant_pool_size = 2",
            "[routing] option `tenant_pool_size`",
        ),
        (
            "[routing]\nurl_template = \"/tmp/{tenant}_{env}.db\"\ntenant_pool_size = 0",
            "[routing] option `tenant_pool_size`",
        ),
    ] {
        let err = Config::from_toml_str(toml)
            .unwrap()
            .router
            .router::<Sqlite>()
            .unwrap_err();
        assert!(err.to_string().contains(needle), "{toml}: {err}");
    }
}
