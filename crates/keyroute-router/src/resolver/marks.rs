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
//!
//! A cache hit checks its key's mark without reading the marks when it can
//! ([`Marks::is_current_cached`]): an entry remembers the count of marks written when
//! a check last found it current, and while that count has not moved, no mark exists
//! that the check did not see, so the answer stands. Why that is exact: the count is
//! raised only *after* a mark is written, and read *before* the marks are, so any mark
//! the check missed raises the count after it was read. [`Marks::mark`] is not async
//! (nothing can stop it between writing the mark and raising the count). Under a
//! steady stream of revocations each cached entry pays one marks read per mark
//! written, not one per request.

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
    /// How many marks have been written: raised after each write.
    written: AtomicU64,
    marks: moka::sync::Cache<KeyHash, Mark>,
}

impl Marks {
    pub(super) fn new(capacity: u64, cache_ttl: Duration) -> Self {
        Self {
            epoch: AtomicU64::new(0),
            written: AtomicU64::new(0),
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
        self.written.fetch_add(1, Ordering::SeqCst);
    }

    /// Whether an entry for `hash` whose fill started at `filled` may be served.
    pub(super) fn is_current(&self, hash: &KeyHash, filled: u64) -> bool {
        self.marks
            .get(hash)
            .is_none_or(|mark| !mark.pending && mark.epoch <= filled)
    }

    /// [`is_current`](Self::is_current) for an entry in the cache, remembering a
    /// positive answer in `checked` (the entry's own: 0 before its first check, else
    /// the count of marks written at its last positive check, plus one) until the
    /// next mark is written.
    pub(super) fn is_current_cached(
        &self,
        hash: &KeyHash,
        filled: u64,
        checked: &AtomicU64,
    ) -> bool {
        // Read before the marks: see the module docs.
        let written = self.written.load(Ordering::SeqCst);
        if checked.load(Ordering::SeqCst) > written {
            return true;
        }
        let current = self.is_current(hash, filled);
        if current {
            checked.fetch_max(written.saturating_add(1), Ordering::SeqCst);
        }
        current
    }
}
