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
//! The change feed names keys by id, not hash, so marks are kept by id too: a fill
//! that read a key records its id → hash ([`Marks::register`]) and, if the id was
//! marked since the fill began, marks the hash. Either the feed's mark comes first
//! (the fill sees it) or the registration does (the feed finds the hash), so a
//! remote revoke cannot slip past a fill in flight. Clearing the whole cache (the
//! feed was interrupted) raises a floor: nothing filled before it is served.

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
    marks: moka::sync::Cache<KeyHash, Mark>,
    /// Epoch of the last feed event per key id.
    ids: moka::sync::Cache<KeyId, u64>,
    /// Which hash each recently filled key id has.
    hashes: moka::sync::Cache<KeyId, KeyHash>,
    /// Entries filled before this epoch are never served.
    floor: AtomicU64,
}

impl Marks {
    pub(super) fn new(capacity: u64, cache_ttl: Duration) -> Self {
        let ttl = cache_ttl.saturating_add(Duration::from_secs(60));
        Self {
            epoch: AtomicU64::new(0),
            marks: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            ids: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            hashes: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
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
    }
}
