//! One mode's run, phase by phase: build the instances, issue the keys, an idle
//! window (no requests: what the instances cost doing nothing), the prefill (every
//! instance resolves every active key once: a fleet's cold start), the fixed-rate
//! load's warm-up, the measured window, and the revocations under the same load.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keyroute::store::{DatabaseUrl, Pooler};
use keyroute_testing::TestPgBouncer;

use super::fleet::{Fleet, FleetSettings, Propagation};
use super::observe::{Connections, Delta, Monitor, Snapshot};
use super::warnings::Warnings;
use super::{Failure, Outcome};

/// The run's shape, the same for every mode.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Instances (`N`).
    pub(crate) instances: usize,
    /// Active keys the load spreads over (`M`).
    pub(crate) keys: usize,
    /// Keys revoked one at a time during the load (`K`), issued besides the active ones.
    pub(crate) revocations: usize,
    /// Requests per second, all instances together.
    pub(crate) rate: f64,
    /// `[pools] max_size`.
    pub(crate) pool_size: u32,
    /// `[resolver] last_used_interval`.
    pub(crate) last_used_interval: Duration,
    /// The window with no requests.
    pub(crate) idle: Duration,
    /// Load before the measured window.
    pub(crate) warmup: Duration,
    /// The measured window.
    pub(crate) duration: Duration,
    /// How long an instance may keep accepting a revoked key before it counts as a
    /// failure (the documented bound is 1 s).
    pub(crate) limit: Duration,
}

/// Where a mode's instances connect.
#[derive(Debug)]
pub(crate) struct Target<'a> {
    /// The mode's name.
    pub(crate) name: &'static str,
    /// `[pools] pooler`.
    pub(crate) pooler: Pooler,
    /// The connections' URL (through PgBouncer in transaction mode).
    pub(crate) url: DatabaseUrl,
    /// The same database directly (`[store] direct_url` behind PgBouncer).
    pub(crate) direct: DatabaseUrl,
    /// The server's administrative database, directly (the monitor's).
    pub(crate) admin: DatabaseUrl,
    /// The database's name.
    pub(crate) database: String,
    /// PgBouncer, when it is in front.
    pub(crate) bouncer: Option<&'a TestPgBouncer>,
}

/// What one mode's run measured.
#[derive(Debug)]
pub(crate) struct Measured {
    /// `[resolver] feed_poll_interval` of the instances.
    pub(crate) feed_poll_interval: Duration,
    /// `[apikey] session_cache_duration` of the instances.
    pub(crate) cache_duration: Option<Duration>,
    /// Time from the prefill's start to the measured window's end.
    pub(crate) prefill_to_window_end: Duration,
    /// The idle window.
    pub(crate) idle: Delta,
    /// Connections at the end of the idle window (before the prefill).
    pub(crate) idle_connections: Connections,
    /// The prefill, and how long it took.
    pub(crate) prefill: (Delta, Duration),
    /// The measured window.
    pub(crate) steady: Delta,
    /// Requests sent, answered and failed in the measured window.
    pub(crate) steady_requests: (u64, u64, u64),
    /// Connections half-way through the measured window.
    pub(crate) connections: Connections,
    /// The revocation phase.
    pub(crate) revocations: Delta,
    /// Keys revoked.
    pub(crate) revoked: usize,
    /// The propagation times.
    pub(crate) propagation: Propagation,
    /// Requests sent, answered and failed over the whole load, and the first failure.
    pub(crate) load_total: ((u64, u64, u64), Option<String>),
    /// Keys with a last-used stamp at the end, and keys in all: working ones, then
    /// revoked ones.
    pub(crate) stamped: [i64; 4],
}

/// How long PostgreSQL may keep a backend's counters after it went idle (its
/// `PGSTAT_IDLE_INTERVAL`, 10 s), and a margin.
const SETTLE: Duration = Duration::from_millis(10_500);

/// The counters at a window's boundary: every listener is first made to publish the
/// transactions it counted ([`Monitor::flush_listeners`]).
async fn mark(monitor: &Monitor<'_>) -> Outcome<Snapshot> {
    monitor.flush_listeners(Duration::from_millis(600)).await?;
    monitor.snapshot().await
}

