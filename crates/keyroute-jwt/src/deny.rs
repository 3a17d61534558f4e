//! Revocation of self-contained tokens: the deny-list check, its cache, and the
//! [`RevocationListener`] that feeds both when keys are revoked.
//!
//! A JWT carries everything needed to accept it, so no lookup would notice that the
//! key it came from was revoked. The deny-list (core's [`DenyList`], kept by the store)
//! names revoked token ids (`jti`) and key ids; a token is refused when either its own
//! id or its `key_id` is listed.
//!
//! Asking the store on every request would cost what JWTs are meant to save, so
//! answers are cached per id in a bounded moka cache for `deny_cache_ttl`. The cache
//! entry's validity is measured with the injected [`Clock`] (so tests move time
//! instead of sleeping); moka's own time-to-live, on the real clock, only bounds
//! memory. When this instance revokes a key, the listener writes the deny-list and
//! marks the id denied in this cache at once, so the revocation is honoured here
//! immediately. Other instances learn of it from the store's change feed
//! ([`DenyFeed`]): each deny-list entry publishes its id, and the feed drops their
//! cached answer for it. A service built to follow the feed trusts cached "not
//! denied" answers only while the feed is live (cached denials in force always count:
//! that fails closed); without the feed, other instances see a revocation when their
//! cached "not denied" answer ages out (`deny_cache_ttl`).
//!
//! An entry may start later (a key rolled with a grace period is denied from the
//! grace's end), and no event comes when it starts. So the store reports that start
//! ([`Denial`]) and the cache turns with it: an answer about one id keeps the start
//! (`denied_from` in the future) and denies from then on; an answer about several
//! ids, which does not say whose entry it is, is trusted only until that start. A
//! pending answer allows until its start, so it is trusted no more than a "not
//! denied" while the feed is down, and dropped with them when the feed returns.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use keyroute_core::{
    ApiKey, ChangeEvent, Clock, Denial, DenyList, FeedGate, FeedListener, KeyListener, StoreResult,
};

/// One cached answer: denied from `denied_from` (`None`: not denied; in the future:
/// not yet), trusted until `valid_until` (injected clock).
#[derive(Debug, Clone, Copy)]
struct CachedAnswer {
    denied_from: Option<DateTime<Utc>>,
    valid_until: DateTime<Utc>,
}

impl CachedAnswer {
    fn denied_at(&self, now: DateTime<Utc>) -> bool {
        self.denied_from.is_some_and(|from| from <= now)
    }
}

/// The deny-list, its cache and the clock, shared by the service and its listener.
pub(crate) struct DenyState {
    list: Option<Arc<dyn DenyList>>,
    cache: Option<moka::sync::Cache<Arc<str>, CachedAnswer>>,
    ttl: TimeDelta,
    clock: Arc<dyn Clock>,
    /// Whether cached "not denied" answers may be trusted (the change feed).
    gate: FeedGate,
    /// Counts feed events and clears; an answer read before a newer one is not kept.
    epoch: AtomicU64,
    /// The epoch of the last feed event per id.
    changed: moka::sync::Cache<Arc<str>, u64>,
    /// Answers read before this epoch are not kept (the cache was cleared).
    floor: AtomicU64,
}

