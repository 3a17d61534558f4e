//! [`KeyResolver`]: a presented credential in, a [`Principal`] or a typed rejection out.
//!
//! For an API key, in order:
//!
//! 1. **Offline rejection.** Format, prefix, environment and checksum are checked with
//!    no I/O ([`TokenFormat::parse`]); so are the accepted environments and key types
//!    and, for requests, TLS (unless `dangerous_accept_plain_http`).
//! 2. **Cache.** Resolved keys are kept by hash for `session_cache_duration`
//!    (ServiceStack's `SessionCacheDuration`): a cached request makes no store call.
//!    Concurrent misses for one key share one lookup. Age is measured with the
//!    resolver's [`Clock`], so tests move time instead of sleeping.
//! 3. **Negative cache.** Well-formed keys the store does not know are remembered for a
//!    short time, so repeating a forged key does not repeat a query. (Distinct forged
//!    keys with valid checksums each cost one indexed lookup: the checksum is not a
//!    secret. Rate-limit unauthenticated traffic in front of keyroute.)
//! 4. **Store lookup.** Otherwise exactly one indexed lookup by SHA-256, which also
//!    loads the owner.
//! 5. **Checks on every request, cached or not:** cancelled, expired (an expiry that
//!    passes while the key is cached takes effect), disabled, allowed networks (the
//!    client address as [`IncomingRequest::client_ip`] derives it), environment and
//!    type.
//!
//! A JWT-shaped credential goes to the [`TokenVerifier`] the resolver was given, so
//! one guard serves keys and JWTs; without one, JWTs are refused.
//!
//! Revoking a key through a [`KeyService`](keyroute_core::KeyService) that has this
//! resolver as a listener evicts it from this instance's cache at once. Other
//! instances learn of it through the store's change feed ([`follow_feed`]): the
//! cache is used only while that feed is live, so a revocation anywhere reaches every
//! instance within the feed's bound; while the feed is down the resolver serves
//! uncached. A resolver built with [`ResolverBuilder::dangerous_cache_without_feed`] uses its
//! cache regardless, and other instances' revocations reach it only when entries age
//! out (`session_cache_duration`).
//!
//! Last-used times are recorded without a write per request: each key is noted at
//! most once per interval, and the notes are written in one batch by a background
//! task (or by [`KeyResolver::flush_last_used`]).
//!
//! Past 500 lines on purpose: the resolver's one request path (offline checks, cache,
//! lookup, legacy keys, the checks on every request) and its builder read top to
//! bottom; its parts with state of their own live in the submodules.

mod cache;
mod feed;
mod last_used;
mod marks;
mod request;

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::TimeDelta;
use keyroute_core::{
    ApiKey, ApiKeyStore, AuthError, Clock, ConfigError, CredentialError, CredentialExtractor,
    Environment, FeedGate, KeyHash, KeyId, KeyListener, KeyOptions, KeyStatus, KeyType, KeyUpdated,
    LEGACY_FORMAT, META_FORMAT, Principal, StoreResult, SystemClock, TokenFormat, TokenVerifier,
    looks_like_jwt,
};

use crate::limits::{Admission, Limiter};
use cache::{CachedKey, KeyCache};
pub use feed::follow_feed;
pub use request::{IncomingRequest, ProxyNet, ProxyNetError};

/// Whether `key` was imported without keyroute's format (`meta.format = legacy`).
fn is_legacy(key: &ApiKey) -> bool {
    key.meta.get(META_FORMAT).map(String::as_str) == Some(LEGACY_FORMAT)
}

struct Inner<S> {
    store: S,
    /// `[apikey] legacy_keys`: tokens that are not keyroute's keys are looked up too.
    legacy_keys: bool,
    format: TokenFormat,
    extractor: CredentialExtractor,
    clock: Arc<dyn Clock>,
    require_secure: bool,
    dangerous_trust_any_proxy: bool,
    trusted_proxies: Vec<ProxyNet>,
    environments: Vec<Environment>,
    key_types: Vec<KeyType>,
    cache: Option<(KeyCache, TimeDelta)>,
    /// Whether the cache may be used: while the change feed is live (see [`feed`]).
    gate: FeedGate,
    marks: marks::Marks,
    negative: moka::future::Cache<KeyHash, ()>,
    verifier: Option<Arc<dyn TokenVerifier>>,
    last_used_every: i64,
    last_used: Mutex<HashSet<KeyId>>,
    /// Usage limits and credits, checked once per authenticated request.
    limiter: Option<Limiter>,
}

