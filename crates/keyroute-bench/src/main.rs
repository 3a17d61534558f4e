//! `keyroute-bench`: keyroute's HTTP load benchmark. `bash scripts/bench http` runs it
//! in release mode; see the crate docs for what each mode means and why the client
//! and the server share the machine the way they do.
//!
//! ```sh
//! cargo run --release -p keyroute-bench -- --backend sqlite --rounds 3 --duration 5s
//! ```

use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgAction, Parser, ValueEnum};
use keyroute_bench::{BackendKind, Options};

/// keyroute over HTTP against a hand-written key lookup and against no authentication.
#[derive(Debug, Parser)]
#[command(name = "keyroute-bench", version)]
struct Args {
    /// Backends to measure, in order (comma-separated; the last --backend wins).
    /// PostgreSQL needs a Docker engine.
    #[arg(long, value_enum, value_delimiter = ',', action = ArgAction::Set, default_values_t = [Backend::Sqlite, Backend::Postgres])]
    backend: Vec<Backend>,
    /// Rounds per backend; each round runs every mode once, interleaved.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// Measured time per mode per round.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "5s")]
    duration: Duration,
    /// Unmeasured load before each measurement.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
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
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Backend {
    Sqlite,
    Postgres,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let mut options = Options::default();
    options.backends = args
        .backend
        .iter()
        .map(|b| match b {
            Backend::Sqlite => BackendKind::Sqlite,
            Backend::Postgres => BackendKind::Postgres,
        })
        .collect();
    options.rounds = args.rounds;
    options.duration = args.duration;
    options.warmup = args.warmup;
    options.connections = args.connections;
    options.keys = args.keys;
    options.orders = args.orders;
    options.pool_size = args.pool_size;
    match keyroute_bench::run(&options, &mut std::io::stdout()).await {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("keyroute-bench: {error}");
            ExitCode::FAILURE
        }
    }
}
