//! `capacity`: keyroute's capacity model, measured. `N` instances (full
//! `Keyroute<Postgres>` handles in this process: own pools, own cache, own `LISTEN`
//! connection, background work) against one PostgreSQL server, at a fixed request
//! rate, twice: directly, and through PgBouncer 1.18 in transaction mode (the pools
//! with `pooler = "transaction"`, the store's feed on `[store] direct_url`). Prints,
//! per mode, the model's prediction next to what PostgreSQL and PgBouncer counted.
//!
//! ```sh
//! bash scripts/bench capacity            # or, with an engine up:
//! cargo run --release -p keyroute-bench --bin capacity -- --instances 20 --rate 2000
//! ```
//!
//! The PostgreSQL server is a container of the run's own (keyroute-testing), restarted
//! once before the run with `pg_stat_statements` loaded and `max_connections` raised
//! (the default 100 is exactly what 20 instances of 4 + 1 connections hold).

#[path = "../capacity/mod.rs"]
mod capacity;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use capacity::observe::{self, rows};
use capacity::run::{Plan, Target, run_mode};
use capacity::warnings::Warnings;
use capacity::{Context, Failure, Outcome};
use clap::{Parser, ValueEnum};
use keyroute::store::Pooler;
use keyroute_testing::dedicated::{DedicatedServer, postgres_restartable};
use keyroute_testing::{PgBouncerOptions, TestPgBouncer, pgbouncer};

/// N keyroute instances against one PostgreSQL, directly and through PgBouncer in
/// transaction mode: connections, queries, last-used writes and revocation
/// propagation, against the capacity model.
#[derive(Debug, Parser)]
#[command(name = "capacity", version)]
struct Args {
    /// Instances (`N`), each a full `Keyroute<Postgres>`.
    #[arg(long, default_value_t = 20)]
    instances: usize,
    /// Active keys (`M`) the requests are spread over.
    #[arg(long, default_value_t = 2000)]
    keys: usize,
    /// Keys revoked one at a time on instance 0 under the load (`K`).
    #[arg(long, default_value_t = 50)]
    revocations: usize,
    /// Requests per second, all instances together, each a `resolve` of a random
    /// active key.
    #[arg(long, default_value_t = 2000.0)]
    rate: f64,
    /// `[pools] max_size` of every pool.
    #[arg(long, default_value_t = 4)]
    pool_size: u32,
    /// `[resolver] last_used_interval`.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    last_used_interval: Duration,
    /// The window with no requests (feed checks only).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "3s")]
    idle: Duration,
    /// Load before the measured window. PostgreSQL may publish a backend's counters
    /// up to 10 s after it went idle, and the prefill's last last-used batch comes up
    /// to `last_used_interval` after it: less lets the prefill leak into the window.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "13s")]
    warmup: Duration,
    /// The measured window.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    duration: Duration,
    /// PgBouncer's `default_pool_size` (server connections per database and user).
    #[arg(long, default_value_t = 8)]
    bouncer_pool_size: u32,
    /// Modes to run, in order (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Mode::Direct, Mode::Pgbouncer])]
    modes: Vec<Mode>,
}

/// How the instances reach PostgreSQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Directly.
    Direct,
    /// Through PgBouncer in transaction mode.
    Pgbouncer,
}

/// The server's `max_connections` for the run.
const MAX_CONNECTIONS: u32 = 300;

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return fail(&Failure::new(format!("no Tokio runtime: {error}"))),
    };
    match runtime.block_on(run(&args, &mut std::io::stdout())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&error),
    }
}

fn fail(error: &Failure) -> ExitCode {
    eprintln!("capacity: {error}");
    ExitCode::FAILURE
}

