//! [`Keyroute`]: the one handle an app keeps, and what it gives handlers.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use keyroute_core::{AuthError, FeedListener, FeedSettings, KeyService, KeyStore, Principal};
use keyroute_pool::Backend;
use keyroute_router::{
    ConnectionRouter, Gateway, IncomingRequest, KeyResolver, RouteError, RoutedConnection,
};
use keyroute_store::StoreBackend;

use crate::builder::KeyrouteBuilder;
use crate::error::BuildError;

/// How often the background work purges deny-list entries that no longer matter.
pub(crate) const PURGE_EVERY: Duration = Duration::from_secs(600);

pub(crate) struct Inner<B: Backend> {
    pub(crate) keys: Arc<KeyService<KeyStore>>,
    pub(crate) gateway: Gateway<KeyStore, B>,
    #[cfg(feature = "jwt")]
    pub(crate) jwt: Option<Arc<keyroute_jwt::JwtService>>,
    /// The caches that follow the store's change feed (the resolver, the JWT deny cache).
    pub(crate) feed_listeners: Vec<Arc<dyn FeedListener>>,
    pub(crate) feed: FeedSettings,
    /// How long change events are kept: `[resolver] feed_retention`.
    pub(crate) event_retention: Duration,
    /// The app's key hooks, when it registered any.
    pub(crate) hooks: Option<crate::hooks::Hooks>,
}

/// How often the feed task checks whether the handle is still held.
const HANDLE_CHECK_EVERY: Duration = Duration::from_secs(1);

/// keyroute, wired: the key service, the gateway (authenticate, then a connection to
/// the database the key's environment selects) and, when enabled, JWTs. Build it once
/// with [`Keyroute::builder`] or [`Keyroute::from_config`] and keep it in app state;
/// clones are cheap and share everything.
///
/// `B` is the database backend of the routed connections ([`Sqlite`](crate::store::Sqlite),
/// [`Postgres`](crate::store::Postgres), [`Mysql`](crate::store::Mysql)), which decides
/// the connection type handlers get.
pub struct Keyroute<B: Backend> {
    pub(crate) inner: Arc<Inner<B>>,
}

impl<B: Backend> Clone for Keyroute<B> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<B: Backend> fmt::Debug for Keyroute<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Keyroute");
        s.field("keys", &self.inner.keys)
            .field("gateway", &self.inner.gateway);
        #[cfg(feature = "jwt")]
        s.field("jwt", &self.inner.jwt);
        s.finish()
    }
}

impl<B: StoreBackend> Keyroute<B> {
    /// A builder: give it a [`Config`](crate::Config) or set the parts in code.
    pub fn builder() -> KeyrouteBuilder<B> {
        KeyrouteBuilder::new()
    }

    /// The handle `config` describes: opens the key store, applies keyroute's
    /// migrations when `init_schema` is on, and checks every cross-reference.
    ///
    /// # Errors
    /// As [`KeyrouteBuilder::build`].
    pub async fn from_config(config: crate::Config) -> Result<Self, BuildError> {
        Self::builder().config(config).build().await
    }
}

impl<B: Backend> Keyroute<B> {
    /// The key service: register users, issue, list, revoke, regenerate, backfill.
    /// Its revocations reach this handle's caches at once.
    pub fn keys(&self) -> &KeyService<KeyStore> {
        &self.inner.keys
    }

    /// The gateway handlers call: the caller and their routed connection.
    pub fn gateway(&self) -> &Gateway<KeyStore, B> {
        &self.inner.gateway
    }

    /// The resolver (credentials to principals).
    pub fn resolver(&self) -> &KeyResolver<KeyStore> {
        self.inner.gateway.resolver()
    }

    /// The router (principals to connections).
    pub fn router(&self) -> &ConnectionRouter<B> {
        self.inner.gateway.router()
    }

    /// The store keys and users live in.
    pub fn store(&self) -> &KeyStore {
        self.inner.keys.store()
    }

    /// The JWT service, when JWTs are enabled.
    #[cfg(feature = "jwt")]
    pub fn jwt(&self) -> Option<&keyroute_jwt::JwtService> {
        self.inner.jwt.as_deref()
    }

    /// Authenticates a request: its one credential, resolved to the caller
    /// ([`Gateway::authenticate`]).
    ///
    /// # Errors
    /// The [`AuthError`] of the first check that failed.
    pub async fn authenticate(
        &self,
        request: &IncomingRequest<'_>,
    ) -> Result<Principal, AuthError> {
        self.inner.gateway.authenticate(request).await
    }

    /// Authenticates a request that may come without a caller: `None` for no
    /// credential at all, while a bad credential is rejected, never taken for none
    /// ([`Gateway::authenticate_optional`]).
    ///
    /// # Errors
    /// As [`authenticate`](Self::authenticate), except for a missing credential.
    pub async fn authenticate_optional(
        &self,
        request: &IncomingRequest<'_>,
    ) -> Result<Option<Principal>, AuthError> {
        self.inner.gateway.authenticate_optional(request).await
    }

    /// Authenticates a request and returns the caller with a connection to the
    /// database their environment selects ([`Gateway::connect`]).
    ///
    /// # Errors
    /// As [`Gateway::connect`].
    pub async fn connect(
        &self,
        request: &IncomingRequest<'_>,
    ) -> Result<(Principal, RoutedConnection<B>), RouteError> {
        self.inner.gateway.connect(request).await
    }

