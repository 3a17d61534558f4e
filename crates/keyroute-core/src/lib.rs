//! keyroute's core: the domain model and every piece of key logic that needs no I/O.
//!
//! This crate is the stable centre the others depend on, and depends on no other
//! keyroute crate; it knows nothing of databases, HTTP or runtimes. A request's path through it:
//!
//! ```text
//! header value ─ CredentialExtractor ─> Credential   (Bearer | Basic key: | X-Api-Key)
//!              ─ TokenFormat::parse  ─> PresentedKey (prefix, environment, checksum, SHA-256)
//!              ─ (a store lookup by hash, in keyroute-router)
//!              ─ Principal::from_api_key ─> Principal { key, user, environment, scopes }
//! ```
//!
//! | module | holds |
//! |---|---|
//! | `name` | open validated names: [`Environment`], [`KeyType`], [`Tenant`] |
//! | `ids` | [`UserId`], [`KeyId`] |
//! | `secret` | [`PlaintextKey`] (redacted, zeroed on drop), [`KeyHash`] |
//! | `token` | [`TokenFormat`]: generate and parse `sk_live_…` keys |
//! | `credentials` | [`CredentialExtractor`]: read keys from HTTP headers |
//! | `model` | the stored records [`User`] and [`ApiKey`] |
//! | `scope` | [`Scope`], [`Scopes`], wildcards and the admin scope |
//! | [`limits`] | rate limits and credits as data, and the algorithm every engine runs |
//! | `principal` | [`Principal`]: the resolved caller |
//! | `authority` | who may do what with keys: [`Actor`], [`Denied`] |
//! | `options` | [`KeyOptions`]: the `[apikey]` section |
//! | [`config`] | [`ConfigError`] and the one reader (serde) behind every option of every section |
//! | `store` | the traits backends implement: [`ApiKeyStore`], [`UserStore`] |
//! | `feed` | the change feed between instances: [`ChangeFeed`], [`FeedListener`], [`FeedGate`] |
//! | `service` | [`KeyService`]: register, issue, list, revoke, regenerate, backfill |
//! | `clock` | [`Clock`], [`SystemClock`], and `ManualClock` with the `test-util` feature |
//! | `verifier` | [`TokenVerifier`]: the seam where JWTs become principals |
//! | `error` | [`KeyServiceError`], [`AuthError`], [`JwtError`], [`StoreError`], and [`ErrorClass`]: what each means to a caller, no transport |

// docs.rs (nightly, `--cfg docsrs`) marks each item with the features it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]
// Every public item is documented: a published crate's docs are its manual.
#![deny(missing_docs)]

mod audit;
mod authority;
mod clock;
pub mod config;
mod credentials;
mod error;
mod feed;
mod ids;
pub mod limits;
mod model;
mod name;
mod options;
mod principal;
mod scope;
mod secret;
mod service;
mod store;
mod token;
mod verifier;

pub use audit::{AuditAction, AuditContext, AuditLog, AuditQuery, AuditRecord, MAX_AUDIT_PAGE};
pub use authority::{Actor, Denied, MAX_KEY_TEXT, Operator, TextError};
#[cfg(feature = "test-util")]
pub use clock::ManualClock;
pub use clock::{Clock, SystemClock};
pub use config::{ConfigError, ConfigErrorKind};
pub use credentials::{
    Credential, CredentialError, CredentialExtractor, CredentialSource, MAX_CREDENTIAL_LEN,
};
pub use error::{
    AuthError, BoxError, ErrorClass, ErrorKind, JwtError, KeyServiceError, SharedError, StoreError,
    StoreResult,
};
pub use feed::{
    ChangeEvent, ChangeFeed, ChangeKind, ChangeSubscription, FeedGate, FeedListener, FeedSettings,
    FeedSignal,
};
pub use ids::{KeyId, UserId};
pub use ipnet::IpNet;
pub use model::{ApiKey, KeyStatus, Meta, User};
pub use name::{Environment, KeyType, NameError, Tenant};
pub use options::{CreateKeyHook, KeyGenerator, KeyOptions};
pub use principal::{AuthMethod, Principal};
pub use scope::{ADMIN_SCOPE, Scope, Scopes};
pub use secret::{KeyHash, PlaintextKey};
pub use service::roll::Rolled;
pub use service::{
    Acting, BackfillReport, ImportOutcome, ImportedKey, ImportedSecret, IssuedKey, KeyListener,
    KeyMinter, KeyRequest, KeyService, KeyUpdate, KeyUpdated, LEGACY_FORMAT, LeakReport,
    LeakResponse, LeakVerdict, MAX_USERS_PAGE, META_FORMAT, Minted, NewUser, Regenerated,
    Registration,
};
pub use store::{
    ApiKeyStore, Denial, DenyList, KeyQuery, KeyStore, Regeneration, ResolvedKey, Store, UserStore,
};
pub use token::{
    GenerateError, MAX_KEY_BYTES, MAX_TOKEN_LEN, MIN_KEY_BYTES, PresentedKey, TokenError,
    TokenFormat,
};
pub use verifier::{TokenVerifier, looks_like_jwt};
