//! What a run prints: each mode's figures per round, the medians across rounds, the
//! ratios against the baselines measured in the same run, with their targets,
//! `keyroute-valkey`'s Valkey commands per request, and on PostgreSQL the round trips
//! per request of `keyroute` and the tenancy modes ([`RoundTrips`]).

use std::io::{self, Write};
use std::time::Duration;

use crate::load::LoadResult;
use crate::{BackendKind, Mode};

mod round_trips;

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

/// What a ratio divides: two modes' median requests/s, or their median p99 latencies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Figure {
    /// Median requests/s: higher is better.
    Throughput,
    /// Median of the rounds' 99th-percentile latencies: lower is better.
    P99,
}

impl Figure {
    /// This figure of one sample: its requests/s, or its p99 in seconds.
    fn of(self, sample: &ModeSample) -> f64 {
        match self {
            Figure::Throughput => sample.rps,
            Figure::P99 => sample.p99.as_secs_f64(),
        }
    }

    /// The figure's name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Figure::Throughput => "req/s",
            Figure::P99 => "p99",
        }
    }
}

/// The bound a ratio should keep.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Target {
    /// At least this (throughput).
    AtLeast(f64),
    /// At most this (latency).
    AtMost(f64),
}

impl Target {
    /// Whether `value` is at or inside the bound.
    fn holds(self, value: f64) -> bool {
        match self {
            Target::AtLeast(t) => value >= t,
            Target::AtMost(t) => value <= t,
        }
    }

    fn describe(self) -> String {
        match self {
            Target::AtLeast(t) => format!("target >= {t:.2} x"),
            Target::AtMost(t) => format!("target <= {t:.2} x"),
        }
    }
}

/// A ratio of two modes' medians, and the bound it should keep.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Ratio {
    /// The mode measured.
    pub mode: Mode,
    /// The baseline it is divided by.
    pub baseline: Mode,
    /// What is divided.
    pub figure: Figure,
    /// The bound, when there is a target.
    pub target: Option<Target>,
    /// `mode / baseline`, when both were measured.
    pub value: Option<f64>,
    /// The same ratio in each round that measured both modes, in round order: how far
    /// one round's pair can be from the medians' ratio on this host.
    pub rounds: Vec<f64>,
}

impl Ratio {
    /// Whether the target is met (at or inside its bound); `None` without a target or
    /// a value.
    pub fn met(&self) -> Option<bool> {
        Some(self.target?.holds(self.value?))
    }

    /// The lowest and highest of the rounds' ratios; `None` when no round measured both.
    pub fn spread(&self) -> Option<(f64, f64)> {
        let first = *self.rounds.first()?;
        Some(
            self.rounds
                .iter()
                .fold((first, first), |(lo, hi), &r| (lo.min(r), hi.max(r))),
        )
    }

    /// In how many rounds the round's own ratio met the target; `None` without one.
    pub fn rounds_met(&self) -> Option<usize> {
        let target = self.target?;
        Some(self.rounds.iter().filter(|&&r| target.holds(r)).count())
    }

    /// `(rounds 0.82-1.25 x, met in 5 of 8)`, or nothing without a round.
    fn describe_rounds(&self) -> String {
        let Some((lo, hi)) = self.spread() else {
            return String::new();
        };
        let met = self
            .rounds_met()
            .map(|n| format!(", met in {n} of {}", self.rounds.len()))
            .unwrap_or_default();
        format!("   (rounds {lo:.2}-{hi:.2} x{met})")
    }
}

