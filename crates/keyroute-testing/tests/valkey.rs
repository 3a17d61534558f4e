//! The Redis-protocol servers: the shared one answers through the `redis` crate, each
//! `valkey()` call gets a namespace of its own, and a dedicated server survives
//! `stop()` / `start()` at the same URL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;

/// A new connection to `url`.
async fn connect(url: &str) -> redis::RedisResult<MultiplexedConnection> {
    redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await
}

/// The keys matching `pattern`, by SCAN.
async fn scan(conn: &mut MultiplexedConnection, pattern: &str) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    let mut iter = conn.scan_match::<_, String>(pattern).await.unwrap();
    while let Some(key) = iter.next_item().await {
        keys.push(key.unwrap());
    }
    keys.sort();
    keys
}

#[tokio::test]
async fn the_shared_server_answers_ping_set_and_get() {
    let server = keyroute_testing::valkey().await.unwrap();
    assert!(
        server.url().starts_with("redis://127.0.0.1:"),
        "the loopback published port: {}",
        server.url()
    );
    let mut conn = connect(server.url()).await.unwrap();
    let pong: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
    assert_eq!(pong, "PONG");

    let key = server.key("greeting");
    assert!(key.starts_with(server.namespace()));
    let () = conn.set(&key, "hello").await.unwrap();
    let value: Option<String> = conn.get(&key).await.unwrap();
    assert_eq!(value.as_deref(), Some("hello"));
}

#[tokio::test]
async fn each_call_gets_its_own_namespace_on_the_same_server() {
    let a = keyroute_testing::valkey().await.unwrap();
    let b = keyroute_testing::valkey().await.unwrap();
    assert_eq!(a.url(), b.url(), "one server per test binary");
    assert_ne!(a.namespace(), b.namespace());
    assert!(
        !a.namespace().starts_with(b.namespace()) && !b.namespace().starts_with(a.namespace()),
        "neither namespace is a prefix of the other: {} {}",
        a.namespace(),
        b.namespace()
    );

    let mut conn = connect(a.url()).await.unwrap();
    let () = conn.set(a.key("counter"), 1).await.unwrap();
    let () = conn.set(b.key("counter"), 2).await.unwrap();
    let () = conn.set(b.key("other"), 3).await.unwrap();
    let (in_a, in_b): (i64, i64) = redis::pipe()
        .get(a.key("counter"))
        .get(b.key("counter"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!((in_a, in_b), (1, 2));
    assert_eq!(
        scan(&mut conn, &format!("{}*", a.namespace())).await,
        vec![a.key("counter")],
        "a sees none of b's keys"
    );
    assert_eq!(
        scan(&mut conn, &format!("{}*", b.namespace())).await,
        vec![b.key("counter"), b.key("other")]
    );
}

#[tokio::test]
async fn a_dedicated_server_survives_stop_and_start_at_the_same_url() {
    let server = keyroute_testing::valkey_restartable().await.unwrap();
    let url = server.url().to_owned();
    assert_eq!(url, format!("redis://127.0.0.1:{}", server.port()));
    let mut conn = connect(&url).await.unwrap();
    let () = conn.set("before", "stop").await.unwrap();

    server.stop().await.unwrap();
    assert!(
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .is_err(),
        "the old connection is broken"
    );
    assert!(
        connect(&url).await.is_err(),
        "nothing listens while stopped"
    );

    server.start().await.unwrap();
    assert_eq!(server.url(), url, "the same URL after the restart");
    let mut conn = connect(&url).await.unwrap();
    let pong: String = redis::cmd("PING").query_async(&mut conn).await.unwrap();
    assert_eq!(pong, "PONG");
    let before: Option<String> = conn.get("before").await.unwrap();
    assert_eq!(before, None, "nothing is kept on disk: it starts empty");
    let () = conn.set("after", "start").await.unwrap();
    let after: Option<String> = conn.get("after").await.unwrap();
    assert_eq!(after.as_deref(), Some("start"));
}
