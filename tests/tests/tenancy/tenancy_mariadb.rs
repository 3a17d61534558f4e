//! Schema per tenant on MySQL / MariaDB, attacked: there a schema is a database, and a
//! tenant's database on a shared server is reached through `[routing] url_template`
//! (a pool per tenant and environment), never by `USE` on a shared pool.
//!
//! - Why not `USE`: MariaDB keeps a prepared statement on the database it was prepared
//!   in, and diesel-async caches prepared statements per connection, so after a `USE`
//!   a cached query still reads the previous tenant's table
//!   (`a_cached_statement_keeps_its_database_after_use`). keyroute therefore refuses
//!   `[tenancy] mode` on MySQL and pins each tenant to connections of its own.
//! - 20 tenants × live/test in 40 databases on one MariaDB server, one user per
//!   database granted that database alone (the template puts `{tenant}_{env}` in the
//!   user name too), at most 16 pools open: generated requests mix reads, writes,
//!   handlers that try `USE` on another tenant's database (refused by the server),
//!   futures dropped mid-query and handlers that panic. Every row read is the caller's;
//!   every stored row is in its tenant's database; the counts are printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test
#![allow(clippy::print_stdout)] // the counts are this test's report

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::tenant_support::{
    Body, Counts, ENVS, Gen, TENANTS, WORKERS, bump, principal, quiet_expected_panics, stored_in,
    tenant,
};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncMysqlConnection, RunQueryDsl, SimpleAsyncConnection};
use keyroute::Config;
use keyroute::store::Mysql;

/// Generated requests in the MariaDB run (the SQLite and PostgreSQL runs make up the
/// issue's 100 000; this one shows the same on a server where a schema is a database).
const REQUESTS: u64 = 4_000;

/// Each tenant user's password. Test data only.
const PASSWORD: &str = "tenant-pw";

diesel::table! {
    /// Each tenant database's notes.
    notes (id) {
        /// The row's id.
        id -> Integer,
        /// `tenant|env` of the request that wrote it.
        body -> Text,
    }
}

/// `url` (the harness's root URL to one database) pointing at database `database`.
fn at_database(url: &str, database: &str) -> String {
    let (server, _) = url.rsplit_once('/').unwrap();
    format!("{server}/{database}")
}

