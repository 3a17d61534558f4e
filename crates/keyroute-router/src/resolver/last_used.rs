//! Last-used times without a write per request: each key is noted at most once per
//! interval, and the notes are written in one batch, by the task the handle runs (see
//! [`KeyResolver::last_used_task`]) or by [`KeyResolver::flush_last_used`].

use std::sync::atomic::Ordering;
use std::sync::{PoisonError, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use keyroute_core::{ApiKeyStore, KeyId, StoreResult};

use super::{CachedKey, Inner, KeyResolver};

impl<S: ApiKeyStore + 'static> KeyResolver<S> {
    /// The background work of last-used stamps: writes the noted times every
    /// `last_used_every`, until the last clone of this resolver is dropped. Nothing
    /// runs it unless you spawn it (the `Keyroute` handle does, in
    /// `spawn_background`): a library should not start tasks behind your back.
    pub fn last_used_task(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        flush_periodically(
            std::sync::Arc::downgrade(&self.inner),
            Duration::from_secs(self.inner.last_used_every.unsigned_abs()),
        )
    }
}

/// Writes noted last-used times every `every`, until the resolver is dropped.
async fn flush_periodically<S: ApiKeyStore>(inner: Weak<Inner<S>>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if let Err(error) = inner.flush_last_used().await {
            tracing::warn!(%error, "keyroute: could not record when keys were last used");
        }
    }
}

impl<S: ApiKeyStore> Inner<S> {
    /// Notes a use of `entry` for the next batch, at most once per interval per key.
    pub(super) fn note_use(&self, entry: &CachedKey, now: DateTime<Utc>) {
        let secs = now.timestamp();
        let last = entry.noted_at.load(Ordering::Relaxed);
        if secs.saturating_sub(last) >= self.last_used_every
            && entry
                .noted_at
                .compare_exchange(last, secs, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.last_used
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(entry.key.id.clone());
        }
    }

    pub(super) async fn flush_last_used(&self) -> StoreResult<u64> {
        let ids: Vec<KeyId> = std::mem::take(
            &mut *self
                .last_used
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
        .into_iter()
        .collect();
        if ids.is_empty() {
            return Ok(0);
        }
        self.store.touch_last_used(&ids, self.clock.now()).await
    }
}
