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
//! Each name has one path. The root holds the front door and what a handler or a
//! sign-up flow touches; everything else is in a topic module:
//!
//! | where | what | feature |
//! |---|---|---|
//! | the crate root | [`Keyroute`] and its builder, [`Config`], the caller ([`Principal`]), keys and users, the errors | always |
//! | [`keys`] | the key service and who may do what with it ([`keys::KeyService`], [`keys::Actor`]), key options, the token format, scopes | always |
//! | [`auth`] | credentials, the resolver, verifiers of self-contained tokens | always |
//! | [`routing`] | the connection router, routing policies, the gateway, schema reports | always |
//! | [`store`] | the store traits, the store backends and the connection pools | `memory`, `sqlite` (default), `postgres`, `mysql` |
//! | [`feed`] | the change feed between instances | always |
//! | [`clock`] | the clock keyroute reads time from | always |
//! | [`sections`] | the configuration's sections, one type each | always |
//! | [`limits`] | rate limits and credits, the limiter and its engines | always (`valkey` for the shared engine) |
//! | [`jwt`] | exchanged JWTs, JWTs as keys, sessions, the verifier | `jwt` (default) |
//! | [`axum`] | extractors, a tower layer, problem responses, key routes | `axum` |
//! | [`test_util`] | a clock tests move, a store that counts its calls | `test-util` |
//! | [`guide`] | the guide: every part of keyroute explained, with examples that run | always |
//!
//! This crate owns the front door and the curated names above; the work is done by
//! the crates it depends on: `keyroute-core`, `keyroute-pool` (connections),
//! `keyroute-store` (key stores), `keyroute-router`, and `keyroute-jwt` and
//! `keyroute-axum` behind their features.
//!
//! The component builders ([`keys::KeyService`], [`auth::KeyResolver::builder`],
//! [`routing::ConnectionRouter::builder`], [`jwt::JwtService::builder`]) remain the
//! advanced API, for wiring of your own.

// docs.rs (nightly, `--cfg docsrs`) marks each item with the features it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]
// Every public item is documented: a published crate's docs are its manual.
#![deny(missing_docs)]

#[cfg(feature = "axum")]
mod axum_state;
mod builder;
mod config;
mod error;
mod handle;

pub mod guide;
pub mod hooks;

// The README's Rust blocks are compiled (and run, unless marked no_run) as doctests.
#[cfg(all(doctest, feature = "postgres", feature = "axum"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use builder::KeyrouteBuilder;
pub use config::Config;
pub use error::BuildError;
pub use handle::Keyroute;
pub use keyroute_core::{
    ApiKey, AuthError, ConfigError, Environment, ErrorClass, IssuedKey, KeyId, KeyRequest,
    KeyServiceError, KeyType, NewUser, PlaintextKey, Principal, Scopes, User, UserId,
};
pub use keyroute_router::{IncomingRequest, RouteError};

/// The key service and the rules of who may do what with keys; how keys are made,
/// formatted, scoped and named.
pub mod keys {
    pub use keyroute_core::{
        ADMIN_SCOPE, Acting, Actor, AuditAction, AuditContext, AuditQuery, AuditRecord,
        BackfillReport, CreateKeyHook, Denied, GenerateError, ImportOutcome, ImportedKey,
        ImportedSecret, IpNet, KeyGenerator, KeyHash, KeyListener, KeyMinter, KeyOptions, KeyQuery,
        KeyService, KeyStatus, KeyUpdate, KeyUpdated, LEGACY_FORMAT, LeakReport, LeakResponse,
        LeakVerdict, MAX_AUDIT_PAGE, MAX_KEY_TEXT, MAX_USERS_PAGE, META_FORMAT, Meta, Minted,
        NameError, Operator, PresentedKey, Regenerated, Registration, Rolled, Scope, Tenant,
        TextError, TokenError, TokenFormat,
    };
}

/// Credentials, the resolver that turns them into a [`Principal`],
/// and the seam for verifiers of self-contained tokens (JWTs).
pub mod auth {
    pub use keyroute_core::{
        AuthMethod, Credential, CredentialError, CredentialExtractor, CredentialSource, JwtError,
        TokenVerifier, looks_like_jwt,
    };
    pub use keyroute_router::{KeyResolver, ResolverBuilder};
}

