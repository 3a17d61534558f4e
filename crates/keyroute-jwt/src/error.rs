//! [`JwtServiceError`]: why a key could not be loaded, a service built, or a token issued.
//!
//! Verification does not use this type: a rejected token is a core
//! [`AuthError::Jwt`](keyroute_core::AuthError::Jwt) naming the failed check, shared with
//! every other verifier so handlers match on one type.

use keyroute_core::{BoxError, StoreError};

/// Errors of loading keys, building a [`JwtService`](crate::JwtService) and issuing tokens.
///
/// No variant carries key material or a token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JwtServiceError {
    /// Key material was refused: bad PEM, a key of another family, an HMAC secret
    /// shorter than its hash, an RSA modulus under 2048 bits, a bad `kid`.
    #[error("key '{kid}' is invalid: {reason}")]
    InvalidKey {
        /// The `kid` of the refused key (not secret).
        kid: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two keys share one `kid`.
    #[error("two keys share the kid '{0}'")]
    DuplicateKeyId(String),
    /// The service has no key to sign with.
    #[error("no signing key is configured")]
    NoSigningKey,
    /// The configuration is unusable; the message says which option and why.
    #[error("invalid JWT configuration: {0}")]
    Config(String),
    /// The request cannot be issued as asked (a structured scope without a resource,
    /// an environment the verifier would refuse, a lifetime too long to represent).
    #[error("invalid token request: {0}")]
    InvalidRequest(String),
    /// The operating system's random source failed.
    #[error("the operating system's random source failed: {0}")]
    Entropy(String),
    /// Signing failed (a key the backend refused at signing time).
    #[error("signing the token failed: {0}")]
    Signing(#[source] BoxError),
    /// The key service refused (unknown user, environment or key type not enabled) or
    /// its store failed.
    #[error(transparent)]
    Service(#[from] keyroute_core::KeyServiceError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl JwtServiceError {
    pub(crate) fn invalid_key(kid: &str, reason: &'static str) -> Self {
        JwtServiceError::InvalidKey {
            kid: kid.chars().take(64).collect(),
            reason,
        }
    }
}
