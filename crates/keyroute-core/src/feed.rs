//! The change feed: how a revocation written by one instance reaches every other
//! instance's caches.
//!
//! A store that can publish changes implements [`ChangeFeed`]: every write that must
//! reach other instances (a key revoked, rolled or updated, a deny-list entry) publishes a
//! [`ChangeEvent`] in the same transaction as the change, so an event exists exactly
//! when the change committed. An instance [`subscribe`](ChangeFeed::subscribe)s once and
//! reads [`FeedSignal`]s: changes, and whether the feed is live. Events carry a kind and
//! an id (a key id, a user id, a denied token or key id), never a secret or a hash.
//!
//! The subscribers are the caches ([`FeedListener`]). While the feed is live they may
//! serve cached answers, since every change reaches them; when it is interrupted they
//! clear and serve uncached until it is live again, and clear once more then (events
//! in the gap are lost). [`FeedGate`] is the shared switch they keep that state in.
//!
//! This module holds only the seam: the backends (keyroute-store) publish and
//! deliver, the resolver and the JWT deny cache listen, and the front door runs the
//! task that connects the two.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreResult;

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChangeKind {
    /// A key was revoked; the subject is its key id.
    KeyRevoked,
    /// A key was rolled by a regeneration (it stops working at its `cancelled_at`);
    /// the subject is its key id.
    KeyRolled,
    /// A deny-list entry was written; the subject is the denied id (a JWT's `jti` or a
    /// key id).
    Denied,
    /// A key's settings were updated (scopes, expiry, networks, enabled, ...); the
    /// subject is its key id.
    KeyUpdated,
}

impl ChangeKind {
    /// The kind's stored and transmitted name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::KeyRevoked => "key_revoked",
            ChangeKind::KeyRolled => "key_rolled",
            ChangeKind::Denied => "denied",
            ChangeKind::KeyUpdated => "key_updated",
        }
    }

    /// The kind named `name`, as [`as_str`](Self::as_str) writes it.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "key_revoked" => Some(ChangeKind::KeyRevoked),
            "key_rolled" => Some(ChangeKind::KeyRolled),
            "denied" => Some(ChangeKind::Denied),
            "key_updated" => Some(ChangeKind::KeyUpdated),
            _ => None,
        }
    }

    /// Whether the subject is a key id (the resolver evicts that key).
    pub fn names_key(self) -> bool {
        matches!(
            self,
            ChangeKind::KeyRevoked | ChangeKind::KeyRolled | ChangeKind::KeyUpdated
        )
    }
}

/// One published change: its kind and the id it concerns. Never a secret or a hash.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ChangeEvent {
    /// What changed.
    pub kind: ChangeKind,
    /// The id it concerns (see [`ChangeKind`]).
    pub subject: String,
}

impl ChangeEvent {
    /// The longest subject a backend stores and transmits (ids are far shorter).
    pub const MAX_SUBJECT_LEN: usize = 255;

    /// An event of `kind` about `subject`.
    pub fn new(kind: ChangeKind, subject: impl Into<String>) -> Self {
        Self {
            kind,
            subject: subject.into(),
        }
    }

    /// The event as one line of text, `kind:subject` (a PostgreSQL `NOTIFY` payload).
    pub fn to_payload(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.subject)
    }

    /// The event a [`to_payload`](Self::to_payload) line names; `None` when the line is
    /// not one.
    pub fn from_payload(payload: &str) -> Option<Self> {
        let (kind, subject) = payload.split_once(':')?;
        Some(Self::new(ChangeKind::parse(kind)?, subject))
    }
}

/// What a subscription reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FeedSignal {
    /// The feed is (again) live: every change committed from now on will be delivered.
    Live,
    /// A change was committed.
    Change(ChangeEvent),
    /// The feed was interrupted (connection lost, a poll failed, events dropped):
    /// changes may have been missed until the next [`Live`](FeedSignal::Live).
    Interrupted {
        /// Why, for the log (never a secret).
        reason: String,
    },
}

/// A subscription to a store's changes. It reconnects by itself: after an
/// [`Interrupted`](FeedSignal::Interrupted) it keeps trying, with back-off, and says
/// [`Live`](FeedSignal::Live) when it is back.
#[async_trait]
pub trait ChangeSubscription: Send {
    /// The next signal. Cancel-safe: dropping the future loses no event.
    async fn next(&mut self) -> FeedSignal;
}

/// How a subscription follows its store.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FeedSettings {
    /// How often a polled feed (an events table) asks for new events; also how often
    /// a pushed feed (PostgreSQL `LISTEN`) checks its connection is alive. Default 250 ms.
    pub poll_interval: Duration,
    /// The most events read per poll. Default 1000.
    pub batch: usize,
}

