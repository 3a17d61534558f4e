//! Errors: one enum per concern ([`AuthError`], [`JwtError`], [`StoreError`]), and
//! [`KeyServiceError`] for the key service, which can meet all of them.
//!
//! Store backends map their database errors into [`StoreError`] so callers can act on
//! its [`ErrorKind`] (a unique violation is a [`ErrorKind::Conflict`] on every backend)
//! without knowing which database is behind it.
//!
//! Every error a request can meet also says, with no transport in mind, what went
//! wrong for the caller: its [`ErrorClass`] (`class()`) and a stable `code()`. Core
//! knows no HTTP: the one map from classes to HTTP statuses is keyroute-axum's, and
//! the `keyroute` command reads the same classes and codes.

use crate::authority::{Denied, TextError};
use crate::config::ConfigError;
use crate::credentials::CredentialError;
use crate::name::{Environment, KeyType, NameError};
use crate::token::{GenerateError, TokenError};

/// A boxed error from a backend.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A backend's error shared between the clones of a [`StoreError`] (a lookup several
/// requests waited on fails for all of them with the same cause).
pub type SharedError = std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>;

/// What a failed request means to its caller, whatever the transport: the class
/// every error a request can meet falls into. Transports map it to their own answer
/// (keyroute-axum to an HTTP status, in one table); core carries no status.
///
/// Classes are coarse on purpose: the error's stable `code()` says exactly what went
/// wrong, the class says what kind of answer it calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorClass {
    /// No credential was presented: the caller must authenticate.
    Unauthenticated,
    /// A credential was presented and is not accepted: unknown, revoked, expired,
    /// forged, a JWT that fails verification, a scheme that carries no key.
    InvalidCredential,
    /// The request cannot be read as sent: two credentials, a credential header that
    /// is not text, too long, or broken Basic encoding.
    Malformed,
    /// The caller is known and may not do this: a missing scope, an environment or key
    /// type not accepted here, plain HTTP where TLS is required, an authority rule.
    Forbidden,
    /// What the request names does not exist (an unknown user).
    NotFound,
    /// The request conflicts with the current state (a duplicate, a key that can no
    /// longer be rolled); trying again after a change may succeed.
    Conflict,
    /// The request was read but its content is refused (an environment keys are not
    /// issued for, a name that is not one); the message says what to change.
    InvalidInput,
    /// A usage limit or the credits are used up: try again after the time given.
    LimitReached,
    /// A database could not be reached: try again later.
    Unavailable,
    /// The service failed (its configuration, a bug, stored data it cannot read): not
    /// the caller's doing, and not worth a retry.
    Internal,
}

/// The coarse class of a [`StoreError`], the same on every backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A uniqueness rule was broken (duplicate user name, key hash or id).
    Conflict,
    /// The database could not be reached or gave no connection in time.
    Unavailable,
    /// Stored data that keyroute cannot read back (hand-edited rows).
    InvalidData,
    /// Anything else the database refused.
    Other,
    /// keyroute was used in a way it cannot work (outside a Tokio runtime): a bug to
    /// fix, not an outage to retry.
    Misuse,
}

