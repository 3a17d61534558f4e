//! The resolver cache: what a resolved key is kept as, and the lookup that serves it
//! from the cache or fills the cache from the store (one lookup per key at a time),
//! with the revocation marks (see [`marks`](super::marks)) deciding what may be served.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64};

use chrono::{DateTime, Utc};
use keyroute_core::{ApiKey, ApiKeyStore, AuthError, KeyHash, StoreError, User};

use super::{Inner, KeyResolver};

/// The resolver cache: resolved keys by hash.
///
/// quick_cache rather than moka (which the negative cache and the marks use): a hit
/// is the whole cost of a cached request, and a moka hit also queues a read record
/// that its housekeeping later applies to its LRU lists, inline on some caller. Over
/// HTTP with 10 000 keys in use, moka's hits and housekeeping took about half of the
/// authentication time (perf, `bash scripts/bench http`). A quick_cache hit is a
/// sharded map read and one bit set for its eviction policy. It has no time-to-live;
/// none is needed: a hit is served only if younger than `session_cache_duration`
/// (checked in `lookup`, which drops an older entry), and the capacity bounds memory.
pub(super) type KeyCache = quick_cache::sync::Cache<KeyHash, Arc<CachedKey>>;

/// A resolved key as the cache keeps it.
pub(super) struct CachedKey {
    pub(super) key: Arc<ApiKey>,
    pub(super) user: Option<Arc<User>>,
    pub(super) fetched_at: DateTime<Utc>,
    /// The revocation epoch when the fill began (see [`marks`](super::marks)).
    pub(super) epoch: u64,
    /// The count of revocation marks written (plus one) at the last check that found
    /// this entry current; 0 before the first (see [`marks`](super::marks)).
    pub(super) checked: AtomicU64,
    /// Unix seconds when this key was last noted for a last-used write.
    pub(super) noted_at: AtomicI64,
}

/// Why a lookup found nothing to cache.
enum Miss {
    Unknown,
    Store(StoreError),
}

impl Miss {
    /// The rejection for this miss.
    fn into_auth_error(self) -> AuthError {
        match self {
            Miss::Unknown => AuthError::UnknownKey,
            Miss::Store(e) => AuthError::Store(e),
        }
    }
}

impl<S: ApiKeyStore + 'static> KeyResolver<S> {
    /// Marks `hash` (pending: a revoke is about to be written) and drops its entry.
    pub(super) async fn forget(&self, hash: &KeyHash, pending: bool) {
        if let Some((cache, _)) = &self.inner.cache {
            self.inner.marks.mark(hash, pending);
            cache.remove(hash);
        }
    }

    /// The key with `hash`: from the cache if fresh, else from one store lookup.
    pub(super) async fn lookup(
        &self,
        hash: &KeyHash,
        now: DateTime<Utc>,
    ) -> Result<Arc<CachedKey>, AuthError> {
        let inner = &self.inner;
        if let Some((cache, max_age)) = inner.live_cache()
            && let Some(entry) = cache.get(hash)
        {
            if now - entry.fetched_at < *max_age
                && inner
                    .marks
                    .is_current_cached(hash, entry.epoch, &entry.checked)
            {
                return Ok(entry);
            }
            cache.remove(hash);
        }
        if inner.negative.contains_key(hash) {
            return Err(AuthError::UnknownKey);
        }
        match inner.live_cache() {
            None => inner
                .fetch(hash, now)
                .await
                .map_err(|miss| miss.into_auth_error()),
            Some((cache, _)) => {
                let entry = cache
                    .get_or_insert_async(hash, inner.fetch(hash, now))
                    .await
                    .map_err(|miss| miss.into_auth_error())?;
                if inner.marks.is_current(hash, entry.epoch) {
                    return Ok(entry);
                }
                // A revoke ran during the fill, or is being written: read the store
                // again and keep the answer out of the cache.
                cache.remove(hash);
                inner
                    .fetch(hash, now)
                    .await
                    .map_err(|miss| miss.into_auth_error())
            }
        }
    }
}

impl<S: ApiKeyStore> Inner<S> {
    /// One indexed store lookup; an unknown key goes to the negative cache.
    async fn fetch(&self, hash: &KeyHash, now: DateTime<Utc>) -> Result<Arc<CachedKey>, Miss> {
        let epoch = self.marks.now();
        match self.store.get_api_key_by_hash(hash).await {
            Ok(Some(found)) => Ok(Arc::new(CachedKey {
                key: {
                    // Only a cache needs to know which hash a key id has (marks.rs):
                    // without one, nothing read here outlives the request.
                    if self.cache.is_some() {
                        self.marks.register(&found.key.id, hash, epoch);
                    }
                    Arc::new(found.key)
                },
                user: found.user.map(Arc::new),
                fetched_at: now,
                epoch,
                checked: AtomicU64::new(0),
                noted_at: AtomicI64::new(i64::MIN),
            })),
            Ok(None) => {
                self.negative.insert(*hash, ()).await;
                Err(Miss::Unknown)
            }
            Err(e) => Err(Miss::Store(e)),
        }
    }
}
