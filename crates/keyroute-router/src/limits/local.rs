//! [`LocalLimiter`]: the in-process engine. One theoretical arrival time per limiter
//! in a sharded map; exact within the process, lost on restart, not shared between
//! instances (N instances admit up to N times a limit).
//!
//! Memory is bounded by `max_tracked` limiters. A limiter whose arrival time has
//! passed is full, the same as one never seen, so it is dropped without changing any
//! decision; only when more limiters than that are active at once are active ones
//! dropped (they start full again: lenient, never stricter), and a warning is logged.

use std::hash::BuildHasher as _;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hashbrown::hash_table::Entry as Slot;

#[cfg(test)]
use keyroute_core::limits::Gcra;
use keyroute_core::limits::GcraDecision;

use super::{Check, LimitStatus, Statuses, Verdict};

/// 64 shards, chosen by the top bits of a subject's hash (the table uses the low ones).
const SHARD_BITS: u32 = 6;
const SHARDS: usize = 1 << SHARD_BITS;

/// One limiter: its subject and theoretical arrival time.
#[derive(Debug)]
struct Entry {
    subject: Box<str>,
    tat: u64,
}

/// A shard: limiters by their subject's hash, hashed once per check for both the shard
/// and the table.
type Shard = hashbrown::HashTable<Entry>;

/// The in-process limit engine.
#[derive(Debug)]
pub struct LocalLimiter {
    shards: Box<[Mutex<Shard>]>,
    hasher: foldhash::fast::RandomState,
    /// A TSC-based clock where the CPU has a usable one (a few ns a reading, against
    /// ~20-25 for the system clock), monotonic either way.
    clock: quanta::Clock,
    epoch: quanta::Instant,
    per_shard: usize,
}

