//! The shared limit engine ([`ValkeyLimiter`]) against real servers from
//! keyroute-testing: it decides exactly as the in-process engine, holds one limit
//! across three instances under concurrent load (where in-process limiters each admit
//! the limit), falls back and recovers when its server stops and starts, and costs one
//! script call per check (fewer when checks made at the same time share one).
//!
//! Past 500 lines on purpose: each engine property is one test with its own load and
//! measurements, and they share one set of helpers; split, each file would repeat them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use keyroute_core::limits::{Gcra, RateLimit};
use keyroute_core::{ApiKey, AuthError, Environment, KeyHash, KeyId, KeyType, Principal};
use keyroute_router::limits::{
    Check, DefaultLimit, EngineKind, FailMode, Limiter, LimitsConfig, LocalLimiter, SharedEngine,
    ValkeyLimiter, ValkeyUrl, Verdict,
};
use keyroute_store::MemoryStore;
use redis::aio::MultiplexedConnection;

/// A direct connection to `url`, to look at what the engine wrote.
async fn direct(url: &str) -> MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// A principal for a new key (no user, no credits) in `live`.
fn principal() -> Principal {
    let key = ApiKey::new(
        KeyId::random(),
        KeyType::new("secret").unwrap(),
        Environment::new("live").unwrap(),
        KeyHash::of("not a real token"),
        "kr_…abcd",
        Utc::now(),
    );
    Principal::from_api_key(Arc::new(key), None)
}

/// The counter of `principal`'s limit `name` (per key), as `Check::subject` says.
fn subject_of(principal: &Principal, name: &str) -> String {
    format!(
        "key:{}:{}:{name}",
        principal.environment().as_str(),
        principal.key_id().unwrap().as_str()
    )
}

/// `[limits]` on `url` with one default limit for every key.
fn config(
    url: &str,
    prefix: &str,
    limit: RateLimit,
    fail: FailMode,
    timeout: Duration,
    retry_after: Duration,
) -> LimitsConfig {
    let mut config = LimitsConfig::default();
    config.engine = EngineKind::Valkey;
    config.url = Some(ValkeyUrl::from(url));
    config.key_prefix = prefix.to_owned();
    config.on_unavailable = fail;
    config.timeout = timeout;
    config.retry_after = retry_after;
    config.default = vec![DefaultLimit::new(limit)];
    config
}

fn check(subject: &str, gcra: Gcra) -> Check<'_> {
    Check { subject, gcra }
}

/// `a` and `b` decided the same: admitted or refused by the same limit, the same
/// remaining units, and times equal to within `slack` (the engines' clocks differ, and
/// the shared one counts microseconds).
fn assert_same(step: &str, local: &Verdict, shared: &Verdict, slack: Duration) {
    let close = |a: Duration, b: Duration| a.abs_diff(b) <= slack;
    let statuses = |v: &Verdict| match v {
        Verdict::Admitted(s) | Verdict::Refused { statuses: s, .. } => s.clone(),
    };
    let (ls, ss) = (statuses(local), statuses(shared));
    assert_eq!(ls.len(), ss.len(), "{step}: {local:?} vs {shared:?}");
    for (l, s) in ls.iter().zip(&ss) {
        assert_eq!(l.remaining, s.remaining, "{step}: {local:?} vs {shared:?}");
        assert!(
            close(l.reset_after, s.reset_after),
            "{step}: {local:?} vs {shared:?}"
        );
    }
    match (local, shared) {
        (Verdict::Admitted(_), Verdict::Admitted(_)) => {}
        (
            Verdict::Refused {
                index: li,
                retry_after: lr,
                ..
            },
            Verdict::Refused {
                index: si,
                retry_after: sr,
                ..
            },
        ) => {
            assert_eq!(li, si, "{step}: {local:?} vs {shared:?}");
            assert!(close(*lr, *sr), "{step}: {local:?} vs {shared:?}");
        }
        _ => panic!("{step}: the engines disagree: local {local:?}, shared {shared:?}"),
    }
}

