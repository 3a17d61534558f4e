//! The breaker in front of a shared engine: after a failure, checks leave the engine
//! alone for `retry_after`, then one check tries it again; both transitions are logged.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::EngineError;

/// Whether the shared engine is being left alone after a failure.
#[derive(Debug)]
pub(super) struct Breaker {
    open: AtomicBool,
    /// Milliseconds after `epoch` when the next check may try the engine again.
    until: AtomicU64,
    epoch: Instant,
    cooldown: Duration,
}

impl Breaker {
    pub(super) fn new(cooldown: Duration) -> Self {
        Self {
            open: AtomicBool::new(false),
            until: AtomicU64::new(0),
            epoch: Instant::now(),
            cooldown,
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether this check may ask the engine (closed, or open and its time is up:
    /// then this caller is the one that tries).
    pub(super) fn allows(&self) -> bool {
        if !self.open.load(Ordering::Acquire) {
            return true;
        }
        let now = self.now_ms();
        let until = self.until.load(Ordering::Acquire);
        now >= until
            && self
                .until
                .compare_exchange(
                    until,
                    now.saturating_add(self.millis()),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    fn millis(&self) -> u64 {
        u64::try_from(self.cooldown.as_millis()).unwrap_or(u64::MAX)
    }

    pub(super) fn failed(&self, error: &EngineError) {
        self.until.store(
            self.now_ms().saturating_add(self.millis()),
            Ordering::Release,
        );
        if !self.open.swap(true, Ordering::AcqRel) {
            tracing::warn!(%error, "keyroute: the shared limiter is unreachable; limits fall back (`[limits] on_unavailable`) until it answers");
        }
    }

    pub(super) fn succeeded(&self) {
        if self.open.swap(false, Ordering::AcqRel) {
            tracing::info!("keyroute: the shared limiter answers again; limits are shared again");
        }
    }
}