async fn run(args: &Args, out: &mut impl Write) -> Outcome<()> {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let uptime = std::process::Command::new("uptime")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|e| format!("(uptime: {e})"));
    writeln!(out, "capacity on {cores} cores: {uptime}")?;
    writeln!(
        out,
        "N = {} instances, M = {} active keys, K = {} revocations, {} requests/s, pools max_size {}, \
         last_used_interval {:?}, idle {:?}, warm-up {:?}, window {:?}",
        args.instances,
        args.keys,
        args.revocations,
        args.rate,
        args.pool_size,
        args.last_used_interval,
        args.idle,
        args.warmup,
        args.duration
    )?;
    if args.instances == 0
        || args.keys == 0
        || args.rate.is_nan()
        || args.rate <= 0.0
        || args.pool_size == 0
    {
        return Err(Failure::new(
            "--instances, --keys, --rate and --pool-size must be above zero",
        ));
    }
    let warnings = Warnings::install().context("counting keyroute's warnings")?;
    let server = postgres_restartable().await.context(
        "a PostgreSQL container (is a Docker engine up? bash scripts/bench capacity starts one)",
    )?;
    let (default, version) = prepare(&server).await?;
    writeln!(
        out,
        "PostgreSQL {version}: max_connections {MAX_CONNECTIONS} for the run (default {default}: \
         N x (max_size + 1) = {} direct connections), pg_stat_statements loaded",
        args.instances * (args.pool_size as usize + 1)
    )?;
    let plan = Plan {
        instances: args.instances,
        keys: args.keys,
        revocations: args.revocations,
        rate: args.rate,
        pool_size: args.pool_size,
        last_used_interval: args.last_used_interval,
        idle: args.idle,
        warmup: args.warmup,
        duration: args.duration,
        limit: Duration::from_secs(5),
    };
    let admin = server.url("127.0.0.1", "");
    let mut bouncer: Option<TestPgBouncer> = None;
    for mode in &args.modes {
        let (name, database) = match mode {
            Mode::Direct => ("direct", "capacity_direct"),
            Mode::Pgbouncer => ("pgbouncer", "capacity_pgbouncer"),
        };
        create_database(&admin, database).await?;
        let direct = server.database_url("127.0.0.1", database, "");
        let target = match mode {
            Mode::Direct => Target {
                name,
                pooler: Pooler::Session,
                url: direct.clone(),
                direct,
                admin: admin.clone(),
                database: database.to_owned(),
                bouncer: None,
            },
            Mode::Pgbouncer => {
                if bouncer.is_none() {
                    let mut options = PgBouncerOptions::default();
                    options.default_pool_size = args.bouncer_pool_size;
                    options.max_client_conn = 1000;
                    bouncer = Some(
                        pgbouncer(&server, options)
                            .await
                            .context("PgBouncer in front of the server")?,
                    );
                }
                let pgb = bouncer
                    .as_ref()
                    .ok_or_else(|| Failure::new("PgBouncer did not start"))?;
                Target {
                    name,
                    pooler: Pooler::Transaction,
                    url: pgb.database_url(database),
                    direct,
                    admin: admin.clone(),
                    database: database.to_owned(),
                    bouncer: Some(pgb),
                }
            }
        };
        writeln!(out, "\n== {name}: {}", describe(&target))?;
        warnings.take();
        let measured = run_mode(&plan, &target, &warnings, out).await?;
        capacity::model::print(&plan, &target, &measured, out)?;
        for (message, (count, first)) in &warnings.take() {
            writeln!(
                out,
                "  keyroute warned {count} x as the instances shut down: {message} (first: {first})"
            )?;
        }
    }
    Ok(())
}

/// What a mode connects through.
fn describe(target: &Target<'_>) -> String {
    match target.bouncer {
        None => "the pools and the feed straight to PostgreSQL (pooler = session)".to_owned(),
        Some(pgb) => format!(
            "the pools through PgBouncer (pool_mode {}, default_pool_size {}; pooler = transaction), \
             the feed and migrations on [store] direct_url",
            pgb.options().pool_mode,
            pgb.options().default_pool_size
        ),
    }
}

/// Loads `pg_stat_statements` and raises `max_connections` (a restart); the default
/// `max_connections` and the server's version.
async fn prepare(server: &DedicatedServer) -> Outcome<(String, String)> {
    let admin = server.url("127.0.0.1", "");
    let client = observe::connect(&admin).await?;
    let setting = |rows: Vec<Vec<Option<String>>>| {
        rows.first()
            .and_then(|r| r.first().cloned().flatten())
            .unwrap_or_default()
    };
    let default = setting(rows(&client, "SHOW max_connections").await?);
    for sql in [
        format!("ALTER SYSTEM SET max_connections = {MAX_CONNECTIONS}"),
        "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'".to_owned(),
    ] {
        client.batch_execute(&sql).await.context(&sql)?;
    }
    drop(client);
    server.stop().await.context("stopping PostgreSQL")?;
    server.start().await.context("starting PostgreSQL again")?;
    server
        .wait_until_answering("")
        .await
        .context("PostgreSQL after its restart")?;
    let client = observe::connect(&admin).await?;
    client
        .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        .await
        .context("CREATE EXTENSION pg_stat_statements")?;
    let now = setting(rows(&client, "SHOW max_connections").await?);
    if now != MAX_CONNECTIONS.to_string() {
        return Err(Failure::new(format!(
            "max_connections is {now} after the restart, not {MAX_CONNECTIONS}"
        )));
    }
    let version = setting(rows(&client, "SHOW server_version").await?);
    Ok((default, version))
}

/// Creates `database` (a fixed name of this program's) on the server at `admin`.
async fn create_database(admin: &keyroute::store::DatabaseUrl, database: &str) -> Outcome<()> {
    let client = observe::connect(admin).await?;
    let sql = format!("CREATE DATABASE {database}");
    client.batch_execute(&sql).await.context(&sql)
}