/// The connection router: named pools, routing policies, the gateway (resolver and
/// router together), schema reports across connections, and tenancy in the database
/// (the request's tenant bound on its connection; see the guide's tenancy chapter).
pub mod routing {
    pub use keyroute_pool::{
        Binding, BindingError, RowSecurityFinding, TENANT_SETTING, row_security_sql,
    };
    pub use keyroute_router::{
        ByEnvironment, ConnectionRouter, ConnectionSchema, Gateway, RouteTable, RoutedConnection,
        RouterBuilder, RoutingPolicy, SchemaDrift, SchemaReport, Template, Tenancy,
    };
}

/// The store traits a backend implements, the store backends, and the pooled
/// connections the router uses.
pub mod store {
    pub use keyroute_core::{
        ApiKeyStore, AuditLog, Denial, DenyList, ErrorKind, KeyStore, Regeneration, ResolvedKey,
        Store, StoreError, StoreResult, UserStore,
    };
    #[cfg(feature = "mysql")]
    pub use keyroute_pool::Mysql;
    #[cfg(feature = "postgres")]
    pub use keyroute_pool::Postgres;
    #[cfg(feature = "sqlite")]
    pub use keyroute_pool::Sqlite;
    pub use keyroute_pool::{
        Backend, BackendDb, BackendKind, Checkout, DatabaseUrl, DbPool, PoolSettings, Pooler,
        RecyclingCheck, UnknownScheme,
    };
    #[cfg(feature = "memory")]
    pub use keyroute_store::MemoryStore;
    #[cfg(feature = "mysql")]
    pub use keyroute_store::MysqlStore;
    #[cfg(feature = "postgres")]
    pub use keyroute_store::PostgresStore;
    #[cfg(feature = "sqlite")]
    pub use keyroute_store::SqliteStore;
    #[cfg(feature = "postgres")]
    pub use keyroute_store::{POSTGRES_FEED_APPLICATION_NAME, POSTGRES_FEED_CHANNEL};
    pub use keyroute_store::{SqlStore, StoreBackend, keyroute_migration_versions};
}

/// The change feed that tells every instance of a service about revocations: what a
/// store publishes and what the caches listen to. The front door runs it
/// (`Keyroute::background`); these are for stores and listeners of your own.
pub mod feed {
    pub use keyroute_core::{
        ChangeEvent, ChangeFeed, ChangeKind, ChangeSubscription, FeedGate, FeedListener,
        FeedSettings, FeedSignal,
    };
    pub use keyroute_router::follow_feed;
}

/// The clock keyroute reads time from (one for the key service, the resolver and
/// JWTs; `test_util::ManualClock` in tests).
pub mod clock {
    pub use keyroute_core::{Clock, SystemClock};
}

/// The sections of the configuration, one type each; [`Config`] holds
/// them all.
pub mod sections {
    pub use crate::config::StoreConfig;
    pub use keyroute_core::ConfigErrorKind;
    #[cfg(feature = "jwt")]
    pub use keyroute_jwt::JwtSection;
    pub use keyroute_router::limits::LimitsConfig;
    pub use keyroute_router::{
        PoolsConfig, ResolverConfig, RouterConfig, RoutingConfig, TenancyConfig, TenancyMode,
    };
}

/// Usage limits and credits: rate limits per key, user or tenant
/// ([`RateLimit`](limits::RateLimit)), credits with refills
/// ([`Credits`](limits::Credits)), the [`Limiter`](limits::Limiter) step of the request
/// pipeline and its engines (in process; Valkey/Redis with the `valkey` feature). See
/// the guide's limits chapter.
pub mod limits {
    pub use keyroute_core::limits::{
        CreditSpend, Credits, Gcra, GcraDecision, LimitError, LimitRefusal, LimitScope, LimitUsage,
        MAX_LIMIT, MAX_WINDOW, RateLimit, Refill, RefillPeriod, check_limits,
    };
    #[cfg(feature = "valkey")]
    pub use keyroute_router::limits::ValkeyLimiter;
    pub use keyroute_router::limits::{
        Check, DefaultLimit, EngineError, EngineKind, FailMode, LimitStatus, Limiter, LimitsConfig,
        LocalLimiter, SharedEngine, ValkeyUrl, Verdict,
    };
}

/// axum and tower (`keyroute-axum`): extractors, an authenticating layer, RFC 9457
/// rejections and the key-management routes. `Keyroute<B>` is the state they need.
#[cfg(feature = "axum")]
pub use keyroute_axum as axum;

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
