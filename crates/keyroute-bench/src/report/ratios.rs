//! The ratios a run reports ([`RATIOS`]): which modes are divided by which, on what
//! [`Figure`], and the [`Target`] each should keep.

use super::Figure;
use crate::Mode;

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
    pub(super) fn holds(self, value: f64) -> bool {
        match self {
            Target::AtLeast(t) => value >= t,
            Target::AtMost(t) => value <= t,
        }
    }

    pub(super) fn describe(self) -> String {
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
    pub(super) fn describe_rounds(&self) -> String {
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
/// CPU per request served (no target of its own): each pair with a throughput target,
/// and `open` against `open-plain`, so a throughput ratio can be read against what
/// the two modes cost the machine (see [`crate::cpu`]).
pub const RATIOS: [(Mode, Mode, Figure, Option<Target>); 22] = [
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
    (Mode::Keyroute, Mode::OpenPlain, Figure::Cpu, None),
    (Mode::Open, Mode::OpenPlain, Figure::Cpu, None),
    (Mode::Keyroute, Mode::NaivePlain, Figure::Cpu, None),
    (Mode::KeyrouteLimited, Mode::Keyroute, Figure::Cpu, None),
    (Mode::KeyrouteValkey, Mode::Keyroute, Figure::Cpu, None),
    (Mode::KeyrouteRls, Mode::Keyroute, Figure::Cpu, None),
    (Mode::KeyrouteSchema, Mode::Keyroute, Figure::Cpu, None),
];