/// A store operation failed. "Not found" is never an error: lookups return `None`.
/// Cheap to clone: causes are shared.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A uniqueness rule was broken; the message says which.
    #[error("conflict: {0}")]
    Conflict(String),
    /// No connection could be had; carries the real cause (refused, auth failed, timed out).
    #[error("the database is unavailable: {0}")]
    Unavailable(#[source] SharedError),
    /// The database refused the operation.
    #[error("database error: {0}")]
    Database(#[source] SharedError),
    /// A stored row cannot be read back as a keyroute record.
    #[error("stored data is invalid: {0}")]
    InvalidData(String),
    /// Migrations failed to apply.
    #[error("migrations failed: {0}")]
    Migration(#[source] SharedError),
    /// keyroute was used in a way it cannot work; the message says what to change.
    #[error("keyroute was used wrongly: {0}")]
    Misuse(String),
}

impl StoreError {
    /// What this failure means to a caller: an outage is [`ErrorClass::Unavailable`],
    /// a broken uniqueness rule [`ErrorClass::Conflict`], anything else
    /// [`ErrorClass::Internal`].
    pub fn class(&self) -> ErrorClass {
        match self.kind() {
            ErrorKind::Unavailable => ErrorClass::Unavailable,
            ErrorKind::Conflict => ErrorClass::Conflict,
            _ => ErrorClass::Internal,
        }
    }

    /// The coarse class of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Conflict(_) => ErrorKind::Conflict,
            StoreError::Unavailable(_) => ErrorKind::Unavailable,
            StoreError::InvalidData(_) => ErrorKind::InvalidData,
            StoreError::Database(_) | StoreError::Migration(_) => ErrorKind::Other,
            StoreError::Misuse(_) => ErrorKind::Misuse,
        }
    }

    /// An unavailable database, with its cause.
    pub fn unavailable(cause: impl Into<BoxError>) -> Self {
        StoreError::Unavailable(SharedError::from(cause.into()))
    }

    /// A refused operation, with its cause.
    pub fn database(cause: impl Into<BoxError>) -> Self {
        StoreError::Database(SharedError::from(cause.into()))
    }

    /// Failed migrations, with their cause.
    pub fn migration(cause: impl Into<BoxError>) -> Self {
        StoreError::Migration(SharedError::from(cause.into()))
    }
}

/// The result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// Why a request was not authenticated or not authorised.
///
/// [`class`](Self::class) says what kind of answer it calls for and
/// [`code`](Self::code) exactly what went wrong; a transport maps them to its own
/// answer. No variant carries the presented secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No usable credential in the request.
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// The key failed an offline check (format, prefix, checksum).
    #[error(transparent)]
    Token(#[from] TokenError),
    /// A well-formed key that no store knows.
    #[error("the API key is not recognised")]
    UnknownKey,
    /// The key was revoked.
    #[error("the API key was revoked")]
    Revoked,
    /// The key's expiry has passed.
    #[error("the API key has expired")]
    Expired,
    /// The key is disabled; its owner (or an admin) can enable it again.
    #[error("the API key is disabled; enable it to use it again")]
    Disabled,
    /// The key may be used only from its allowed networks, and this request came
    /// from elsewhere (or from an address that could not be told).
    #[error(
        "the API key may not be used from this address; send it from one of its allowed networks (behind a proxy, list it in `[resolver] trusted_proxies`)"
    )]
    NetworkNotAllowed,
    /// The key's environment is not accepted here.
    #[error("keys of environment '{0}' are not accepted here")]
    EnvironmentNotAllowed(Environment),
    /// The key's type is not accepted here.
    #[error("keys of type '{0}' are not accepted here")]
    KeyTypeNotAllowed(KeyType),
    /// The key arrived over plain HTTP while secure connections are required.
    #[error(
        "API keys are only accepted over HTTPS; behind a TLS-terminating proxy, list it in `[resolver] trusted_proxies` (plain HTTP on localhost: `[apikey] dangerous_accept_plain_http = true`)"
    )]
    InsecureConnection,
    /// The key lacks the scope the operation requires.
    #[error("the API key lacks the scope '{required}'")]
    InsufficientScope {
        /// The scope that was required.
        required: String,
    },
    /// The operation needs a user, and the key belongs to none.
    #[error("the API key must be associated with a user")]
    NotAssociatedWithUser,
    /// A JWT failed verification.
    #[error(transparent)]
    Jwt(#[from] JwtError),
    /// The credential looks like a JWT, and this service accepts none.
    #[error("JWTs are not accepted here; send an API key")]
    JwtNotAccepted,
    /// One of the rate limits that apply to the key is used up for now.
    #[error("the rate limit '{}' is used up; retry in {} s", .0.name, .0.retry_after_secs())]
    RateLimited(Box<crate::limits::LimitRefusal>),
    /// The key has fewer credits left than the request costs.
    #[error(
        "the API key has no credits left for this request; wait for the refill or set new credits on the key"
    )]
    CreditsExhausted {
        /// When the balance is refilled next, if it will be.
        next_refill_at: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// The shared limiter (Valkey/Redis) cannot be reached and the limit is set to
    /// refuse then (`on_unavailable = "refuse"`).
    #[error(
        "usage limits cannot be checked right now; retry shortly (the limiter is unreachable and `[limits] on_unavailable` is \"refuse\")"
    )]
    LimitsUnavailable,
    /// The store could not be asked; not the caller's fault.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a JWT was rejected. Shared by every verifier so handlers can match on it
