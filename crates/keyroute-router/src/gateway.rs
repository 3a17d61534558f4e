//! [`Gateway`]: credentials in, the caller and their database connection out.

use std::fmt;

use keyroute_core::{ApiKeyStore, AuthError, CredentialError, Principal};
use keyroute_pool::Backend;

use crate::error::RouteError;
use crate::resolver::{IncomingRequest, KeyResolver};
use crate::router::{ConnectionRouter, RoutedConnection};

/// A resolver and a router together: what a request handler calls.
pub struct Gateway<S, B: Backend> {
    resolver: KeyResolver<S>,
    router: ConnectionRouter<B>,
}

impl<S, B: Backend> Clone for Gateway<S, B> {
    fn clone(&self) -> Self {
        Self {
            resolver: self.resolver.clone(),
            router: self.router.clone(),
        }
    }
}

impl<S, B: Backend> fmt::Debug for Gateway<S, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gateway")
            .field("resolver", &self.resolver)
            .field("router", &self.router)
            .finish()
    }
}

impl<S: ApiKeyStore + 'static, B: Backend> Gateway<S, B> {
    /// Joins a resolver and a router.
    pub fn new(resolver: KeyResolver<S>, router: ConnectionRouter<B>) -> Self {
        Self { resolver, router }
    }

    /// The resolver.
    pub fn resolver(&self) -> &KeyResolver<S> {
        &self.resolver
    }

    /// The router.
    pub fn router(&self) -> &ConnectionRouter<B> {
        &self.router
    }

    /// Authenticates the request and returns the caller with a connection to the
    /// database their environment selects.
    ///
    /// # Errors
    /// [`RouteError::Auth`] for a rejected credential, [`RouteError::NoRoute`] for a
    /// caller without a configured connection, [`RouteError::Unavailable`] when its
    /// pool gives none.
    pub async fn connect(
        &self,
        request: &IncomingRequest<'_>,
    ) -> Result<(Principal, RoutedConnection<B>), RouteError> {
        let principal = self.resolver.authenticate(request).await?;
        let connection = self.router.connection(&principal).await?;
        Ok((principal, connection))
    }

    /// As [`connect`](Self::connect), and the caller must be allowed `scope`: a key
    /// must hold it, a person's session passes. One guard for endpoints that serve both.
    ///
    /// # Errors
    /// As [`connect`](Self::connect), and [`AuthError::InsufficientScope`] for a key
    /// without the scope.
    pub async fn connect_with_scope(
        &self,
        request: &IncomingRequest<'_>,
        scope: &str,
    ) -> Result<(Principal, RoutedConnection<B>), RouteError> {
        let principal = self.resolver.authenticate(request).await?;
        principal.require_scope(scope)?;
        let connection = self.router.connection(&principal).await?;
        Ok((principal, connection))
    }

    /// As [`connect`](Self::connect), but a request with no credential at all gets the
    /// anonymous route's connection, if one is configured. A bad credential is still
    /// rejected: it never falls back to anonymous.
    ///
    /// # Errors
    /// As [`connect`](Self::connect), and [`RouteError::Anonymous`] for a request
    /// without credentials when no anonymous route is configured.
    pub async fn connect_or_anonymous(
        &self,
        request: &IncomingRequest<'_>,
    ) -> Result<(Option<Principal>, RoutedConnection<B>), RouteError> {
        match self.resolver.authenticate(request).await {
            Ok(principal) => {
                let connection = self.router.connection(&principal).await?;
                Ok((Some(principal), connection))
            }
            Err(AuthError::Credentials(CredentialError::Missing)) => {
                Ok((None, self.router.anonymous_connection().await?))
            }
            Err(e) => Err(e.into()),
        }
    }
}