impl LocalLimiter {
    /// An engine keeping at most about `max_tracked` active limiters.
    pub fn new(max_tracked: usize) -> Self {
        let clock = quanta::Clock::new();
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::new())).collect(),
            hasher: foldhash::fast::RandomState::default(),
            epoch: clock.now(),
            clock,
            per_shard: max_tracked.div_ceil(SHARDS).max(1),
        }
    }

    /// Nanoseconds since the engine started, never 0 (0 is a fresh limiter's state).
    fn now(&self) -> u64 {
        let elapsed = self.clock.now().saturating_duration_since(self.epoch);
        u64::try_from(elapsed.as_nanos())
            .unwrap_or(u64::MAX)
            .saturating_add(1)
    }

    fn hash(&self, subject: &str) -> u64 {
        self.hasher.hash_one(subject)
    }

    fn shard_of(hash: u64) -> usize {
        (hash >> (64 - SHARD_BITS)) as usize
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, Shard> {
        // A panic elsewhere while holding a shard leaves whole numbers in it.
        self.shards[shard]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Checks `cost` against every limit in `checks`: admitted only if all admit, and
    /// then spent from all; a refusal spends nothing. The shards involved are held
    /// together (in order), so concurrent checks of shared limiters are exact.
    pub fn check(&self, checks: &[Check<'_>], cost: u64) -> Verdict {
        if let [one] = checks {
            return self.check_one(one, cost);
        }
        let hashes: Vec<u64> = checks.iter().map(|c| self.hash(c.subject)).collect();
        let mut order: Vec<usize> = hashes.iter().map(|&h| Self::shard_of(h)).collect();
        order.sort_unstable();
        order.dedup();
        let mut guards: Vec<MutexGuard<'_, Shard>> = order.iter().map(|&i| self.lock(i)).collect();
        let now = self.now();
        let decisions: Vec<(usize, u64, GcraDecision)> = checks
            .iter()
            .zip(&hashes)
            .map(|(check, &hash)| {
                let slot = order.binary_search(&Self::shard_of(hash)).unwrap_or(0);
                (slot, hash, decide(&guards[slot], check, hash, now, cost))
            })
            .collect();
        let mut shards: Vec<&mut Shard> = guards.iter_mut().map(|g| &mut **g).collect();
        self.conclude(&mut shards, &decisions, checks, now, cost)
    }

    /// The common case: one limit, one shard, one probe of its table, no allocation
    /// but a new entry.
    fn check_one(&self, check: &Check<'_>, cost: u64) -> Verdict {
        let hash = self.hash(check.subject);
        let mut shard = self.lock(Self::shard_of(hash));
        let now = self.now();
        let room = shard.len() < self.per_shard;
        let eq = |e: &Entry| *e.subject == *check.subject;
        let entry = shard.entry(hash, eq, |e| self.hash(&e.subject));
        let tat = match &entry {
            Slot::Occupied(found) => found.get().tat,
            Slot::Vacant(_) => 0,
        };
        let decision = check.gcra.check(tat, now, cost);
        let statuses = smallvec::smallvec![status(&decision)];
        match decision {
            GcraDecision::Refuse { retry_after, .. } => {
                return Verdict::Refused {
                    index: 0,
                    retry_after: Duration::from_nanos(retry_after),
                    statuses,
                };
            }
            GcraDecision::Admit { tat, .. } if cost > 0 => match entry {
                Slot::Occupied(mut found) => found.get_mut().tat = tat,
                Slot::Vacant(free) if room => {
                    free.insert(Entry {
                        subject: check.subject.into(),
                        tat,
                    });
                }
                // A full shard: `store` makes room first.
                Slot::Vacant(_) => {
                    self.store(&mut shard, check.subject, hash, tat, now);
                }
            },
            _ => {}
        }
        Verdict::Admitted(statuses)
    }

    /// Returns `cost` to every limiter in `checks` (the request was admitted by the
    /// limits and then refused for another reason, such as its credits).
    pub fn refund(&self, checks: &[Check<'_>], cost: u64) {
        for check in checks {
            let hash = self.hash(check.subject);
            let mut shard = self.lock(Self::shard_of(hash));
            if let Some(entry) = shard.find_mut(hash, |e| *e.subject == *check.subject) {
                entry.tat = entry
                    .tat
                    .saturating_sub(cost.saturating_mul(check.gcra.interval()));
            }
        }
    }

    fn conclude(
        &self,
        shards: &mut [&mut Shard],
        decisions: &[(usize, u64, GcraDecision)],
        checks: &[Check<'_>],
        now: u64,
        cost: u64,
    ) -> Verdict {
        let refused = decisions
            .iter()
            .enumerate()
            .find_map(|(i, (_, _, d))| match d {
                GcraDecision::Refuse { retry_after, .. } => Some((i, *retry_after)),
                _ => None,
            });
        let statuses: Statuses = decisions.iter().map(|(_, _, d)| status(d)).collect();
        if let Some((index, retry_after)) = refused {
            return Verdict::Refused {
                index,
                retry_after: Duration::from_nanos(retry_after),
                statuses,
            };
        }
        if cost > 0 {
            for ((slot, hash, decision), check) in decisions.iter().zip(checks) {
                if let GcraDecision::Admit { tat, .. } = decision {
                    self.store(shards[*slot], check.subject, *hash, *tat, now);
                }
            }
        }
        Verdict::Admitted(statuses)
    }

    fn store(&self, shard: &mut Shard, subject: &str, hash: u64, tat: u64, now: u64) {
        if let Some(entry) = shard.find_mut(hash, |e| *e.subject == *subject) {
            entry.tat = tat;
            return;
        }
        if shard.len() >= self.per_shard {
            // Full limiters are the same as absent ones: dropping them changes nothing.
            shard.retain(|e| e.tat > now);
            if shard.len() >= self.per_shard {
                let keep = self.per_shard - self.per_shard / 10 - 1;
                tracing::warn!(
                    tracked = shard.len(),
                    "keyroute: more rate limiters are active than `[limits] max_tracked` allows; some start over (lenient) until the load drops"
                );
                let mut kept = 0;
                shard.retain(|_| {
                    kept += 1;
                    kept <= keep
                });
            }
        }
        let entry = Entry {
            subject: subject.into(),
            tat,
        };
        shard.insert_unique(hash, entry, |e| self.hash(&e.subject));
    }

    /// How many limiters are tracked now (for tests and metrics).
    pub fn tracked(&self) -> usize {
        (0..SHARDS).map(|i| self.lock(i).len()).sum()
    }
}

fn decide(shard: &Shard, check: &Check<'_>, hash: u64, now: u64, cost: u64) -> GcraDecision {
    let tat = shard
        .find(hash, |e| *e.subject == *check.subject)
        .map_or(0, |e| e.tat);
    check.gcra.check(tat, now, cost)
}

fn status(decision: &GcraDecision) -> LimitStatus {
    match *decision {
        GcraDecision::Admit {
            remaining,
            reset_after,
            ..
        }
        | GcraDecision::Refuse {
            remaining,
            reset_after,
            ..
        } => LimitStatus {
            remaining,
            reset_after: Duration::from_nanos(reset_after),
        },
        // `GcraDecision` is non-exhaustive: a future variant reports a full limiter.
        #[allow(unreachable_patterns)]
        _ => LimitStatus {
            remaining: 0,
            reset_after: Duration::ZERO,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(subject: &str, limit: u64, burst: u64) -> Check<'_> {
        Check {
            subject,
            gcra: Gcra::new(limit, Duration::from_secs(3600), burst),
        }
    }

    /// Several limits: all or nothing, and a refusal spends nothing from any.
    #[test]
    fn all_or_nothing() {
        let engine = LocalLimiter::new(1000);
        let wide = check("key:a:wide", 1, 10);
        let narrow = check("key:a:narrow", 1, 2);
        assert!(engine.check(&[wide, narrow], 1).admitted());
        assert!(engine.check(&[wide, narrow], 1).admitted());
        // The narrow one is used up: refused, and the wide one keeps its 8.
        assert!(!engine.check(&[wide, narrow], 1).admitted());
        for _ in 0..8 {
            assert!(engine.check(&[wide], 1).admitted());
        }
        assert!(!engine.check(&[wide], 1).admitted());
    }

    /// Idle limiters are dropped when the engine is full, and only they.
    #[test]
    fn memory_is_bounded() {
        let engine = LocalLimiter::new(640);
        let subjects: Vec<String> = (0..5_000).map(|i| format!("key:{i}:r")).collect();
        for subject in &subjects {
            // Window of a nanosecond per unit: each limiter is full again at once.
            let fast = Check {
                subject,
                gcra: Gcra::new(1_000_000, Duration::from_millis(1), 1),
            };
            assert!(engine.check(&[fast], 1).admitted());
        }
        assert!(engine.tracked() <= 640 + SHARDS, "{}", engine.tracked());
    }

    proptest::proptest! {
        /// One limit alone (the single-probe path) decides as it does among several
        /// (the general path), whatever the order of subjects and costs (0 included,
        /// which checks without spending).
        #[test]
        fn one_limit_decides_as_several_do(
            steps in proptest::collection::vec((0usize..3, 0u64..4), 1..120),
        ) {
            let alone = LocalLimiter::new(1000);
            let among = LocalLimiter::new(1000);
            let subjects = ["key:a:r", "key:b:r", "user:c:r"];
            let roomy = check("key:roomy:r", 1_000_000, 1_000_000);
            for (i, cost) in steps {
                let limit = check(subjects[i], 1, 5);
                let one = alone.check(&[limit], cost);
                let several = among.check(&[limit, roomy], cost);
                proptest::prop_assert_eq!(one.admitted(), several.admitted());
                let remaining = |v: &Verdict| match v {
                    Verdict::Admitted(s) | Verdict::Refused { statuses: s, .. } => s[0].remaining,
                };
                proptest::prop_assert_eq!(remaining(&one), remaining(&several));
            }
        }
    }

    /// Refund gives back what was spent.
    #[test]
    fn refund_returns_the_cost() {
        let engine = LocalLimiter::new(100);
        let one = check("key:b:r", 1, 1);
        assert!(engine.check(&[one], 1).admitted());
        assert!(!engine.check(&[one], 1).admitted());
        engine.refund(&[one], 1);
        assert!(engine.check(&[one], 1).admitted());
    }
}
