//! The load generator: `connections` keep-alive HTTP/1.1 connections over real TCP,
//! each owned by one task that sends a request, reads the whole response, records
//! the latency and sends the next (a closed loop: the offered load is what the
//! server sustains at that concurrency). It runs in a process of its own (see
//! [`process`]): [`drive`] starts it and reads its [`LoadResult`] back; the child
//! runs [`client_main`] on a Tokio runtime of its own, one thread per core it was
//! given (one thread when client and server are not pinned apart).
//!
//! Each mode's run opens fresh connections, loads for `warmup` unmeasured, then for
//! `duration`; a request counts when its response completes inside the measured window.
//! A priming run ([`LoadPlan::priming`]) instead sends each key once and stops.
//! Every response that is not 2xx (or a request that fails outright) is counted,
//! warm-up included, so a run that served errors cannot pass for a fast one.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::header::{HOST, HeaderValue};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};

use crate::cpu::{Clock, CpuWindow};
use crate::{BenchError, Mode, Placement};

pub mod process;

pub use process::{ClientArgs, client_main};

/// The highest latency recorded exactly: 60 s, in microseconds.
const MAX_MICROS: u64 = 60_000_000;

/// One mode's load run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoadPlan {
    /// The server.
    pub addr: SocketAddr,
    /// The mode whose path prefix every request takes.
    pub mode: Mode,
    /// The keys requests spread over, sent as `X-Api-Key` in every mode.
    pub keys: Arc<Vec<HeaderValue>>,
    /// Orders 1..=`orders` exist; each request reads one at random.
    pub orders: u64,
    /// Keep-alive connections, one task each.
    pub connections: usize,
    /// Unmeasured load first.
    pub warmup: Duration,
    /// Then the measured window.
    pub duration: Duration,
    /// The program started as the client (`None`: this process's own executable).
    pub program: Option<PathBuf>,
    /// The cores and threads the client gets.
    pub placement: Placement,
    /// A priming run: each key once, spread over the connections, then stop (or at
    /// `duration`, whichever is first); no warm-up, every request counted.
    pub prime: bool,
}

impl LoadPlan {
    /// A plan for `mode` on the server at `addr`, with `keys`, and every other figure
    /// from `options`.
    pub fn new(
        addr: SocketAddr,
        mode: Mode,
        keys: Arc<Vec<HeaderValue>>,
        options: &crate::Options,
    ) -> Self {
        Self {
            addr,
            mode,
            keys,
            orders: options.orders,
            connections: options.connections,
            warmup: options.warmup,
            duration: options.duration,
            program: options.client_program.clone(),
            placement: options.placement.clone(),
            prime: false,
        }
    }

    /// This plan as a priming run: every one of its keys sent once, so that the
    /// rounds after it find what a server in steady state has (each caching
    /// resolver's cache filled, each pool's connections open). [`PRIME_LIMIT`]
    /// bounds it.
    #[must_use]
    pub fn priming(self) -> Self {
        Self {
            warmup: Duration::ZERO,
            duration: PRIME_LIMIT,
            prime: true,
            ..self
        }
    }
}

/// The longest a priming run may take: the default 10 000 keys at under 100 requests
/// per second, far below any backend measured here.
pub const PRIME_LIMIT: Duration = Duration::from_secs(120);

/// What one load run measured: the client process's answer, one line of JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LoadResult {
    /// Responses completed in the measured window.
    pub requests: u64,
    /// The measured window (a priming run: the time it took).
    pub duration: Duration,
    /// Latencies of the measured responses.
    pub latency_us: Percentiles,
    /// Responses that were not 2xx, and requests that failed, warm-up included.
    pub non_2xx: u64,
    /// The first of those: its status and the start of its body, or the error.
    pub first_failure: Option<String>,
    /// CPU time over the measured window: the server's, the client's and the
    /// machine's (see [`crate::cpu`]); `None` where it could not be read.
    #[serde(default)]
    pub cpu: Option<CpuWindow>,
}

/// Latency percentiles of the measured responses from the HDR histogram, in
/// microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Percentiles {
    /// The median.
    pub p50: u64,
    /// The 90th percentile.
    pub p90: u64,
    /// The 99th percentile.
    pub p99: u64,
    /// The 99.9th percentile.
    #[serde(rename = "p99.9")]
    pub p99_9: u64,
    /// The slowest response.
    pub max: u64,
}

impl Percentiles {
    fn of(histogram: &Histogram<u64>) -> Self {
        Self {
            p50: histogram.value_at_quantile(0.50),
            p90: histogram.value_at_quantile(0.90),
            p99: histogram.value_at_quantile(0.99),
            p99_9: histogram.value_at_quantile(0.999),
            max: histogram.max(),
        }
    }
}