/// The ratios every backend reports. Throughput: keyroute on its defaults and
/// uncached against the hand-written lookup on keyroute's pools, keyroute cached
/// against no authentication, and keyroute on its defaults against the two modes on
/// plain pools (what a team has before adopting it). p99: keyroute on its defaults
/// against no authentication on plain pools, and `open` against `open-plain` (the same
/// work on keyroute's pools and on plain pools). Limits: keyroute with a rate limit in
/// process and on Valkey against keyroute on its defaults, throughput and p99.
/// Tenancy (PostgreSQL): keyroute with the tenant bound by row-level security and by
/// schema against keyroute on its defaults, throughput (at least 0.9 x) and p99.
pub const RATIOS: [(Mode, Mode, Figure, Option<Target>); 15] = [
    (
        Mode::Keyroute,
        Mode::Naive,
        Figure::Throughput,
        Some(Target::AtLeast(1.2)),
    ),
    (
        Mode::KeyrouteUncached,
        Mode::Naive,
        Figure::Throughput,
        None,
    ),
    (
        Mode::KeyrouteCached,
        Mode::Open,
        Figure::Throughput,
        Some(Target::AtLeast(0.95)),
    ),
    (
        Mode::Keyroute,
        Mode::NaivePlain,
        Figure::Throughput,
        Some(Target::AtLeast(1.5)),
    ),
    (
        Mode::Keyroute,
        Mode::OpenPlain,
        Figure::Throughput,
        Some(Target::AtLeast(0.95)),
    ),
    (
        Mode::Keyroute,
        Mode::OpenPlain,
        Figure::P99,
        Some(Target::AtMost(1.2)),
    ),
    (
        Mode::Open,
        Mode::OpenPlain,
        Figure::P99,
        Some(Target::AtMost(1.2)),
    ),
    (
        Mode::KeyrouteLimited,
        Mode::Keyroute,
        Figure::Throughput,
        Some(Target::AtLeast(0.95)),
    ),
    (
        Mode::KeyrouteValkey,
        Mode::Keyroute,
        Figure::Throughput,
        Some(Target::AtLeast(0.7)),
    ),
    (Mode::KeyrouteLimited, Mode::Keyroute, Figure::P99, None),
    (Mode::KeyrouteValkey, Mode::Keyroute, Figure::P99, None),
    (
        Mode::KeyrouteRls,
        Mode::Keyroute,
        Figure::Throughput,
        Some(Target::AtLeast(0.9)),
    ),
    (
        Mode::KeyrouteSchema,
        Mode::Keyroute,
        Figure::Throughput,
        Some(Target::AtLeast(0.9)),
    ),
    (Mode::KeyrouteRls, Mode::Keyroute, Figure::P99, None),
    (Mode::KeyrouteSchema, Mode::Keyroute, Figure::P99, None),
];

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
}

impl BackendReport {
    /// An empty report for `backend`.
    pub fn new(backend: BackendKind) -> Self {
        Self {
            backend,
            samples: Vec::new(),
            skipped: Vec::new(),
            round_trips: Vec::new(),
        }
    }

    fn median_of(&self, mode: Mode, figure: impl Fn(&ModeSample) -> f64) -> Option<f64> {
        let mut values: Vec<f64> = self
            .samples
            .iter()
            .filter(|s| s.mode == mode)
            .map(figure)
            .collect();
        median(&mut values)
    }

    /// The median requests/s of `mode` across rounds.
    pub fn median_rps(&self, mode: Mode) -> Option<f64> {
        self.median_of(mode, |s| s.rps)
    }

    /// The median of `mode`'s per-round p50 and p99 latencies.
    pub fn median_latencies(&self, mode: Mode) -> Option<(Duration, Duration)> {
        let p50 = self.median_of(mode, |s| s.p50.as_secs_f64())?;
        let p99 = self.median_of(mode, |s| s.p99.as_secs_f64())?;
        Some((Duration::from_secs_f64(p50), Duration::from_secs_f64(p99)))
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
                .map(|s| figure.of(s))
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
                    "  {:<18} {:>9.0} req/s   p50 {:>7.2} ms   p99 {:>7.2} ms",
                    mode.name(),
                    rps,
                    millis(p50),
                    millis(p99)
                )?;
            } else if let Some((_, reason)) = self.skipped.iter().find(|(m, _)| *m == mode) {
                writeln!(out, "  {:<18} skipped: {reason}", mode.name())?;
            }
        }
        writeln!(
            out,
            "{backend}: ratios of medians (req/s: higher is better; p99: lower is better), and the same ratio's lowest and highest in one round"
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
