//! [`KeyrouteBuilder`]: joins one store, one set of key options, one clock, the
//! router's connections and policy, and optionally JWTs, into a [`Keyroute`] handle,
//! registering every listener itself and checking every cross-reference before the
//! first request.
//!
//! Just past 500 lines on purpose: the builder's setters and `build`'s checks are the
//! front door's one list of what a service configures, read top to bottom; splitting
//! the checks from the setters would separate each option from the rule it must pass.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use keyroute_core::{
    Clock, ConfigError, Environment, FeedListener, KeyListener, KeyOptions, KeyService, KeyStore,
    Store, SystemClock,
};
use keyroute_pool::{Backend, DatabaseUrl};
use keyroute_router::limits::Limiter;
use keyroute_router::{ConnectionRouter, Gateway, KeyResolver, RoutingPolicy};
use keyroute_store::{SqlStore, StoreBackend, keyroute_migration_versions};

use crate::config::Config;
use crate::error::BuildError;
use crate::handle::{Inner, Keyroute};
use crate::hooks::{FnHook, Hooks, KeyEvent, KeyHook};

/// Builds a [`Keyroute`]. Start from [`Keyroute::builder`]; every part has a default
/// except the connections, which come from [`config`](Self::config) or
/// [`connection`](Self::connection).
pub struct KeyrouteBuilder<B: Backend> {
    config: Config,
    store: Option<KeyStore>,
    clock: Arc<dyn Clock>,
    policy: Option<Box<dyn RoutingPolicy>>,
    listeners: Vec<Arc<dyn KeyListener>>,
    hooks: Vec<Arc<dyn KeyHook>>,
    hook_time_limit: std::time::Duration,
    #[cfg(feature = "jwt")]
    signing_keys: Vec<keyroute_jwt::SigningKey>,
    _backend: PhantomData<B>,
}

impl<B: Backend> fmt::Debug for KeyrouteBuilder<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyrouteBuilder")
            .field("config", &self.config)
            .field("store", &self.store.as_ref().map(|_| "custom"))
            .field("clock", &self.clock)
            .field("policy", &self.policy)
            .field("listeners", &self.listeners.len())
            .field("hooks", &self.hooks.len())
            .finish_non_exhaustive()
    }
}

impl<B: StoreBackend> KeyrouteBuilder<B> {
    pub(crate) fn new() -> Self {
        Self {
            config: Config::default(),
            store: None,
            clock: Arc::new(SystemClock),
            policy: None,
            listeners: Vec::new(),
            hooks: Vec::new(),
            hook_time_limit: crate::hooks::HOOK_TIME_LIMIT,
            #[cfg(feature = "jwt")]
            signing_keys: Vec::new(),
            _backend: PhantomData,
        }
    }

    /// Takes every setting from `config` (a file, variables, or code).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// How keys are made and checked (`[apikey]`), including the code-only hooks
    /// (`generate_key`, `on_create_key`).
    pub fn options(mut self, options: KeyOptions) -> Self {
        self.config.apikey = options;
        self
    }

    /// Adds a named connection (`[connections]`).
    pub fn connection(mut self, name: impl Into<String>, url: impl Into<DatabaseUrl>) -> Self {
        self.config
            .router
            .connections
            .insert(name.into(), url.into());
        self
    }

    /// Keeps keys and users in `store` instead of the `[store]` database: the memory
    /// store, or a team's own.
    pub fn store(mut self, store: impl Store + 'static) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Keeps keys and users in a store already shared elsewhere.
    pub fn shared_store(mut self, store: KeyStore) -> Self {
        self.store = Some(store);
        self
    }

    /// Routes with a policy of your own instead of `[routing]`, as overriding
    /// `GetDbConnection(req)` does in ServiceStack.
    pub fn policy(mut self, policy: impl RoutingPolicy + 'static) -> Self {
        self.policy = Some(Box::new(policy));
        self
    }

    /// The one clock of the key service, the resolver and JWTs (tests move a
    /// `ManualClock`). Default: the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Tells `listener` of every key issued and retired, besides keyroute's own caches.
    pub fn listener(mut self, listener: Arc<dyn KeyListener>) -> Self {
        self.listeners.push(listener);
        self
    }

    /// Calls `hook` with every key event (created, revoked, rolled), off the request
    /// path: a slow or failing hook never blocks or fails a request. See
    /// [`hooks`](crate::hooks); `background()` must run for hooks to be called.
    pub fn on_key_event<F, Fut>(self, hook: F) -> Self
    where
        F: Fn(KeyEvent) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        self.key_hook(Arc::new(FnHook(hook)))
    }

    /// Calls `hook` with every key event, as [`on_key_event`](Self::on_key_event).
    pub fn key_hook(mut self, hook: Arc<dyn KeyHook>) -> Self {
        self.hooks.push(hook);
        self
    }

