//! [`Gateway`]: the one request pipeline, credentials in, the caller and their
//! database connection out.
//!
//! Every transport runs a request through these steps, and only these: the facade's
//! `Keyroute::connect` and friends, and keyroute-axum's extractors and layer. So the
//! rules below are written once:
//!
//! | step | method | no credential | a bad credential |
//! |---|---|---|---|
//! | authenticate | [`KeyResolver::authenticate`] | rejected | rejected |
//! | authenticate optionally | [`KeyResolver::authenticate_optional`] | `None` | rejected, never anonymous |
//! | authenticate with a scope | [`KeyResolver::authenticate_with_scope`] | rejected | rejected |
//! | connect | [`Gateway::connect`] | rejected | rejected |
//! | connect with a scope | [`Gateway::connect_with_scope`] | rejected | rejected |
//! | connect optionally | [`Gateway::connect_or_anonymous`] | the anonymous route's connection, if configured | rejected, never anonymous |
//!
//! The authentication steps are the resolver's, so a transport that has no router
//! (an authenticating layer, an extractor of the caller alone) runs the same code.
//! A request already authenticated earlier in its handling says so with
//! [`IncomingRequest::with_caller`], and is not authenticated twice.

use std::fmt;

use keyroute_core::{ApiKeyStore, AuthError, Principal};
use keyroute_pool::Backend;

use crate::error::RouteError;
use crate::resolver::{IncomingRequest, KeyResolver};
use crate::router::{ConnectionRouter, RoutedConnection};

/// A resolver and a router together: the request pipeline handlers call.
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

    /// Authenticates the request: its one credential, resolved to the caller
    /// ([`KeyResolver::authenticate`]).
    ///
    /// # Errors
    /// The [`AuthError`] of the first check that failed.
    pub async fn authenticate(
        &self,
        request: &IncomingRequest<'_>,
    ) -> Result<Principal, AuthError> {
        self.resolver.authenticate(request).await
    }

    /// Authenticates a request that may come without a caller: `None` for a request
    /// with no credential at all; a bad credential is rejected, never taken for none
    /// ([`KeyResolver::authenticate_optional`]).
    ///
    /// # Errors
    /// As [`authenticate`](Self::authenticate), except for a missing credential.
    pub async fn authenticate_optional(
        &self,
        request: &IncomingRequest<'_>,
    ) -> Result<Option<Principal>, AuthError> {
        self.resolver.authenticate_optional(request).await
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

    /// As [`connect`](Self::connect), with a connection for reads: a replica of the
    /// caller's connection when it has one that is up and current and the caller has
    /// not written within `read_your_writes`, the primary otherwise
    /// ([`ConnectionRouter::read_connection`]).
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub async fn connect_read(
        &self,
        request: &IncomingRequest<'_>,
    ) -> Result<(Principal, RoutedConnection<B>), RouteError> {
        let principal = self.resolver.authenticate(request).await?;
        let connection = self.router.read_connection(&principal).await?;
        Ok((principal, connection))
    }

    /// As [`connect`](Self::connect), and the caller must be allowed `scope`: a key
    /// must hold it, a person's session passes. One guard for endpoints that serve both.
    /// A refused caller takes no connection.
    ///
    /// # Errors
    /// As [`connect`](Self::connect), and [`AuthError::InsufficientScope`] for a key
    /// without the scope.
    pub async fn connect_with_scope(
        &self,
        request: &IncomingRequest<'_>,
        scope: &str,
    ) -> Result<(Principal, RoutedConnection<B>), RouteError> {
        let principal = self
            .resolver
            .authenticate_with_scope(request, scope)
            .await?;
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
        let caller = self.resolver.authenticate_optional(request).await?;
        let connection = match &caller {
            Some(caller) => self.router.connection(caller).await?,
            None => self.router.anonymous_connection().await?,
        };
        Ok((caller, connection))
    }
}
