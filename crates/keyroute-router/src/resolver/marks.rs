//! Revocation marks: what keeps a revoke from being undone by a cache fill in flight.
//!
//! A cache fill reads the store, then inserts what it read. If a revoke evicts the key
//! between the two, the fill would put the pre-revocation record back for the whole
//! cache TTL. So every eviction leaves a mark with a fresh epoch, every fill records
//! the epoch it started at, and an entry is served from the cache only if no mark for
//! its key is newer than the fill. A revoke also marks its key *pending* before it
//! writes the store: while pending, the key is never served from the cache, so a
//! revoke whose caller stops waiting after the write (a dropped future) still takes
//! effect here at the next request.
//!
//! Marks outlive any entry they could invalidate (the cache TTL plus a minute), and
//! are bounded like the cache.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keyroute_core::KeyHash;

#[derive(Debug, Clone, Copy)]
struct Mark {
    epoch: u64,
    pending: bool,
}

pub(super) struct Marks {
    epoch: AtomicU64,
    marks: moka::sync::Cache<KeyHash, Mark>,
}

impl Marks {
    pub(super) fn new(capacity: u64, cache_ttl: Duration) -> Self {
        Self {
            epoch: AtomicU64::new(0),
            marks: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(cache_ttl.saturating_add(Duration::from_secs(60)))
                .build(),
        }
    }

    /// The epoch now: taken by a fill before it reads the store.
    pub(super) fn now(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Marks `hash`: entries filled before now are stale; while `pending`, none is
    /// served from the cache.
    pub(super) fn mark(&self, hash: &KeyHash, pending: bool) {
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst).saturating_add(1);
        self.marks.insert(*hash, Mark { epoch, pending });
    }

    /// Whether an entry for `hash` whose fill started at `filled` may be served.
    pub(super) fn is_current(&self, hash: &KeyHash, filled: u64) -> bool {
        self.marks
            .get(hash)
            .is_none_or(|mark| !mark.pending && mark.epoch <= filled)
    }
}
