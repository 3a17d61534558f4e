//! Tenant affinity on PostgreSQL: a connection a tenant's unit gives back goes to a
//! waiting unit of the same tenant before the pool's other waiters, but no waiting
//! unit is passed over more than 32 times, a connection given back while its
//! thread panics goes back to the pool (which discards it), and every unit is bound
//! to its own tenant whichever way its connection came.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{Integer, Text};
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use keyroute_pool::{Binding, Checkout, DbPool, PoolSettings, Postgres};

#[derive(QueryableByName)]
struct Session {
    #[diesel(sql_type = Integer)]
    pid: i32,
    #[diesel(sql_type = Text)]
    path: String,
}

/// The units served, in order: name, server process, `search_path`.
type Served = Arc<Mutex<Vec<(&'static str, i32, String)>>>;

/// The server process behind `conn`, and its `search_path`.
async fn session(conn: &mut Checkout<Postgres>) -> (i32, String) {
    let s: Session =
        diesel::sql_query("SELECT pg_backend_pid() AS pid, current_setting('search_path') AS path")
            .get_result(&mut **conn)
            .await
            .unwrap();
    (s.pid, s.path)
}

/// A pool of one connection on a fresh database with schemas `a` and `b`.
async fn one_connection() -> (keyroute_testing::TestDatabase<Postgres>, DbPool<Postgres>) {
    one_connection_with(PoolSettings::default()).await
}

/// [`one_connection`] on `settings` otherwise.
async fn one_connection_with(
    mut settings: PoolSettings,
) -> (keyroute_testing::TestDatabase<Postgres>, DbPool<Postgres>) {
    let db = keyroute_testing::postgres().await.unwrap();
    settings.max_size = 1;
    settings.connection_timeout = Duration::from_secs(20);
    let pool = DbPool::<Postgres>::connect(db.url().clone(), settings)
        .await
        .unwrap();
    let mut conn = pool.unit().await.unwrap();
    conn.batch_execute("CREATE SCHEMA a; CREATE SCHEMA b")
        .await
        .unwrap();
    drop(conn);
    (db, pool)
}

/// Starts a unit bound to `schema` that records `name` in `served` once it has its
/// connection, with the server process and `search_path` it saw, then gives it back.
fn unit(
    pool: &DbPool<Postgres>,
    schema: &'static str,
    name: &'static str,
    served: &Served,
) -> tokio::task::JoinHandle<()> {
    let pool = pool.clone();
    let served = Arc::clone(served);
    tokio::spawn(async move {
        let binding = Binding::schema(schema).unwrap();
        let mut conn = pool.bound_unit(Some(&binding)).await.unwrap();
        let (pid, path) = session(&mut conn).await;
        served.lock().unwrap().push((name, pid, path));
    })
}

/// Waits until `n` bound units wait for a connection of `pool`.
async fn until_waiting(pool: &DbPool<Postgres>, n: usize) {
    tokio::time::timeout(Duration::from_secs(15), async {
        while pool.bound_units_waiting() < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{n} units never waited ({})", pool.bound_units_waiting()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_goes_on_to_a_waiting_unit_of_the_same_tenant_first() {
    let (_db, pool) = one_connection().await;
    let a = Binding::schema("a").unwrap();
    let mut held = pool.bound_unit(Some(&a)).await.unwrap();
    let (held_pid, _) = session(&mut held).await;

    let served = Arc::new(Mutex::new(Vec::new()));
    // `b` waits first, then `a`: without affinity the pool serves `b` first.
    let b1 = unit(&pool, "b", "b1", &served);
    until_waiting(&pool, 1).await;
    let a1 = unit(&pool, "a", "a1", &served);
    until_waiting(&pool, 2).await;
    drop(held);
    a1.await.unwrap();
    b1.await.unwrap();

    let served = served.lock().unwrap().clone();
    let names: Vec<_> = served.iter().map(|s| s.0).collect();
    assert_eq!(
        names,
        ["a1", "b1"],
        "the same tenant's waiting unit goes first"
    );
    // One connection throughout, each unit bound to its own schema on it.
    assert!(served.iter().all(|s| s.1 == held_pid));
    assert_eq!(served[0].2, "a");
    assert_eq!(served[1].2, "b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_waiting_unit_is_passed_over_more_than_32_times() {
    let (_db, pool) = one_connection().await;
    let a = Binding::schema("a").unwrap();
    let held = pool.bound_unit(Some(&a)).await.unwrap();

    let served = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = vec![unit(&pool, "b", "b", &served)];
    until_waiting(&pool, 1).await;
    // Forty units of `a` queue after `b`, each able to take the connection on from
    // the one before.
    for n in 0..40 {
        tasks.push(unit(&pool, "a", "a", &served));
        until_waiting(&pool, n + 2).await;
    }
    drop(held);
    for task in tasks {
        task.await.unwrap();
    }

    let served = served.lock().unwrap().clone();
    let before_b = served.iter().position(|s| s.0 == "b").unwrap();
    // Some went ahead of `b` (affinity works), at most 32 (the bound).
    assert!(
        (1..=32).contains(&before_b),
        "units served before b: {before_b} ({:?})",
        served.iter().map(|s| s.0).collect::<Vec<_>>()
    );
    assert_eq!(served.len(), 41);
    for (name, _, path) in &served {
        let schema = if *name == "b" { "b" } else { "a" };
        assert_eq!(path, schema, "{name} was bound to {path}");
    }
}

/// Holds a connection bound to `a` while another unit of `a` waits, ends the holder
/// with `end`, and checks that the waiting unit got another connection (the pool
/// discarded the holder's), bound to `a`.
async fn not_handed_on(end: impl AsyncFnOnce(Checkout<Postgres>), what: &str) {
    let (_db, pool) = one_connection().await;
    let a = Binding::schema("a").unwrap();
    let mut held = pool.bound_unit(Some(&a)).await.unwrap();
    let (held_pid, _) = session(&mut held).await;

    let served = Arc::new(Mutex::new(Vec::new()));
    let waiting = unit(&pool, "a", "a1", &served);
    until_waiting(&pool, 1).await;
    end(held).await;
    waiting.await.unwrap();

    let served = served.lock().unwrap().clone();
    assert_eq!(served.len(), 1);
    assert_ne!(served[0].1, held_pid, "a1 got {what}");
    assert_eq!(served[0].2, "a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_given_back_by_a_panicking_unit_is_not_handed_on() {
    // The holder panics with its connection: neither handed on nor kept by the pool.
    let panics = async |held: Checkout<Postgres>| {
        let panicked = tokio::spawn(async move {
            let _conn = held;
            panic!("a handler panicked holding its connection");
        })
        .await;
        assert!(panicked.unwrap_err().is_panic());
    };
    not_handed_on(panics, "the panicking unit's connection").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_left_inside_a_transaction_is_not_handed_on() {
    use diesel_async::AsyncConnection;

    // The holder's transaction is dropped midway (its client went away): the
    // connection is still inside it, so the next unit must not get it.
    let drops_midway = async |mut held: Checkout<Postgres>| {
        let dropped = tokio::time::timeout(
            Duration::from_millis(100),
            held.transaction::<(), diesel::result::Error, _>(async |conn| {
                conn.batch_execute("SELECT pg_sleep(2)").await?;
                Ok(())
            }),
        )
        .await;
        assert!(
            dropped.is_err(),
            "the transaction was meant to be dropped midway"
        );
    };
    not_handed_on(
        drops_midway,
        "a connection inside another unit's transaction",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_handed_on_and_on_still_reaches_its_max_lifetime() {
    let mut settings = PoolSettings::default();
    settings.max_lifetime = Some(Duration::from_millis(300));
    let (_db, pool) = one_connection_with(settings).await;

    // Two units of one tenant take turns on the one connection for 1.5 s: each hands
    // it to the other, which is always waiting.
    let served = Arc::new(Mutex::new(Vec::new()));
    let until = tokio::time::Instant::now() + Duration::from_millis(1500);
    let turns = (0..2).map(|_| {
        let pool = pool.clone();
        let served = Arc::clone(&served);
        tokio::spawn(async move {
            let binding = Binding::schema("a").unwrap();
            while tokio::time::Instant::now() < until {
                let mut conn = pool.bound_unit(Some(&binding)).await.unwrap();
                let (pid, _) = session(&mut conn).await;
                served.lock().unwrap().push(pid);
            }
        })
    });
    for turn in turns.collect::<Vec<_>>() {
        turn.await.unwrap();
    }
    let mut pids = served.lock().unwrap().clone();
    let units = pids.len();
    pids.dedup();
    assert!(
        pids.len() >= 2,
        "{units} units over 1.5 s all ran on one connection of a 300 ms max_lifetime"
    );
}
