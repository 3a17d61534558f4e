//! keyroute's HTTP load benchmark: what a request costs end to end, keyroute against
//! the hand-written alternative and against no authentication, on keyroute's pools and
//! on plain bb8 pools, over real sockets. Unpublished; depends on the facade,
//! keyroute-testing (databases) and hyper/axum.
//!
//! Layout:
//! - [`service`]: one axum server on `127.0.0.1:0` exposing every [`Mode`] under its
//!   own path prefix. On keyroute's pools (the live and test pools of one keyroute
//!   handle): `open` (no authentication), `naive` (the request's plaintext key looked
//!   up per request in a `plain_keys` table, then the handler's query on the
//!   connection its environment picks), `keyroute` (the front door on its default
//!   settings), `keyroute-uncached` and `keyroute-cached` (the resolver cache set
//!   explicitly off and on), `keyroute-limited` and `keyroute-valkey` (`keyroute`'s
//!   settings plus one default rate limit per key that every request is checked
//!   against and none exhausts, in process and on a Valkey server: the limiter's cost;
//!   `keyroute-valkey` only with keyroute's `valkey` feature and a server from
//!   keyroute-testing, else it is skipped and the run says why); `keyroute-rls` and
//!   `keyroute-schema` (PostgreSQL only, skipped elsewhere with the reason printed):
//!   `keyroute` with `[tenancy] mode = "row_security"` (one shared `orders` table per
//!   database, row-level security on its `tenant_id`) and `mode = "schema"` (an
//!   `orders` table in each of 20 tenants' schemas), each a front door of its own over
//!   the same key store, connecting as a role without SUPERUSER or BYPASSRLS (see
//!   `service/tenancy.rs`). Every key has one of the 20 tenants. On plain pools
//!   (`bb8::Pool` of diesel-async's `AsyncDieselConnectionManager`, what a team has
//!   before adopting keyroute): `open-plain` and `naive-plain`, the same two handlers.
//!   The handler's own query is the same in every mode: one indexed read, an order by
//!   id.
//! - [`load`]: the load generator: a fixed number of keep-alive HTTP/1.1 connections,
//!   each owned by one task that sends its next request when the last one's body has
//!   arrived; a warm-up, then a fixed measured duration; latencies in an HDR histogram.
//!   It runs in a process of its own: the benchmark re-executes its own binary as a
//!   client (a hidden `client` subcommand), hands it the keys on its stdin (never on
//!   its command line or in its environment) and reads one line of JSON back.
//! - [`placement`]: which cores the server and the client run on.
//! - [`cpu`]: CPU time over each measured window, read by the client from `/proc`:
//!   the server process's, its own, and the rest of the machine's busy time (the
//!   database's processes, the kernel's network work), with idle and stolen time, so
//!   each mode's cost per request is printed beside its throughput.
//! - [`report`]: medians across rounds, the ratios (requests/s, p99 and CPU per
//!   request served) against the
//!   baselines measured in the same run, whether the targets are met, and
//!   `keyroute-valkey`'s Valkey commands per request (`INFO commandstats` read before
//!   and after each of its measurements, divided by the requests it served), and on
//!   PostgreSQL the round trips and statements per request of `keyroute`,
//!   `keyroute-rls` and `keyroute-schema` on their routed connections, counted by a
//!   relay that reads the wire protocol (a separate short run after the rounds; see
//!   `service/counted.rs`).
//! - [`run`]: per backend (SQLite files; PostgreSQL and MariaDB in containers), the
//!   modes interleaved and repeated: round 1 runs every mode once, then round 2, and
//!   so on, so a noisy minute on the shared machine lands on every mode alike; each
//!   round starts one mode later, so no mode always runs first or after the same
//!   neighbour. After each mode's measurement the server's thread count is printed,
//!   so a pool or executor that grows threads under load shows it. A mode the server
//!   could not set up (`keyroute-valkey` without a server) is left out of every round,
//!   and the run prints why.
//!
//! Fairness. The server runs on the multi-threaded Tokio runtime of the benchmark's
//! process, the client in a separate OS process, so neither shares a runtime, an
//! allocator or a scheduler queue with the other. On a machine with at least 4 cores
//! (and `taskset` installed) the two are pinned apart: the server on the first half of
//! the cores it may use, the client on the rest, with one runtime worker per core each.
//! On fewer cores they are not pinned (and the report says so): the client then runs
//! on one thread and takes one core's share at most, and the operating system
//! schedules both on the same cores, as it would a client and a server sharing a
//! small machine. The client does exactly the same work per request in every mode
//! (the same request bytes, key header included, and the same response handling), so
//! on a shared machine its cost is a constant every mode pays: it dilutes the ratios
//! towards 1.0, which makes a met target conservative rather than flattering. The
//! plain pools get everything keyroute's pools get except the pool and executor
//! themselves: the same `max_size`, `min_idle`, timeouts and checkout check, the same
//! SQLite pragmas (foreign keys, `busy_timeout`, WAL, `synchronous = NORMAL`), and the
//! same handler query; SQLite's plain connections run on diesel-async's default
//! executor (`spawn_blocking`), keyroute's on its own. So `open` against `open-plain`
//! is keyroute's pools against plain pools, on the same work.

