//! Tenancy inside PostgreSQL, attacked: the request's tenant is bound on its
//! connection ([tenancy] mode = "row_security" or "schema"), and no request reads or
//! writes another tenant's rows, whatever the handler before it did to its session.
//!
//! - A property run over 20 tenants × live/test in each mode: generated requests mix
//!   reads, writes, writes aimed at another tenant, handlers that tamper with session
//!   state (`SET keyroute.tenant`, `SET search_path`, `RESET ALL`, `SET ROLE`), futures
//!   dropped mid-query and handlers that panic holding the connection. Every row read
//!   is the caller's tenant's and environment's; every write lands in the caller's
//!   tenant or is refused, typed; the counts are printed.
//! - A key without a tenant gets no connection; an anonymous route sees no tenant.
//! - Tenant names that try to break out of quoting are bound as data or refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test
#![allow(clippy::print_stdout)] // the counts are this test's report

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::tenant_support::{
    Body, Count, Counts, ENVS, Gen, TENANTS, WORKERS, bump, dropped_mid_query, panics_holding,
    principal, quiet_expected_panics, row_security_database, schema_database, superuser, tenant,
};
use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use keyroute::RouteError;
use keyroute::routing::{ConnectionRouter, Tenancy};
use keyroute::store::{DatabaseUrl, Postgres};
use keyroute_testing::TestDatabase;

/// Requests per mode in the property run (two modes: 20 000 on PostgreSQL in all).
const REQUESTS: u64 = 10_000;
#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    tenant_id: String,
    #[diesel(sql_type = Text)]
    body: String,
}

fn router(live: &DatabaseUrl, test: &DatabaseUrl, tenancy: Tenancy) -> ConnectionRouter<Postgres> {
    let mut settings = keyroute::store::PoolSettings::default();
    // Fewer connections than workers per environment: units wait, and a connection
    // given back goes on to a waiting unit of the same tenant (tenant affinity) as
    // often as to the pool, so both paths meet the tampering, drops and panics below.
    settings.max_size = 2;
    ConnectionRouter::<Postgres>::builder()
        .pool_settings(settings)
        .connection("live", live.clone())
        .connection("test", test.clone())
        .tenancy(Some(tenancy))
        .build()
        .unwrap()
}

/// One generated request of `tenant` in `env`. Returns nothing: every observation is
/// counted, a leak in `counts.leaks`.
async fn request(
    router: &ConnectionRouter<Postgres>,
    counts: &Counts,
    g: &mut Gen,
    tenant_index: usize,
    env: &str,
    rls: bool,
) {
    let me = tenant(tenant_index);
    let marker = format!("{me}|{env}");
    let other = tenant((tenant_index + 1 + g.below(TENANTS as u64 - 1) as usize) % TENANTS);
    let p = principal(env, Some(&me));
    bump(&counts.requests);
    match g.below(10) {
        // Read everything visible: only my rows may be there.
        0..=2 => {
            let mut conn = router.connection(&p).await.unwrap();
            let rows: Vec<Row> = diesel::sql_query("SELECT tenant_id, body FROM notes")
                .load(&mut *conn)
                .await
                .unwrap();
            bump(&counts.reads);
            counts
                .rows_read
                .fetch_add(rows.len() as u64, Ordering::Relaxed);
            for row in &rows {
                // In schema mode the column is only what a writer claimed (a write
                // claiming another tenant lands in the writer's schema): the marker,
                // which only this tenant writes in this environment, is the proof.
                if row.body != marker || (rls && row.tenant_id != me) {
                    bump(&counts.leaks);
                    eprintln!("LEAK: {marker} read ({}, {})", row.tenant_id, row.body);
                }
            }
            conn.commit().await.unwrap();
        }
        // Write a row of my own.
        3..=4 => {
            let mut conn = router.connection(&p).await.unwrap();
            diesel::sql_query("INSERT INTO notes (tenant_id, body) VALUES ($1, $2)")
                .bind::<Text, _>(&me)
                .bind::<Text, _>(&marker)
                .execute(&mut *conn)
                .await
                .unwrap();
            bump(&counts.writes);
            // Half the writers leave the commit to the drop.
            if g.below(2) == 0 {
                conn.commit().await.unwrap();
            }
        }
        // Write a row claiming another tenant: refused (row security) or written to
        // my own schema (schema mode), where the check at the end finds it as mine.
        5 => {
            let mut conn = router.connection(&p).await.unwrap();
            let result = diesel::sql_query("INSERT INTO notes (tenant_id, body) VALUES ($1, $2)")
                .bind::<Text, _>(&other)
                .bind::<Text, _>(&marker)
                .execute(&mut *conn)
                .await;
            match result {
                Err(diesel::result::Error::DatabaseError(_, info)) => {
                    assert!(
                        info.message().contains("row-level security"),
                        "{}",
                        info.message()
                    );
                    bump(&counts.foreign_writes_refused);
                    conn.rollback().await.unwrap();
                }
                Err(e) => panic!("untyped refusal: {e}"),
                Ok(_) => {
                    bump(&counts.writes);
                    conn.commit().await.unwrap();
                }
            }
        }
        // Tamper with the session and leave: the next request must see none of it.
        6 => {
            let mut conn = router.connection(&p).await.unwrap();
            let tamper = match g.below(4) {
                0 => format!("SET keyroute.tenant = '{other}'"),
                1 => format!("SET search_path TO \"tenant_{other}\", public"),
                2 => format!(
                    "SET SESSION keyroute.tenant = '{other}'; SET SESSION search_path TO \"tenant_{other}\""
                ),
                _ => "SET statement_timeout = '1ms'".to_owned(),
            };
            conn.batch_execute(&tamper).await.unwrap();
            bump(&counts.tampered);
        }
        // Undo keyroute's binding within the request, then read: nothing of anyone's
        // (row security: the tenant is empty; schema: no schema on the path).
        7 => {
            let mut conn = router.connection(&p).await.unwrap();
            conn.batch_execute("RESET ALL").await.unwrap();
            match diesel::sql_query("SELECT tenant_id, body FROM notes")
                .load::<Row>(&mut *conn)
                .await
            {
                Ok(rows) if rows.is_empty() => bump(&counts.fail_closed),
                Ok(rows) => {
                    for row in rows {
                        bump(&counts.leaks);
                        eprintln!("LEAK after RESET ALL: {marker} read {}", row.body);
                    }
                }
                Err(diesel::result::Error::DatabaseError(_, _)) => bump(&counts.fail_closed),
                Err(e) => panic!("untyped: {e}"),
            }
        }
        // A future dropped mid-query, after tampering.
        8 => {
            let tamper = format!("SET keyroute.tenant = '{other}'; SELECT pg_sleep(0.05)");
            dropped_mid_query(router, p, tamper, Duration::from_millis(2)).await;
            bump(&counts.dropped);
        }
        // A handler that panics holding its connection, after tampering.
        _ => {
            let tamper = format!("SET keyroute.tenant = '{other}'");
            panics_holding(router, p, Some(tamper)).await;
            bump(&counts.panicked);
        }
    }
}

