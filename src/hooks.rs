//! Hooks: an app's own reactions to what happens to keys (a webhook to the owner, an
//! email, a metric), run off the request path.
//!
//! Register them on the builder ([`KeyrouteBuilder::on_key_event`](crate::KeyrouteBuilder::on_key_event)
//! or [`key_hook`](crate::KeyrouteBuilder::key_hook)). The key service puts each event on
//! a bounded queue without waiting and returns; the handle's
//! [`background`](crate::Keyroute::background) task hands the events to every hook in
//! order, each call on a task of its own under a time limit. So a slow hook delays
//! only the events after it (by at most [`HOOK_TIME_LIMIT`] each), a hook that panics or
//! hangs is logged and skipped, and neither ever blocks or fails a request. Events
//! are delivered at most once: when the queue is full ([`HOOK_QUEUE`] events, for
//! instance when `background()` is not running) new events are dropped and counted
//! in a warning, and an operation whose caller stops waiting half-way may not emit its
//! event. Hooks run on the instance where the change was made.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use keyroute_core::{ApiKey, KeyListener, KeyUpdated};
use tokio::sync::mpsc;

/// How many events wait for the hooks at most; more are dropped (and counted).
pub const HOOK_QUEUE: usize = 1024;

/// How long one hook may take with one event, by default, before keyroute stops
/// waiting for it and goes on with the next (the call itself is not cancelled); set it
/// with [`KeyrouteBuilder::hook_time_limit`](crate::KeyrouteBuilder::hook_time_limit).
pub const HOOK_TIME_LIMIT: Duration = Duration::from_secs(10);

/// What happened to a key. The record is as stored, never with a secret: a hash and a
/// hint at most.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyEvent {
    /// A key was made: issued, registered, backfilled, or as a replacement.
    Created(ApiKey),
    /// A key was revoked; `cancelled_at` says when it stopped.
    Revoked(ApiKey),
    /// A key was replaced by a roll or a regeneration (its replacement comes as
    /// [`Created`](Self::Created)); `cancelled_at` says when it stops.
    Rolled(ApiKey),
    /// A key's settings were changed (as now stored), and which: `name`, `scopes`,
    /// `expires_at`, `notes`, `ref_id`, `meta`, `allowed_networks`, `enabled` (an
    /// update that enabled the key).
    Updated {
        /// The key as now stored.
        key: ApiKey,
        /// The fields that changed.
        changed: Vec<&'static str>,
    },
    /// A key was disabled (and perhaps changed otherwise in the same update).
    Disabled(ApiKey),
    /// A key was reported as exposed by a secret scanner: revoked (`cancelled_at`
    /// set), or left working when leaks are only reported. Tell its owner.
    Leaked(ApiKey),
}

impl KeyEvent {
    /// The key the event is about.
    pub fn key(&self) -> &ApiKey {
        match self {
            KeyEvent::Created(key)
            | KeyEvent::Revoked(key)
            | KeyEvent::Rolled(key)
            | KeyEvent::Updated { key, .. }
            | KeyEvent::Disabled(key)
            | KeyEvent::Leaked(key) => key,
        }
    }
}

/// An app's reaction to key events; see the [module docs](self).
#[async_trait::async_trait]
pub trait KeyHook: Send + Sync + 'static {
    /// Reacts to `event`. Panics and calls over the time limit are logged and skipped.
    async fn on_event(&self, event: KeyEvent);
}

/// A closure as a hook.
pub(crate) struct FnHook<F>(pub(crate) F);

#[async_trait::async_trait]
impl<F, Fut> KeyHook for FnHook<F>
where
    F: Fn(KeyEvent) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    async fn on_event(&self, event: KeyEvent) {
        (self.0)(event).await;
    }
}

/// The key service's side: a listener that queues events without waiting.
pub(crate) struct HookQueue {
    sender: mpsc::Sender<KeyEvent>,
    dropped: AtomicU64,
}

impl HookQueue {
    fn push(&self, events: impl Iterator<Item = KeyEvent>) {
        for event in events {
            if self.sender.try_send(event).is_err() {
                let dropped = self
                    .dropped
                    .fetch_add(1, Ordering::Relaxed)
                    .saturating_add(1);
                tracing::warn!(
                    dropped,
                    "keyroute: a key event was dropped: the hooks are {HOOK_QUEUE} events behind, or Keyroute::background() is not running"
                );
            }
        }
    }
}

#[async_trait::async_trait]
impl KeyListener for HookQueue {
    async fn keys_issued(&self, keys: &[ApiKey]) {
        self.push(keys.iter().cloned().map(KeyEvent::Created));
    }

    async fn keys_retired(&self, keys: &[ApiKey]) {
        self.push(keys.iter().cloned().map(KeyEvent::Revoked));
    }

    async fn keys_rolled(&self, keys: &[ApiKey]) {
        self.push(keys.iter().cloned().map(KeyEvent::Rolled));
    }

    async fn keys_leaked(&self, keys: &[ApiKey]) {
        self.push(keys.iter().cloned().map(KeyEvent::Leaked));
    }

    async fn keys_updated(&self, updates: &[KeyUpdated]) {
        self.push(updates.iter().map(|update| {
            if update.changed.contains(&"enabled") && !update.key.enabled {
                KeyEvent::Disabled(update.key.clone())
            } else {
                KeyEvent::Updated {
                    key: update.key.clone(),
                    changed: update.changed.clone(),
                }
            }
        }));
    }
}

/// The hooks and the queue they read, until `background()` takes it.
pub(crate) struct Hooks {
    hooks: Vec<Arc<dyn KeyHook>>,
    time_limit: Duration,
    receiver: Mutex<Option<mpsc::Receiver<KeyEvent>>>,
}

impl Hooks {
    /// The hooks, and the listener that feeds them.
    pub(crate) fn new(
        hooks: Vec<Arc<dyn KeyHook>>,
        time_limit: Duration,
    ) -> (Self, Arc<HookQueue>) {
        let (sender, receiver) = mpsc::channel(HOOK_QUEUE);
        let queue = Arc::new(HookQueue {
            sender,
            dropped: AtomicU64::new(0),
        });
        let hooks = Self {
            hooks,
            time_limit,
            receiver: Mutex::new(Some(receiver)),
        };
        (hooks, queue)
    }

    /// Hands every queued event to every hook, in order, until the key service (and
    /// so the queue's sender) is gone. Only the first call gets the queue; later ones
    /// end at once.
    pub(crate) fn dispatch(&self) -> impl Future<Output = ()> + Send + 'static {
        let receiver = self
            .receiver
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let hooks = self.hooks.clone();
        let time_limit = self.time_limit;
        async move {
            let Some(mut receiver) = receiver else {
                return;
            };
            while let Some(event) = receiver.recv().await {
                for hook in &hooks {
                    let hook = Arc::clone(hook);
                    let event = event.clone();
                    let call = tokio::spawn(async move { hook.on_event(event).await });
                    match tokio::time::timeout(time_limit, call).await {
                        Ok(Ok(())) => {}
                        Ok(Err(failed)) => {
                            tracing::warn!(error = %failed, "keyroute: a key hook failed");
                        }
                        Err(_) => tracing::warn!(
                            limit = ?time_limit,
                            "keyroute: a key hook took too long; going on without it"
                        ),
                    }
                }
            }
        }
    }
}
