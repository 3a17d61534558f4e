//! PgBouncer in front of a test's PostgreSQL server: queries pass through it, it pools
//! in transaction mode (clients share server connections, session state included), and
//! its admin console answers `SHOW POOLS` and `SHOW STATS`. Talks to both with
//! tokio-postgres directly, by the simple query protocol only: transaction pooling
//! cannot keep the named statements `query()` prepares.
//!
//! Without a Docker engine these tests fail at once, saying how to get one, as every
//! container test of the harness does (`no_engine.rs`): they never skip silently.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use keyroute_pool::DatabaseUrl;
use keyroute_testing::dedicated::{DedicatedServer, postgres_restartable};
use keyroute_testing::{ConsoleRow, PgBouncerOptions, PoolMode, TestPgBouncer, pgbouncer};
use tokio::sync::OnceCell;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

/// The PostgreSQL server every test here puts its own PgBouncer in front of.
async fn server() -> &'static DedicatedServer {
    static SERVER: OnceCell<DedicatedServer> = OnceCell::const_new();
    SERVER
        .get_or_init(|| async { postgres_restartable().await.unwrap() })
        .await
}

/// A PgBouncer in front of [`server`] with `options`.
async fn bouncer(options: PgBouncerOptions) -> TestPgBouncer {
    pgbouncer(server().await, options).await.unwrap()
}