impl Default for FeedSettings {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(250),
            batch: 1000,
        }
    }
}

impl FeedSettings {
    /// Settings polling every `poll_interval`.
    pub fn with_poll_interval(mut self, poll_interval: Duration) -> Self {
        self.poll_interval = poll_interval;
        self
    }
}

/// A store's change feed. Every method has a default for stores without one: they
/// publish nothing, so instances over them cannot trust a cache across instances.
#[async_trait]
pub trait ChangeFeed: Send + Sync {
    /// A subscription to the changes committed from now on; `None` when this store
    /// publishes none. The first signal says whether it connected.
    async fn subscribe(&self, settings: &FeedSettings) -> Option<Box<dyn ChangeSubscription>> {
        let _ = settings;
        None
    }

    /// Removes published events recorded before `before`; returns how many. Stores
    /// that keep no events return 0.
    async fn purge_events(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let _ = before;
        Ok(0)
    }
}

#[async_trait]
impl<S: ChangeFeed + ?Sized> ChangeFeed for std::sync::Arc<S> {
    async fn subscribe(&self, settings: &FeedSettings) -> Option<Box<dyn ChangeSubscription>> {
        (**self).subscribe(settings).await
    }
    async fn purge_events(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        (**self).purge_events(before).await
    }
}

/// A cache that follows the feed.
#[async_trait]
pub trait FeedListener: Send + Sync {
    /// A change was committed (on any instance): forget what it concerns.
    async fn feed_change(&self, event: &ChangeEvent);

    /// The feed was interrupted: clear the cache and serve uncached.
    async fn feed_interrupted(&self);

    /// The feed is live: clear the cache once more (events in the gap are lost) and
    /// use it again.
    async fn feed_live(&self);
}

const UNMANAGED: u8 = 0;
const DOWN: u8 = 1;
const LIVE: u8 = 2;

/// Whether a cache may be used, as far as the feed goes. Three states:
/// *unmanaged* (no feed is expected: the cache is used as configured and other
/// instances' revocations arrive when entries age out), *down* (a feed is expected but
/// not live: serve uncached) and *live*.
#[derive(Debug)]
pub struct FeedGate {
    state: AtomicU8,
    warned: AtomicBool,
}

impl Default for FeedGate {
    fn default() -> Self {
        Self::unmanaged()
    }
}

impl FeedGate {
    /// A gate for a cache no feed manages.
    pub fn unmanaged() -> Self {
        Self {
            state: AtomicU8::new(UNMANAGED),
            warned: AtomicBool::new(false),
        }
    }

    /// A gate for a cache used only while a feed is live; down until it is.
    pub fn expecting_feed() -> Self {
        Self {
            state: AtomicU8::new(DOWN),
            warned: AtomicBool::new(false),
        }
    }

    /// Whether the cache may be used now.
    pub fn cache_usable(&self) -> bool {
        self.state.load(Ordering::SeqCst) != DOWN
    }

    /// Whether a feed is expected and not live.
    pub fn is_down(&self) -> bool {
        self.state.load(Ordering::SeqCst) == DOWN
    }

    /// Whether the feed is live.
    pub fn is_live(&self) -> bool {
        self.state.load(Ordering::SeqCst) == LIVE
    }

    /// Records that the feed is live (`true`) or interrupted (`false`). A gate that
    /// expected no feed starts expecting one.
    pub fn set_live(&self, live: bool) {
        self.state
            .store(if live { LIVE } else { DOWN }, Ordering::SeqCst);
    }

    /// True the first time it is called on this gate: for a warning logged once.
    pub fn first_warning(&self) -> bool {
        !self.warned.swap(true, Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_and_rejects_garbage() {
        let event = ChangeEvent::new(ChangeKind::KeyRevoked, "key_01");
        assert_eq!(event.to_payload(), "key_revoked:key_01");
        assert_eq!(ChangeEvent::from_payload(&event.to_payload()), Some(event));
        assert_eq!(ChangeEvent::from_payload("nonsense"), None);
        assert_eq!(ChangeEvent::from_payload("other:key_01"), None);
    }

    #[test]
    fn gate_states() {
        let gate = FeedGate::unmanaged();
        assert!(gate.cache_usable() && !gate.is_live());
        let gate = FeedGate::expecting_feed();
        assert!(!gate.cache_usable() && gate.is_down());
        gate.set_live(true);
        assert!(gate.cache_usable() && gate.is_live());
        gate.set_live(false);
        assert!(!gate.cache_usable());
        assert!(gate.first_warning() && !gate.first_warning());
    }
}