/// The root URL's `host:port`.
fn host_port(url: &str) -> &str {
    let (_, rest) = url.split_once('@').unwrap();
    rest.split_once('/').unwrap().0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_statement_keeps_its_database_after_use() {
    let db = keyroute_testing::mariadb().await.unwrap();
    let root = db.url().expose_secret().to_owned();
    let (a, b) = (format!("{}_a", db.name()), format!("{}_b", db.name()));
    let mut conn = AsyncMysqlConnection::establish(&root).await.unwrap();
    for (name, body) in [(&a, "A"), (&b, "B")] {
        conn.batch_execute(&format!(
            "CREATE DATABASE `{name}`; \
             CREATE TABLE `{name}`.notes (id INT AUTO_INCREMENT PRIMARY KEY, body TEXT NOT NULL); \
             INSERT INTO `{name}`.notes (body) VALUES ('{body}')"
        ))
        .await
        .unwrap();
    }
    let mut conn = AsyncMysqlConnection::establish(&at_database(&root, &a))
        .await
        .unwrap();
    let query = || notes::table.select(notes::body);
    assert_eq!(query().load::<String>(&mut conn).await.unwrap(), ["A"]);
    conn.batch_execute(&format!("USE `{b}`")).await.unwrap();
    // The cached statement still reads `a`, though the session is now in `b`...
    assert_eq!(query().load::<String>(&mut conn).await.unwrap(), ["A"]);
    // ...where a statement prepared now reads `b`.
    let fresh: Vec<Body> = diesel::sql_query("SELECT body FROM notes")
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(fresh.len(), 1);
    assert_eq!(fresh[0].body, "B");
    conn.batch_execute(&format!("DROP DATABASE `{a}`; DROP DATABASE `{b}`"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_per_tenant_on_one_mariadb_server_keeps_every_tenant_to_its_database() {
    let db = keyroute_testing::mariadb().await.unwrap();
    let root = db.url().expose_secret().to_owned();
    let prefix = db.name().to_owned();
    let mut admin = AsyncMysqlConnection::establish(&root).await.unwrap();
    let mut names = Vec::new();
    for i in 0..TENANTS {
        for env in ENVS {
            let name = format!("{}_{env}", tenant(i));
            admin
                .batch_execute(&format!(
                    "CREATE DATABASE `{prefix}_{name}`; \
                     CREATE TABLE `{prefix}_{name}`.notes (id INT AUTO_INCREMENT PRIMARY KEY, body TEXT NOT NULL); \
                     CREATE USER '{name}'@'%' IDENTIFIED BY '{PASSWORD}'; \
                     GRANT ALL PRIVILEGES ON `{prefix}_{name}`.* TO '{name}'@'%'"
                ))
                .await
                .unwrap();
            names.push(name);
        }
    }
    let template = format!(
        "mysql://{{tenant}}_{{env}}:{PASSWORD}@{}/{prefix}_{{tenant}}_{{env}}",
        host_port(&root)
    );
    let config = Config::from_toml_str(&format!(
        "[routing]\nurl_template = {template:?}\ntenant_pool_size = 2\n\
         [pools]\nmax_pools = 16\nconnection_budget = 32\n"
    ))
    .unwrap();
    let router = config.router.router::<Mysql>().unwrap();

    quiet_expected_panics();
    let counts = Arc::new(Counts::default());
    let refused_use = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let router = router.clone();
        let counts = Arc::clone(&counts);
        let refused_use = Arc::clone(&refused_use);
        let prefix = prefix.clone();
        workers.push(tokio::spawn(async move {
            let mut g = Gen(0xA076_1D64_78BD_642F ^ (w + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            for _ in 0..REQUESTS / WORKERS {
                let me = tenant(g.below(TENANTS as u64) as usize);
                let env = ENVS[g.below(2) as usize];
                let marker = format!("{me}|{env}");
                let p = principal(env, Some(&me));
                bump(&counts.requests);
                match g.below(10) {
                    0..=4 => {
                        let mut conn = router.connection(&p).await.unwrap();
                        // The DSL query is prepared once per connection and cached.
                        let rows: Vec<String> = notes::table
                            .select(notes::body)
                            .order(notes::id.desc())
                            .limit(32)
                            .load(&mut *conn)
                            .await
                            .unwrap();
                        counts.read(&marker, rows.iter().map(String::as_str));
                    }
                    5..=6 => {
                        let mut conn = router.connection(&p).await.unwrap();
                        diesel::insert_into(notes::table)
                            .values(notes::body.eq(&marker))
                            .execute(&mut *conn)
                            .await
                            .unwrap();
                        bump(&counts.writes);
                    }
                    7 => {
                        // A handler that tries to move its session into another
                        // tenant's database: the server refuses it, typed.
                        let other = tenant((g.below(TENANTS as u64 - 1) as usize + 1) % TENANTS);
                        let other = if other == me { tenant(0) } else { other };
                        let mut conn = router.connection(&p).await.unwrap();
                        let err = conn
                            .batch_execute(&format!("USE `{prefix}_{other}_{env}`"))
                            .await
                            .unwrap_err();
                        assert!(err.to_string().contains("denied"), "{err}");
                        refused_use.fetch_add(1, Ordering::Relaxed);
                    }
                    n => counts.interrupted(&router, p, n == 8).await,
                }
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    let open = router.open_pools().len();
    // Every row, read by the server's root user: each in its tenant's database.
    let mut stored = 0;
    for name in &names {
        let rows: Vec<Body> =
            diesel::sql_query(format!("SELECT body FROM `{prefix}_{name}`.notes"))
                .load(&mut admin)
                .await
                .unwrap();
        stored += stored_in(name, &rows);
    }
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    println!(
        "tenancy property (database per tenant, MariaDB, one server, url_template): {} requests over {TENANTS} tenants x live/test in 40 databases, at most 16 pools open (open now: {open}): {} reads ({} rows, all the caller's), {} writes ({stored} rows stored, all in their tenant's database), {} USE of another tenant's database refused, {} futures dropped, {} handlers panicked; leaks: {}",
        get(&counts.requests),
        get(&counts.reads),
        get(&counts.rows_read),
        get(&counts.writes),
        get(&refused_use),
        get(&counts.dropped),
        get(&counts.panicked),
        get(&counts.leaks),
    );
    assert_eq!(get(&counts.leaks), 0);
    assert_eq!(get(&counts.requests), REQUESTS);
    assert!(open <= 16, "{open} pools open");
    assert!(stored >= get(&counts.writes) && get(&counts.rows_read) > 0);
    assert!(get(&refused_use) > 0);
    drop(router);
    for name in &names {
        admin
            .batch_execute(&format!(
                "DROP DATABASE `{prefix}_{name}`; DROP USER '{name}'@'%'"
            ))
            .await
            .unwrap();
    }
}