pub mod cpu;
pub mod load;
pub mod placement;
pub mod report;
pub mod service;

mod run;

use std::path::PathBuf;
use std::time::Duration;

pub use placement::Placement;
pub use report::{BackendReport, ModeSample, RoundTrips, ValkeyCommands};
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
    /// keyroute on its defaults plus one in-process rate limit every key hits.
    KeyrouteLimited,
    /// keyroute on its defaults plus the same rate limit on a Valkey server.
    KeyrouteValkey,
    /// keyroute on its defaults with `[tenancy] mode = "row_security"`: one shared
    /// `orders` table guarded by row-level security, the tenant bound per request
    /// (PostgreSQL only).
    KeyrouteRls,
    /// keyroute on its defaults with `[tenancy] mode = "schema"`: an `orders` table in
    /// each tenant's schema, the schema bound per request (PostgreSQL only).
    KeyrouteSchema,
    /// No authentication on a plain bb8 pool: `open`'s work without keyroute's pools.
    OpenPlain,
    /// The hand-written lookup on plain bb8 pools: what a team has before keyroute.
    NaivePlain,
}

impl Mode {
    /// Every mode, in the order a round runs them.
    pub const ALL: [Mode; 11] = [
        Mode::Open,
        Mode::Naive,
        Mode::Keyroute,
        Mode::KeyrouteUncached,
        Mode::KeyrouteCached,
        Mode::KeyrouteLimited,
        Mode::KeyrouteValkey,
        Mode::KeyrouteRls,
        Mode::KeyrouteSchema,
        Mode::OpenPlain,
        Mode::NaivePlain,
    ];

    /// The mode's name, as printed and as its path prefix.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Open => "open",
            Mode::Naive => "naive",
            Mode::Keyroute => "keyroute",
            Mode::KeyrouteUncached => "keyroute-uncached",
            Mode::KeyrouteCached => "keyroute-cached",
            Mode::KeyrouteLimited => "keyroute-limited",
            Mode::KeyrouteValkey => "keyroute-valkey",
            Mode::KeyrouteRls => "keyroute-rls",
            Mode::KeyrouteSchema => "keyroute-schema",
            Mode::OpenPlain => "open-plain",
            Mode::NaivePlain => "naive-plain",
        }
    }

    /// The mode named `name` (as [`Mode::name`] prints it), if any.
    pub fn from_name(name: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|mode| mode.name() == name)
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
    /// Two databases on a MariaDB container started through `keyroute-testing`.
    Mariadb,
}

impl BackendKind {
    /// The backend's name, as printed and as given to `--backend`.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Sqlite => "sqlite",
            BackendKind::Postgres => "postgres",
            BackendKind::Mariadb => "mariadb",
        }
    }
}

/// How a run is shaped. `Default` is the full run `bash scripts/bench http` makes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// The backends to measure, in order.
    pub backends: Vec<BackendKind>,
    /// The modes measured each round (in the order each round takes, whatever
    /// order they are given in); ratios need both of their modes.
    pub modes: Vec<Mode>,
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
    /// Requests carry only the live keys, so every authenticated request reads the
    /// live database as `open`'s do: separates what spreading requests over two
    /// databases costs from what authenticating them costs.
    pub live_only: bool,
    /// Before the rounds, each mode is sent every key once, unmeasured (see
    /// [`LoadPlan::priming`](load::LoadPlan::priming)), so the rounds measure the steady
    /// state (caches filled) and the first round no cold start; the priming runs'
    /// throughput is printed as the cold figure. `false` leaves the filling to the
    /// rounds.
    pub prime: bool,
    /// The program run as the load generator's process, given the hidden `client`
    /// subcommand. `None`: this process's own executable (`std::env::current_exe`),
    /// which is the benchmark binary when it runs; tests name the binary themselves.
    pub client_program: Option<PathBuf>,
    /// Where the server and the client run; [`Placement::shared`] unless the binary
    /// pinned itself before starting its runtime ([`Placement::pin_apart`]).
    pub placement: Placement,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            modes: Mode::ALL.to_vec(),
            backends: vec![
                BackendKind::Sqlite,
                BackendKind::Postgres,
                BackendKind::Mariadb,
            ],
            rounds: 5,
            warmup: Duration::from_secs(2),
            duration: Duration::from_secs(5),
            connections: 64,
            keys: 10_000,
            orders: 10_000,
            pool_size: 8,
            live_only: false,
            prime: true,
            client_program: None,
            placement: Placement::shared(),
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
    /// A database container could not be had (no engine, no image).
    #[error(
        "no {backend} for the benchmark: {reason}; start a Docker engine (bash scripts/bench http does) or pass --backend sqlite"
    )]
    Container {
        /// The backend that needs the container.
        backend: &'static str,
        /// Why there is none.
        reason: String,
    },
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