    /// How long a hook may take with one event before keyroute goes on without it
    /// (default [`HOOK_TIME_LIMIT`](crate::hooks::HOOK_TIME_LIMIT)).
    pub fn hook_time_limit(mut self, limit: std::time::Duration) -> Self {
        self.hook_time_limit = limit;
        self
    }

    /// Turns JWTs on and signs with `key` (added in order of age: the last one signs,
    /// earlier ones still verify). Without any key, an enabled `[jwt]` section uses its
    /// `secret` or `private_key_file`, or a key generated for this process.
    #[cfg(feature = "jwt")]
    pub fn jwt_signing_key(mut self, key: keyroute_jwt::SigningKey) -> Self {
        self.config.jwt.enabled = true;
        self.signing_keys.push(key);
        self
    }

    /// Turns JWTs on with `config` (lifetimes, issuer, audience, deny-list check).
    #[cfg(feature = "jwt")]
    pub fn jwt(mut self, config: keyroute_jwt::JwtConfig) -> Self {
        self.config.jwt.enabled = true;
        self.config.jwt.config = config;
        self
    }

    /// Checks everything, opens the key store (applying keyroute's migrations when
    /// `init_schema` is on), and returns the handle.
    ///
    /// The steps, in order: validate the configuration, build the router (checking
    /// every route), open the key store, JWTs, the resolver, the key service, the
    /// handle.
    ///
    /// # Errors
    /// [`BuildError::Config`] naming the setting: an invalid option, a route to a
    /// connection that does not exist, a routing entry or accepted environment that
    /// keys are not issued for, a store connection that is not configured;
    /// [`BuildError::RowSecurity`] when `[tenancy] mode = "row_security"` and a
    /// connection's role or tables would let requests escape the policies;
    /// [`BuildError::Store`] when the store cannot be opened or migrated;
    /// [`BuildError::NoRuntime`] outside a Tokio runtime.
    pub async fn build(self) -> Result<Keyroute<B>, BuildError> {
        tokio::runtime::Handle::try_current().map_err(|_| BuildError::NoRuntime)?;
        let config = self.config;
        config.validate()?;
        let router = build_router::<B>(&config, self.policy)?;
        let findings = router.check_tenancy().await?;
        if !findings.is_empty() {
            return Err(BuildError::RowSecurity(findings));
        }
        let store = open_key_store::<B>(&config, self.store).await?;
        #[cfg(feature = "jwt")]
        let jwt = jwt::Jwt::build(&config, self.signing_keys, &store, &self.clock)?;
        #[cfg(not(feature = "jwt"))]
        let jwt = jwt::Jwt;
        let limiter = Limiter::from_config(&config.limits).await?;
        let resolver = build_resolver(&config, &store, &self.clock, &jwt, limiter)?;
        let mut listeners = self.listeners;
        let hooks = (!self.hooks.is_empty()).then(|| {
            let (hooks, queue) = Hooks::new(self.hooks, self.hook_time_limit);
            listeners.push(queue);
            hooks
        });
        let keys = key_service(&config, &store, &self.clock, &resolver, &jwt, listeners)?;
        Ok(handle(&config, keys, resolver, router, jwt, hooks))
    }
}

/// The router of `[connections]`, `[routing]` (or `policy`) and `[pools]`, with every
/// route checked against the environments requests are accepted for.
fn build_router<B: StoreBackend>(
    config: &Config,
    policy: Option<Box<dyn RoutingPolicy>>,
) -> Result<ConnectionRouter<B>, BuildError> {
    let accepted = accepted_environments(config)?;
    let issued = &config.apikey.environments;
    if let Some(stray) = config
        .router
        .table_environments()
        .find(|env| !issued.iter().any(|e| e.as_str() == *env))
    {
        return Err(ConfigError::invalid(
            "routing",
            "table",
            format_args!(
                "routes environment '{stray}', which keys are not issued for; add it to [apikey] environments or remove the route"
            ),
        )
        .into());
    }
    let mut builder = config.router.builder::<B>()?;
    if let Some(policy) = policy {
        builder = builder.policy(policy);
    }
    Ok(builder
        .check_routes_for(accepted)
        .keyroute_versions(keyroute_migration_versions::<B>())
        .build()?)
}

/// The resolver of `[resolver]` and `[apikey]`, on `store` and `clock`, accepting
/// JWTs when they are on, enforcing `[limits]` and keys' own limits and credits.
fn build_resolver(
    config: &Config,
    store: &KeyStore,
    clock: &Arc<dyn Clock>,
    jwt: &jwt::Jwt,
    limiter: Limiter,
) -> Result<KeyResolver<KeyStore>, BuildError> {
    let builder = config
        .resolver
        .apply(KeyResolver::builder(
            Arc::clone(store),
            config.apikey.clone(),
        ))?
        .clock(Arc::clone(clock))
        .limiter(limiter);
    Ok(jwt.verify_for(builder).build()?)
}

