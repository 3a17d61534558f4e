//! [`KeyrouteBuilder`]: joins one store, one set of key options, one clock, the
//! router's connections and policy, and optionally JWTs, into a [`Keyroute`] handle,
//! registering every listener itself and checking every cross-reference before the
//! first request.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use keyroute_core::{
    Clock, ConfigError, Environment, FeedListener, KeyListener, KeyOptions, KeyService, Store,
    SystemClock,
};
use keyroute_router::{Gateway, KeyResolver, RoutingPolicy};
use keyroute_store::{Backend, DatabaseUrl, SqlStore};

use crate::config::Config;
use crate::error::BuildError;
use crate::handle::{Inner, KeyStore, Keyroute};

/// Builds a [`Keyroute`]. Start from [`Keyroute::builder`]; every part has a default
/// except the connections, which come from [`config`](Self::config) or
/// [`connection`](Self::connection).
pub struct KeyrouteBuilder<B: Backend> {
    config: Config,
    store: Option<KeyStore>,
    clock: Arc<dyn Clock>,
    policy: Option<Box<dyn RoutingPolicy>>,
    listeners: Vec<Arc<dyn KeyListener>>,
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
            .finish_non_exhaustive()
    }
}

impl<B: Backend> KeyrouteBuilder<B>
where
    SqlStore<B>: Store,
{
    pub(crate) fn new() -> Self {
        Self {
            config: Config::default(),
            store: None,
            clock: Arc::new(SystemClock),
            policy: None,
            listeners: Vec::new(),
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
    /// # Errors
    /// [`BuildError::Config`] naming the setting: an invalid option, a route to a
    /// connection that does not exist, a routing entry or accepted environment that
    /// keys are not issued for, a store connection that is not configured;
    /// [`BuildError::Store`] when the store cannot be opened or migrated;
    /// [`BuildError::NoRuntime`] outside a Tokio runtime.
    pub async fn build(self) -> Result<Keyroute<B>, BuildError> {
        tokio::runtime::Handle::try_current().map_err(|_| BuildError::NoRuntime)?;
        let config = self.config;
        config.validate()?;
        let options = config.apikey.clone();
        let accepted = accepted_environments(&config, &options)?;
        let router = {
            let mut builder = config.router.builder::<B>()?;
            for environment in config.router.table_environments() {
                if !options
                    .environments
                    .iter()
                    .any(|e| e.as_str() == environment)
                {
                    return Err(ConfigError::invalid(
                        "routing",
                        "table",
                        format_args!(
                            "routes environment '{environment}', which keys are not issued for; add it to [apikey] environments or remove the route"
                        ),
                    )
                    .into());
                }
            }
            if let Some(policy) = self.policy {
                builder = builder.policy(policy);
            }
            builder.check_routes_for(accepted).build()?
        };

        let store: KeyStore = match self.store {
            Some(store) => store,
            None => Arc::new(open_store::<B>(&config).await?),
        };
        if options.init_schema {
            store.init_schema().await?;
        }

        #[cfg(feature = "jwt")]
        let jwt = build_jwt(&config, &options, self.signing_keys, &store, &self.clock)?;

        let resolver = config
            .resolver
            .apply(KeyResolver::builder(Arc::clone(&store), options.clone()))?
            .clock(Arc::clone(&self.clock));
        #[cfg(feature = "jwt")]
        let resolver = match &jwt {
            Some(jwt) => resolver.verifier(jwt.clone()),
            None => resolver,
        };
        let resolver = resolver.build()?;
        // The caches follow the store's change feed, run by `Keyroute::background()`.
        let resolver_listener: Arc<dyn FeedListener> = Arc::new(resolver.clone());
        #[cfg(feature = "jwt")]
        let feed_listeners: Vec<Arc<dyn FeedListener>> = std::iter::once(resolver_listener)
            .chain(
                jwt.as_ref()
                    .map(|jwt| jwt.feed_listener() as Arc<dyn FeedListener>),
            )
            .collect();
        #[cfg(not(feature = "jwt"))]
        let feed_listeners = vec![resolver_listener];

        let mut keys = KeyService::new(Arc::clone(&store), options)
            .map_err(|e| match e {
                keyroute_core::Error::Config(e) => BuildError::Config(e),
                other => BuildError::Config(ConfigError::invalid("apikey", "", other)),
            })?
            .with_clock(Arc::clone(&self.clock))
            .with_listener(Arc::new(resolver.clone()));
        #[cfg(feature = "jwt")]
        if let Some(jwt) = &jwt {
            keys = keys
                .with_listener(jwt.revocation_listener())
                .with_minter(keyroute_jwt::META_JWT, jwt.key_minter());
        }
        for listener in self.listeners {
            keys = keys.with_listener(listener);
        }
        Ok(Keyroute {
            inner: Arc::new(Inner {
                keys: Arc::new(keys),
                gateway: Gateway::new(resolver, router),
                #[cfg(feature = "jwt")]
                jwt,
                feed_listeners,
                feed: config.resolver.feed_settings(),
                event_retention: config.resolver.feed_retention,
            }),
        })
    }
}

/// The environments requests are accepted for: `[resolver] accept_environments`, each
/// one keys are issued for, or all of those.
fn accepted_environments(
    config: &Config,
    options: &KeyOptions,
) -> Result<Vec<Environment>, ConfigError> {
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

/// Opens the `[store]` database: its own `url`, or the URL of the named connection
/// (default `live`), with the `[pools]` settings.
async fn open_store<B: Backend>(config: &Config) -> Result<SqlStore<B>, BuildError> {
    let url = match (&config.store.url, &config.store.connection) {
        (Some(url), _) => url.clone(),
        (None, name) => {
            let name = name.as_deref().unwrap_or("live");
            config.router.connections.get(name).cloned().ok_or_else(|| {
                let reason = format!(
                    "keys and users live in the database of connection '{name}', which is not configured; set [store] connection or url"
                );
                ConfigError::missing("store", "connection", reason)
            })?
        }
    };
    Ok(SqlStore::<B>::connect_with(url, config.router.pools.settings.clone()).await?)
}

#[cfg(feature = "jwt")]
fn build_jwt(
    config: &Config,
    options: &KeyOptions,
    mut signing_keys: Vec<keyroute_jwt::SigningKey>,
    store: &KeyStore,
    clock: &Arc<dyn Clock>,
) -> Result<Option<Arc<keyroute_jwt::JwtService>>, BuildError> {
    use keyroute_jwt::{JwtService, SigningKey};
    let section = &config.jwt;
    if !section.enabled {
        return Ok(None);
    }
    if signing_keys.is_empty() {
        match section.signing_key()? {
            Some(key) => signing_keys.push(key),
            None => {
                tracing::warn!(
                    "keyroute: [jwt] has no secret or private_key_file; this process signs with a key of its own, which other instances cannot verify"
                );
                signing_keys.push(SigningKey::generate_hmac(&section.kid, section.algorithm)?);
            }
        }
    }
    // One list of environments: the key options'.
    let jwt_config = section
        .config
        .clone()
        .with_environments(options.environments.clone());
    let mut builder = JwtService::builder(jwt_config)
        .clock(Arc::clone(clock))
        .key_store(Arc::clone(store) as Arc<dyn keyroute_core::ApiKeyStore>)
        .deny_cache_follows_feed();
    if section.config.check_deny_list {
        builder = builder.deny_list(Arc::clone(store) as Arc<dyn keyroute_core::DenyList>);
    }
    for key in signing_keys {
        builder = builder.signing_key(key);
    }
    Ok(Some(Arc::new(builder.build()?)))
}
