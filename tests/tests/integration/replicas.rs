//! Read replicas on PostgreSQL: a caller reads its own writes while the replica lags,
//! other callers read from the replica, and a replica that lags beyond the bound or is
//! down sends reads to the primary, with no error.
//!
//! The replica is a second database the test copies the primary's rows into late (a
//! replica that is really behind); it is not a standby, so its measured lag is 0 unless
//! a lag query says otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use keyroute::auth::AuthMethod;
use keyroute::routing::{ConnectionRouter, RouterBuilder};
use keyroute::store::{DatabaseUrl, Postgres};
use keyroute::{Environment, Principal, UserId};

#[derive(QueryableByName)]
struct Body {
    #[diesel(sql_type = Text)]
    body: String,
}

fn caller(user: &str) -> Principal {
    Principal::from_claims(AuthMethod::ApiKey, Environment::LIVE)
        .with_user_id(Some(UserId::new(user).unwrap()))
}

async fn notes(url: &DatabaseUrl) {
    let mut conn = AsyncPgConnection::establish(url.expose_secret())
        .await
        .unwrap();
    conn.batch_execute("CREATE TABLE notes (body TEXT NOT NULL)")
        .await
        .unwrap();
}

/// What `principal` reads, and from which connection.
async fn read(router: &ConnectionRouter<Postgres>, principal: &Principal) -> (String, Vec<String>) {
    let mut conn = router.read_connection(principal).await.unwrap();
    let rows: Vec<Body> = diesel::sql_query("SELECT body FROM notes ORDER BY body")
        .load(&mut *conn)
        .await
        .unwrap();
    let name = conn.name().to_owned();
    conn.commit().await.unwrap();
    (name, rows.into_iter().map(|r| r.body).collect())
}

/// Reads until the replica's lag has been measured (the first reads go to the primary).
async fn warm(router: &ConnectionRouter<Postgres>, principal: &Principal) {
    for _ in 0..50 {
        if read(router, principal).await.0.contains("#replica") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the replica never served a read");
}

fn builder(primary: &DatabaseUrl, replica: &DatabaseUrl) -> RouterBuilder<Postgres> {
    ConnectionRouter::<Postgres>::builder()
        .connection("live", primary.clone())
        .replicas("live", [replica.clone()])
        .read_your_writes(Duration::from_millis(500))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_reads_its_own_writes_while_the_replica_lags() {
    let primary = keyroute_testing::postgres().await.unwrap();
    let replica = keyroute_testing::postgres().await.unwrap();
    notes(primary.url()).await;
    notes(replica.url()).await;
    let router = builder(primary.url(), replica.url()).build().unwrap();
    let (ada, bob) = (caller("ada"), caller("bob"));
    warm(&router, &bob).await;

    // Ada writes on the primary; the replica has not caught up.
    let mut write = router.connection(&ada).await.unwrap();
    write
        .batch_execute("INSERT INTO notes VALUES ('ada-1')")
        .await
        .unwrap();
    write.commit().await.unwrap();

    // Ada reads her write at once: from the primary.
    let (from, rows) = read(&router, &ada).await;
    assert_eq!(from, "live");
    assert_eq!(rows, ["ada-1"]);
    // Bob, who wrote nothing, reads the replica, which does not have it yet.
    let (from, rows) = read(&router, &bob).await;
    assert_eq!(from, "live#replica-1");
    assert!(rows.is_empty());

    // The replica catches up; after read_your_writes Ada reads from it too.
    let mut late = AsyncPgConnection::establish(replica.url().expose_secret())
        .await
        .unwrap();
    late.batch_execute("INSERT INTO notes VALUES ('ada-1')")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (from, rows) = read(&router, &ada).await;
    assert_eq!(from, "live#replica-1");
    assert_eq!(rows, ["ada-1"]);
}

/// A replica whose measured lag is beyond `replica_max_lag` serves no reads; one that
/// is down neither: both read from the primary, with no error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_or_down_replica_sends_reads_to_the_primary() {
    let primary = keyroute_testing::postgres().await.unwrap();
    let replica = keyroute_testing::postgres().await.unwrap();
    notes(primary.url()).await;
    notes(replica.url()).await;
    let bob = caller("bob");

    let behind = builder(primary.url(), replica.url())
        .replica_max_lag(Duration::from_secs(5))
        .replica_lag_query("SELECT 60000::bigint AS lag_ms")
        .build()
        .unwrap();
    for _ in 0..20 {
        assert_eq!(read(&behind, &bob).await.0, "live", "a replica 60 s behind");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut down_settings = keyroute::store::PoolSettings::default();
    down_settings.connect_timeout = Duration::from_millis(200);
    down_settings.connection_timeout = Duration::from_millis(500);
    let down = ConnectionRouter::<Postgres>::builder()
        .pool_settings(down_settings)
        .connection("live", primary.url().clone())
        .replicas(
            "live",
            [DatabaseUrl::new("postgres://app:pw@127.0.0.1:1/gone")],
        )
        .build()
        .unwrap();
    for _ in 0..20 {
        assert_eq!(read(&down, &bob).await.0, "live", "a replica that is down");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `[replicas]` names configured connections only.
#[test]
fn replicas_of_an_unknown_connection_are_refused() {
    let config = keyroute::Config::from_toml_str(
        "[connections]\nlive = \"postgres://db/live\"\n[replicas]\nlve = [\"postgres://r/live\"]\n",
    )
    .unwrap();
    let err = config.router.router::<Postgres>().unwrap_err();
    assert!(err.to_string().contains("[replicas] option `lve`"), "{err}");
    // A delay the write memory cannot hold is a configuration error, not a panic.
    let err = ConnectionRouter::<Postgres>::builder()
        .connection("live", DatabaseUrl::new("postgres://db/live"))
        .replicas("live", [DatabaseUrl::new("postgres://r/live")])
        .read_your_writes(Duration::MAX)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("read_your_writes"), "{err}");
}