/// Runs the property over `router` and checks the written rows as the superuser.
async fn property(
    mode: &str,
    router: ConnectionRouter<Postgres>,
    live: &TestDatabase<Postgres>,
    test: &TestDatabase<Postgres>,
    written: &str,
) {
    quiet_expected_panics();
    let counts = Arc::new(Counts::default());
    let rls = mode == "row_security";
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let router = router.clone();
        let counts = Arc::clone(&counts);
        workers.push(tokio::spawn(async move {
            let mut g = Gen(0x9E37_79B9_7F4A_7C15 ^ (w + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
            for _ in 0..REQUESTS / WORKERS {
                let t = g.below(TENANTS as u64) as usize;
                let env = ENVS[g.below(2) as usize];
                request(&router, &counts, &mut g, t, env, rls).await;
            }
        }));
    }
    for worker in workers {
        worker.await.unwrap();
    }
    // Let dropped units' commits land.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Every row, read past the policies by the superuser: in its tenant, in its env.
    let mut stored = 0;
    for (env, db) in [("live", live), ("test", test)] {
        let mut conn = superuser(db).await;
        let rows: Vec<Row> = diesel::sql_query(written).load(&mut conn).await.unwrap();
        for row in rows {
            stored += 1;
            assert_eq!(
                row.body,
                format!("{}|{env}", row.tenant_id),
                "a row written across tenants or environments"
            );
        }
    }
    let c = &*counts;
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    println!(
        "tenancy property ({mode}): {} requests over {TENANTS} tenants x live/test: {} reads ({} rows, all the caller's), {} writes ({} rows stored, all in their tenant and env), {} writes aimed at another tenant refused, {} sessions tampered, {} reads after RESET ALL failed closed, {} futures dropped mid-query, {} handlers panicked; leaks: {}",
        get(&c.requests),
        get(&c.reads),
        get(&c.rows_read),
        get(&c.writes),
        stored,
        get(&c.foreign_writes_refused),
        get(&c.tampered),
        get(&c.fail_closed),
        get(&c.dropped),
        get(&c.panicked),
        get(&c.leaks),
    );
    assert_eq!(get(&c.leaks), 0);
    assert_eq!(get(&c.requests), REQUESTS);
    assert!(
        get(&c.rows_read) > 0 && stored > 0,
        "the run read and wrote rows"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_security_keeps_every_tenant_to_its_rows() {
    let live = keyroute_testing::postgres().await.unwrap();
    let test = keyroute_testing::postgres().await.unwrap();
    let (live_url, test_url) = (
        row_security_database(&live).await,
        row_security_database(&test).await,
    );
    let router = router(&live_url, &test_url, Tenancy::row_security());
    assert!(router.check_tenancy().await.unwrap().is_empty());
    property(
        "row_security",
        router,
        &live,
        &test,
        "SELECT tenant_id, body FROM notes",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_mode_keeps_every_tenant_to_its_schema() {
    let live = keyroute_testing::postgres().await.unwrap();
    let test = keyroute_testing::postgres().await.unwrap();
    let (live_url, test_url) = (schema_database(&live).await, schema_database(&test).await);
    let router = router(
        &live_url,
        &test_url,
        Tenancy::schema("tenant_{tenant}").unwrap(),
    );
    // Each schema's rows, labelled with the schema's tenant (what the row claims is
    // not trusted: a write claiming another tenant still lands in the caller's schema).
    let mut union = Vec::new();
    for i in 0..TENANTS {
        let t = tenant(i);
        union.push(format!(
            "SELECT '{t}'::text AS tenant_id, body FROM \"tenant_{t}\".notes"
        ));
    }
    property("schema", router, &live, &test, &union.join(" UNION ALL ")).await;
}

/// A key without a tenant gets no connection; the anonymous route sees no tenant's
/// rows; a tenant whose schema name PostgreSQL would cut gets no connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_cannot_be_bound_get_no_connection() {
    let live = keyroute_testing::postgres().await.unwrap();
    let url = row_security_database(&live).await;
    let mut conn = superuser(&live).await;
    conn.batch_execute("INSERT INTO notes (tenant_id, body) VALUES ('t00', 't00|live')")
        .await
        .unwrap();
    let router = ConnectionRouter::<Postgres>::builder()
        .connection("live", url.clone())
        .anonymous_route("live")
        .tenancy(Some(Tenancy::row_security()))
        .build()
        .unwrap();
    let err = router
        .connection(&principal("live", None))
        .await
        .unwrap_err();
    assert!(matches!(err, RouteError::NoRoute { .. }), "{err}");
    assert!(err.to_string().contains("[tenancy]"), "{err}");

    let mut anonymous = router.anonymous_connection().await.unwrap();
    let n: Count = diesel::sql_query("SELECT count(*) AS n FROM notes")
        .get_result(&mut *anonymous)
        .await
        .unwrap();
    assert_eq!(n.n, 0, "the anonymous route sees no tenant's rows");
    drop(anonymous);

    let mut own = router
        .connection(&principal("live", Some("t00")))
        .await
        .unwrap();
    let n: Count = diesel::sql_query("SELECT count(*) AS n FROM notes")
        .get_result(&mut *own)
        .await
        .unwrap();
    assert_eq!(n.n, 1);
    drop(own);

    let schema = ConnectionRouter::<Postgres>::builder()
        .connection("live", url)
        .tenancy(Some(
            Tenancy::schema("tenant_schema_with_a_long_prefix_{tenant}").unwrap(),
        ))
        .build()
        .unwrap();
    let long = "a".repeat(40);
    let err = schema
        .connection(&principal("live", Some(&long)))
        .await
        .unwrap_err();
    assert!(matches!(err, RouteError::NoRoute { .. }), "{err}");
}

/// Schema names are quoted identifiers: a template whose literal part would break
/// out of an unquoted name binds a schema of exactly that name, and nothing runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_names_that_try_to_break_out_are_bound_as_names() {
    let live = keyroute_testing::postgres().await.unwrap();
    let url = schema_database(&live).await;
    let hostile = "x\"; DROP SCHEMA tenant_t00 CASCADE; --{tenant}";
    let router = ConnectionRouter::<Postgres>::builder()
        .connection("live", url)
        .tenancy(Some(Tenancy::schema(hostile).unwrap()))
        .build()
        .unwrap();
    let mut conn = router
        .connection(&principal("live", Some("t00")))
        .await
        .unwrap();
    let path: Body = diesel::sql_query("SELECT current_setting('search_path') AS body")
        .get_result(&mut *conn)
        .await
        .unwrap();
    assert_eq!(
        path.body,
        "\"x\"\"; DROP SCHEMA tenant_t00 CASCADE; --t00\""
    );
    drop(conn);
    let mut su = superuser(&live).await;
    let n: Count =
        diesel::sql_query("SELECT count(*) AS n FROM pg_namespace WHERE nspname = 'tenant_t00'")
            .get_result(&mut su)
            .await
            .unwrap();
    assert_eq!(n.n, 1, "the schema is still there");
}
