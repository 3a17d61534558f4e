//! A whole run: per backend, set up the server, then the rounds (every mode once per
//! round, in an order that changes each round (see [`round_order`]), less the modes the server
//! skipped), then on PostgreSQL the counted run of the round trips per request
//! (`keyroute` and the tenancy modes), then the medians and ratios. After each mode's
//! measurement, the server process's thread count, and for `keyroute-valkey` the
//! Valkey commands per request.

use std::io::Write;

use keyroute::store::{DatabaseUrl, Mysql, Postgres, Sqlite};

use crate::load::{LoadPlan, LoadResult, drive};
use crate::placement::process_threads;
use crate::report::{BackendReport, ModeSample, ValkeyCommands, load_average};
use crate::service::{Served, TenancyDatabases, start, start_with};
use crate::{BackendKind, BenchError, Mode, Options};

/// Runs the benchmark `options` describe and writes its report to `out` as it goes.
/// Returns one report per backend.
///
/// # Errors
/// [`BenchError::Non2xx`] as soon as a mode answers anything but 2xx (the figures
/// would measure errors); [`BenchError::Container`] when PostgreSQL or MariaDB is
/// asked for and no engine answers; [`BenchError::Setup`], [`BenchError::Load`] otherwise.
pub async fn run(options: &Options, out: &mut dyn Write) -> Result<Vec<BackendReport>, BenchError> {
    check(options)?;
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    writeln!(
        out,
        "keyroute HTTP benchmark: {} connections, {} rounds x {} modes, warm-up {:?} + {:?} measured per mode; {} keys{}, {} orders per database; {cores} cores, load average {}",
        options.connections,
        options.rounds,
        options.modes.len(),
        options.warmup,
        options.duration,
        options.keys,
        if options.live_only {
            " (requests carry only the live ones)"
        } else {
            ""
        },
        options.orders,
        load_average(),
    )?;
    writeln!(out, "{}", options.placement.describe())?;
    let mut reports = Vec::new();
    for &backend in &options.backends {
        let served = serve(backend, options).await?;
        writeln!(out, "\n{}: serving on {}", backend.name(), served.addr)?;
        writeln!(out, "{}", served.settings)?;
        let mut report = BackendReport::new(backend);
        report.skipped.clone_from(&served.skipped);
        if options.prime {
            report.primed = prime(&served, backend, options, out).await?;
        }
        for round in 1..=options.rounds {
            writeln!(
                out,
                "{} round {round}/{} (load average {})",
                backend.name(),
                options.rounds,
                load_average()
            )?;
            for mode in served_modes(&served, options, round) {
                let (result, commands, note) = measure(&served, mode, options).await?;
                let mut sample = ModeSample::new(mode, round, &result);
                sample.valkey_commands = commands;
                let threads = process_threads().map_or_else(|| "?".to_owned(), |n| n.to_string());
                let cpu = sample
                    .cpu
                    .map(|c| format!("\n    {}", c.describe()))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "{}   p99.9 {:>7.2} ms   server threads {threads}{cpu}{}",
                    sample.line(),
                    result.latency_us.p99_9 as f64 / 1e3,
                    note,
                )?;
                out.flush()?;
                all_2xx(backend, mode, &result)?;
                report.samples.push(sample);
            }
        }
        count_round_trips(&served, backend, options, &mut report, out).await?;
        report.write_summary(out)?;
        writeln!(
            out,
            "{}: load average after {}",
            backend.name(),
            load_average()
        )?;
        drop(served);
        reports.push(report);
    }
    Ok(reports)
}

/// Sends every key once to each mode `options` measures on `served`, unmeasured (see
/// [`LoadPlan::priming`]), and prints how fast each went: the cold figures, caches
/// filling. A mode that answers anything but 2xx ends the run, as in a round.
async fn prime(
    served: &Served,
    backend: BackendKind,
    options: &Options,
    out: &mut dyn Write,
) -> Result<Vec<(Mode, LoadResult)>, BenchError> {
    writeln!(
        out,
        "{} priming: each mode sent every one of the {} keys once, unmeasured, so the rounds see filled caches; the rates are the cold figures",
        backend.name(),
        served.keys.len()
    )?;
    let mut primed = Vec::new();
    for mode in served_modes(served, options, 1) {
        let plan = LoadPlan::new(served.addr, mode, served.keys.clone(), options).priming();
        let result = drive(plan).await?;
        writeln!(
            out,
            "  {:<18} {:>7} requests in {:>6.2} s   {:>7.0} req/s",
            mode.name(),
            result.requests,
            result.duration.as_secs_f64(),
            result.requests_per_second()
        )?;
        out.flush()?;
        all_2xx(backend, mode, &result)?;
        primed.push((mode, result));
    }
    Ok(primed)
}

