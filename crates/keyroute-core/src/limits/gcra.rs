//! The generic cell rate algorithm (GCRA): one number of state per limiter, its
//! *theoretical arrival time* (TAT), and an exact decision in constant time. It is the
//! token bucket written without a timer: a limiter whose TAT is in the past is full,
//! so an engine may forget it without changing any decision (which is how the
//! in-process engine bounds its memory).
//!
//! Every engine runs this arithmetic: the in-process one in Rust, the Valkey one in a
//! Lua script that mirrors [`Gcra::check`] line for line.

use std::time::Duration;

/// A limit's parameters in nanoseconds: the interval between units at the average
/// rate (`window / limit`, rounded up so rounding never admits more), and the
/// tolerance (`burst` intervals).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Gcra {
    interval: u64,
    tolerance: u64,
}

/// What [`Gcra::check`] decided. Times are nanoseconds on the engine's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GcraDecision {
    /// Admitted: store `tat` as the limiter's new state.
    Admit {
        /// The new theoretical arrival time.
        tat: u64,
        /// Units that could still be admitted at once after this request.
        remaining: u64,
        /// How long until the limiter is full again.
        reset_after: u64,
    },
    /// Refused; the state stays as it was.
    Refuse {
        /// How long until this request's cost would be admitted (for `Retry-After`).
        retry_after: u64,
        /// Units that could be admitted at once now.
        remaining: u64,
        /// How long until the limiter is full again.
        reset_after: u64,
    },
}

impl GcraDecision {
    /// Whether the request was admitted.
    pub fn admitted(&self) -> bool {
        matches!(self, GcraDecision::Admit { .. })
    }
}

impl Gcra {
    /// The parameters of `limit` units per `window` with `burst` at once.
    pub fn new(limit: u64, window: Duration, burst: u64) -> Self {
        let limit = u128::from(limit.max(1));
        let interval = window.as_nanos().div_ceil(limit).max(1);
        let interval = u64::try_from(interval).unwrap_or(u64::MAX);
        Self {
            interval,
            tolerance: interval.saturating_mul(burst.max(1)),
        }
    }

    /// Nanoseconds between units at the average rate.
    pub fn interval(&self) -> u64 {
        self.interval
    }

    /// Nanoseconds of tolerance: `burst` intervals.
    pub fn tolerance(&self) -> u64 {
        self.tolerance
    }

    /// Decides a request of `cost` units at `now`, for a limiter whose state is `tat`
    /// (0 for one never used). A cost of 0 asks whether one unit would be admitted
    /// and spends nothing. A cost over the burst is never admitted.
    pub fn check(&self, tat: u64, now: u64, cost: u64) -> GcraDecision {
        let base = tat.max(now);
        let full_at = now.saturating_add(self.tolerance);
        let asked = cost.max(1).saturating_mul(self.interval);
        let allow_at = base.saturating_add(asked).saturating_sub(self.tolerance);
        if allow_at <= now {
            let tat = base.saturating_add(cost.saturating_mul(self.interval));
            GcraDecision::Admit {
                tat,
                remaining: full_at.saturating_sub(tat) / self.interval,
                reset_after: tat - now,
            }
        } else {
            GcraDecision::Refuse {
                retry_after: allow_at - now,
                remaining: full_at.saturating_sub(base) / self.interval,
                reset_after: base - now,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The reference model, written as the limit's promise rather than as the
    /// algorithm: a request is admitted exactly when, for every earlier admitted
    /// request's time `s` (and `now`), everything admitted since `s` plus this cost
    /// fits in `burst + (now - s) / interval` units.
    struct Reference {
        interval: u128,
        burst: u128,
        admitted: Vec<(u64, u64)>,
    }

    impl Reference {
        fn admits(&mut self, now: u64, cost: u64) -> bool {
            let cost = u128::from(cost);
            let fits = |since: u64, spent: u128| {
                let need = self.interval * (spent + cost.max(1));
                need <= self.interval * self.burst + u128::from(now - since)
            };
            let mut spent = 0u128;
            let mut ok = fits(now, 0);
            for &(at, c) in self.admitted.iter().rev() {
                spent += u128::from(c);
                ok &= fits(at, spent);
            }
            if ok && cost > 0 {
                self.admitted.push((now, cost as u64));
            }
            ok
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Random arrivals and costs on random limits: the algorithm decides exactly
        /// as the reference, so it never admits more than the limit allows and never
        /// refuses what it allows.
        #[test]
        fn decides_as_the_reference_model(
            limit in 1u64..20,
            window_ms in 1u64..5_000,
            burst in 1u64..10,
            steps in proptest::collection::vec((0u64..400_000_000, 0u64..4), 1..120),
        ) {
            let gcra = Gcra::new(limit, Duration::from_millis(window_ms), burst);
            let mut reference = Reference {
                interval: u128::from(gcra.interval()),
                burst: u128::from(burst),
                admitted: Vec::new(),
            };
            let (mut now, mut tat) = (1_000_000_000u64, 0u64);
            for (gap, cost) in steps {
                now += gap;
                let decision = gcra.check(tat, now, cost);
                prop_assert_eq!(decision.admitted(), reference.admits(now, cost), "at {} cost {}", now, cost);
                match decision {
                    GcraDecision::Admit { tat: new, .. } => tat = new,
                    GcraDecision::Refuse { retry_after, .. } => {
                        // Retry-After is exact: refused just before it, admitted at it.
                        prop_assert!(retry_after > 0);
                        if cost <= burst {
                            prop_assert!(gcra.check(tat, now + retry_after, cost).admitted());
                            prop_assert!(!gcra.check(tat, now + retry_after - 1, cost).admitted());
                        }
                    }
                }
            }
        }
    }

    /// The figures behind the headers: a full limiter admits `burst` at once, then
    /// one per interval; a cost over the burst never passes.
    #[test]
    fn burst_then_rate() {
        let gcra = Gcra::new(10, Duration::from_secs(1), 3);
        assert_eq!(gcra.interval(), 100_000_000);
        let now = 5_000_000_000;
        let mut tat = 0;
        for left in [2, 1, 0] {
            match gcra.check(tat, now, 1) {
                GcraDecision::Admit {
                    tat: t, remaining, ..
                } => {
                    assert_eq!(remaining, left);
                    tat = t;
                }
                refused => panic!("refused inside the burst: {refused:?}"),
            }
        }
        assert_eq!(
            gcra.check(tat, now, 1),
            GcraDecision::Refuse {
                retry_after: 100_000_000,
                remaining: 0,
                reset_after: 300_000_000
            }
        );
        assert!(gcra.check(0, now, 0).admitted());
        assert!(!gcra.check(0, now, 4).admitted());
    }
}
