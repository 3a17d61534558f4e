//! What a run prints: each mode's figures per round, the medians across rounds, the
//! ratios against the baselines measured in the same run, with their targets,
//! `keyroute-valkey`'s Valkey commands per request, and on PostgreSQL the round trips
//! per request of `keyroute` and the tenancy modes ([`RoundTrips`]).

use std::io::{self, Write};
use std::time::Duration;

use crate::cpu::CpuPerRequest;
use crate::load::LoadResult;
use crate::{BackendKind, Mode};

mod ratios;
mod round_trips;

pub use ratios::{RATIOS, Ratio, Target};
pub use round_trips::RoundTrips;

/// One mode in one round.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ModeSample {
    /// The mode.
    pub mode: Mode,
    /// The round, from 1.
    pub round: u32,
    /// Responses in the measured window.
    pub requests: u64,
    /// Requests per second.
    pub rps: f64,
    /// Median latency.
    pub p50: Duration,
    /// 99th-percentile latency.
    pub p99: Duration,
    /// Responses that were not 2xx (must be 0).
    pub non_2xx: u64,
    /// `keyroute-valkey` only: the Valkey server's commands per request served over
    /// the mode's run (warm-up included), when they could be read.
    pub valkey_commands: Option<ValkeyCommands>,
    /// CPU time per request over the measured window, when it could be read.
    pub cpu: Option<CpuPerRequest>,
}

/// `keyroute-valkey`'s commands on the Valkey server per request served, from its
/// `INFO commandstats`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct ValkeyCommands {
    /// Every command counted: those sent to the server and those its scripts called
    /// (`INFO commandstats` counts a script's `TIME`, `GET` and `SET` too).
    pub total: f64,
    /// Script runs (`EVALSHA`, or `EVAL` when the server lacks the script): the
    /// limiter's checks, one round trip each.
    pub scripts: f64,
}

impl ValkeyCommands {
    /// `total` commands per request, `scripts` of them script runs.
    pub fn new(total: f64, scripts: f64) -> Self {
        Self { total, scripts }
    }
}

impl ModeSample {
    /// The sample `result` makes for `mode` in `round`.
    pub fn new(mode: Mode, round: u32, result: &LoadResult) -> Self {
        Self {
            mode,
            round,
            requests: result.requests,
            rps: result.requests_per_second(),
            p50: result.p50(),
            p99: result.p99(),
            non_2xx: result.non_2xx,
            valkey_commands: None,
            cpu: result
                .cpu
                .and_then(|window| window.per_request(result.requests)),
        }
    }

    /// One line: mode, requests/s, p50, p99, non-2xx.
    pub fn line(&self) -> String {
        format!(
            "  {:<18} {:>9.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms   non-2xx {}",
            self.mode.name(),
            self.rps,
            millis(self.p50),
            millis(self.p99),
            self.non_2xx
        )
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// What a ratio divides: two modes' median requests/s, their median p99 latencies, or
/// their median CPU time per request served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Figure {
    /// Median requests/s: higher is better.
    Throughput,
    /// Median of the rounds' 99th-percentile latencies: lower is better.
    P99,
    /// Median of the rounds' CPU time per request served, the load generator's own
    /// left out ([`CpuPerRequest::serving_us`]): lower is better.
    Cpu,
}

impl Figure {
    /// This figure of one sample: its requests/s, its p99 in seconds, or its CPU
    /// microseconds per request (`None` when they were not measured).
    fn of(self, sample: &ModeSample) -> Option<f64> {
        match self {
            Figure::Throughput => Some(sample.rps),
            Figure::P99 => Some(sample.p99.as_secs_f64()),
            Figure::Cpu => sample.cpu.as_ref().map(CpuPerRequest::serving_us),
        }
    }

    /// The figure's name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Figure::Throughput => "req/s",
            Figure::P99 => "p99",
            Figure::Cpu => "cpu",
        }
    }
}

