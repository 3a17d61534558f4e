//! [`RouteError`]: every way a request can fail to get a connection.

use keyroute_core::{
    AuthError, ConfigError, Environment, ErrorClass, Principal, StoreError, Tenant,
};

/// Why a request got no connection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// The credentials were rejected.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The caller is authenticated, but no configured connection is theirs. Never
    /// answered with a fallback connection.
    #[error("no connection for environment '{environment}'{}: {reason}", tenant.as_ref().map(|t| format!(" and tenant '{t}'")).unwrap_or_default())]
    NoRoute {
        /// The caller's environment.
        environment: Environment,
        /// The caller's tenant.
        tenant: Option<Tenant>,
        /// Why there is no route.
        reason: String,
    },
    /// An unauthenticated request, and no anonymous route is configured.
    #[error(
        "unauthenticated requests get no connection; configure an anonymous route to allow them"
    )]
    Anonymous,
    /// The connection's pool could not give a connection; carries the real cause.
    #[error("connection '{connection}' is unavailable: {source}")]
    Unavailable {
        /// The connection's name.
        connection: String,
        /// The cause.
        source: StoreError,
    },
    /// keyroute was used in a way it cannot work (a pool opened outside a Tokio
    /// runtime): a bug to fix, never "try again later".
    #[error("keyroute was used wrongly: {0}")]
    Misuse(String),
    /// The router's configuration is invalid; names the section and option to change.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl RouteError {
    pub(crate) fn no_route(principal: &Principal, reason: impl Into<String>) -> Self {
        Self::NoRoute {
            environment: principal.environment().clone(),
            tenant: principal.tenant().cloned(),
            reason: reason.into(),
        }
    }

    /// The stable, machine-readable code of this error: the credential's own
    /// ([`AuthError::code`]) for a rejection, `no_route` for a caller with no route,
    /// `no_credentials` for an anonymous request, `unavailable` when the database is,
    /// `internal` for a configuration error or misuse.
    pub fn code(&self) -> &'static str {
        match self {
            RouteError::Auth(e) => e.code(),
            RouteError::NoRoute { .. } => "no_route",
            RouteError::Anonymous => "no_credentials",
            RouteError::Unavailable { source, .. } => AuthError::Store(source.clone()).code(),
            RouteError::Config(_) | RouteError::Misuse(_) => "internal",
        }
    }

    /// What this failure means to the caller, whatever the transport: the
    /// credential's own class for a rejection, [`ErrorClass::Forbidden`] for a caller
    /// with no route (never a fallback), [`ErrorClass::Unauthenticated`] for an
    /// anonymous request with no anonymous route, the store's class when a pool gives
    /// no connection, [`ErrorClass::Internal`] for a configuration error or misuse.
    pub fn class(&self) -> ErrorClass {
        match self {
            RouteError::Auth(e) => e.class(),
            RouteError::NoRoute { .. } => ErrorClass::Forbidden,
            RouteError::Anonymous => ErrorClass::Unauthenticated,
            RouteError::Unavailable { source, .. } => source.class(),
            RouteError::Config(_) | RouteError::Misuse(_) => ErrorClass::Internal,
        }
    }
}
