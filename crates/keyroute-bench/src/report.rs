//! What a run prints: each mode's figures per round, the medians across rounds, and
//! the ratios against the baselines measured in the same run, with their targets.

use std::io::{self, Write};
use std::time::Duration;

use crate::load::LoadResult;
use crate::{BackendKind, Mode};

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
}

impl Ratio {
    /// Whether the target is met (at or inside its bound); `None` without a target or
    /// a value.
    pub fn met(&self) -> Option<bool> {
        let value = self.value?;
        Some(match self.target? {
            Target::AtLeast(t) => value >= t,
            Target::AtMost(t) => value <= t,
        })
    }
}

/// The ratios every backend reports. Throughput: keyroute on its defaults and
/// uncached against the hand-written lookup on keyroute's pools, keyroute cached
/// against no authentication, and keyroute on its defaults against the two modes on
/// plain pools (what a team has before adopting it). p99: keyroute on its defaults
/// against no authentication on plain pools, and `open` against `open-plain` (the same
/// work on keyroute's pools and on plain pools).
pub const RATIOS: [(Mode, Mode, Figure, Option<Target>); 7] = [
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
];

/// Every round of every mode on one backend.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BackendReport {
    /// The backend.
    pub backend: BackendKind,
    /// Every sample, in the order measured.
    pub samples: Vec<ModeSample>,
}

impl BackendReport {
    /// An empty report for `backend`.
    pub fn new(backend: BackendKind) -> Self {
        Self {
            backend,
            samples: Vec::new(),
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

    /// The median p99 latency of `mode` across rounds, in seconds.
    fn median_p99(&self, mode: Mode) -> Option<f64> {
        self.median_of(mode, |s| s.p99.as_secs_f64())
    }

    /// The ratios of [`RATIOS`] on this backend's medians.
    pub fn ratios(&self) -> Vec<Ratio> {
        RATIOS
            .iter()
            .map(|&(mode, baseline, figure, target)| {
                let median = |m| match figure {
                    Figure::Throughput => self.median_rps(m),
                    Figure::P99 => self.median_p99(m),
                };
                Ratio {
                    mode,
                    baseline,
                    figure,
                    target,
                    value: match (median(mode), median(baseline)) {
                        (Some(m), Some(b)) if b > 0.0 => Some(m / b),
                        _ => None,
                    },
                }
            })
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
            }
        }
        writeln!(
            out,
            "{backend}: ratios of medians (req/s: higher is better; p99: lower is better)"
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
                "  {label:<30} {:<5} {value:>8}   {verdict}",
                ratio.figure.name()
            )?;
        }
        Ok(())
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
mod tests {
    use super::*;

    /// Medians of odd and even counts, and none of nothing.
    #[test]
    fn median_of_rounds() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    /// Ratios divide medians, and a target is met at or above its floor only.
    #[test]
    fn ratios_and_targets() {
        let mut report = BackendReport::new(BackendKind::Sqlite);
        let sample = |mode, round, rps| ModeSample {
            mode,
            round,
            requests: 1,
            rps,
            p50: Duration::from_millis(1),
            p99: Duration::from_millis(2),
            non_2xx: 0,
        };
        for (round, open, naive, kr, uncached, cached) in [
            (1, 1000.0, 500.0, 600.0, 250.0, 950.0),
            (2, 1100.0, 400.0, 500.0, 200.0, 900.0),
            (3, 900.0, 450.0, 9000.0, 300.0, 1000.0),
        ] {
            report.samples.push(sample(Mode::Open, round, open));
            report.samples.push(sample(Mode::Naive, round, naive));
            report.samples.push(sample(Mode::Keyroute, round, kr));
            report
                .samples
                .push(sample(Mode::KeyrouteUncached, round, uncached));
            report
                .samples
                .push(sample(Mode::KeyrouteCached, round, cached));
        }
        let ratios = report.ratios();
        // keyroute 600 (median) / naive 450 = 1.33: met.
        assert!((ratios[0].value.unwrap() - 600.0 / 450.0).abs() < 1e-9);
        assert_eq!(ratios[0].met(), Some(true));
        // uncached 250 / naive 450: no target.
        assert_eq!(ratios[1].met(), None);
        // cached 950 / open 1000 = 0.95: met at the floor exactly.
        assert_eq!(ratios[2].met(), Some(true));
        let mut out = Vec::new();
        report.write_summary(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("keyroute / naive"), "{text}");
        assert!(text.contains("1.33 x"), "{text}");
    }