impl LoadResult {
    /// Requests per second over the measured window.
    pub fn requests_per_second(&self) -> f64 {
        let secs = self.duration.as_secs_f64();
        if secs > 0.0 {
            self.requests as f64 / secs
        } else {
            0.0
        }
    }

    /// The median latency.
    pub fn p50(&self) -> Duration {
        Duration::from_micros(self.latency_us.p50)
    }

    /// The 99th-percentile latency.
    pub fn p99(&self) -> Duration {
        Duration::from_micros(self.latency_us.p99)
    }
}

/// Runs `plan` in a client process of its own (this binary re-executed, or
/// [`LoadPlan::program`]) on the cores [`LoadPlan::placement`] gives it, and returns
/// what it measured.
///
/// # Errors
/// [`BenchError::Load`] when the process cannot start, fails (no connection could be
/// made, say; its stderr is in the message) or answers something that is not its
/// result.
pub async fn drive(plan: LoadPlan) -> Result<LoadResult, BenchError> {
    process::run_child(&plan).await
}

/// What one connection's task saw.
struct TaskResult {
    requests: u64,
    latencies: Histogram<u64>,
    non_2xx: u64,
    first_failure: Option<String>,
}

/// Runs `plan` in this process; with `server` (the server's pid), also measures the
/// CPU time spent over the measured window.
async fn generate(plan: LoadPlan, server: Option<u32>) -> Result<LoadResult, BenchError> {
    if plan.keys.is_empty() || plan.orders == 0 || plan.connections == 0 {
        return Err(BenchError::Load(
            "a load run needs keys, orders and connections".into(),
        ));
    }
    let plan = Arc::new(plan);
    let start = Instant::now();
    let measure_from = start + plan.warmup;
    let until = measure_from + plan.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..plan.connections {
        tasks.spawn(connection(index, Arc::clone(&plan), measure_from, until));
    }
    // The CPU counters at the window's two ends, beside the requests it counts. A
    // priming run ends when its keys are sent, not at a known time: not measured.
    let cpu = server.filter(|_| !plan.prime).map(|pid| {
        let clock = Clock::new(pid);
        tokio::spawn(async move {
            tokio::time::sleep_until(measure_from.into()).await;
            let start = clock.now()?;
            tokio::time::sleep_until(until.into()).await;
            CpuWindow::between(start, clock.now()?)
        })
    });
    let mut total = TaskResult {
        requests: 0,
        latencies: histogram()?,
        non_2xx: 0,
        first_failure: None,
    };
    while let Some(done) = tasks.join_next().await {
        let task = done.map_err(|e| BenchError::Load(format!("a client task failed: {e}")))??;
        total.requests = total.requests.saturating_add(task.requests);
        total.non_2xx = total.non_2xx.saturating_add(task.non_2xx);
        if total.first_failure.is_none() {
            total.first_failure = task.first_failure;
        }
        total
            .latencies
            .add(&task.latencies)
            .map_err(|e| BenchError::Load(format!("merging latencies: {e}")))?;
    }
    let cpu = match cpu {
        Some(sampler) => sampler.await.ok().flatten(),
        None => None,
    };
    Ok(LoadResult {
        requests: total.requests,
        duration: if plan.prime {
            start.elapsed()
        } else {
            plan.duration
        },
        latency_us: Percentiles::of(&total.latencies),
        non_2xx: total.non_2xx,
        first_failure: total.first_failure,
        cpu,
    })
}

fn histogram() -> Result<Histogram<u64>, BenchError> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3)
        .map_err(|e| BenchError::Load(format!("cannot make a latency histogram: {e}")))
}