/// The key store: the one given in code, or the `[store]` database; migrated when
/// `init_schema` is on.
async fn open_key_store<B: StoreBackend>(
    config: &Config,
    given: Option<KeyStore>,
) -> Result<KeyStore, BuildError> {
    let store: KeyStore = match given {
        Some(store) => store,
        None => Arc::new(open_store::<B>(config).await?),
    };
    if config.apikey.init_schema {
        store.init_schema().await?;
    }
    Ok(store)
}

/// The key service over `store`, telling the resolver (and JWTs, and `listeners`) of
/// every key issued and retired.
fn key_service(
    config: &Config,
    store: &KeyStore,
    clock: &Arc<dyn Clock>,
    resolver: &KeyResolver<KeyStore>,
    jwt: &jwt::Jwt,
    listeners: Vec<Arc<dyn KeyListener>>,
) -> Result<KeyService<KeyStore>, BuildError> {
    let keys = KeyService::new(Arc::clone(store), config.apikey.clone())?
        .with_clock(Arc::clone(clock))
        .with_listener(Arc::new(resolver.clone()));
    Ok(listeners
        .into_iter()
        .fold(jwt.wire_keys(keys), KeyService::with_listener))
}

/// The handle: the key service, the gateway, JWTs, and the caches that follow the
/// store's change feed (run by `Keyroute::background()`).
fn handle<B: Backend>(
    config: &Config,
    keys: KeyService<KeyStore>,
    resolver: KeyResolver<KeyStore>,
    router: ConnectionRouter<B>,
    jwt: jwt::Jwt,
    hooks: Option<Hooks>,
) -> Keyroute<B> {
    let resolver_listener: Arc<dyn FeedListener> = Arc::new(resolver.clone());
    let feed_listeners = std::iter::once(resolver_listener)
        .chain(jwt.feed_listener())
        .collect();
    Keyroute {
        inner: Arc::new(Inner {
            keys: Arc::new(keys),
            gateway: Gateway::new(resolver, router),
            #[cfg(feature = "jwt")]
            jwt: jwt.service,
            feed_listeners,
            feed: config.resolver.feed_settings(),
            event_retention: config.resolver.feed_retention,
            hooks,
        }),
    }
}

/// The environments requests are accepted for: `[resolver] accept_environments`, each
/// one keys are issued for, or all of those.
fn accepted_environments(config: &Config) -> Result<Vec<Environment>, ConfigError> {
    let options = &config.apikey;
    let Some(accepted) = &config.resolver.accept_environments else {
        return Ok(options.environments.clone());
    };
    if let Some(stray) = accepted.iter().find(|e| !options.environments.contains(e)) {
        return Err(ConfigError::invalid(
            "resolver",
            "accept_environments",
            format_args!(
                "'{stray}' is not an environment keys are issued for; add it to [apikey] environments"
            ),
        ));
    }
    if let Some(types) = &config.resolver.accept_key_types
        && let Some(stray) = types.iter().find(|t| !options.key_types.contains(t))
    {
        return Err(ConfigError::invalid(
            "resolver",
            "accept_key_types",
            format_args!(
                "'{stray}' is not a key type keys are issued as; add it to [apikey] key_types"
            ),
        ));
    }
    Ok(accepted.clone())
}

impl Config {
    /// Connects to the `[store]` database as `build()` does: its own `url`, or the URL
    /// of the named connection (default `live`), with the `[pools]` settings and
    /// `[store] direct_url`. Only connects: `build()`'s checks (a direct URL behind a
    /// transaction pooler, the change feed) and migrations are not run.
    ///
    /// For the `keyroute` command's `doctor`, which checks the store `build()` would
    /// open; not part of the stable API.
    ///
    /// # Errors
    /// [`BuildError::Config`] when `[store] connection` names no configured connection,
    /// [`BuildError::Store`] when the database cannot be reached.
    #[doc(hidden)]
    pub async fn connect_store<B: StoreBackend>(&self) -> Result<SqlStore<B>, BuildError> {
        let url = self.store_url()?;
        let mut store =
            SqlStore::<B>::connect_with(url, self.router.pools.settings.clone()).await?;
        if let Some(direct) = &self.store.direct_url {
            store = store.with_direct_url(direct.clone());
        }
        Ok(store)
    }
}

