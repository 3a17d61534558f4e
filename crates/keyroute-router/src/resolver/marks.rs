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
//! Marks outlive any entry they could invalidate (the cache TTL plus a minute). They,
//! and the id index below, are bounded by time only, never by a capacity: a cache at
//! capacity may refuse a new entry (moka's admission policy), and a refused mark or
//! id → hash pair would let a revoked key be served for the rest of its TTL. Their
//! size follows real events: marks and marked ids one per revocation within the
//! window, id → hash pairs one per key found in the store within it.
//!
//! The change feed names keys by id, not hash, so marks are kept by id too: a fill
//! that read a key records its id → hash ([`Marks::register`]) and, if the id was
//! marked since the fill began, marks the hash. Either the feed's mark comes first
//! (the fill sees it) or the registration does (the feed finds the hash), so a
//! remote revoke cannot slip past a fill in flight. Clearing the whole cache (the
//! feed was interrupted) raises a floor: nothing filled before it is served.
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

use keyroute_core::{KeyHash, KeyId};

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
    /// Epoch of the last feed event per key id.
    ids: moka::sync::Cache<KeyId, u64>,
    /// Which hash each recently filled key id has.
    hashes: moka::sync::Cache<KeyId, KeyHash>,
    /// Entries filled before this epoch are never served.
    floor: AtomicU64,
}

impl Marks {
    pub(super) fn new(cache_ttl: Duration) -> Self {
        let ttl = cache_ttl.saturating_add(Duration::from_secs(60));
        Self {
            epoch: AtomicU64::new(0),
            written: AtomicU64::new(0),
            marks: moka::sync::Cache::builder().time_to_live(ttl).build(),
            ids: moka::sync::Cache::builder().time_to_live(ttl).build(),
            hashes: moka::sync::Cache::builder().time_to_live(ttl).build(),
            floor: AtomicU64::new(0),
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
        filled >= self.floor.load(Ordering::SeqCst)
            && self
                .marks
                .get(hash)
                .is_none_or(|mark| !mark.pending && mark.epoch <= filled)
    }

    /// A fill that began at `filled` read key `id` with `hash`: remembers the pair and
    /// marks the hash if the feed named `id` since the fill began.
    pub(super) fn register(&self, id: &KeyId, hash: &KeyHash, filled: u64) {
        self.hashes.insert(id.clone(), *hash);
        if self.ids.get(id).is_some_and(|marked| marked > filled) {
            self.mark(hash, false);
        }
    }

    /// The feed named key `id`: marks it, and returns its hash if a fill read it.
    pub(super) fn mark_id(&self, id: &KeyId) -> Option<KeyHash> {
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst).saturating_add(1);
        self.ids.insert(id.clone(), epoch);
        self.hashes.get(id)
    }

    /// Nothing filled before now may be served.
    pub(super) fn raise_floor(&self) {
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst).saturating_add(1);
        self.floor.store(epoch, Ordering::SeqCst);
        // Counts as a mark: a hit remembered as current must look again (module docs).
        self.written.fetch_add(1, Ordering::SeqCst);
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
