//! `keyroute-bench`: keyroute's HTTP load benchmark. `bash scripts/bench http` runs it
//! in release mode; see the crate docs for what each mode means and why the client
//! and the server share the machine the way they do.
//!
//! ```sh
//! cargo run --release -p keyroute-bench -- --backend sqlite --rounds 3 --duration 5s
//! ```
//!
//! The same binary is the load generator: the benchmark starts it again with the
//! hidden `client` subcommand, in a process of its own, keys on its stdin.

use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgAction, Parser, Subcommand, ValueEnum};
use keyroute_bench::load::{ClientArgs, client_main};
use keyroute_bench::{BackendKind, Mode, Options, Placement};

/// keyroute over HTTP against a hand-written key lookup and against no authentication,
/// on keyroute's pools and on plain bb8 pools.
#[derive(Debug, Parser)]
#[command(
    name = "keyroute-bench",
    version,
    args_conflicts_with_subcommands = true
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Backends to measure, in order (comma-separated; the last --backend wins).
    /// PostgreSQL and MariaDB need a Docker engine.
    #[arg(long, value_enum, value_delimiter = ',', action = ArgAction::Set, default_values_t = [Backend::Sqlite, Backend::Postgres, Backend::Mariadb])]
    backend: Vec<Backend>,
    /// Modes to measure (comma-separated names as printed; default: all). Ratios are
    /// printed for the pairs both measured, e.g. `--modes keyroute,keyroute-valkey`.
    #[arg(long, value_delimiter = ',', value_parser = parse_mode)]
    modes: Vec<Mode>,
    /// Rounds per backend; each round runs every mode once, interleaved. Many short
    /// rounds rather than a few long ones: on a shared machine the host's load drifts
    /// over tens of seconds, and more rounds sample each mode at more moments.
    #[arg(long, default_value_t = 8)]
    rounds: u32,
    /// Measured time per mode per round.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "3s")]
    duration: Duration,
    /// Unmeasured load before each measurement.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    warmup: Duration,
    /// Keep-alive connections (one client task each).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Keys made (a live and a test key per user) and spread over by requests.
    #[arg(long, default_value_t = 10_000)]
    keys: usize,
    /// Orders per database; each request reads one by id.
    #[arg(long, default_value_t = 10_000)]
    orders: u64,
    /// Connections per pool (`[pools] max_size`), the same for every pool.
    #[arg(long, default_value_t = 8)]
    pool_size: u32,
    /// Send only the live keys: every authenticated request then reads the live
    /// database, as `open` does (by default half the keys are test keys).
    #[arg(long)]
    live_only: bool,
    /// Skip the priming pass (each mode sent every key once before the rounds): the
    /// first rounds then measure the resolvers' caches being filled.
    #[arg(long)]
    no_prime: bool,
    /// Do not pin the server and the client apart, even on 4 cores or more.
    #[arg(long)]
    no_pin: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The load generator's process, started by the benchmark itself: keys on stdin,
    /// one per line; its result as one line of JSON on stdout.
    #[command(hide = true)]
    Client(ClientArgs),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Backend {
    Sqlite,
    Postgres,
    Mariadb,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match &args.command {
        Some(Command::Client(client)) => {
            let stdin = std::io::stdin().lock();
            match client_main(client, stdin, std::io::stdout().lock()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => fail(&error),
            }
        }
        None => bench(&args),
    }
}

fn bench(args: &Args) -> ExitCode {
    // Pinned before the runtime starts: its threads inherit the server's cores, and
    // it starts one worker per core left to it.
    let placement = if args.no_pin {
        Placement::shared()
    } else {
        Placement::pin_apart()
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            return fail(&keyroute_bench::BenchError::Load(format!(
                "cannot start the server's runtime: {error}"
            )));
        }
    };
    let mut options = Options::default();
    options.placement = placement;
    options.backends = args
        .backend
        .iter()
        .map(|b| match b {
            Backend::Sqlite => BackendKind::Sqlite,
            Backend::Postgres => BackendKind::Postgres,
            Backend::Mariadb => BackendKind::Mariadb,
        })
        .collect();
    if !args.modes.is_empty() {
        options.modes.clone_from(&args.modes);
    }
    options.rounds = args.rounds;
    options.duration = args.duration;
    options.warmup = args.warmup;
    options.connections = args.connections;
    options.keys = args.keys;
    options.orders = args.orders;
    options.pool_size = args.pool_size;
    options.live_only = args.live_only;
    options.prime = !args.no_prime;
    match runtime.block_on(keyroute_bench::run(&options, &mut std::io::stdout())) {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => fail(&error),
    }
}

fn parse_mode(name: &str) -> Result<Mode, String> {
    Mode::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Mode::ALL.iter().map(|m| m.name()).collect();
        format!("no mode `{name}`; the modes are {}", names.join(", "))
    })
}

fn fail(error: &keyroute_bench::BenchError) -> ExitCode {
    eprintln!("keyroute-bench: {error}");
    ExitCode::FAILURE
}