impl fmt::Debug for DenyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DenyState")
            .field("deny_list", &self.list.as_ref().map(|_| "configured"))
            .field("cached_ids", &self.cache.as_ref().map(|c| c.entry_count()))
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl DenyState {
    pub(crate) fn new(
        list: Option<Arc<dyn DenyList>>,
        ttl: TimeDelta,
        capacity: u64,
        clock: Arc<dyn Clock>,
        gate: FeedGate,
    ) -> Self {
        let cache = (ttl > TimeDelta::zero()).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl.to_std().unwrap_or_default())
                .build()
        });
        Self {
            list,
            cache,
            ttl,
            clock,
            gate,
            epoch: AtomicU64::new(0),
            changed: moka::sync::Cache::builder()
                .max_capacity(capacity.max(1))
                .time_to_live(ttl.to_std().unwrap_or_default())
                .build(),
            floor: AtomicU64::new(0),
        }
    }

    fn next_epoch(&self) -> u64 {
        self.epoch.fetch_add(1, Ordering::SeqCst).saturating_add(1)
    }

    /// Whether an answer about `id` read from the store at `epoch` may be cached: no
    /// feed event about `id` and no clear came since.
    fn still_current(&self, id: &str, epoch: u64) -> bool {
        epoch >= self.floor.load(Ordering::SeqCst)
            && self.changed.get(id).is_none_or(|changed| changed <= epoch)
    }

    /// Drops every cached answer that does not deny now (a pending start may have
    /// been moved earlier by an event missed meanwhile), and any being read.
    fn clear_allowed(&self) {
        self.floor.store(self.next_epoch(), Ordering::SeqCst);
        if let Some(cache) = &self.cache {
            let now = self.clock.now();
            let allowed: Vec<Arc<str>> = cache
                .iter()
                .filter(|(_, answer)| !answer.denied_at(now))
                .map(|(id, _)| Arc::clone(&*id))
                .collect();
            for id in allowed {
                cache.invalidate(&id);
            }
        }
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub(crate) fn has_list(&self) -> bool {
        self.list.is_some()
    }

    /// Caches an answer. A "not denied" never replaces a "denied" that is still
    /// valid: the store read behind it may have started before this instance denied
    /// the id, and must not undo that denial (one atomic step per id, so no
    /// interleaving can).
    fn remember(&self, id: &str, denied_from: Option<DateTime<Utc>>, valid_until: DateTime<Utc>) {
        use moka::ops::compute::Op;
        let Some(cache) = &self.cache else {
            return;
        };
        let now = self.clock.now();
        cache.entry(Arc::from(id)).and_compute_with(|existing| {
            match existing.map(|e| e.into_value()) {
                // A denial still valid is only ever moved earlier, never forgotten.
                Some(held) if held.valid_until > now && held.denied_from.is_some() => {
                    match denied_from {
                        Some(from) if held.denied_from.is_some_and(|h| from < h) => {
                            Op::Put(CachedAnswer {
                                denied_from: Some(from),
                                valid_until: valid_until.max(held.valid_until),
                            })
                        }
                        _ => Op::Nop,
                    }
                }
                _ => Op::Put(CachedAnswer {
                    denied_from,
                    valid_until,
                }),
            }
        });
    }

    /// Whether any of `ids` is denied at `now`: from the cache where it has a fresh
    /// answer, otherwise from the deny-list (one query for all unanswered ids).
    pub(crate) async fn is_denied(&self, ids: &[&str], now: DateTime<Utc>) -> StoreResult<bool> {
        let mut unanswered: [&str; 2] = [""; 2];
        let mut count = 0;
        for id in ids {
            let cached = self
                .cache
                .as_ref()
                .and_then(|c| c.get(*id))
                .filter(|answer| answer.valid_until > now)
                // While the feed is down, only denials in force are trusted: a revoke
                // the feed would have told of may have moved a pending start earlier.
                .filter(|answer| answer.denied_at(now) || self.gate.cache_usable());
            match cached {
                Some(answer) if answer.denied_at(now) => return Ok(true),
                Some(_) => {}
                None if count < unanswered.len() => {
                    unanswered[count] = id;
                    count += 1;
                }
                // More ids than a token carries: ask about this one alone.
                None => {
                    if self.ask(&[id], now).await? {
                        return Ok(true);
                    }
                }
            }
        }
        if count == 0 {
            return Ok(false);
        }
        self.ask(&unanswered[..count], now).await
    }

    /// Asks the deny-list about `ids` and caches the answer for each id.
    async fn ask(&self, ids: &[&str], now: DateTime<Utc>) -> StoreResult<bool> {
        let Some(list) = &self.list else {
            return Ok(false);
        };
        let valid_until = now.checked_add_signed(self.ttl).unwrap_or(now);
        let epoch = self.epoch.load(Ordering::SeqCst);
        let denial = list.denial(ids, now).await?;
        match ids {
            [id] => self.keep(id, denial, valid_until, epoch),
            _ if !denial.is_denied() => {
                // A pending entry belongs to one of the ids, unknown which: every id's
                // "not denied" holds only until it starts.
                let until = denial
                    .pending_from()
                    .map_or(valid_until, |from| from.min(valid_until));
                for id in ids {
                    self.keep(id, Denial::ALLOWED, until, epoch);
                }
            }
            // Several ids and one of them denied: learn which, so each cached answer
            // is right (a revoked key must not make its other tokens' jtis look denied).
            _ if self.cache.is_some() => {
                for id in ids {
                    let one = list.denial(&[id], now).await?;
                    self.keep(id, one, valid_until, epoch);
                }
            }
            _ => {}
        }
        Ok(denial.is_denied())
    }

    /// Caches `denial`, the deny-list's answer about `id` alone read at `epoch`. A
    /// denial in force is always safe to keep; an answer that allows now (even one
    /// that denies from a later start) only if nothing about the id changed while it
    /// was read: a revoke may have moved the start earlier.
    fn keep(&self, id: &str, denial: Denial, valid_until: DateTime<Utc>, epoch: u64) {
        if denial.is_denied() {
            self.remember(id, Some(DateTime::<Utc>::MIN_UTC), valid_until);
        } else if self.still_current(id, epoch) {
            self.remember(id, denial.pending_from(), valid_until);
        }
    }

    /// Denies `id` from `from` (`None`: at once) until `until`: in this instance's
    /// cache at once, then in the deny-list for every instance.
    pub(crate) async fn deny(
        &self,
        id: &str,
        from: Option<DateTime<Utc>>,
        until: DateTime<Utc>,
    ) -> StoreResult<()> {
        // Known for certain, so trusted until the entry stops mattering (moka still
        // evicts it after its real-time TTL, after which the deny-list answers).
        self.remember(id, Some(from.unwrap_or(DateTime::<Utc>::MIN_UTC)), until);
        match &self.list {
            Some(list) => list.deny(id, from, until).await,
            None => Ok(()),
        }
    }
}