/// (a) The same checks, on the in-process engine and on the server, decide the same:
/// a burst admits exactly its size, costs of 0 and over the burst, all or nothing
/// across limits, refunds, and refilling at the rate. The keys on the server are the
/// prefixed subjects, expire when the limiter is full again, and a refusal writes
/// nothing.
#[tokio::test]
async fn decides_exactly_as_the_in_process_engine() {
    let server = keyroute_testing::valkey().await.unwrap();
    let prefix = server.namespace().to_owned();
    let shared = ValkeyLimiter::connect(&ValkeyUrl::from(server.url()), &prefix).unwrap();
    let local = LocalLimiter::new(1_000);
    let mut conn = direct(server.url()).await;
    let slack = Duration::from_millis(200);
    let hour = Duration::from_secs(3600);

    // Each step runs on both engines; the verdicts must match.
    let mut admitted = 0;
    let burst = Gcra::new(10, hour, 5);
    for i in 0..8 {
        let c = [check("key:live:burst:requests", burst)];
        let (l, s) = (local.check(&c, 1), shared.check(&c, 1).await.unwrap());
        assert_same(&format!("burst request {i}"), &l, &s, slack);
        admitted += usize::from(s.admitted());
    }
    assert_eq!(admitted, 5, "a burst of 8 against burst 5 admits exactly 5");

    // What the server holds: the prefixed subject, expiring when the limiter is full
    // again (5 units of 6 minutes: 30 minutes).
    let key = format!("{prefix}key:live:burst:requests");
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        (29 * 60_000..=30 * 60_000).contains(&pttl),
        "the key expires when the limiter is full again: {pttl} ms"
    );
    let before: String = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    let c = [check("key:live:burst:requests", burst)];
    assert!(!shared.check(&c, 1).await.unwrap().admitted());
    let after: String = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(before, after, "a refusal writes nothing");

    // Costs: several units, 0 (asks, spends nothing), over the burst (never).
    let costs = Gcra::new(10, hour, 5);
    for (i, cost) in [3, 3, 0, 2, 0, 1].into_iter().enumerate() {
        let c = [check("key:live:costs:requests", costs)];
        let (l, s) = (local.check(&c, cost), shared.check(&c, cost).await.unwrap());
        assert_same(&format!("cost {cost} (step {i})"), &l, &s, slack);
    }
    let c = [check("key:live:too-big:requests", costs)];
    let (l, s) = (local.check(&c, 6), shared.check(&c, 6).await.unwrap());
    assert_same("a cost over the burst", &l, &s, slack);
    assert!(!s.admitted());

    // Several limits: all or nothing; a refusal spends nothing from the others.
    let wide = Gcra::new(1, hour, 10);
    let narrow = Gcra::new(1, hour, 2);
    for i in 0..3 {
        let c = [
            check("key:live:multi:wide", wide),
            check("key:live:multi:narrow", narrow),
        ];
        let (l, s) = (local.check(&c, 1), shared.check(&c, 1).await.unwrap());
        assert_same(&format!("two limits, request {i}"), &l, &s, slack);
    }
    // The narrow one refused the third: the wide one keeps its 8.
    let mut wide_admitted = 0;
    for i in 0..9 {
        let c = [check("key:live:multi:wide", wide)];
        let (l, s) = (local.check(&c, 1), shared.check(&c, 1).await.unwrap());
        assert_same(&format!("the wide limit alone, request {i}"), &l, &s, slack);
        wide_admitted += usize::from(s.admitted());
    }
    assert_eq!(
        wide_admitted, 8,
        "the refusal spent nothing from the wide limit"
    );
    // The refusing limit is named by its place, whichever it is.
    let c = [
        check("key:live:multi:narrow", narrow),
        check("key:live:multi:other", wide),
    ];
    let (l, s) = (local.check(&c, 1), shared.check(&c, 1).await.unwrap());
    assert_same("the first limit refuses", &l, &s, slack);
    assert!(matches!(s, Verdict::Refused { index: 0, .. }), "{s:?}");
    let other: i64 = redis::cmd("EXISTS")
        .arg(format!("{prefix}key:live:multi:other"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(other, 0, "nothing written for the limit that admitted");

    // Refunds give the cost back, on both.
    let one = Gcra::new(1, hour, 1);
    let c = [check("key:live:refund:requests", one)];
    for (i, refund) in [false, false, true, false, false].into_iter().enumerate() {
        if refund {
            local.refund(&c, 1);
            shared.refund(&c, 1).await.unwrap();
            continue;
        }
        let (l, s) = (local.check(&c, 1), shared.check(&c, 1).await.unwrap());
        assert_same(&format!("refund sequence, step {i}"), &l, &s, slack);
    }

    // Refilling: 10 per second, burst 2; the third is refused for 100 ms, then passes.
    let fast = Gcra::new(10, Duration::from_secs(1), 2);
    let c = [check("key:live:fast:requests", fast)];
    for i in 0..3 {
        let (l, s) = (local.check(&c, 1), shared.check(&c, 1).await.unwrap());
        assert_same(
            &format!("fast limit, request {i}"),
            &l,
            &s,
            Duration::from_millis(50),
        );
    }
    let Verdict::Refused { retry_after, .. } = shared.check(&c, 1).await.unwrap() else {
        panic!("the burst is spent")
    };
    assert!(retry_after <= Duration::from_millis(100), "{retry_after:?}");
    tokio::time::sleep(retry_after + Duration::from_millis(5)).await;
    let (l, s) = (local.check(&c, 1), shared.check(&c, 1).await.unwrap());
    assert!(l.admitted() && s.admitted(), "{l:?} {s:?}");
    // Idle, the limiter is full again within 200 ms and its key is gone.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let exists: i64 = redis::cmd("EXISTS")
        .arg(format!("{prefix}key:live:fast:requests"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(exists, 0, "an idle limiter costs the server nothing");
}

/// (a, concurrently) Fifty checks at once against a burst of 7: exactly 7 admitted.
#[tokio::test]
async fn a_concurrent_burst_admits_exactly_the_burst() {
    let server = keyroute_testing::valkey().await.unwrap();
    let engine = Arc::new(
        ValkeyLimiter::connect(&ValkeyUrl::from(server.url()), server.namespace()).unwrap(),
    );
    let gcra = Gcra::new(1, Duration::from_secs(3600), 7);
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let engine = Arc::clone(&engine);
            tokio::spawn(async move {
                let c = [check("key:live:crowd:requests", gcra)];
                engine.check(&c, 1).await.unwrap().admitted()
            })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        admitted += usize::from(task.await.unwrap());
    }
    assert_eq!(admitted, 7);
}

/// Runs `tasks` tasks per limiter, each asking `limiter.admit` for `principal` every
/// 2 ms until `run` is over: how many each limiter admitted, and how long it took
/// from the first request sent to the last answer.
async fn load(
    limiters: &[Limiter],
    principal: &Principal,
    tasks: usize,
    run: Duration,
) -> (Vec<u64>, Duration) {
    let store = Arc::new(MemoryStore::new());
    let start = Instant::now();
    let deadline = start + run;
    let counts: Vec<Arc<AtomicU64>> = limiters.iter().map(|_| Arc::default()).collect();
    let mut handles = Vec::new();
    for (limiter, count) in limiters.iter().zip(&counts) {
        for _ in 0..tasks {
            let (limiter, count) = (limiter.clone(), Arc::clone(count));
            let (store, principal) = (Arc::clone(&store), principal.clone());
            handles.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    match limiter
                        .admit(&*store, principal.clone(), 1, Utc::now())
                        .await
                    {
                        Ok(_) => {
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(AuthError::RateLimited(_)) => {}
                        Err(other) => panic!("unexpected refusal: {other:?}"),
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }));
        }
    }
    for handle in handles {
        handle.await.unwrap();
    }
    let elapsed = start.elapsed();
    (
        counts.iter().map(|c| c.load(Ordering::Relaxed)).collect(),
        elapsed,
    )
}

/// (b) Three instances, each with its own connection, share one limit (50 per second,
/// burst 10) under concurrent load for 2 s: together they admit no more than the
/// limit allows in the time measured (burst + elapsed × rate, the exact GCRA bound)
/// and at least 90 % of it. Three in-process limiters under the same load each admit
/// the limit: more than one instance's bound, at most three times it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_one_limit_under_load() {
    let server = keyroute_testing::valkey().await.unwrap();
    let limit = RateLimit::new("requests", 50, Duration::from_secs(1))
        .unwrap()
        .with_burst(10)
        .unwrap();
    let interval = limit.gcra().interval();
    let config = config(
        server.url(),
        server.namespace(),
        limit,
        FailMode::Refuse,
        // Generous: a slow answer under load must not fall back (and count locally).
        Duration::from_secs(5),
        Duration::from_secs(1),
    );
    let bound =
        |elapsed: Duration| 10 + u64::try_from(elapsed.as_nanos() / u128::from(interval)).unwrap();

    let mut shared = Vec::new();
    for _ in 0..3 {
        shared.push(Limiter::from_config(&config).await.unwrap());
    }
    let who = principal();
    let (counts, elapsed) = load(&shared, &who, 8, Duration::from_secs(2)).await;
    let total: u64 = counts.iter().sum();
    let max = bound(elapsed);
    println!(
        "valkey, 3 instances × 8 tasks, 50/s burst 10: admitted {counts:?} = {total} in {:.3} s; GCRA bound {max}, 90 % = {:.1}",
        elapsed.as_secs_f64(),
        max as f64 * 0.9
    );
    assert!(total <= max, "admitted {total} > bound {max}");
    assert!(
        total as f64 >= max as f64 * 0.9,
        "admitted {total} < 90 % of {max}: it refuses more than the limit"
    );
    assert!(
        counts.iter().all(|&c| c > 0),
        "every instance is served: {counts:?}"
    );

    let in_process: Vec<Limiter> = (0..3).map(|_| Limiter::in_process(&config)).collect();
    let who = principal();
    let (counts, elapsed) = load(&in_process, &who, 8, Duration::from_secs(2)).await;
    let total: u64 = counts.iter().sum();
    let max = bound(elapsed);
    println!(
        "in process, 3 instances × 8 tasks, 50/s burst 10: admitted {counts:?} = {total} in {:.3} s; one instance's bound {max}, three {}",
        elapsed.as_secs_f64(),
        3 * max
    );
    assert!(
        total > max,
        "in process, instances do not share: {total} > {max}"
    );
    assert!(total <= 3 * max, "N instances admit at most N × the limit");
    for count in counts {
        assert!(
            count <= max,
            "each instance keeps the limit: {count} > {max}"
        );
    }
}

