//! keyroute's core: the domain model and every piece of key logic that needs no I/O.
//!
//! This crate is the stable centre the others depend on; it knows nothing of databases
//! or runtimes. A request's path through it:
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
//! | [`name`] | open validated names: [`Environment`], [`KeyType`], [`Tenant`] |
//! | [`ids`] | [`UserId`], [`KeyId`] |
//! | [`secret`] | [`PlaintextKey`] (redacted, zeroed on drop), [`KeyHash`] |
//! | [`token`] | [`TokenFormat`]: generate and parse `sk_live_…` keys |
//! | [`credentials`] | [`CredentialExtractor`]: read keys from HTTP headers |
//! | [`model`] | the stored records [`User`] and [`ApiKey`] |
//! | [`scope`] | [`Scope`], [`Scopes`], wildcards and the admin scope |
//! | [`principal`] | [`Principal`]: the resolved caller |
//! | [`options`] | [`KeyOptions`] from code, TOML or `KEYROUTE_APIKEY_*` |
//! | [`store`] | the traits backends implement: [`ApiKeyStore`], [`UserStore`] |
//! | [`service`] | [`KeyService`]: register, issue, list, revoke, regenerate, backfill |
//! | [`clock`] | [`Clock`], [`SystemClock`], [`ManualClock`] |
//! | [`verifier`] | [`TokenVerifier`]: the seam where JWTs become principals |
//! | [`error`] | [`Error`], [`AuthError`], [`JwtError`], [`StoreError`] |

pub mod clock;
pub mod credentials;
pub mod error;
pub mod ids;
pub mod model;
pub mod name;
pub mod options;
pub mod principal;
pub mod scope;
pub mod secret;
pub mod service;
pub mod store;
pub mod token;
pub mod verifier;

pub use clock::{Clock, ManualClock, SystemClock};
pub use credentials::{Credential, CredentialError, CredentialExtractor, CredentialSource};
pub use error::{AuthError, BoxError, Error, ErrorKind, JwtError, StoreError, StoreResult};
pub use ids::{KeyId, UserId};
pub use model::{ApiKey, KeyStatus, Meta, User};
pub use name::{Environment, KeyType, NameError, Tenant};
pub use options::{ConfigError, CreateKeyHook, KeyGenerator, KeyOptions, check_duration};
pub use principal::{AuthMethod, Principal};
pub use scope::{ADMIN_SCOPE, Scope, Scopes};
pub use secret::{KeyHash, PlaintextKey};
pub use service::{
    BackfillReport, IssuedKey, KeyListener, KeyRequest, KeyService, NewUser, Regenerated,
    Registration,
};
pub use store::{ApiKeyStore, DenyList, KeyQuery, Regeneration, ResolvedKey, Store, UserStore};
pub use token::{GenerateError, PresentedKey, TokenError, TokenFormat};
pub use verifier::{TokenVerifier, looks_like_jwt};