/// A new connection to `url`, driven until the client drops.
async fn connect(url: &DatabaseUrl) -> Client {
    let (client, connection) = tokio_postgres::connect(url.expose_secret(), NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// The first column of the first row `sql` answers.
async fn value(client: &Client, sql: &str) -> String {
    let messages = client.simple_query(sql).await.unwrap();
    messages
        .iter()
        .find_map(|message| match message {
            SimpleQueryMessage::Row(row) => Some(row.get(0).unwrap_or("NULL").to_owned()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{sql} answered no row"))
}

/// `SHOW POOLS`' row for the server's `postgres` database and user.
fn postgres_pool(pools: &[ConsoleRow]) -> &ConsoleRow {
    pools
        .iter()
        .find(|row| {
            row.get("database").map(String::as_str) == Some("postgres")
                && row.get("user").map(String::as_str) == Some("postgres")
        })
        .unwrap_or_else(|| panic!("no pool for postgres/postgres in {pools:?}"))
}

/// A column of a console row, as a number.
fn number(row: &ConsoleRow, column: &str) -> u64 {
    row.get(column)
        .unwrap_or_else(|| panic!("no {column} in {row:?}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_query_through_the_pooler_reaches_the_server() {
    let bouncer = bouncer(PgBouncerOptions::default()).await;
    let pooled_url = bouncer.url().expose_secret();
    assert!(
        pooled_url.starts_with("postgres://postgres:")
            && pooled_url.ends_with(&format!("@127.0.0.1:{}/postgres", bouncer.port())),
        "PgBouncer's published port on the loopback address: {:?}",
        bouncer.url()
    );
    assert!(
        bouncer
            .direct_url()
            .expose_secret()
            .ends_with(&format!("@127.0.0.1:{}/postgres", server().await.port())),
        "the server's own published port: {:?}",
        bouncer.direct_url()
    );
    assert_eq!(
        bouncer.backend().port(),
        5432,
        "the server's port in its container"
    );

    let direct = connect(bouncer.direct_url()).await;
    direct
        .batch_execute(
            "CREATE TABLE through_the_pooler (n int); INSERT INTO through_the_pooler VALUES (42)",
        )
        .await
        .unwrap();
    let pooled = connect(bouncer.url()).await;
    assert_eq!(
        value(&pooled, "SELECT n FROM through_the_pooler").await,
        "42",
        "the pooler's backend is that server"
    );

    // The server sees the pooled client coming from somewhere else than the direct one:
    // from PgBouncer's container, not from the published port's gateway.
    let client_address = "SELECT host(inet_client_addr())";
    let via_pooler = value(&pooled, client_address).await;
    let via_port = value(&direct, client_address).await;
    assert_ne!(via_pooler, via_port, "a pooler is in between");
    assert_ne!(via_pooler, bouncer.backend().ip().to_string());
}

#[tokio::test]
async fn transaction_mode_lends_one_server_connection_to_every_client() {
    let mut options = PgBouncerOptions::default();
    options.default_pool_size = 1;
    let bouncer = bouncer(options).await;
    assert_eq!(bouncer.options().pool_mode, PoolMode::Transaction);
    let one = connect(bouncer.url()).await;
    let two = connect(bouncer.url()).await;

    // Both clients are connected at once, yet run on the same server process: only a
    // pooler that lends the connection per transaction can do that with a pool of one.
    let pid = "SELECT pg_backend_pid()";
    assert_eq!(value(&one, pid).await, value(&two, pid).await);

    // So session state leaks from one client to the next: the hazard transaction
    // pooling brings, which is what a keyroute test behind it needs to meet.
    one.batch_execute("SET statement_timeout = '4321ms'")
        .await
        .unwrap();
    assert_eq!(value(&two, "SHOW statement_timeout").await, "4321ms");
    let direct = connect(bouncer.direct_url()).await;
    assert_eq!(
        value(&direct, "SHOW statement_timeout").await,
        "0",
        "the setting is the shared server connection's, not the server's"
    );

    let pools = bouncer.show("POOLS").await.unwrap();
    let pool = postgres_pool(&pools);
    assert_eq!(
        pool.get("pool_mode").map(String::as_str),
        Some("transaction")
    );
    assert_eq!(number(pool, "cl_active"), 2, "two clients: {pool:?}");
    let servers: u64 = ["sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login"]
        .iter()
        .map(|column| number(pool, column))
        .sum();
    assert_eq!(servers, 1, "one server connection: {pool:?}");

    // The contrast: in session mode each client keeps a server connection of its own,
    // and its settings stay with it.
    let mut options = PgBouncerOptions::default();
    options.pool_mode = PoolMode::Session;
    let session = pgbouncer(server().await, options).await.unwrap();
    let one = connect(session.url()).await;
    let two = connect(session.url()).await;
    assert_ne!(value(&one, pid).await, value(&two, pid).await);
    one.batch_execute("SET statement_timeout = '4321ms'")
        .await
        .unwrap();
    assert_eq!(value(&two, "SHOW statement_timeout").await, "0");
    let pools = session.show("POOLS").await.unwrap();
    assert_eq!(
        postgres_pool(&pools).get("pool_mode").map(String::as_str),
        Some("session")
    );
}

#[tokio::test]
async fn the_admin_console_answers_show_pools_and_show_stats() {
    let bouncer = bouncer(PgBouncerOptions::default()).await;
    let pooled = connect(bouncer.url()).await;
    for _ in 0..3 {
        assert_eq!(value(&pooled, "SELECT 1").await, "1");
    }

    // The console at its URL, by the simple query protocol (all it speaks).
    let console = connect(bouncer.admin_url()).await;
    let messages = console.simple_query("SHOW POOLS").await.unwrap();
    let databases: Vec<&str> = messages
        .iter()
        .filter_map(|message| match message {
            SimpleQueryMessage::Row(row) => row.get("database"),
            _ => None,
        })
        .collect();
    assert!(
        databases.contains(&"postgres") && databases.contains(&"pgbouncer"),
        "a pool for the server's database and the console's own: {databases:?}"
    );

    let pools = bouncer.show("POOLS").await.unwrap();
    assert_eq!(
        postgres_pool(&pools).get("pool_mode").map(String::as_str),
        Some("transaction")
    );
    let stats = bouncer.show("STATS").await.unwrap();
    let postgres = stats
        .iter()
        .find(|row| row.get("database").map(String::as_str) == Some("postgres"))
        .unwrap_or_else(|| panic!("no stats for postgres in {stats:?}"));
    // The harness's own SELECT 1 when it started PgBouncer, and the three above.
    assert!(
        number(postgres, "total_query_count") >= 4,
        "the queries went through PgBouncer: {postgres:?}"
    );
    assert!(number(postgres, "total_xact_count") >= 4, "{postgres:?}");
}