/// Every round of every mode on one backend.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BackendReport {
    /// The backend.
    pub backend: BackendKind,
    /// Every sample, in the order measured.
    pub samples: Vec<ModeSample>,
    /// Modes not measured on this backend, and why.
    pub skipped: Vec<(Mode, String)>,
    /// Round trips per request on the routed connection, per mode counted
    /// (PostgreSQL: `keyroute` and the tenancy modes).
    pub round_trips: Vec<(Mode, RoundTrips)>,
    /// Each mode's priming run (every key once, before the rounds; see
    /// [`Options::prime`](crate::Options::prime)): the cold figures.
    pub primed: Vec<(Mode, crate::load::LoadResult)>,
}

impl BackendReport {
    /// An empty report for `backend`.
    pub fn new(backend: BackendKind) -> Self {
        Self {
            backend,
            samples: Vec::new(),
            skipped: Vec::new(),
            round_trips: Vec::new(),
            primed: Vec::new(),
        }
    }

    fn median_of(&self, mode: Mode, figure: impl Fn(&ModeSample) -> Option<f64>) -> Option<f64> {
        let mut values: Vec<f64> = self
            .samples
            .iter()
            .filter(|s| s.mode == mode)
            .filter_map(figure)
            .collect();
        median(&mut values)
    }

    /// The median requests/s of `mode` across rounds.
    pub fn median_rps(&self, mode: Mode) -> Option<f64> {
        self.median_of(mode, |s| Some(s.rps))
    }

    /// The median of `mode`'s per-round p50 and p99 latencies.
    pub fn median_latencies(&self, mode: Mode) -> Option<(Duration, Duration)> {
        let p50 = self.median_of(mode, |s| Some(s.p50.as_secs_f64()))?;
        let p99 = self.median_of(mode, |s| Some(s.p99.as_secs_f64()))?;
        Some((Duration::from_secs_f64(p50), Duration::from_secs_f64(p99)))
    }

    /// `mode`'s CPU figures, each the median over the rounds that measured them:
    /// `   cpu/req 52.1 us (server 40.3, rest 11.8; client 12.0), idle 2 %, steal 1 %`
    /// (the first figure is the median of the rounds' server + rest, so the parts,
    /// medians of their own, need not add up to it exactly).
    fn median_cpu(&self, mode: Mode) -> Option<String> {
        let of =
            |part: fn(&CpuPerRequest) -> f64| self.median_of(mode, |s| s.cpu.as_ref().map(part));
        let parts = CpuPerRequest {
            server_us: of(|c| c.server_us)?,
            client_us: of(|c| c.client_us)?,
            rest_us: of(|c| c.rest_us)?,
            idle: of(|c| c.idle)?,
            steal: of(|c| c.steal)?,
        };
        Some(format!(
            "   {}",
            parts.describe_serving(of(CpuPerRequest::serving_us)?)
        ))
    }

    /// The ratios of [`RATIOS`] on this backend's medians, each with its rounds' own.
    pub fn ratios(&self) -> Vec<Ratio> {
        RATIOS
            .iter()
            .map(|&(mode, baseline, figure, target)| {
                let median = |m| self.median_of(m, |s| figure.of(s));
                Ratio {
                    mode,
                    baseline,
                    figure,
                    target,
                    value: divide(median(mode), median(baseline)),
                    rounds: self.round_ratios(mode, baseline, figure),
                }
            })
            .collect()
    }

    /// `mode / baseline` of `figure` in each round that measured both, in round order.
    fn round_ratios(&self, mode: Mode, baseline: Mode, figure: Figure) -> Vec<f64> {
        let of = |m: Mode, round: u32| {
            self.samples
                .iter()
                .find(|s| s.mode == m && s.round == round)
                .and_then(|s| figure.of(s))
        };
        let mut rounds: Vec<u32> = self.samples.iter().map(|s| s.round).collect();
        rounds.sort_unstable();
        rounds.dedup();
        rounds
            .into_iter()
            .filter_map(|round| divide(of(mode, round), of(baseline, round)))
            .collect()
    }

