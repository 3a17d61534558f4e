//! The resolver on the change feed: other instances' revocations evict here through
//! the same marks a local revocation leaves, and the cache is used only while the
//! feed is live.
//!
//! [`follow_feed`] reads a store's subscription and tells every [`FeedListener`] (this
//! resolver, the JWT deny cache). An event names a key by id; the resolver finds the
//! hash through the marks' id index and evicts it like a local revoke. When the feed
//! is interrupted the resolver clears its cache and serves uncached; when it is live
//! again it clears once more (events in the gap are lost) and caches again. So a
//! missed event can cost a lookup, never a revoked key accepted.

use std::sync::Arc;

use keyroute_core::{
    ApiKeyStore, ChangeEvent, ChangeSubscription, FeedListener, FeedSignal, KeyId,
};

use super::{Inner, KeyCache, KeyResolver};

impl<S> Inner<S> {
    /// The cache, when one is configured and may be used now.
    pub(super) fn live_cache(&self) -> Option<&(KeyCache, chrono::TimeDelta)> {
        let cache = self.cache.as_ref()?;
        if self.gate.cache_usable() {
            return Some(cache);
        }
        if self.gate.first_warning() {
            tracing::warn!(
                "keyroute: the resolver cache is configured but no change feed is live \
                 (run Keyroute::background(), or follow_feed for a resolver built by hand); \
                 serving every request uncached until it is"
            );
        }
        None
    }
}

impl<S: ApiKeyStore + 'static> KeyResolver<S> {
    /// Whether this resolver serves from its cache now: a cache is configured and the
    /// change feed is live (or the resolver was built to cache without one).
    pub fn is_caching(&self) -> bool {
        self.inner.cache.is_some() && self.inner.gate.cache_usable()
    }

    /// Drops every cached entry, and any fill in flight.
    fn clear(&self) {
        if let Some((cache, _)) = &self.inner.cache {
            // The floor turns away a fill in flight that lands after the clear.
            self.inner.marks.raise_floor();
            cache.clear();
        }
    }
}

#[async_trait::async_trait]
impl<S: ApiKeyStore + 'static> FeedListener for KeyResolver<S> {
    async fn feed_change(&self, event: &ChangeEvent) {
        if self.inner.cache.is_none() {
            return;
        }
        // A denied id may be a key id too (a rolled key is denied at its grace's end).
        let Ok(id) = KeyId::new(event.subject.as_str()) else {
            return;
        };
        if let Some(hash) = self.inner.marks.mark_id(&id) {
            self.forget(&hash, false).await;
        }
    }

    async fn feed_interrupted(&self) {
        self.inner.gate.set_live(false);
        self.clear();
    }

    async fn feed_live(&self) {
        self.clear();
        self.inner.gate.set_live(true);
    }
}

/// Follows `subscription`, telling every listener each change and each change of the
/// feed's state, and logging interruptions. Runs until the subscription ends (it
/// never does by itself: drop this future to stop).
pub async fn follow_feed(
    mut subscription: Box<dyn ChangeSubscription>,
    listeners: Vec<Arc<dyn FeedListener>>,
) {
    let mut live = false;
    loop {
        match subscription.next().await {
            FeedSignal::Change(event) => {
                for listener in &listeners {
                    listener.feed_change(&event).await;
                }
            }
            FeedSignal::Interrupted { reason } => {
                tracing::warn!(
                    %reason,
                    "keyroute: the change feed was interrupted; caches cleared, serving uncached until it is back"
                );
                live = false;
                for listener in &listeners {
                    listener.feed_interrupted().await;
                }
            }
            FeedSignal::Live => {
                if !live {
                    tracing::info!("keyroute: the change feed is live; caches on");
                }
                live = true;
                for listener in &listeners {
                    listener.feed_live().await;
                }
            }
            // A signal of a newer keyroute: assume the worst.
            _ => {
                live = false;
                for listener in &listeners {
                    listener.feed_interrupted().await;
                }
            }
        }
    }
}