/// The far future: how long a JWT issued as a key without expiry stays denied.
/// 9999-12-31T23:59:59Z, the latest instant every store backend can hold.
fn far_future() -> DateTime<Utc> {
    DateTime::from_timestamp(253_402_300_799, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Tells the deny-list about revoked keys; attach it to the
/// [`KeyService`](keyroute_core::KeyService) with `with_listener`.
///
/// For every retired key it denies the key's id from its cancellation (now, or the end
/// of a roll's grace period) until no token that names it can still be valid: the
/// later of the key's expiry and the cancellation + the exchange lifetime (plus
/// leeway), or the far future for a JWT issued as a key without expiry. So when a
/// grace period ends, the key's exchanged tokens and a JWT key stop working on every
/// instance that consults the deny-list.
///
/// It marks the ids denied in the local deny cache at once, then writes the store. A
/// failed store write is logged (`tracing` warning): this instance still refuses the
/// tokens while the entry is cached, other instances do not learn of it.
#[derive(Debug, Clone)]
pub struct RevocationListener {
    state: Arc<DenyState>,
    /// The exchange lifetime plus leeway: how long after now an exchanged token can
    /// still be accepted.
    exchange_window: TimeDelta,
    leeway: TimeDelta,
}

impl RevocationListener {
    pub(crate) fn new(
        state: Arc<DenyState>,
        exchange_window: TimeDelta,
        leeway: TimeDelta,
    ) -> Self {
        Self {
            state,
            exchange_window,
            leeway,
        }
    }

    /// Until when `key`'s id must stay denied, revoked at `now`.
    pub fn deny_until(&self, key: &ApiKey, now: DateTime<Utc>) -> DateTime<Utc> {
        let floor = now
            .checked_add_signed(self.exchange_window)
            .unwrap_or_else(far_future);
        let is_jwt = key.meta.get(crate::META_FORMAT).map(String::as_str) == Some(crate::META_JWT);
        match key.expires_at {
            None if is_jwt => far_future(),
            Some(expires_at) => expires_at
                .checked_add_signed(self.leeway)
                .unwrap_or_else(far_future)
                .max(floor),
            None => floor,
        }
    }
}

#[async_trait]
impl KeyListener for RevocationListener {
    /// Denies before the key service writes the revoke, so a revoke whose caller
    /// stops waiting cannot leave the key's tokens working; if the write then fails,
    /// the tokens stay refused (fail closed) until the revoke is retried.
    async fn keys_revoking(&self, keys: &[ApiKey]) {
        self.keys_retired(keys).await;
    }

    /// A key losing authority (a scope removed, an earlier expiry, disabled) ends the
    /// tokens exchanged from it so far, which carry the old authority: its id is
    /// denied from now for as long as such a token can live (the exchange lifetime
    /// plus leeway). Tokens exchanged from it during that window are refused too
    /// (fail closed); exchange again once it has passed.
    async fn keys_narrowing(&self, keys: &[ApiKey]) {
        let now = self.state.clock().now();
        let until = now
            .checked_add_signed(self.exchange_window)
            .unwrap_or_else(far_future);
        for key in keys {
            if let Err(error) = self.state.deny(key.id.as_str(), None, until).await {
                tracing::warn!(
                    key_id = %key.id,
                    %error,
                    "could not write the narrowed key to the deny-list; only this instance refuses its earlier tokens"
                );
            }
        }
    }

    async fn keys_retired(&self, keys: &[ApiKey]) {
        let now = self.state.clock().now();
        for key in keys {
            let Some(cancelled_at) = key.cancelled_at else {
                continue;
            };
            // A roll's grace period: denied from its end, not before.
            let from = (cancelled_at > now).then_some(cancelled_at);
            let until = self.deny_until(key, cancelled_at.max(now));
            if let Err(error) = self.state.deny(key.id.as_str(), from, until).await {
                tracing::warn!(
                    key_id = %key.id,
                    %error,
                    "could not write the revoked key to the deny-list; only this instance refuses its tokens"
                );
            }
        }
    }
}

/// The deny cache on the change feed: attach it to the feed follower
/// (`keyroute_router::follow_feed`; the front door does this). Made by
/// [`JwtService::feed_listener`](crate::JwtService::feed_listener).
#[derive(Debug, Clone)]
pub struct DenyFeed {
    state: Arc<DenyState>,
}

impl DenyFeed {
    pub(crate) fn new(state: Arc<DenyState>) -> Self {
        Self { state }
    }
}

#[async_trait]
impl FeedListener for DenyFeed {
    /// Any change may concern a cached id (a denied `jti`, a revoked key's id): its
    /// answer is dropped and the next check asks the deny-list.
    async fn feed_change(&self, event: &ChangeEvent) {
        let state = &self.state;
        state
            .changed
            .insert(Arc::from(event.subject.as_str()), state.next_epoch());
        if let Some(cache) = &state.cache {
            cache.invalidate(event.subject.as_str());
        }
    }

    async fn feed_interrupted(&self) {
        self.state.gate.set_live(false);
        self.state.clear_allowed();
    }

    async fn feed_live(&self) {
        self.state.clear_allowed();
        self.state.gate.set_live(true);
    }
}