    /// Writes the medians and the ratios with their targets.
    ///
    /// # Errors
    /// When `out` cannot be written.
    pub fn write_summary(&self, out: &mut dyn Write) -> io::Result<()> {
        let rounds = self.samples.iter().map(|s| s.round).max().unwrap_or(0);
        let backend = self.backend.name();
        writeln!(out, "{backend}: medians over {rounds} rounds")?;
        for mode in Mode::ALL {
            if let (Some(rps), Some((p50, p99))) =
                (self.median_rps(mode), self.median_latencies(mode))
            {
                writeln!(
                    out,
                    "  {:<18} {:>9.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms{}",
                    mode.name(),
                    rps,
                    millis(p50),
                    millis(p99),
                    self.median_cpu(mode).unwrap_or_default()
                )?;
            } else if let Some((_, reason)) = self.skipped.iter().find(|(m, _)| *m == mode) {
                writeln!(out, "  {:<18} skipped: {reason}", mode.name())?;
            }
        }
        writeln!(
            out,
            "{backend}: ratios of medians (req/s: higher is better; p99 and cpu per request served: lower is better), and the same ratio's lowest and highest in one round"
        )?;
        for ratio in self.ratios() {
            let label = format!("{} / {}", ratio.mode.name(), ratio.baseline.name());
            let value = ratio
                .value
                .map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2} x"));
            let verdict = match (ratio.target, ratio.met()) {
                (Some(t), Some(true)) => format!("{}: met", t.describe()),
                (Some(t), Some(false)) => format!("{}: MISSED", t.describe()),
                (Some(t), None) => format!("{}: not measured", t.describe()),
                (None, _) => "no target".to_owned(),
            };
            writeln!(
                out,
                "  {label:<30} {:<5} {value:>8}   {verdict}{}",
                ratio.figure.name(),
                ratio.describe_rounds()
            )?;
        }
        self.write_valkey_commands(out)?;
        round_trips::write(self.backend.name(), &self.round_trips, out)
    }

    /// `keyroute-valkey`'s Valkey commands per request: the script runs (one
    /// `EVALSHA` expected) and every command counted, medians and each round's.
    fn write_valkey_commands(&self, out: &mut dyn Write) -> io::Result<()> {
        let rounds: Vec<ValkeyCommands> = self
            .samples
            .iter()
            .filter(|s| s.mode == Mode::KeyrouteValkey)
            .filter_map(|s| s.valkey_commands)
            .collect();
        if rounds.is_empty() {
            return Ok(());
        }
        let figure = |f: fn(&ValkeyCommands) -> f64| {
            let mut values: Vec<f64> = rounds.iter().map(f).collect();
            let each: Vec<String> = values.iter().map(|n| format!("{n:.2}")).collect();
            let median = median(&mut values).unwrap_or(f64::NAN);
            format!("{median:.2} (rounds {})", each.join(", "))
        };
        writeln!(
            out,
            "{}: keyroute-valkey per request (medians): {} EVALSHA/EVAL sent (at most 1.00: one round trip, shared by the checks batched together); {} Valkey commands in all (INFO commandstats, the script's own calls included)",
            self.backend.name(),
            figure(|c| c.scripts),
            figure(|c| c.total),
        )
    }
}

/// `m / b` when both are there and `b` is above zero.
fn divide(m: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (m, b) {
        (Some(m), Some(b)) if b > 0.0 => Some(m / b),
        _ => None,
    }
}

/// The median of `values` (the mean of the middle two for an even count).
fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    })
}

/// The machine's load averages (`/proc/loadavg`), to print beside the figures.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| {
            let fields: Vec<&str> = text.split_whitespace().take(3).collect();
            (fields.len() == 3).then(|| fields.join(" "))
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests;