/// Whether `limiter`'s checks reach the server: a new key admitted through it leaves
/// its counter there.
async fn reaches_server(limiter: &Limiter, conn: &mut MultiplexedConnection, prefix: &str) -> bool {
    let who = principal();
    let store = MemoryStore::new();
    if limiter
        .admit(&store, who.clone(), 1, Utc::now())
        .await
        .is_err()
    {
        return false;
    }
    let key = format!("{prefix}{}", subject_of(&who, "requests"));
    redis::cmd("EXISTS")
        .arg(&key)
        .query_async::<i64>(conn)
        .await
        .is_ok_and(|n| n == 1)
}

/// (c) The server stops mid-run: a limit set to refuse answers `LimitsUnavailable`
/// at once (the breaker and the timeout), one set to `local` keeps admitting within
/// its own limit; once the server is back (empty), checks are shared again within a
/// few seconds, and the shared counter is consumed across instances again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falls_back_while_the_server_is_down_and_shares_again_after() {
    let server = keyroute_testing::valkey_restartable().await.unwrap();
    let prefix = "kr:limits:";
    let limit = RateLimit::new("requests", 5, Duration::from_secs(10))
        .unwrap()
        .with_burst(5)
        .unwrap();
    let timeout = Duration::from_millis(250);
    let retry_after = Duration::from_millis(200);
    let lenient = config(
        server.url(),
        prefix,
        limit.clone(),
        FailMode::Local,
        timeout,
        retry_after,
    );
    let strict = config(
        server.url(),
        prefix,
        limit,
        FailMode::Refuse,
        timeout,
        retry_after,
    );
    let a = Limiter::from_config(&lenient).await.unwrap();
    let b = Limiter::from_config(&lenient).await.unwrap();
    let c = Limiter::from_config(&strict).await.unwrap();
    let store = MemoryStore::new();

    // Up: a and b share key 1's 5 units.
    let one = principal();
    let mut admitted = 0;
    for limiter in [&a, &a, &a, &b, &b, &b, &a] {
        admitted += usize::from(
            limiter
                .admit(&store, one.clone(), 1, Utc::now())
                .await
                .is_ok(),
        );
    }
    assert_eq!(admitted, 5, "shared: 5 of 7 across two instances");
    let two = principal();
    c.admit(&store, two.clone(), 1, Utc::now()).await.unwrap();

    server.stop().await.unwrap();

    // Down: the strict limit refuses, fast.
    let mut slowest = Duration::ZERO;
    let started = Instant::now();
    for _ in 0..20 {
        let asked = Instant::now();
        let answer = c.admit(&store, two.clone(), 1, Utc::now()).await;
        slowest = slowest.max(asked.elapsed());
        assert!(
            matches!(answer, Err(AuthError::LimitsUnavailable)),
            "{answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    println!(
        "server down: 20 checks on a `refuse` limit, all LimitsUnavailable in {:.3} s; slowest {} ms",
        started.elapsed().as_secs_f64(),
        slowest.as_millis()
    );
    assert!(slowest < Duration::from_millis(600), "{slowest:?}");

    // Down: the lenient limit counts on this instance alone (a fresh local limiter:
    // its 5 units, then one per 2 s).
    let started = Instant::now();
    let mut local_admitted = 0u64;
    for _ in 0..10 {
        match a.admit(&store, one.clone(), 1, Utc::now()).await {
            Ok(_) => local_admitted += 1,
            Err(AuthError::RateLimited(_)) => {}
            Err(other) => panic!("unexpected: {other:?}"),
        }
    }
    let local_bound = 5 + started.elapsed().as_secs() / 2;
    println!(
        "server down: 10 checks on a `local` limit admitted {local_admitted} (local bound {local_bound}) in {:.3} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        (5..=local_bound).contains(&local_admitted),
        "{local_admitted}"
    );

    server.start().await.unwrap();
    let restarted = Instant::now();
    let mut conn_after = direct(server.url()).await;

    // Back: each instance reaches the server again within a few seconds.
    for (name, limiter) in [("a", &a), ("b", &b), ("c", &c)] {
        loop {
            if reaches_server(limiter, &mut conn_after, prefix).await {
                println!(
                    "server back: instance {name} shares again {} ms after start() returned",
                    restarted.elapsed().as_millis()
                );
                break;
            }
            assert!(
                restarted.elapsed() < Duration::from_secs(5),
                "instance {name} does not share again"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // And the counter is shared: a new key's 5 units, across a and b.
    let three = principal();
    let mut admitted = 0;
    for limiter in [&a, &b, &a, &b, &a, &b, &a] {
        admitted += usize::from(
            limiter
                .admit(&store, three.clone(), 1, Utc::now())
                .await
                .is_ok(),
        );
    }
    assert_eq!(admitted, 5, "shared again: 5 of 7 across two instances");
    let tat: Option<String> = redis::cmd("GET")
        .arg(format!("{prefix}{}", subject_of(&three, "requests")))
        .query_async(&mut conn_after)
        .await
        .unwrap();
    println!("server back: the shared counter holds TAT {tat:?} (µs, server clock)");
    assert!(tat.is_some());
    c.admit(&store, two, 1, Utc::now()).await.unwrap();
}

/// `INFO commandstats` as calls per command.
async fn command_calls(conn: &mut MultiplexedConnection) -> HashMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap();
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats.split(',').find_map(|s| s.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect()
}

/// The commands the scripts run inside the server (counted in `commandstats` too, but
/// no round trip of their own).
const IN_SCRIPT: [&str; 4] = ["time", "get", "set", "del"];

/// The client commands that changed between two snapshots: INFO itself and the
/// scripts' own commands left out.
fn delta(before: &HashMap<String, u64>, after: &HashMap<String, u64>) -> Vec<(String, u64)> {
    let mut changed: Vec<(String, u64)> = after
        .iter()
        .filter(|(name, _)| name.as_str() != "info" && !IN_SCRIPT.contains(&name.as_str()))
        .map(|(name, n)| (name.clone(), n - before.get(name).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    changed.sort();
    changed
}

/// (d) One script call per check, however many limits: 100 checks of two limits, one
/// after another, are 100 `EVALSHA`s and nothing else; a server that forgot the script gets it back with
/// one `EVAL`.
#[tokio::test]
async fn one_script_call_per_check() {
    // A server of its own: no other test's commands in its statistics.
    let server = keyroute_testing::valkey_restartable().await.unwrap();
    let engine = ValkeyLimiter::connect(&ValkeyUrl::from(server.url()), "kr:").unwrap();
    let mut conn = direct(server.url()).await;
    let wide = Gcra::new(1_000, Duration::from_secs(1), 1_000);
    let narrow = Gcra::new(100, Duration::from_secs(1), 200);
    let checks = [
        check("key:live:k:requests", wide),
        check("tenant:live:t:requests", narrow),
    ];
    // The first check connects and gives the server the script.
    assert!(engine.check(&checks, 1).await.unwrap().admitted());

    let before = command_calls(&mut conn).await;
    let mut admitted = 0;
    for _ in 0..100 {
        admitted += usize::from(engine.check(&checks, 1).await.unwrap().admitted());
    }
    let after = command_calls(&mut conn).await;
    let changed = delta(&before, &after);
    let inside: Vec<(&str, u64)> = IN_SCRIPT
        .iter()
        .map(|&n| {
            (
                n,
                after.get(n).copied().unwrap_or(0) - before.get(n).copied().unwrap_or(0),
            )
        })
        .collect();
    println!(
        "100 checks of 2 limits ({admitted} admitted): client commands {changed:?}; run inside the script {inside:?}"
    );
    assert_eq!(changed, vec![("evalsha".to_owned(), 100)]);
    assert_eq!(inside[0], ("time", 100), "one clock read per check");

    let () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();
    let before = command_calls(&mut conn).await;
    assert!(engine.check(&checks, 1).await.unwrap().admitted());
    let after = command_calls(&mut conn).await;
    let changed = delta(&before, &after);
    println!("1 check after SCRIPT FLUSH: commands {changed:?}");
    assert_eq!(
        changed.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["eval", "evalsha"],
        "NOSCRIPT, then EVAL: {changed:?}"
    );
    assert_eq!(
        changed.iter().find(|(n, _)| n == "eval").map(|(_, c)| *c),
        Some(1)
    );
}

/// (d, under load) Checks made at the same time share script calls, and sharing
/// changes no decision: 400 checks at once over 10 limiters with a burst of 7 each
/// admit exactly 70 (several checks of one limiter in one call each see the ones
/// before them), in fewer `EVALSHA`s than checks, one clock read per call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_checks_share_calls_and_stay_exact() {
    let server = keyroute_testing::valkey_restartable().await.unwrap();
    let engine = Arc::new(ValkeyLimiter::connect(&ValkeyUrl::from(server.url()), "kr:").unwrap());
    let mut conn = direct(server.url()).await;
    let gcra = Gcra::new(1, Duration::from_secs(3600), 7);
    // Connected, with the script on the server.
    let warm = [check("key:live:warm:requests", gcra)];
    assert!(engine.check(&warm, 1).await.unwrap().admitted());

    let before = command_calls(&mut conn).await;
    let tasks: Vec<_> = (0..400)
        .map(|i| {
            let engine = Arc::clone(&engine);
            tokio::spawn(async move {
                let subject = format!("key:live:k{}:requests", i % 10);
                let c = [check(&subject, gcra)];
                engine.check(&c, 1).await.unwrap().admitted()
            })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        admitted += usize::from(task.await.unwrap());
    }
    let after = command_calls(&mut conn).await;
    let calls = |n: &str| after.get(n).copied().unwrap_or(0) - before.get(n).copied().unwrap_or(0);
    println!(
        "400 concurrent checks: {admitted} admitted in {} EVALSHA calls ({} clock reads)",
        calls("evalsha"),
        calls("time")
    );
    assert_eq!(admitted, 70, "exactly each limiter's burst");
    assert!(
        (1..400).contains(&calls("evalsha")),
        "checks made at once share calls: {} calls",
        calls("evalsha")
    );
    assert_eq!(calls("time"), calls("evalsha"), "one clock read per call");
    assert_eq!(calls("eval"), 0);
}

/// An unreachable server is no error when connecting, an `EngineError` naming
/// `[limits] url` when checking (the limiter then falls back), and its password shows
/// nowhere.
#[tokio::test]
async fn an_unreachable_server_is_an_engine_error_without_the_password() {
    // Nothing listens on port 1.
    let url = ValkeyUrl::from("redis://:s3cret-pw@127.0.0.1:1");
    let engine = ValkeyLimiter::connect(&url, "kr:").unwrap();
    let shown = format!("{engine:?}");
    assert!(!shown.contains("s3cret"), "{shown}");
    let gcra = Gcra::new(1, Duration::from_secs(1), 1);
    for _ in 0..2 {
        let started = Instant::now();
        let error = engine
            .check(&[check("key:live:x:requests", gcra)], 1)
            .await
            .unwrap_err();
        let message = error.to_string();
        println!(
            "unreachable: {message} (after {} ms)",
            started.elapsed().as_millis()
        );
        assert!(message.contains("[limits] url"), "{message}");
        assert!(!message.contains("s3cret"), "{message}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
    assert!(ValkeyLimiter::connect(&ValkeyUrl::from("http://127.0.0.1:6379"), "kr:").is_err());

    // Through the limiter: fallbacks, and a fast answer.
    let limit = RateLimit::new("requests", 1, Duration::from_secs(60)).unwrap();
    let store = MemoryStore::new();
    for (fail, refuses) in [(FailMode::Local, false), (FailMode::Refuse, true)] {
        let config = config(
            url.expose(),
            "kr:",
            limit.clone(),
            fail,
            Duration::from_millis(100),
            Duration::from_secs(1),
        );
        let limiter = Limiter::from_config(&config).await.unwrap();
        assert!(!format!("{limiter:?}").contains("s3cret"));
        let started = Instant::now();
        let answer = limiter.admit(&store, principal(), 1, Utc::now()).await;
        assert!(started.elapsed() < Duration::from_millis(500));
        if refuses {
            assert!(
                matches!(answer, Err(AuthError::LimitsUnavailable)),
                "{answer:?}"
            );
        } else {
            assert!(answer.is_ok(), "{answer:?}");
        }
    }
}

/// `connect` outside any runtime (synchronous configuration code) neither panics nor
/// connects; the first check, inside one, does.
#[test]
fn connect_outside_a_runtime_connects_on_the_first_check() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(keyroute_testing::valkey()).unwrap();
    let engine =
        ValkeyLimiter::connect(&ValkeyUrl::from(server.url()), server.namespace()).unwrap();
    let gcra = Gcra::new(1, Duration::from_secs(60), 1);
    let verdicts = runtime.block_on(async {
        let c = [check("key:live:sync:requests", gcra)];
        (
            engine.check(&c, 1).await.unwrap(),
            engine.check(&c, 1).await.unwrap(),
        )
    });
    assert!(
        verdicts.0.admitted() && !verdicts.1.admitted(),
        "{verdicts:?}"
    );
}

/// `rediss://` builds its TLS (rustls on ring) and fails cleanly, without a panic,
/// against a server that does not speak TLS.
#[tokio::test]
async fn tls_to_a_plain_server_is_an_engine_error() {
    let server = keyroute_testing::valkey().await.unwrap();
    let url = server.url().replacen("redis://", "rediss://", 1);
    let engine =
        ValkeyLimiter::connect(&ValkeyUrl::from(url.as_str()), server.namespace()).unwrap();
    let gcra = Gcra::new(1, Duration::from_secs(1), 1);
    let error = engine
        .check(&[check("key:live:tls:requests", gcra)], 1)
        .await
        .unwrap_err();
    println!("rediss:// to a plain server: {error}");
    assert!(error.to_string().contains("[limits] url"), "{error}");
}