/// without depending on one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// Not a well-formed JWT: wrong number of parts, bad base64 or JSON, cut short.
    #[error("the token is not a well-formed JWT")]
    Malformed,
    /// Longer than any token this service issues.
    #[error("the token is {len} bytes long; at most {max} are accepted")]
    TooLong {
        /// The presented length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// `alg: none`, or an algorithm this service does not use.
    #[error("the token's algorithm is not accepted")]
    UnsupportedAlgorithm,
    /// The header's algorithm differs from the one pinned to its key (an
    /// algorithm-switch attempt, such as RS256 to HS256).
    #[error("the token's algorithm does not match its key")]
    AlgorithmMismatch,
    /// No key with the header's `kid` (or a `kid` that is not a string).
    #[error("the token names a signing key this service does not have")]
    UnknownKeyId,
    /// The header has no `kid`, and no single key could be chosen for it: a token
    /// without `kid` is accepted only when exactly one key of its algorithm is
    /// configured. Add a `kid` to the token, or keep one key per algorithm.
    #[error(
        "the token names no signing key (no `kid`), and this service has no single key of its algorithm to check it with"
    )]
    MissingKeyId,
    /// The signature does not verify: the token was altered or forged.
    #[error("the token's signature is invalid")]
    BadSignature,
    /// `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// `nbf` has not been reached.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `iss` is not the expected issuer.
    #[error("the token was issued by someone else")]
    WrongIssuer,
    /// `aud` does not name this service.
    #[error("the token is meant for another audience")]
    WrongAudience,
    /// A required claim is absent.
    #[error("the token lacks the `{0}` claim")]
    MissingClaim(&'static str),
    /// A claim has a value that cannot be used (an unknown environment, a bad scope).
    #[error("the token's `{0}` claim is invalid")]
    InvalidClaim(&'static str),
    /// The token, or the key it came from, was revoked.
    #[error("the token was revoked")]
    Revoked,
}

impl AuthError {
    /// The stable, machine-readable code of this error (`unknown_key`,
    /// `revoked_key`, `expired_token`, ...): the same in HTTP problem responses and
    /// the `keyroute` command's JSON, and never changed once published. A store
    /// failure is `unavailable`, `conflict` or `internal` by its [`ErrorKind`].
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Credentials(CredentialError::Missing) => "no_credentials",
            AuthError::Credentials(CredentialError::Ambiguous) => "ambiguous_credentials",
            AuthError::Credentials(CredentialError::UnsupportedScheme) => "unsupported_scheme",
            AuthError::Credentials(CredentialError::EmptyToken) => "invalid_token",
            AuthError::Credentials(_) => "malformed_credentials",
            AuthError::Token(_) => "invalid_key",
            AuthError::UnknownKey => "unknown_key",
            AuthError::Revoked => "revoked_key",
            AuthError::Expired => "expired_key",
            AuthError::Disabled => "disabled_key",
            AuthError::NetworkNotAllowed => "network_not_allowed",
            AuthError::EnvironmentNotAllowed(_) => "environment_not_allowed",
            AuthError::KeyTypeNotAllowed(_) => "key_type_not_allowed",
            AuthError::InsecureConnection => "insecure_connection",
            AuthError::InsufficientScope { .. } => "insufficient_scope",
            AuthError::NotAssociatedWithUser => "no_user",
            AuthError::Jwt(JwtError::Expired) => "expired_token",
            AuthError::Jwt(JwtError::Revoked) => "revoked_token",
            AuthError::Jwt(_) => "invalid_token",
            AuthError::JwtNotAccepted => "jwt_not_accepted",
            AuthError::RateLimited(_) => "rate_limited",
            AuthError::CreditsExhausted { .. } => "credits_exhausted",
            AuthError::LimitsUnavailable => "unavailable",
            AuthError::Store(e) => match e.kind() {
                ErrorKind::Unavailable => "unavailable",
                ErrorKind::Conflict => "conflict",
                _ => "internal",
            },
        }
    }

    /// What this rejection means to the caller: no credential
    /// ([`Unauthenticated`](ErrorClass::Unauthenticated)), a credential that cannot even
    /// be read ([`Malformed`](ErrorClass::Malformed)), a credential not accepted
    /// ([`InvalidCredential`](ErrorClass::InvalidCredential)), a caller without the
    /// right ([`Forbidden`](ErrorClass::Forbidden)), or the store's own class.
    pub fn class(&self) -> ErrorClass {
        use CredentialError as C;
        match self {
            AuthError::Credentials(C::Missing) => ErrorClass::Unauthenticated,
            // A scheme that carries no key, or no token after it: a credential, not
            // accepted; anything else about the header is unreadable as sent.
            AuthError::Credentials(C::UnsupportedScheme | C::EmptyToken) => {
                ErrorClass::InvalidCredential
            }
            AuthError::Credentials(_) => ErrorClass::Malformed,
            AuthError::Token(_)
            | AuthError::UnknownKey
            | AuthError::Revoked
            | AuthError::Expired
            | AuthError::Disabled
            | AuthError::Jwt(_)
            | AuthError::JwtNotAccepted => ErrorClass::InvalidCredential,
            AuthError::EnvironmentNotAllowed(_)
            | AuthError::KeyTypeNotAllowed(_)
            | AuthError::NetworkNotAllowed
            | AuthError::InsecureConnection
            | AuthError::InsufficientScope { .. }
            | AuthError::NotAssociatedWithUser => ErrorClass::Forbidden,
            AuthError::RateLimited(_) | AuthError::CreditsExhausted { .. } => {
                ErrorClass::LimitReached
            }
            AuthError::LimitsUnavailable => ErrorClass::Unavailable,
            AuthError::Store(e) => e.class(),
        }
    }
}