/// Resolves credentials to principals. Cheap to clone: clones share one cache.
pub struct KeyResolver<S> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for KeyResolver<S> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<S> fmt::Debug for KeyResolver<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("KeyResolver")
            .field("require_secure", &i.require_secure)
            .field("dangerous_trust_any_proxy", &i.dangerous_trust_any_proxy)
            .field("environments", &i.environments)
            .field("key_types", &i.key_types)
            .field("cache_ttl", &i.cache.as_ref().map(|(_, ttl)| ttl))
            .field("verifier", &i.verifier)
            .finish_non_exhaustive()
    }
}

/// Builds a [`KeyResolver`].
pub struct ResolverBuilder<S> {
    store: S,
    options: KeyOptions,
    extractor: CredentialExtractor,
    clock: Arc<dyn Clock>,
    dangerous_trust_any_proxy: bool,
    trusted_proxies: Vec<ProxyNet>,
    environments: Option<Vec<Environment>>,
    key_types: Option<Vec<KeyType>>,
    cache_capacity: u64,
    negative_ttl: Duration,
    negative_capacity: u64,
    verifier: Option<Arc<dyn TokenVerifier>>,
    last_used_every: Duration,
    dangerous_cache_without_feed: bool,
    limiter: Option<Limiter>,
}

impl<S> fmt::Debug for ResolverBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolverBuilder")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<S: ApiKeyStore + 'static> ResolverBuilder<S> {
    /// Checks every authenticated request against the caller's usage limits and
    /// spends its credits ([`Limiter`]). Without one, keys' limits and credits are
    /// not enforced.
    pub fn limiter(mut self, limiter: Limiter) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// Resolves with `clock` instead of the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Reads credentials with `extractor` (another API key header, a query parameter).
    pub fn extractor(mut self, extractor: CredentialExtractor) -> Self {
        self.extractor = extractor;
        self
    }

    /// Takes any peer for a proxy when `trusted_proxies` is empty, so its
    /// `X-Forwarded-Proto: https` / `Forwarded: proto=https` counts as a secure
    /// connection. Dangerous, as the name says: a client that reaches the service
    /// directly can claim HTTPS. List your proxies with `trusted_proxies` instead.
    /// Default off.
    pub fn dangerous_trust_any_proxy(mut self, trust: bool) -> Self {
        self.dangerous_trust_any_proxy = trust;
        self
    }

    /// Counts forwarded headers (`Forwarded`, `X-Forwarded-Proto`) only from peers in
    /// these ranges, one value per trusted hop from the right. Default none.
    pub fn trusted_proxies(mut self, proxies: Vec<ProxyNet>) -> Self {
        self.trusted_proxies = proxies;
        self
    }

    /// Accepts only keys of these environments (default: all configured).
    pub fn accept_environments(mut self, environments: Vec<Environment>) -> Self {
        self.environments = Some(environments);
        self
    }

    /// Accepts only keys of these types (default: all configured).
    pub fn accept_key_types(mut self, key_types: Vec<KeyType>) -> Self {
        self.key_types = Some(key_types);
        self
    }

    /// About the most resolved keys cached at once (the cache evicts by its own
    /// policy near the bound). Default 100 000; 0 caches nothing.
    pub fn cache_capacity(mut self, capacity: u64) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// How long, and how many, unknown keys are remembered. Default 30 s, 100 000.
    pub fn negative_cache(mut self, ttl: Duration, capacity: u64) -> Self {
        self.negative_ttl = ttl;
        self.negative_capacity = capacity;
        self
    }

    /// Hands JWT-shaped credentials to `verifier`.
    pub fn verifier(mut self, verifier: Arc<dyn TokenVerifier>) -> Self {
        self.verifier = Some(verifier);
        self
    }

    /// How often a key's last-used time is written at most, and how often the batch is
    /// flushed. Default 60 s.
    pub fn last_used_every(mut self, every: Duration) -> Self {
        self.last_used_every = every;
        self
    }

    /// Uses the cache whether or not a change feed is live. Other instances'
    /// revocations then reach this one only when its entries age out
    /// (`session_cache_duration`): for a single instance, or a team that accepts that
    /// delay. Default off: the cache is used only while [`follow_feed`] reports the
    /// feed live, and the resolver serves uncached otherwise.
    pub fn dangerous_cache_without_feed(mut self) -> Self {
        self.dangerous_cache_without_feed = true;
        self
    }

    /// The resolver. Inside a Tokio runtime it also starts the task that writes
    /// last-used times in batches; the task ends when the last clone is dropped.
    ///
    /// # Errors
    /// [`ConfigError`] when the key options are invalid, or naming
    /// `negative_cache_ttl` when that is 100 years or more.
    pub fn build(self) -> Result<KeyResolver<S>, ConfigError> {
        let format = self.options.token_format()?;
        let cache = match self.options.session_cache_duration {
            Some(ttl) => {
                let age = TimeDelta::from_std(ttl)
                    .map_err(|e| ConfigError::invalid("apikey", "session_cache_duration", e))?;
                // More than the address space can hold is "no limit" in practice.
                let capacity = usize::try_from(self.cache_capacity).unwrap_or(usize::MAX);
                Some((KeyCache::new(capacity), age))
            }
            None => None,
        };
        let marks = marks::Marks::new(self.options.session_cache_duration.unwrap_or_default());
        if !self.negative_ttl.is_zero() {
            keyroute_core::config::check_duration(
                "resolver",
                "negative_cache_ttl",
                self.negative_ttl,
            )?;
        }
        let negative = moka::future::Cache::builder()
            .max_capacity(self.negative_capacity)
            .time_to_live(self.negative_ttl)
            .build();
        let every = self.last_used_every.max(Duration::from_secs(1));
        let inner = Arc::new(Inner {
            store: self.store,
            legacy_keys: self.options.legacy_keys,
            format,
            extractor: self.extractor,
            clock: self.clock,
            require_secure: !self.options.dangerous_accept_plain_http,
            dangerous_trust_any_proxy: self.dangerous_trust_any_proxy,
            trusted_proxies: self.trusted_proxies,
            environments: self.environments.unwrap_or(self.options.environments),
            key_types: self.key_types.unwrap_or(self.options.key_types),
            cache,
            gate: if self.dangerous_cache_without_feed {
                FeedGate::unmanaged()
            } else {
                FeedGate::expecting_feed()
            },
            marks,
            negative,
            verifier: self.verifier,
            last_used_every: i64::try_from(every.as_secs()).unwrap_or(i64::MAX),
            last_used: Mutex::new(HashSet::new()),
            limiter: self.limiter,
        });
        Ok(KeyResolver { inner })
    }
}

