//! [`BuildError`]: why a [`Keyroute`](crate::Keyroute) handle could not be built.

use keyroute_core::{ConfigError, KeyServiceError, StoreError};
use keyroute_router::RouteError;

/// Why [`KeyrouteBuilder::build`](crate::KeyrouteBuilder::build) failed. Misuse and
/// configuration ([`Config`](Self::Config), [`NoRuntime`](Self::NoRuntime)) are kept
/// apart from outages ([`Store`](Self::Store)), so only the latter is worth a retry.
/// Each part's own error keeps its own name: a router or key-service failure that is
/// not about the configuration is not reported as one.
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
    /// The connection router could not be built for a reason other than its
    /// configuration (which is [`Config`](Self::Config)); carries the router's error.
    #[error("the connection router could not be built: {0}")]
    Router(RouteError),
    /// The key service could not be built for a reason other than its options (which
    /// are [`Config`](Self::Config)); carries the key service's error.
    #[error("the key service could not be built: {0}")]
    KeyService(KeyServiceError),
    /// `[tenancy] mode = "row_security"`, and on some connection a request could
    /// escape the policies: the role bypasses them, or a table with the tenant column
    /// is not guarded. Each entry names the connection and says what to change.
    #[error("row-level security would not hold ([tenancy] mode = \"row_security\"): {}", list_findings(.0))]
    RowSecurity(Vec<(String, keyroute_pool::RowSecurityFinding)>),
    /// Called outside a Tokio runtime, which keyroute's pools and tasks need.
    #[error("no Tokio runtime is running; build and use keyroute inside one (e.g. #[tokio::main])")]
    NoRuntime,
}

/// `connection: finding; ...`, for [`BuildError::RowSecurity`].
fn list_findings(findings: &[(String, keyroute_pool::RowSecurityFinding)]) -> String {
    findings
        .iter()
        .map(|(connection, finding)| format!("connection '{connection}': {finding}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A router error in the configuration is a configuration error, named by its
/// section and option; any other stays the router's own.
impl From<RouteError> for BuildError {
    fn from(error: RouteError) -> Self {
        match error {
            RouteError::Config(e) => BuildError::Config(e),
            other => BuildError::Router(other),
        }
    }
}

/// Invalid key options are a configuration error; any other failure stays the key
/// service's own.
impl From<KeyServiceError> for BuildError {
    fn from(error: KeyServiceError) -> Self {
        match error {
            KeyServiceError::Config(e) => BuildError::Config(e),
            other => BuildError::KeyService(other),
        }
    }
}
