//! # keyroute
//!
//! API keys done right for Rust backends: keys that carry a type (secret, publishable),
//! an environment (live, test), scopes and an expiry; that are rejected offline when
//! mistyped or forged and validated in microseconds when genuine; and whose
//! environment picks the database a request reaches.
//!
//! Start with the front door, [`Keyroute`]: one builder (or one [`Config`] from
//! `keyroute.toml` and `KEYROUTE_*` variables) joins the store, the key options, the
//! clock, the router's connections and JWTs, registers every listener itself, checks
//! every cross-reference, and gives one cheap-to-clone handle.
//!
//! ```
//! use keyroute::store::{MemoryStore, Sqlite};
//! use keyroute::{Environment, IncomingRequest, KeyType, Keyroute, NewUser};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let keyroute = Keyroute::<Sqlite>::builder()
//!     .connection("live", dir.path().join("live.db").to_string_lossy().as_ref())
//!     .connection("test", dir.path().join("test.db").to_string_lossy().as_ref())
//!     .store(MemoryStore::new())
//!     .build()
//!     .await?;
//!
//! let ada = keyroute.keys().register_user(NewUser::named("ada")).await?;
//! let test_key = ada.key(&KeyType::SECRET, &Environment::TEST).ok_or("no test key")?;
//!
//! let mut headers = http::HeaderMap::new();
//! headers.insert("x-api-key", test_key.plaintext.expose_secret().parse()?);
//! let request = IncomingRequest::new(&headers).over_tls(true);
//! let (caller, db) = keyroute.connect(&request).await?;
//! assert_eq!(caller.environment(), &Environment::TEST);
//! assert_eq!(db.name(), "test"); // a test key always lands on the TestDb
//! # Ok(())
//! # }
//! ```
//!
//! | where | what | feature |
//! |---|---|---|
//! | the crate root | the front door, keys, principals, the resolver and router | always |
//! | [`store`] | the store backends and the connection pools | `memory`, `sqlite` (default), `postgres`, `mysql` |
//! | [`jwt`] | exchanged JWTs, JWTs as keys, sessions, the verifier | `jwt` (default) |
//! | [`test_util`] | a clock tests move, a store that counts its calls | `test-util` |
//! | [`axum`] | extractors, a tower layer, problem responses, key routes | `axum` |
//!
//! The component builders ([`KeyService`], [`KeyResolver::builder`],
//! [`ConnectionRouter::builder`], [`jwt::JwtService::builder`]) remain the advanced
//! API, for wiring of your own.

#[cfg(feature = "axum")]
mod axum_state;
mod builder;
mod config;
mod error;
mod handle;

pub use builder::KeyrouteBuilder;
pub use config::{Config, StoreConfig};
pub use error::BuildError;
pub use handle::{KeyStore, Keyroute};
#[cfg(feature = "jwt")]
pub use keyroute_jwt::JwtSection;

pub use keyroute_core::{
    ADMIN_SCOPE, Acting, Actor, ApiKey, ApiKeyStore, AuthError, AuthMethod, BackfillReport,
    ChangeEvent, ChangeFeed, ChangeKind, ChangeSubscription, Clock, ConfigError, ConfigErrorKind,
    CreateKeyHook, Credential, CredentialError, CredentialExtractor, CredentialSource, Denial,
    Denied, DenyList, Environment, Error, ErrorKind, FeedGate, FeedListener, FeedSettings,
    FeedSignal, GenerateError, IssuedKey, JwtError, KeyGenerator, KeyHash, KeyId, KeyListener,
    KeyMinter, KeyOptions, KeyQuery, KeyRequest, KeyService, KeyStatus, KeyType, Meta, Minted,
    NameError, NewUser, Operator, PlaintextKey, PresentedKey, Principal, Regenerated, Regeneration,
    Registration, ResolvedKey, Rolled, Scope, Scopes, Store, StoreError, StoreResult, SystemClock,
    Tenant, TextError, TokenError, TokenFormat, TokenVerifier, User, UserId, UserStore,
    looks_like_jwt,
};
pub use keyroute_router::{
    ByEnvironment, ConnectionRouter, Gateway, IncomingRequest, KeyResolver, PoolsConfig,
    ResolverBuilder, ResolverConfig, RouteError, RouteTable, RoutedConnection, RouterBuilder,
    RouterConfig, RoutingConfig, RoutingPolicy, Template, follow_feed,
};
pub use keyroute_router::{ConnectionSchema, SchemaDrift, SchemaReport};

/// axum and tower (`keyroute-axum`): extractors, an authenticating layer, RFC 9457
/// rejections and the key-management routes. `Keyroute<B>` is the state they need.
#[cfg(feature = "axum")]
pub use keyroute_axum as axum;

/// The store backends and the pooled connections the router uses.
pub mod store {
    #[cfg(feature = "memory")]
    pub use keyroute_store::MemoryStore;
    #[cfg(feature = "postgres")]
    pub use keyroute_store::sql::postgres::{
        CHANNEL as POSTGRES_FEED_CHANNEL,
        LISTENER_APPLICATION_NAME as POSTGRES_FEED_APPLICATION_NAME,
    };
    pub use keyroute_store::{
        Backend, BackendDb, BackendKind, DatabaseUrl, DbPool, PoolSettings, RecyclingCheck,
        SqlStore, UnknownScheme, keyroute_migration_versions,
    };
    #[cfg(feature = "mysql")]
    pub use keyroute_store::{Mysql, MysqlStore};
    #[cfg(feature = "postgres")]
    pub use keyroute_store::{Postgres, PostgresStore};
    #[cfg(feature = "sqlite")]
    pub use keyroute_store::{Sqlite, SqliteStore};
}

/// JWTs (`keyroute-jwt`): API keys exchanged for short-lived tokens, JWTs issued as
/// scoped keys, session tokens, and the verifier.
#[cfg(feature = "jwt")]
pub mod jwt {
    pub use keyroute_jwt::{
        IssuedJwtKey, IssuedToken, JwtAlgorithm, JwtConfig, JwtKeyRequest, JwtService,
        JwtServiceBuilder, JwtServiceError, RevocationListener, ScopeFormat, SessionRequest,
        SigningKey, TokenKind, VerificationKey, VerifiedToken,
    };
}

/// Helpers for tests: a clock that moves only when told, and a store that counts the
/// calls made through it.
#[cfg(feature = "test-util")]
pub mod test_util {
    pub use keyroute_core::ManualClock;
    pub use keyroute_store::CountingStore;
}
