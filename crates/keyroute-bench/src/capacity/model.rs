//! The capacity model: what `N` instances cost one PostgreSQL, predicted from the
//! run's settings alone, printed next to what the run measured.
//!
//! - Connections: each instance holds its store pool's connections (at most
//!   `max_size`; the prefill's `max_size` concurrent lookups open them all, and they
//!   stay open for `idle_timeout`, 10 minutes) and one `LISTEN` connection. Directly
//!   that is `N × (max_size + 1)` server connections; through PgBouncer the pools'
//!   `N × max_size` connections are PgBouncer's clients, PostgreSQL sees at most its
//!   `default_pool_size` server connections plus the `N` listeners (always direct).
//!   The connections' `live` and `test` pools serve no request here (`resolve` only)
//!   and stay empty.
//! - Feed checks: each listener runs an empty query every `feed_poll_interval`, one
//!   transaction each: `N / feed_poll_interval` per second, with or without load.
//!   (PostgreSQL 15 publishes them only with a backend's other statistics; the
//!   monitor's notification at each window boundary gives the listeners some.)
//! - Lookups: a cache miss is one lookup. After the prefill every active key is
//!   cached on every instance for `session_cache_duration` (5 minutes), so the
//!   measured window predicts none; in the long run each instance re-reads each key
//!   it serves once per cache duration, `N × M / session_cache_duration`.
//! - Last-used stamps: each instance notes a key at most once per interval and
//!   writes its notes in one batch per interval. An instance serving `r` random
//!   requests per second over `M` keys notes `M × (1 - (1 - 1/M)^(r × interval))`
//!   distinct keys per interval; `N` instances write that many rows each. A batch
//!   first locks the rows no other instance is stamping (`SELECT ... FOR UPDATE SKIP
//!   LOCKED`, in id order), then stamps those: two statements.
//! - Per operation (a lookup, a last-used batch), from keyroute's pools as built:
//!   directly, a checkout first runs `SELECT 1`, its own transaction, when its
//!   connection sat idle past `idle_check_after` (500 ms; PostgreSQL's default `idle`
//!   check). At steady state that is every operation, since an instance's pools see
//!   a lookup or a batch far less often than every 500 ms, so an operation is 2
//!   transactions; a batch is `BEGIN`, `UPDATE`,
//!   `COMMIT`. Behind a transaction pooler an operation is one unit: `BEGIN; RESET
//!   ALL; RESET ROLE; DEALLOCATE ALL`, its statements (a transaction of its own nests
//!   as a savepoint), `COMMIT`; the unit's `BEGIN` is the checkout check, so 1
//!   transaction. `pg_stat_statements` counts neither `DEALLOCATE` nor empty queries.
//! - Notifications: each listener reads what is notified in a transaction of its
//!   own, so one `NOTIFY` costs `N` transactions besides the notifier's.
//! - The monitor's own: each window boundary notifies once (read by the `N`
//!   listeners and ours) and reads autovacuum's counts: `N + 3` transactions per
//!   window.

use std::io::Write;
use std::time::Duration;

use keyroute::store::Pooler;

use super::observe::{Class, Delta};
use super::run::{Measured, Plan, Target};
use super::{ms, percentile};

/// Statements per second by class, for `lookups` and last-used `batches` per second.
fn statements(pooler: Pooler, lookups: f64, batches: f64) -> Vec<(Class, f64)> {
    let units = lookups + batches;
    let (check, transaction, reset) = if pooler == Pooler::Transaction {
        // BEGIN + COMMIT per unit, SAVEPOINT + RELEASE per batch; RESET ALL and
        // RESET ROLE per unit (DEALLOCATE ALL is not counted).
        (0.0, 2.0 * units + 2.0 * batches, 2.0 * units)
    } else {
        (units, 2.0 * batches, 0.0)
    };
    vec![
        (Class::Lookup, lookups),
        // Each batch locks its free rows, then stamps them: two statements.
        (Class::LastUsed, 2.0 * batches),
        (Class::Check, check),
        (Class::Transaction, transaction),
        (Class::Reset, reset),
        (Class::Notify, 0.0),
        (Class::Other, 0.0),
    ]
}