/// Runs one mode, printing each phase as it ends.
pub(crate) async fn run_mode(
    plan: &Plan,
    target: &Target<'_>,
    warnings: &Warnings,
    out: &mut impl Write,
) -> Outcome<Measured> {
    let started = Instant::now();
    // Each phase's line, then keyroute's warnings during the phase.
    let mut say = |line: String| -> std::io::Result<()> {
        writeln!(out, "  [{:5.1} s] {line}", started.elapsed().as_secs_f64())?;
        for (message, (count, first)) in warnings.take() {
            writeln!(
                out,
                "             keyroute warned {count} x during this phase: {message} (first: {first})"
            )?;
        }
        Ok(())
    };
    let monitor = Monitor::new(
        &target.admin,
        &target.direct,
        &target.database,
        target.bouncer,
    )
    .await?;
    let settings = FleetSettings {
        instances: plan.instances,
        pool_size: plan.pool_size,
        pooler: target.pooler,
        last_used_interval: plan.last_used_interval,
    };
    let direct = target.bouncer.map(|_| &target.direct);
    let config = super::fleet::config(&target.url, direct, &settings);
    let fleet = Fleet::build(config, &settings).await?;
    let live = fleet.wait_until_caching(Duration::from_secs(15)).await?;
    say(format!(
        "{} instances built; every change feed live {:.0} ms later",
        plan.instances,
        super::ms(live)
    ))?;

    let users = (plan.keys + plan.revocations).div_ceil(2);
    let began = Instant::now();
    let mut issued = fleet.issue(users).await?;
    issued.truncate(plan.keys + plan.revocations);
    say(format!(
        "{} keys issued ({users} users, a live and a test key each, spread over the instances, which register concurrently) in {:.1} s",
        issued.len(),
        began.elapsed().as_secs_f64()
    ))?;
    if issued.len() < plan.keys + plan.revocations {
        return Err(Failure::new(format!(
            "{} keys issued, {} needed",
            issued.len(),
            plan.keys + plan.revocations
        )));
    }
    let to_revoke = issued.split_off(plan.keys);
    let active: Arc<Vec<String>> = Arc::new(issued.into_iter().map(|k| k.secret).collect());

    // Registering the keys is a burst whose counters PostgreSQL may publish up to
    // 10 s later: the idle window starts after that.
    tokio::time::sleep(SETTLE).await;
    let before = mark(&monitor).await?;
    tokio::time::sleep(plan.idle).await;
    let idle = before.delta(&mark(&monitor).await?);
    let idle_connections = monitor.connections().await?;
    say(format!(
        "idle window: {:.1} s, no requests (after {:.1} s for the counters to settle)",
        idle.seconds,
        SETTLE.as_secs_f64()
    ))?;

    let before = mark(&monitor).await?;
    let prefill_started = Instant::now();
    fleet
        .prefill(&active, usize::try_from(plan.pool_size).unwrap_or(1))
        .await?;
    let prefill_time = prefill_started.elapsed();
    let prefill = before.delta(&mark(&monitor).await?);
    say(format!(
        "prefill: every instance resolved the {} active keys once ({} resolves) in {:.1} s",
        active.len(),
        active.len() * plan.instances,
        prefill_time.as_secs_f64()
    ))?;

    let load = fleet.start_load(&active, plan.rate);
    tokio::time::sleep(plan.warmup).await;
    say(format!(
        "load: {:.0} requests/s ({:.1} per instance), warmed up {:.1} s",
        plan.rate,
        plan.rate / plan.instances as f64,
        plan.warmup.as_secs_f64()
    ))?;
    let (before, counts) = (mark(&monitor).await?, load.counts());
    tokio::time::sleep(plan.duration / 2).await;
    let connections = monitor.connections().await?;
    tokio::time::sleep(plan.duration / 2).await;
    let (after, counted) = (mark(&monitor).await?, load.counts());
    let prefill_to_window_end = prefill_started.elapsed();
    let steady = before.delta(&after);
    let steady_requests = (
        counted.0 - counts.0,
        counted.1 - counts.1,
        counted.2 - counts.2,
    );
    say(format!(
        "measured window: {:.1} s, {} requests sent, {} answered Ok, {} failed",
        steady.seconds, steady_requests.0, steady_requests.1, steady_requests.2
    ))?;

    let before = mark(&monitor).await?;
    let propagation = fleet.propagation(&to_revoke, plan.limit).await?;
    let revocations = before.delta(&mark(&monitor).await?);
    say(format!(
        "{} keys revoked on instance 0 under the same load in {:.1} s",
        to_revoke.len(),
        revocations.seconds
    ))?;
    let load_total = load.stop().await;
    // Past one more batch of last-used stamps.
    tokio::time::sleep(plan.last_used_interval + Duration::from_millis(500)).await;
    let stamped = monitor.stamped().await?;
    let feed_poll_interval = fleet.config.resolver.feed_poll_interval;
    let cache_duration = fleet.config.apikey.session_cache_duration;
    fleet.shut_down();
    Ok(Measured {
        feed_poll_interval,
        cache_duration,
        prefill_to_window_end,
        idle,
        idle_connections,
        prefill: (prefill, prefill_time),
        steady,
        steady_requests,
        connections,
        revocations,
        revoked: to_revoke.len(),
        propagation,
        load_total,
        stamped,
    })
}