/// [`BenchError::Non2xx`] if `mode`'s run answered anything but 2xx: its figures would
/// measure errors.
fn all_2xx(backend: BackendKind, mode: Mode, result: &LoadResult) -> Result<(), BenchError> {
    if result.non_2xx == 0 {
        return Ok(());
    }
    Err(BenchError::Non2xx {
        backend: backend.name(),
        mode: mode.name(),
        count: result.non_2xx,
        first: result.first_failure.clone().unwrap_or_default(),
    })
}

/// The modes of `round` that `options` asks for and `served` serves, in the round's order.
fn served_modes<'a>(
    served: &'a Served,
    options: &'a Options,
    round: u32,
) -> impl Iterator<Item = Mode> + 'a {
    round_order(round)
        .filter(|m| options.modes.contains(m) && served.skipped.iter().all(|s| s.0 != *m))
}

/// Drives `mode`'s load on `served`; for `keyroute-valkey`, also the server's commands
/// per request served over the run (warm-up included: `INFO commandstats` before and
/// after, divided by the requests the mode's handler served), and a note for its line
/// (empty for the other modes).
async fn measure(
    served: &Served,
    mode: Mode,
    options: &Options,
) -> Result<(LoadResult, Option<ValkeyCommands>, String), BenchError> {
    let plan = LoadPlan::new(served.addr, mode, served.keys.clone(), options);
    let probe = served
        .valkey
        .as_ref()
        .filter(|_| mode == Mode::KeyrouteValkey);
    let Some(probe) = probe else {
        return Ok((drive(plan).await?, None, String::new()));
    };
    let before = probe.count().await;
    let result = drive(plan).await?;
    let after = probe.count().await;
    let (commands, note) = match (before, after) {
        (Ok(before), Ok(after)) => match after.since(&before) {
            Some(delta) => {
                let per = delta.per_request();
                let note = format!(
                    "{:.2} sent, {:.2} in all ({})",
                    per.scripts,
                    per.total,
                    delta.describe()
                );
                (Some(per), note)
            }
            None => (None, "n/a (no request served)".to_owned()),
        },
        (Err(e), _) | (_, Err(e)) => (None, format!("n/a ({e})")),
    };
    Ok((
        result,
        commands,
        format!("\n    valkey per request: {note}"),
    ))
}

/// On a server that counts them (PostgreSQL), the round trips per request of
/// `keyroute` and the tenancy modes measured, one counted run each, into `report`.
async fn count_round_trips(
    served: &Served,
    backend: BackendKind,
    options: &Options,
    report: &mut BackendReport,
    out: &mut dyn Write,
) -> Result<(), BenchError> {
    let Some(probe) = &served.round_trips else {
        return Ok(());
    };
    for mode in [Mode::Keyroute, Mode::KeyrouteRls, Mode::KeyrouteSchema] {
        if !options.modes.contains(&mode) || !probe.counts(mode) {
            continue;
        }
        let counted = probe
            .measure(backend.name(), mode, served.keys.clone(), options)
            .await?;
        writeln!(
            out,
            "{} round trips counted: {:<18} {}",
            backend.name(),
            mode.name(),
            counted.summary()
        )?;
        out.flush()?;
        report.round_trips.push((mode, counted));
    }
    Ok(())
}

/// The modes of `round` (from 1), each once: [`Mode::ALL`] walked from a start one
/// later each round, in steps of a stride that changes each round (1, 2, 3, ..., each
/// coprime with the number of modes, so the walk visits every mode).
///
/// Rotation alone keeps neighbours: `keyroute` ran right after `naive` in every round,
/// so whatever one mode leaves behind (threads, a write-ahead log to checkpoint, a
/// host that has just got busy) was charged to the same next mode every time. With a
/// new stride each round, a mode follows a different mode in each of the first
/// `Mode::ALL.len() - 1` rounds.
fn round_order(round: u32) -> impl Iterator<Item = Mode> {
    let n = Mode::ALL.len();
    let r = usize::try_from(round.saturating_sub(1)).unwrap_or(0);
    let strides: Vec<usize> = (1..n).filter(|&s| gcd(s, n) == 1).collect();
    let stride = strides.get(r % strides.len().max(1)).copied().unwrap_or(1);
    let start = r % n;
    (0..n).map(move |i| Mode::ALL[(start + i * stride) % n])
}