impl<S: ApiKeyStore + 'static> KeyResolver<S> {
    /// A builder over `store` with `options` (environments, key types, cache duration,
    /// secure-connection rule).
    pub fn builder(store: S, options: KeyOptions) -> ResolverBuilder<S> {
        ResolverBuilder {
            store,
            options,
            extractor: CredentialExtractor::default(),
            clock: Arc::new(SystemClock),
            dangerous_trust_any_proxy: false,
            trusted_proxies: Vec::new(),
            environments: None,
            key_types: None,
            cache_capacity: 100_000,
            negative_ttl: Duration::from_secs(30),
            negative_capacity: 100_000,
            verifier: None,
            last_used_every: Duration::from_secs(60),
            dangerous_cache_without_feed: false,
            limiter: None,
        }
    }

    /// Authenticates a request: reads its one credential, checks the connection is
    /// secure where required, resolves the credential, and (with a [`Limiter`])
    /// checks the request's cost against the caller's usage limits and credits. A request already
    /// authenticated ([`IncomingRequest::with_caller`]) gives its caller.
    ///
    /// This and the two methods after it are the authentication half of the request
    /// pipeline (see [`Gateway`](crate::Gateway)): every transport calls them.
    ///
    /// # Errors
    /// The [`AuthError`] naming the first check that failed.
    pub async fn authenticate(
        &self,
        request: &IncomingRequest<'_>,
    ) -> Result<Principal, AuthError> {
        if let Some(caller) = request.caller() {
            return Ok(caller.clone());
        }
        let credential = self
            .inner
            .extractor
            .extract(request.headers(), request.query())?;
        let inner = &self.inner;
        request.check_transport(
            inner.require_secure,
            inner.dangerous_trust_any_proxy,
            &inner.trusted_proxies,
        )?;
        let client = self.client_address(request);
        let caller = self
            .resolve_from(credential.token.expose_secret(), client)
            .await?;
        let Some(limiter) = &inner.limiter else {
            return Ok(caller);
        };
        match limiter.admit_in_process(caller, request.cost()) {
            Admission::Decided(decided) => decided,
            // Boxed: the shared engine's and the store's futures stay out of every
            // request's future (and of those that embed it) when they are not needed.
            Admission::Ask(caller) => {
                let now = inner.clock.now();
                Box::pin(limiter.admit(&inner.store, caller, request.cost(), now)).await
            }
        }
    }

    /// As [`authenticate`](Self::authenticate), for a request that may come without
    /// a caller: a request with no credential at all gives `None`. A credential that
    /// is present but bad (unreadable, forged, revoked, over plain HTTP where TLS is
    /// required...) is rejected as it would be anywhere: it never counts as no
    /// credential.
    ///
    /// # Errors
    /// As [`authenticate`](Self::authenticate), except for a missing credential.
    pub async fn authenticate_optional(
        &self,
        request: &IncomingRequest<'_>,
    ) -> Result<Option<Principal>, AuthError> {
        match self.authenticate(request).await {
            Ok(caller) => Ok(Some(caller)),
            Err(AuthError::Credentials(CredentialError::Missing)) => Ok(None),
            Err(rejected) => Err(rejected),
        }
    }

    /// As [`authenticate`](Self::authenticate), and the caller must be allowed
    /// `scope` by core's rule ([`Principal::require_scope`]): a key must hold it, a
    /// person's session passes.
    ///
    /// # Errors
    /// As [`authenticate`](Self::authenticate), and [`AuthError::InsufficientScope`]
    /// for a key without the scope.
    pub async fn authenticate_with_scope(
        &self,
        request: &IncomingRequest<'_>,
        scope: &str,
    ) -> Result<Principal, AuthError> {
        let caller = self.authenticate(request).await?;
        caller.require_scope(scope)?;
        Ok(caller)
    }

    /// The client's address for `request`, as this resolver reads proxies
    /// (`trusted_proxies`, `dangerous_trust_any_proxy`): what a key's allowed
    /// networks are checked against, and what the audit trail records.
    pub fn client_address(&self, request: &IncomingRequest<'_>) -> Option<std::net::IpAddr> {
        request.client_ip(
            self.inner.dangerous_trust_any_proxy,
            &self.inner.trusted_proxies,
        )
    }

    /// Resolves a token already read from its request (an API key or a JWT). The
    /// secure-connection rule is the caller's to apply here; [`authenticate`](Self::authenticate) applies it.
    ///
    /// # Errors
    /// The [`AuthError`] naming the first check that failed.
    /// A key bound to allowed networks is refused here (`network_not_allowed`): no
    /// address is known. [`authenticate`](Self::authenticate) passes the request's.
    pub async fn resolve(&self, token: &str) -> Result<Principal, AuthError> {
        self.resolve_from(token, None).await
    }

    /// As [`resolve`](Self::resolve), for a request from `client` (the address
    /// [`IncomingRequest::client_ip`] derives): a key bound to allowed networks is
    /// accepted only from inside them.
    ///
    /// # Errors
    /// As [`resolve`](Self::resolve).
    pub async fn resolve_from(
        &self,
        token: &str,
        client: Option<std::net::IpAddr>,
    ) -> Result<Principal, AuthError> {
        let inner = &self.inner;
        if looks_like_jwt(token) {
            let verifier = inner.verifier.as_ref().ok_or(AuthError::JwtNotAccepted)?;
            let principal = verifier.verify(token).await?;
            self.check_accepted(principal.environment(), principal.key_type())?;
            return Ok(principal);
        }
        let presented = match inner.format.parse(token) {
            Ok(presented) => presented,
            // Not one of keyroute's keys: with `legacy_keys`, perhaps an imported one.
            Err(_) if inner.legacy_keys => return self.resolve_legacy(token, client).await,
            Err(error) => return Err(error.into()),
        };
        self.check_accepted(&presented.environment, Some(&presented.key_type))?;
        let now = inner.clock.now();
        let entry = self.lookup(&presented.hash, now).await?;
        let key = &entry.key;
        if key.environment != presented.environment
            || key.key_type != presented.key_type
            || is_legacy(key)
        {
            // Only a hash collision or an edited row gets here; treat it as unknown.
            return Err(AuthError::UnknownKey);
        }
        self.admit(&entry, now, client)
    }

    /// An imported key without keyroute's format (`[apikey] legacy_keys`): looked up
    /// by the SHA-256 of what was presented, with no offline check before the lookup
    /// (the negative cache still absorbs repeats). Only a record imported as legacy
    /// answers; its environment and type come from the record.
    async fn resolve_legacy(
        &self,
        token: &str,
        client: Option<std::net::IpAddr>,
    ) -> Result<Principal, AuthError> {
        let now = self.inner.clock.now();
        let entry = self.lookup(&KeyHash::of(token), now).await?;
        if !is_legacy(&entry.key) {
            return Err(AuthError::UnknownKey);
        }
        self.check_accepted(&entry.key.environment, Some(&entry.key.key_type))?;
        self.admit(&entry, now, client)
    }

    /// The checks every request makes of a found key, cached or not: lifetime,
    /// enabled, allowed networks; then the caller it is.
    fn admit(
        &self,
        entry: &CachedKey,
        now: chrono::DateTime<chrono::Utc>,
        client: Option<std::net::IpAddr>,
    ) -> Result<Principal, AuthError> {
        let inner = &self.inner;
        let key = &entry.key;
        match key.status(now) {
            KeyStatus::Active => {}
            KeyStatus::Expired => return Err(AuthError::Expired),
            _ => return Err(AuthError::Revoked),
        }
        if !key.enabled {
            return Err(AuthError::Disabled);
        }
        if !key.allows_address(client) {
            return Err(AuthError::NetworkNotAllowed);
        }
        inner.note_use(entry, now);
        Ok(Principal::from_api_key(Arc::clone(key), entry.user.clone()))
    }

    /// Forgets a key on this instance (the listener does this on revocation).
    pub async fn evict(&self, hash: &KeyHash) {
        self.forget(hash, false).await;
    }

    /// Writes the noted last-used times now, in one batch. Returns how many keys were
    /// updated.
    ///
    /// # Errors
    /// The store's error; the batch is dropped (last-used times are advisory).
    pub async fn flush_last_used(&self) -> StoreResult<u64> {
        self.inner.flush_last_used().await
    }

    fn check_accepted(
        &self,
        environment: &Environment,
        key_type: Option<&KeyType>,
    ) -> Result<(), AuthError> {
        let inner = &self.inner;
        if !inner.environments.contains(environment) {
            return Err(AuthError::EnvironmentNotAllowed(environment.clone()));
        }
        match key_type {
            Some(key_type) if !inner.key_types.contains(key_type) => {
                Err(AuthError::KeyTypeNotAllowed(key_type.clone()))
            }
            _ => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl<S: ApiKeyStore + 'static> KeyListener for KeyResolver<S> {
    async fn keys_revoking(&self, keys: &[ApiKey]) {
        for key in keys {
            self.forget(&key.hash, true).await;
        }
    }

    async fn keys_retired(&self, keys: &[ApiKey]) {
        for key in keys {
            self.forget(&key.hash, false).await;
        }
    }

    /// A key about to lose authority stops being served from this instance's cache
    /// before the change is written, as a key being revoked does.
    async fn keys_narrowing(&self, keys: &[ApiKey]) {
        for key in keys {
            self.forget(&key.hash, true).await;
        }
    }

    async fn keys_updated(&self, updates: &[KeyUpdated]) {
        for update in updates {
            self.forget(&update.key.hash, false).await;
        }
    }

    /// A key just made may have been presented (and remembered as unknown) before it
    /// existed, as a regenerated key can be when a client retries early.
    async fn keys_issued(&self, keys: &[ApiKey]) {
        for key in keys {
            self.inner.negative.invalidate(&key.hash).await;
        }
    }
}
