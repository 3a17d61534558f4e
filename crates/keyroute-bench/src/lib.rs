//! keyroute's HTTP load benchmark: what a request costs end to end, keyroute against
//! the hand-written alternative and against no authentication, over real sockets.
//! Unpublished; depends on the facade, keyroute-testing (databases) and hyper/axum.
//!
//! Layout:
//! - [`service`]: one axum server on `127.0.0.1:0` exposing every [`Mode`] under its
//!   own path prefix, on the same pools: `open` (no authentication), `naive` (the
//!   request's plaintext key looked up per request in a `plain_keys` table, then the
//!   handler's query on the connection its environment picks), `keyroute` (the front
//!   door on its default settings), `keyroute-uncached` and `keyroute-cached` (the
//!   resolver cache set explicitly off and on). The handler's own query is one indexed
//!   read, an order by id, on the routed connection.
//! - [`load`]: the load generator: a fixed number of keep-alive HTTP/1.1 connections,
//!   each owned by one task that sends its next request when the last one's body has
//!   arrived; a warm-up, then a fixed measured duration; latencies in an HDR histogram.
//! - [`report`]: medians across rounds, the ratios against the baselines measured in
//!   the same run, and whether the targets are met.
//! - [`run`]: per backend (SQLite files, PostgreSQL in a container), the modes
//!   interleaved and repeated: round 1 runs every mode once, then round 2, and so on,
//!   so a noisy minute on the shared machine lands on every mode alike; each round
//!   starts one mode later, so no mode always runs first or after the same neighbour.
//!
//! Fairness on a 2-core machine: the server runs on the multi-threaded Tokio runtime
//! the binary starts (one worker per core, plus the blocking threads diesel-async's
//! SQLite wrapper uses), and the load generator on a current-thread runtime of its own
//! in a separate OS thread. One process keeps start-up and result collection simple;
//! separate runtimes keep the client's work off the server's workers' queues. The client
//! takes one core's share at most and does exactly the same work per request in every
//! mode (the same request bytes, key header included, and the same response handling),
//! so its cost is a constant that every mode pays: it dilutes the ratios towards 1.0,
//! which makes a met target conservative rather than flattering. The operating
//! system schedules both on the same two cores, as it would a client and a server
//! sharing a small machine.

pub mod load;
pub mod report;
pub mod service;

mod run;

use std::time::Duration;

pub use report::{BackendReport, ModeSample};
pub use run::run;

/// What is measured: the modes every backend serves, in the order each round runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Mode {
    /// No authentication: the handler's own query on the live database.
    Open,
    /// The hand-written alternative: the plaintext key looked up per request.
    Naive,
    /// keyroute's front door on its default settings, whatever they are at build time.
    Keyroute,
    /// keyroute with the resolver cache explicitly off.
    KeyrouteUncached,
    /// keyroute with the resolver cache explicitly on.
    KeyrouteCached,
}

impl Mode {
    /// Every mode, in the order a round runs them.
    pub const ALL: [Mode; 5] = [
        Mode::Open,
        Mode::Naive,
        Mode::Keyroute,
        Mode::KeyrouteUncached,
        Mode::KeyrouteCached,
    ];

    /// The mode's name, as printed and as its path prefix.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Open => "open",
            Mode::Naive => "naive",
            Mode::Keyroute => "keyroute",
            Mode::KeyrouteUncached => "keyroute-uncached",
            Mode::KeyrouteCached => "keyroute-cached",
        }
    }

    /// The path a request for order `id` takes in this mode.
    pub fn path(self, id: u64) -> String {
        format!("/{}/orders/{id}", self.name())
    }
}

/// The database a run is measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackendKind {
    /// Two SQLite files (live and test) in a temporary directory, WAL as keyroute sets it.
    Sqlite,
    /// Two databases on a PostgreSQL container started through `keyroute-testing`.
    Postgres,
}

impl BackendKind {
    /// The backend's name, as printed and as given to `--backend`.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Sqlite => "sqlite",
            BackendKind::Postgres => "postgres",
        }
    }
}

/// How a run is shaped. `Default` is the full run `bash scripts/bench http` makes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// The backends to measure, in order.
    pub backends: Vec<BackendKind>,
    /// Rounds per backend; each round runs every mode once.
    pub rounds: u32,
    /// Unmeasured load before each mode's measurement (new connections, warm pools).
    pub warmup: Duration,
    /// The measured time of each mode in each round.
    pub duration: Duration,
    /// Keep-alive connections, one task each.
    pub connections: usize,
    /// Keys made (half live, half test; two per user), spread over by the requests.
    pub keys: usize,
    /// Orders in each database; requests read one at random.
    pub orders: u64,
    /// Connections per pool (`[pools] max_size`), the same for every pool of every mode.
    pub pool_size: u32,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            backends: vec![BackendKind::Sqlite, BackendKind::Postgres],
            rounds: 5,
            warmup: Duration::from_secs(2),
            duration: Duration::from_secs(5),
            connections: 64,
            keys: 10_000,
            orders: 10_000,
            pool_size: 8,
        }
    }
}

/// Why a run could not be made or must not be trusted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// keyroute could not be built or a database could not be set up.
    #[error("setting up the {backend} benchmark failed: {reason}")]
    Setup {
        /// The backend being set up.
        backend: &'static str,
        /// What failed.
        reason: String,
    },
    /// The PostgreSQL container could not be had (no engine, no image).
    #[error(
        "no PostgreSQL for the benchmark: {0}; start a Docker engine (bash scripts/bench http does) or pass --backend sqlite"
    )]
    Container(String),
    /// The server or the load generator could not run.
    #[error("the load run failed: {0}")]
    Load(String),
    /// A mode answered something other than 2xx: its figures would measure errors.
    #[error(
        "{backend} {mode}: {count} responses were not 2xx (first: {first}); the figures of this run are void"
    )]
    Non2xx {
        /// The backend.
        backend: &'static str,
        /// The mode's name.
        mode: &'static str,
        /// How many responses were not 2xx, or failed outright.
        count: u64,
        /// The first such response or failure.
        first: String,
    },
    /// The options cannot make a measurement.
    #[error("invalid option --{option}: {reason}")]
    Options {
        /// The flag at fault.
        option: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// The report could not be written.
    #[error("cannot write the report: {0}")]
    Output(#[from] std::io::Error),
}