/// Transactions per lookup or batch.
fn transactions_per_operation(pooler: Pooler) -> f64 {
    if pooler == Pooler::Transaction {
        1.0
    } else {
        2.0
    }
}

/// Distinct keys among `draws` random picks of `keys`, expected.
fn distinct(keys: f64, draws: f64) -> f64 {
    keys * (1.0 - (1.0 - 1.0 / keys.max(1.0)).powf(draws))
}

/// A number of connections, as printed.
fn whole(value: f64) -> String {
    format!("{value:.0}")
}

/// One line: what, the model's figure, the measured one.
fn line(out: &mut impl Write, what: &str, model: &str, measured: &str) -> std::io::Result<()> {
    writeln!(out, "    {what:<56} {model:>12} {measured:>12}")
}

/// A rate or a count, as printed: whole above 100, one decimal below.
fn f(value: f64) -> String {
    if value.abs() >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// Prints the model next to the measurement of one mode.
pub(crate) fn print(
    plan: &Plan,
    target: &Target<'_>,
    m: &Measured,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let n = plan.instances as f64;
    let keys = plan.keys as f64;
    let pool = f64::from(plan.pool_size);
    let interval = plan.last_used_interval.as_secs_f64();
    let per_instance = plan.rate / n;
    writeln!(out)?;
    line(
        out,
        &format!("{}: model against measurement", target.name),
        "model",
        "measured",
    )?;

    writeln!(
        out,
        "  connections on {} (pg_stat_activity, half-way through the window)",
        target.database
    )?;
    let c = &m.connections;
    line(
        out,
        "keyroute-feed listeners (1 per instance, direct)",
        &whole(n),
        &c.listeners.to_string(),
    )?;
    let bouncer_size = target
        .bouncer
        .map(|b| f64::from(b.options().default_pool_size));
    let pooled_model = match bouncer_size {
        None => whole(n * pool),
        Some(size) => format!("<= {}", whole(size)),
    };
    line(
        out,
        match bouncer_size {
            None => "pooled connections (N x max_size)",
            Some(_) => "server connections from PgBouncer (<= default_pool_size)",
        },
        &pooled_model,
        &c.pooled().to_string(),
    )?;
    let total_model = match bouncer_size {
        None => whole(n * (pool + 1.0)),
        Some(size) => format!("<= {}", whole(n + size)),
    };
    line(
        out,
        "PostgreSQL connections in all",
        &total_model,
        &(c.pooled() + c.listeners).to_string(),
    )?;
    if target.bouncer.is_some() {
        line(
            out,
            "PgBouncer clients (cl_active + cl_waiting; N x max_size)",
            &whole(n * pool),
            &c.pool_sum(&["cl_active", "cl_waiting"]).to_string(),
        )?;
        line(
            out,
            "PgBouncer servers (sv_active/idle/used/tested/login)",
            &pooled_model,
            &c.pool_sum(&["sv_active", "sv_idle", "sv_used", "sv_tested", "sv_login"])
                .to_string(),
        )?;
    }
    let before = &m.idle_connections;
    writeln!(
        out,
        "    (idle, before the prefill: {} pooled, {} listeners; by application and state now: {})",
        before.pooled(),
        before.listeners,
        c.others
            .iter()
            .map(|((app, state), count)| format!("'{app}' {state}: {count}"))
            .collect::<Vec<_>>()
            .join(", ")
    )?;

    let pings = n / m.feed_poll_interval.as_secs_f64();
    writeln!(
        out,
        "  idle window ({:.1} s, no requests), per second",
        m.idle.seconds
    )?;
    line(
        out,
        "transactions = feed checks (N / feed_poll_interval) + ours",
        &f(pings + ours(n) / m.idle.seconds),
        &f(m.idle.rate(m.idle.db("xacts"))),
    )?;
    line(
        out,
        "statements (pg_stat_statements; empty queries not counted)",
        &f(0.0),
        &f(m.idle.rate(m.idle.statements())),
    )?;
    autovacuum(out, &m.idle)?;

    let steady = &m.steady;
    let requests = steady.rate(i64::try_from(m.steady_requests.0).unwrap_or(i64::MAX));
    let cache = m.cache_duration.unwrap_or(Duration::ZERO);
    let lookups = if m.prefill_to_window_end < cache {
        0.0
    } else {
        n * keys / cache.as_secs_f64().max(1e-9)
    };
    let batches = n / interval;
    let rows = n * distinct(keys, per_instance * interval) / interval;
    writeln!(
        out,
        "  measured window ({:.1} s, {} requests/s sent), per second",
        steady.seconds,
        f(requests)
    )?;
    let measured_lookups = steady.rate(steady.class(Class::Lookup));
    line(
        out,
        "cache hit ratio (1 - lookups / requests)",
        &format!("{:.2} %", 100.0 * (1.0 - lookups / plan.rate)),
        &format!(
            "{:.2} %",
            100.0 * (1.0 - measured_lookups / requests.max(1e-9))
        ),
    )?;
    let per_operation = transactions_per_operation(target.pooler);
    line(
        out,
        &format!("transactions = feed checks + {per_operation} x (lookups + batches) + ours"),
        &f(pings + per_operation * (lookups + batches) + ours(n) / steady.seconds),
        &f(steady.rate(steady.db("xacts"))),
    )?;
    line(
        out,
        "  of which rolled back (deadlocks detected)",
        &f(0.0),
        &format!(
            "{} ({})",
            f(steady.rate(steady.db("rollbacks"))),
            steady.db("deadlocks")
        ),
    )?;
    if steady.db("deadlocks") > 0
        && let Some(batch) = steady.examples.get(&Class::LastUsed)
    {
        writeln!(out, "      (the last-used batch: {batch})")?;
    }
    let predicted = statements(target.pooler, lookups, batches);
    for (class, rate) in &predicted {
        let measured = steady.rate(steady.class(*class));
        if *rate > 0.0 || measured > 0.0 {
            line(out, &format!("  {}", class.name()), &f(*rate), &f(measured))?;
        }
    }
    line(
        out,
        "statements in all (pg_stat_statements)",
        &f(predicted.iter().map(|(_, r)| r).sum()),
        &f(steady.rate(steady.statements())),
    )?;
    line(
        out,
        "rows updated (last-used stamps)",
        &f(rows),
        &f(steady.rate(steady.db("tup_updated"))),
    )?;
    let window_intervals = steady.seconds / interval;
    line(
        out,
        "last-used writes per active key per interval",
        &format!("{:.2}", rows * interval / keys),
        &format!(
            "{:.2}",
            steady.db("tup_updated") as f64 / keys / window_intervals.max(1e-9)
        ),
    )?;
    line(
        out,
        "rows read (tup_returned / tup_fetched)",
        "",
        &format!(
            "{} / {}",
            f(steady.rate(steady.db("tup_returned"))),
            f(steady.rate(steady.db("tup_fetched")))
        ),
    )?;
    if target.bouncer.is_some() {
        line(
            out,
            &format!("PgBouncer transactions ({per_operation} x (lookups + batches))"),
            &f(per_operation * (lookups + batches)),
            &f(steady.rate(*steady.bouncer.get("total_xact_count").unwrap_or(&0))),
        )?;
        line(
            out,
            "PgBouncer queries (total_query_count)",
            "",
            &f(steady.rate(*steady.bouncer.get("total_query_count").unwrap_or(&0))),
        )?;
    }
    others(out, steady)?;
    autovacuum(out, steady)?;
    writeln!(
        out,
        "    (long run: each instance re-reads each key it serves once per {:?}: N x M / {:?} = {} lookups/s)",
        cache,
        cache,
        f(n * keys / cache.as_secs_f64().max(1e-9))
    )?;

    let (prefill, took) = &m.prefill;
    writeln!(
        out,
        "  prefill (cold start: every instance resolves every active key), in all"
    )?;
    line(
        out,
        "key lookups (N x M)",
        &f(n * keys),
        &prefill.class(Class::Lookup).to_string(),
    )?;
    line(
        out,
        "lookups per second achieved",
        "",
        &f(prefill.class(Class::Lookup) as f64 / took.as_secs_f64().max(1e-9)),
    )?;

    revocations(plan, m, out)
}

/// Transactions on the database per window that the monitor causes: at the window's
/// end one `NOTIFY`, one read of autovacuum's counts, and the notification read by
/// each of the `n` listeners and ours (a listener reads the queue in a transaction).
fn ours(n: f64) -> f64 {
    3.0 + n
}

/// Autovacuum's runs in the window, if any (its transactions count in
/// `pg_stat_database` too; the model does not predict them).
fn autovacuum(out: &mut impl Write, delta: &Delta) -> std::io::Result<()> {
    let runs = delta.db("autovacuum");
    if runs > 0 {
        writeln!(
            out,
            "      autovacuum/autoanalyze ran {runs} time(s) on the database in this window; its transactions are counted above"
        )?;
    }
    Ok(())
}

/// The `Other` statements, if any.
fn others(out: &mut impl Write, delta: &Delta) -> std::io::Result<()> {
    for (query, calls) in delta.others.iter().take(3) {
        let short: String = query.chars().take(70).collect();
        writeln!(out, "      other: {calls} x {short}")?;
    }
    Ok(())
}

/// The revocation phase: propagation times, the feed's traffic, the extra lookups.
fn revocations(plan: &Plan, m: &Measured, out: &mut impl Write) -> std::io::Result<()> {
    let n = plan.instances as f64;
    let k = m.revoked.max(1) as f64;
    let r = &m.revocations;
    writeln!(
        out,
        "  revocations ({} keys, one at a time on instance 0, under the load; {:.1} s)",
        m.revoked, r.seconds
    )?;
    let times = &m.propagation.times;
    let at = |q: f64| percentile(times, q).map_or("-".to_owned(), |d| format!("{:.1}", ms(d)));
    writeln!(
        out,
        "    propagation to the {} other instances, revoke returned -> refused: {} measurements, p50 {} ms, p99 {} ms, max {} ms (bound 1000 ms)",
        plan.instances.saturating_sub(1),
        times.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    )?;
    if let Some(first) = m.propagation.failures.first() {
        writeln!(
            out,
            "    FAILURES: {} (first: {first})",
            m.propagation.failures.len()
        )?;
    }
    let (notified, bytes) = r.notifications;
    line(
        out,
        "notifications per revocation, one listener",
        &f(1.0),
        &format!("{:.2}", notified as f64 / k),
    )?;
    line(
        out,
        "  deliveries per revocation (x N listeners)",
        &f(n),
        &format!("{:.1}", notified as f64 / k * n),
    )?;
    line(
        out,
        "  payload bytes per notification",
        "",
        &format!("{:.0}", bytes as f64 / (notified.max(1) as f64)),
    )?;
    let steady_lookups = m.steady.rate(m.steady.class(Class::Lookup)) * r.seconds;
    line(
        out,
        "key lookups per revocation (N to cache it + N refusing)",
        &f(2.0 * n),
        &format!(
            "{:.1}",
            (r.class(Class::Lookup) as f64 - steady_lookups) / k
        ),
    )?;
    let steady_notify = r.class(Class::Notify) as f64 / k;
    line(
        out,
        "pg_notify per revocation",
        &f(1.0),
        &format!("{steady_notify:.2}"),
    )?;
    let [stamped, working, stamped_revoked, revoked] = m.stamped;
    writeln!(
        out,
        "  keys with a last-used stamp at the end: {stamped} of the {working} working keys \
         (every one was resolved), {stamped_revoked} of the {revoked} revoked ones"
    )?;
    let ((sent, ok, failed), first) = &m.load_total;
    writeln!(
        out,
        "  load over the whole run: {sent} sent, {ok} answered Ok, {failed} failed{}",
        first
            .as_ref()
            .map(|e| format!(" (first: {e})"))
            .unwrap_or_default()
    )
}