/// One connection: connect, then request after request until `until`.
async fn connection(
    index: usize,
    plan: Arc<LoadPlan>,
    measure_from: Instant,
    until: Instant,
) -> Result<TaskResult, BenchError> {
    let connect_failed =
        |e: &dyn std::fmt::Display| BenchError::Load(format!("connecting to {}: {e}", plan.addr));
    let stream = tokio::net::TcpStream::connect(plan.addr)
        .await
        .map_err(|e| connect_failed(&e))?;
    stream.set_nodelay(true).map_err(|e| connect_failed(&e))?;
    let (mut sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| connect_failed(&e))?;
    let driver = tokio::spawn(driver);
    let host = HeaderValue::from_str(&plan.addr.to_string())
        .map_err(|e| BenchError::Load(format!("host header: {e}")))?;

    let mut result = TaskResult {
        requests: 0,
        latencies: histogram()?,
        non_2xx: 0,
        first_failure: None,
    };
    let mut rng = XorShift::seeded(index);
    let keys = plan.keys.len() as u64;
    // Priming: this connection's share of the keys (every `connections`-th from
    // `index`), each once.
    let mut share = plan
        .prime
        .then(|| (index..plan.keys.len()).step_by(plan.connections.max(1)));
    while Instant::now() < until {
        let key = match share.as_mut() {
            Some(share) => match share.next().and_then(|i| plan.keys.get(i)) {
                Some(key) => key,
                None => break,
            },
            None => &plan.keys[(rng.next() % keys) as usize],
        };
        let id = rng.next() % plan.orders + 1;
        let request = Request::get(plan.mode.path(id))
            .header(HOST, host.clone())
            .header("x-api-key", key.clone())
            .body(Empty::<Bytes>::new())
            .map_err(|e| BenchError::Load(format!("building a request: {e}")))?;
        let sent = Instant::now();
        let outcome = exchange(&mut sender, request).await;
        let done = Instant::now();
        let broken = matches!(outcome, Outcome::Failed(_));
        if let Some(failure) = outcome.failure() {
            result.non_2xx = result.non_2xx.saturating_add(1);
            result.first_failure.get_or_insert(failure);
        }
        if done >= measure_from && done <= until {
            result.requests = result.requests.saturating_add(1);
            let micros = u64::try_from(done.duration_since(sent).as_micros()).unwrap_or(MAX_MICROS);
            result
                .latencies
                .saturating_record(micros.clamp(1, MAX_MICROS));
        }
        if broken {
            break; // the connection is unusable; its failure is counted
        }
    }
    drop(sender);
    driver.abort();
    Ok(result)
}

enum Outcome {
    Ok,
    Status(StatusCode, String),
    Failed(String),
}

impl Outcome {
    fn failure(self) -> Option<String> {
        match self {
            Outcome::Ok => None,
            Outcome::Status(status, body) => Some(format!("{status}: {body}")),
            Outcome::Failed(error) => Some(error),
        }
    }
}

/// Sends `request` and reads the whole response.
async fn exchange(
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    request: Request<Empty<Bytes>>,
) -> Outcome {
    if let Err(e) = sender.ready().await {
        return Outcome::Failed(format!("connection closed: {e}"));
    }
    let response = match sender.send_request(request).await {
        Ok(response) => response,
        Err(e) => return Outcome::Failed(format!("request failed: {e}")),
    };
    let status = response.status();
    let body = match response.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => return Outcome::Failed(format!("reading a {status} body failed: {e}")),
    };
    if status.is_success() {
        Outcome::Ok
    } else {
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        Outcome::Status(status, text)
    }
}

/// xorshift64*: a fast, seedable spread of keys and orders over each task's requests.
/// Statistical quality is beside the point; every mode gets the same sequence.
struct XorShift(u64);

impl XorShift {
    fn seeded(index: usize) -> Self {
        // Distinct, non-zero seeds per task.
        Self(0x9E37_79B9_7F4A_7C15 ^ (index as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::extract::State;
    use axum::routing::get;
    use http::HeaderMap;

    use super::*;

    /// A priming run sends every key exactly once, over connections that do not
    /// divide the keys evenly, counts every response and takes as long as it takes:
    /// a server that records each request's key sees the keys, no more, no fewer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn priming_sends_each_key_once() {
        type Seen = Arc<Mutex<Vec<String>>>;
        async fn record(State(seen): State<Seen>, headers: HeaderMap) -> &'static str {
            let key = headers
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("(none)")
                .to_owned();
            seen.lock().unwrap().push(key);
            "ok"
        }
        let seen = Seen::default();
        let app = axum::Router::new()
            .route("/open/orders/{id}", get(record))
            .with_state(Arc::clone(&seen));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });

        let keys: Vec<String> = (0..103).map(|i| format!("sk_test_{i:03}")).collect();
        let values = keys
            .iter()
            .map(|k| HeaderValue::from_str(k).unwrap())
            .collect();
        let options = crate::Options {
            connections: 8,
            ..crate::Options::default()
        };
        let plan = LoadPlan::new(addr, Mode::Open, Arc::new(values), &options).priming();
        assert!(plan.prime && plan.warmup.is_zero());
        let result = generate(plan, Some(std::process::id())).await.unwrap();
        server.abort();

        let mut seen = seen.lock().unwrap().clone();
        seen.sort();
        assert_eq!(seen, keys);
        assert_eq!(result.requests, 103);
        assert_eq!(result.non_2xx, 0);
        assert!(result.duration < PRIME_LIMIT, "{:?}", result.duration);
        assert!(result.requests_per_second() > 0.0);
        // It ends when its keys are sent: no CPU window to measure.
        assert!(result.cpu.is_none());
    }
}