/// The greatest common divisor of `a` and `b`.
fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn check(options: &Options) -> Result<(), BenchError> {
    let invalid = |option, reason| Err(BenchError::Options { option, reason });
    if options.backends.is_empty() {
        return invalid("backend", "name at least one backend");
    }
    if options.modes.is_empty() {
        return invalid("modes", "name at least one mode");
    }
    if options.rounds == 0 {
        return invalid("rounds", "at least one round");
    }
    if options.duration.is_zero() {
        return invalid("duration", "a measured window longer than zero");
    }
    if options.connections == 0 {
        return invalid("connections", "at least one connection");
    }
    if options.keys < 2 {
        return invalid("keys", "at least 2 (a live and a test key)");
    }
    if options.orders == 0 || i64::try_from(options.orders).is_err() {
        return invalid("orders", "between 1 and 2^63 - 1");
    }
    if options.pool_size == 0 {
        return invalid("pool-size", "at least one connection per pool");
    }
    Ok(())
}

async fn serve(backend: BackendKind, options: &Options) -> Result<Served, BenchError> {
    match backend {
        BackendKind::Sqlite => {
            let files = tempfile::Builder::new()
                .prefix("keyroute-bench-")
                .tempdir()
                .map_err(|e| BenchError::Setup {
                    backend: "sqlite",
                    reason: format!("cannot make a temporary directory: {e}"),
                })?;
            let path = |name: &str| files.path().join(name).to_string_lossy().into_owned();
            let (live, test) = (path("live.db"), path("test.db"));
            start::<Sqlite>(
                DatabaseUrl::new(live),
                DatabaseUrl::new(test),
                Box::new(files),
                options,
            )
            .await
        }
        BackendKind::Postgres => {
            let dbs = keyroute_testing::postgres_live_and_test()
                .await
                .map_err(|e| container(backend, &e))?;
            let (live, test) = (dbs.live.url().clone(), dbs.test.url().clone());
            // The tenancy modes' databases, on the same server.
            let tenancy = if options.modes.contains(&Mode::KeyrouteRls)
                || options.modes.contains(&Mode::KeyrouteSchema)
            {
                let rls = keyroute_testing::postgres_live_and_test()
                    .await
                    .map_err(|e| container(backend, &e))?;
                let schema = keyroute_testing::postgres_live_and_test()
                    .await
                    .map_err(|e| container(backend, &e))?;
                let urls = |d: &keyroute_testing::LiveAndTest<Postgres>| {
                    (d.live.url().clone(), d.test.url().clone())
                };
                let role = format!("app_{}", rls.live.name());
                let databases = TenancyDatabases::new(urls(&rls), urls(&schema), role);
                Some((databases, rls, schema))
            } else {
                None
            };
            let Some((databases, rls, schema)) = tenancy else {
                return start::<Postgres>(live, test, Box::new(dbs), options).await;
            };
            let keep = Box::new((dbs, rls, schema));
            start_with::<Postgres>(live, test, keep, Some(&databases), options).await
        }
        BackendKind::Mariadb => {
            let dbs = keyroute_testing::mariadb_live_and_test()
                .await
                .map_err(|e| container(backend, &e))?;
            let (live, test) = (dbs.live.url().clone(), dbs.test.url().clone());
            start::<Mysql>(live, test, Box::new(dbs), options).await
        }
    }
}

fn container(backend: BackendKind, error: &dyn std::fmt::Display) -> BenchError {
    BenchError::Container {
        backend: backend.name(),
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each round runs every mode once, starts with a different mode, and puts each
    /// mode after a different neighbour than in every earlier round.
    #[test]
    fn rounds_change_order_and_neighbours() {
        let first: Vec<Mode> = round_order(1).collect();
        assert_eq!(first, Mode::ALL);
        let n = u32::try_from(Mode::ALL.len()).unwrap();
        let mut before: Vec<Vec<Mode>> = vec![Vec::new(); Mode::ALL.len()];
        let mut starts = Vec::new();
        for round in 1..n {
            let modes: Vec<Mode> = round_order(round).collect();
            let mut sorted = modes.clone();
            sorted.sort();
            assert_eq!(sorted, Mode::ALL, "round {round}");
            starts.push(modes[0]);
            for pair in modes.windows(2) {
                let seen = &mut before[pair[1] as usize];
                assert!(
                    !seen.contains(&pair[0]),
                    "round {round}: {:?} after {:?} again",
                    pair[1],
                    pair[0]
                );
                seen.push(pair[0]);
            }
        }
        starts.sort();
        starts.dedup();
        assert_eq!(
            starts.len(),
            Mode::ALL.len() - 1,
            "a new first mode each round"
        );
    }
}