/// Opens the `[store]` database ([`Config::connect_store`]) and checks it can serve
/// what the configuration asks of it.
async fn open_store<B: StoreBackend>(config: &Config) -> Result<SqlStore<B>, BuildError> {
    let store = config.connect_store::<B>().await?;
    // What needs a session of its own: the feed (when caches follow it) and
    // keyroute's migrations (when build() applies them).
    let needs_session = config.apikey.session_cache_duration.is_some() || config.apikey.init_schema;
    if store.db().transaction_pooled() && needs_session && config.store.direct_url.is_none() {
        return Err(ConfigError::missing(
            "store",
            "direct_url",
            "behind a pooler in transaction mode ([pools] pooler = \"transaction\") the change feed's LISTEN and keyroute's migrations need a direct connection to the store's database",
        )
        .into());
    }
    // Caches are trusted only while the feed delivers: a feed that cannot (LISTEN
    // through a transaction pooler nobody declared) is refused here, not found out
    // by a revoked key that still works.
    if config.apikey.session_cache_duration.is_some() {
        store.verify_feed().await?;
    }
    Ok(store)
}

/// JWTs' part in the handle, so the build steps read the same with the `jwt` feature
/// and without it (where every step is a no-op).
#[cfg(feature = "jwt")]
mod jwt {
    use std::sync::Arc;

    use keyroute_core::{ApiKeyStore, Clock, DenyList, FeedListener, KeyService};
    use keyroute_jwt::{JwtService, META_JWT, SigningKey};
    use keyroute_router::ResolverBuilder;

    use crate::config::Config;
    use crate::error::BuildError;
    use keyroute_core::KeyStore;

    /// The JWT service, when `[jwt]` is enabled.
    pub(super) struct Jwt {
        pub(super) service: Option<Arc<JwtService>>,
    }

    impl Jwt {
        /// The JWT service `[jwt]` describes, signing with `signing_keys` (given in
        /// code), else the section's `secret` or `private_key_file`, else a key
        /// generated for this process; its environments are `[apikey]`'s.
        pub(super) fn build(
            config: &Config,
            mut signing_keys: Vec<SigningKey>,
            store: &KeyStore,
            clock: &Arc<dyn Clock>,
        ) -> Result<Self, BuildError> {
            let section = &config.jwt;
            if !section.enabled {
                return Ok(Self { service: None });
            }
            if signing_keys.is_empty() {
                signing_keys.push(match section.signing_key()? {
                    Some(key) => key,
                    None => {
                        tracing::warn!(
                            "keyroute: [jwt] has no secret or private_key_file; this process signs with a key of its own, which other instances cannot verify"
                        );
                        SigningKey::generate_hmac(&section.kid, section.algorithm)?
                    }
                });
            }
            let jwt_config = section
                .config
                .clone()
                .with_environments(config.apikey.environments.clone());
            let mut builder = JwtService::builder(jwt_config)
                .clock(Arc::clone(clock))
                .key_store(Arc::clone(store) as Arc<dyn ApiKeyStore>)
                .deny_cache_follows_feed();
            if section.config.check_deny_list {
                builder = builder.deny_list(Arc::clone(store) as Arc<dyn DenyList>);
            }
            for key in signing_keys {
                builder = builder.signing_key(key);
            }
            Ok(Self {
                service: Some(Arc::new(builder.build()?)),
            })
        }

        /// The resolver also accepts JWTs.
        pub(super) fn verify_for(
            &self,
            resolver: ResolverBuilder<KeyStore>,
        ) -> ResolverBuilder<KeyStore> {
            match &self.service {
                Some(jwt) => resolver.verifier(jwt.clone()),
                None => resolver,
            }
        }

        /// Revocations reach the deny-list; JWT keys are minted by the JWT service.
        pub(super) fn wire_keys(&self, keys: KeyService<KeyStore>) -> KeyService<KeyStore> {
            match &self.service {
                Some(jwt) => keys
                    .with_listener(jwt.revocation_listener())
                    .with_minter(META_JWT, jwt.key_minter()),
                None => keys,
            }
        }

        /// The deny cache follows the change feed.
        pub(super) fn feed_listener(&self) -> Option<Arc<dyn FeedListener>> {
            self.service
                .as_ref()
                .map(|jwt| jwt.feed_listener() as Arc<dyn FeedListener>)
        }
    }
}

/// Without the `jwt` feature, JWTs take no part.
#[cfg(not(feature = "jwt"))]
mod jwt {
    use std::sync::Arc;

    use keyroute_core::{FeedListener, KeyService};
    use keyroute_router::ResolverBuilder;

    use keyroute_core::KeyStore;

    /// No JWTs.
    pub(super) struct Jwt;

    impl Jwt {
        /// The resolver as it is.
        pub(super) fn verify_for(
            &self,
            resolver: ResolverBuilder<KeyStore>,
        ) -> ResolverBuilder<KeyStore> {
            resolver
        }

        /// The key service as it is.
        pub(super) fn wire_keys(&self, keys: KeyService<KeyStore>) -> KeyService<KeyStore> {
            keys
        }

        /// No listener.
        pub(super) fn feed_listener(&self) -> Option<Arc<dyn FeedListener>> {
            None
        }
    }
}
