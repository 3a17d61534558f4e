//! [`BuildError`]: why a [`Keyroute`](crate::Keyroute) handle could not be built.

use keyroute_core::{ConfigError, StoreError};

/// Why [`KeyrouteBuilder::build`](crate::KeyrouteBuilder::build) failed. Misuse and
/// configuration ([`Config`](Self::Config), [`NoRuntime`](Self::NoRuntime)) are kept
/// apart from outages ([`Store`](Self::Store)), so only the latter is worth a retry.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The configuration is invalid or contradicts itself; names the section and
    /// option to change.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The key store could not be opened or migrated; carries the real cause.
    #[error("the key store could not be opened: {0}")]
    Store(#[from] StoreError),
    /// The JWT service could not be built from the configured keys.
    #[cfg(feature = "jwt")]
    #[error(transparent)]
    Jwt(#[from] keyroute_jwt::JwtServiceError),
    /// Called outside a Tokio runtime, which keyroute's pools and tasks need.
    #[error("no Tokio runtime is running; build and use keyroute inside one (e.g. #[tokio::main])")]
    NoRuntime,
}

impl From<keyroute_router::RouteError> for BuildError {
    fn from(error: keyroute_router::RouteError) -> Self {
        match error {
            keyroute_router::RouteError::Config(e) => BuildError::Config(e),
            other => BuildError::Config(ConfigError::invalid("connections", "", other)),
        }
    }
}