    /// The plain-pool ratios: throughput against `naive-plain` and `open-plain` with
    /// floors, p99 against `open-plain` with a ceiling met at or below it only.
    #[test]
    fn plain_pool_ratios_and_p99_ceilings() {
        let mut report = BackendReport::new(BackendKind::Sqlite);
        let sample = |mode, round, rps, p99_ms| ModeSample {
            mode,
            round,
            requests: 1,
            rps,
            p50: Duration::from_millis(1),
            p99: Duration::from_millis(p99_ms),
            non_2xx: 0,
        };
        // (mode, [(rps, p99 ms) per round])
        for (mode, rounds) in [
            (Mode::Keyroute, [(1500.0, 12), (1400.0, 14), (1600.0, 10)]),
            (Mode::NaivePlain, [(1000.0, 9), (900.0, 11), (1100.0, 10)]),
            (Mode::OpenPlain, [(1500.0, 10), (1500.0, 8), (1600.0, 12)]),
            (Mode::Open, [(1400.0, 13), (1500.0, 12), (1450.0, 11)]),
        ] {
            for (round, (rps, p99)) in (1..).zip(rounds) {
                report.samples.push(sample(mode, round, rps, p99));
            }
        }
        let ratios = report.ratios();
        let find = |mode, baseline, figure| {
            ratios
                .iter()
                .find(|r| r.mode == mode && r.baseline == baseline && r.figure == figure)
                .unwrap()
        };
        // keyroute 1500 / naive-plain 1000 = 1.5: met at the floor exactly.
        let r = find(Mode::Keyroute, Mode::NaivePlain, Figure::Throughput);
        assert!((r.value.unwrap() - 1.5).abs() < 1e-9);
        assert_eq!(r.met(), Some(true));
        // keyroute 1500 / open-plain 1500 = 1.0 >= 0.95: met.
        let r = find(Mode::Keyroute, Mode::OpenPlain, Figure::Throughput);
        assert!((r.value.unwrap() - 1.0).abs() < 1e-9);
        assert_eq!(r.met(), Some(true));
        // p99: keyroute median 12 ms / open-plain median 10 ms = 1.2: met at the ceiling.
        let r = find(Mode::Keyroute, Mode::OpenPlain, Figure::P99);
        assert!((r.value.unwrap() - 1.2).abs() < 1e-9);
        assert_eq!(r.met(), Some(true));
        // p99: open median 12 ms / open-plain 10 ms is also 1.2; at 13 ms it is missed.
        let r = find(Mode::Open, Mode::OpenPlain, Figure::P99);
        assert!((r.value.unwrap() - 1.2).abs() < 1e-9);
        report.samples.retain(|s| s.mode != Mode::Open);
        for round in 1..=3 {
            report.samples.push(sample(Mode::Open, round, 1400.0, 13));
        }
        let r = report
            .ratios()
            .into_iter()
            .find(|r| r.mode == Mode::Open && r.figure == Figure::P99)
            .unwrap();
        assert!((r.value.unwrap() - 1.3).abs() < 1e-9);
        assert_eq!(r.met(), Some(false));
        // Modes not measured (naive, the cached ones) leave their ratios without a value.
        assert!(report.ratios().iter().any(|r| r.value.is_none()));
        let mut out = Vec::new();
        report.write_summary(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("open / open-plain"), "{text}");
        assert!(text.contains("1.30 x   target <= 1.20 x: MISSED"), "{text}");
        assert!(text.contains("target >= 1.50 x: met"), "{text}");
        assert!(text.contains("not measured"), "{text}");
    }
}