    /// As [`connect`](Self::connect), with a connection for reads: a `[replicas]`
    /// replica unless the caller wrote within `read_your_writes`
    /// ([`Gateway::connect_read`]).
    ///
    /// # Errors
    /// As [`Gateway::connect_read`].
    pub async fn connect_read(
        &self,
        request: &IncomingRequest<'_>,
    ) -> Result<(Principal, RoutedConnection<B>), RouteError> {
        self.inner.gateway.connect_read(request).await
    }

    /// As [`connect`](Self::connect), and the caller must be allowed `scope`: a key
    /// must hold it, a person's session passes ([`Gateway::connect_with_scope`]).
    ///
    /// # Errors
    /// As [`Gateway::connect_with_scope`].
    pub async fn connect_with_scope(
        &self,
        request: &IncomingRequest<'_>,
        scope: &str,
    ) -> Result<(Principal, RoutedConnection<B>), RouteError> {
        self.inner.gateway.connect_with_scope(request, scope).await
    }

    /// As [`connect`](Self::connect), but a request with no credential at all gets
    /// no caller and the anonymous route's connection, when one is configured; a bad
    /// credential never falls back to it ([`Gateway::connect_or_anonymous`]).
    ///
    /// # Errors
    /// As [`Gateway::connect_or_anonymous`].
    pub async fn connect_or_anonymous(
        &self,
        request: &IncomingRequest<'_>,
    ) -> Result<(Option<Principal>, RoutedConnection<B>), RouteError> {
        self.inner.gateway.connect_or_anonymous(request).await
    }

    /// The background work keyroute needs, as one future for the app to spawn (or
    /// use [`spawn_background`](Self::spawn_background)): follows the store's change
    /// feed (so revocations made on other instances evict here; the caches are used
    /// only while it is live), writes last-used times in batches, and purges deny-list
    /// entries and change events that can no longer matter, and calls the app's key
    /// [`hooks`](crate::hooks). It ends when the last
    /// clone of this handle is dropped. Nothing is started behind your back: without
    /// it the resolver serves every request uncached (and warns once).
    pub fn background(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let last_used = self.resolver().last_used_task();
        let feed = follow_store_feed(
            Arc::clone(self.store()),
            self.inner.feed.clone(),
            self.inner.feed_listeners.clone(),
            Arc::downgrade(&self.inner),
        );
        let handle = Arc::downgrade(&self.inner);
        let hooks = self.inner.hooks.as_ref().map(crate::hooks::Hooks::dispatch);
        async move {
            // Ends when the key service (the queue's only sender) goes with the handle.
            let hooks = async move {
                if let Some(dispatch) = hooks {
                    dispatch.await;
                }
            };
            let purge = async move {
                let mut ticks = tokio::time::interval(PURGE_EVERY);
                loop {
                    ticks.tick().await;
                    // Ends with the last clone of the handle, whoever else holds the store.
                    let Some(inner) = handle.upgrade() else {
                        return;
                    };
                    let now = inner.keys.clock().now();
                    if let Err(error) = inner.keys.store().purge_denied(now).await {
                        tracing::warn!(%error, "keyroute: could not purge expired deny-list entries");
                    }
                    let retention =
                        chrono::TimeDelta::from_std(inner.event_retention).unwrap_or_default();
                    let before = chrono::Utc::now()
                        .checked_sub_signed(retention)
                        .unwrap_or_default();
                    if let Err(error) = inner.keys.store().purge_events(before).await {
                        tracing::warn!(%error, "keyroute: could not purge old change events");
                    }
                    if let Some(keep) = inner.keys.options().audit_retention {
                        let keep =
                            chrono::TimeDelta::from_std(keep).unwrap_or(chrono::TimeDelta::MAX);
                        if let Some(before) = now.checked_sub_signed(keep)
                            && let Err(error) = inner.keys.store().purge_audit(before).await
                        {
                            tracing::warn!(%error, "keyroute: could not purge old audit records");
                        }
                    }
                }
            };
            tokio::join!(last_used, purge, feed, hooks);
        }
    }

    /// Spawns [`background`](Self::background) on the current Tokio runtime.
    ///
    /// # Errors
    /// [`BuildError::NoRuntime`] when called outside a Tokio runtime.
    pub fn spawn_background(&self) -> Result<tokio::task::JoinHandle<()>, BuildError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| BuildError::NoRuntime)?;
        Ok(runtime.spawn(self.background()))
    }
}

/// Follows `store`'s change feed for `listeners` until the handle behind `handle` is
/// dropped. A store without a feed leaves the caches off (logged once).
async fn follow_store_feed<B: Backend>(
    store: KeyStore,
    settings: FeedSettings,
    listeners: Vec<Arc<dyn FeedListener>>,
    handle: std::sync::Weak<Inner<B>>,
) {
    let Some(subscription) = store.subscribe(&settings).await else {
        tracing::warn!(
            "keyroute: the key store publishes no change feed, so no instance can trust a cache of it; serving uncached"
        );
        return;
    };
    drop(store);
    let dropped = async {
        let mut checks = tokio::time::interval(HANDLE_CHECK_EVERY);
        loop {
            checks.tick().await;
            if handle.strong_count() == 0 {
                return;
            }
        }
    };
    tokio::select! {
        () = keyroute_router::follow_feed(subscription, listeners) => {}
        () = dropped => {}
    }
}