/// Why a [`KeyService`](crate::KeyService) operation failed (registering, issuing,
/// listing, revoking, rolling, regenerating keys).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyServiceError {
    /// The options are invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A key could not be generated.
    #[error(transparent)]
    Generate(#[from] GenerateError),
    /// A value (name, id, scope) is invalid.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The custom generator made a key that does not parse.
    #[error("the custom key generator made a key that does not parse: {0}")]
    GeneratedKeyInvalid(TokenError),
    /// The creation hook changed a field it may not change.
    #[error(
        "the on_create_key hook changed the key's {0}; it may only change name, scopes, notes, ref id, expiry, tenant and meta"
    )]
    HookChangedIdentity(&'static str),
    /// The user does not exist.
    #[error("no user with id '{0}'")]
    UnknownUser(crate::ids::UserId),
    /// The environment is not one keys are issued for.
    #[error("keys are not issued for environment '{0}'; add it to `environments`")]
    EnvironmentNotEnabled(Environment),
    /// The key type is not one keys are issued for.
    #[error("keys of type '{0}' are not issued; add it to `key_types`")]
    KeyTypeNotEnabled(KeyType),
    /// The request cannot be served as made (a lifetime too long to represent, a
    /// request a minter refuses); the message says what to change.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A [`KeyMinter`](crate::KeyMinter) could not make the key's secret.
    #[error("the key's secret could not be made: {0}")]
    Mint(#[source] BoxError),
    /// The authority rules refused the caller; [`Denied::code`] says which rule.
    #[error(transparent)]
    Denied(#[from] Denied),
    /// A name, note or reference that cannot be stored.
    #[error(transparent)]
    Text(#[from] TextError),
    /// An admin key of no user must say whose keys it acts on.
    #[error("this admin key belongs to no user: name the user whose keys to manage")]
    UserRequired,
    /// The key cannot be rolled: it is revoked, expired or already being rolled.
    #[error("the key is revoked, expired or already being rolled; issue a new key instead")]
    NotRollable,
    /// The key is of a format (`meta.format`) whose minter this service does not have,
    /// so no replacement can be made for it.
    #[error(
        "keys of format '{0}' are made by a minter this key service does not have; build the service with that format's minter (the front door registers the JWT one when [jwt] is enabled)"
    )]
    NoMinter(String),
    /// The key cannot be updated: it is revoked (or rolled), or the change asked for
    /// is one its format cannot take (the scopes, expiry, networks or state of a JWT
    /// issued as a key are in its signed claims).
    #[error("{0}")]
    NotUpdatable(&'static str),
}

impl KeyServiceError {
    /// What this failure means to the caller: a refusal of the authority rules is
    /// [`Forbidden`](ErrorClass::Forbidden), an unknown user
    /// [`NotFound`](ErrorClass::NotFound), a key that cannot be rolled
    /// [`Conflict`](ErrorClass::Conflict), a request whose content is refused
    /// [`InvalidInput`](ErrorClass::InvalidInput), a store failure the store's class,
    /// and the service's own faults (its options, a generator, a hook, a minter)
    /// [`Internal`](ErrorClass::Internal).
    pub fn class(&self) -> ErrorClass {
        use KeyServiceError as E;
        match self {
            E::Store(e) => e.class(),
            E::Denied(_) => ErrorClass::Forbidden,
            E::UnknownUser(_) => ErrorClass::NotFound,
            E::NotRollable | E::NotUpdatable(_) => ErrorClass::Conflict,
            E::EnvironmentNotEnabled(_)
            | E::KeyTypeNotEnabled(_)
            | E::Name(_)
            | E::Text(_)
            | E::InvalidRequest(_)
            | E::UserRequired => ErrorClass::InvalidInput,
            E::Config(_)
            | E::Generate(_)
            | E::GeneratedKeyInvalid(_)
            | E::HookChangedIdentity(_)
            | E::Mint(_)
            | E::NoMinter(_) => ErrorClass::Internal,
        }
    }

    /// A stable code for this error, the same on every transport (HTTP problem
    /// documents, the CLI's JSON): what went wrong, not how to answer it.
    pub fn code(&self) -> &'static str {
        use KeyServiceError as E;
        match self {
            E::Config(_) => "invalid_configuration",
            E::Store(e) if e.kind() == ErrorKind::Unavailable => "unavailable",
            E::Store(e) if e.kind() == ErrorKind::Conflict => "conflict",
            E::Store(_) => "store_error",
            E::Generate(_) | E::GeneratedKeyInvalid(_) | E::Mint(_) => "key_not_made",
            E::HookChangedIdentity(_) => "hook_changed_identity",
            E::Name(_) | E::Text(_) | E::InvalidRequest(_) => "invalid_request",
            E::UnknownUser(_) => "unknown_user",
            E::EnvironmentNotEnabled(_) => "unknown_environment",
            E::KeyTypeNotEnabled(_) => "unknown_key_type",
            E::Denied(denied) => denied.code(),
            E::UserRequired => "user_id_required",
            E::NotRollable => "not_rollable",
            E::NoMinter(_) => "no_minter",
            E::NotUpdatable(_) => "not_updatable",
        }
    }
}

#[cfg(test)]
#[path = "error_tests.rs"]
mod tests;
