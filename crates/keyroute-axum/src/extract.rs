//! Extractors: the caller, the caller with their routed connection, the caller or
//! the anonymous route, and a per-route scope guard.
//!
//! Each authenticates once per request: the first extractor (or [`AuthLayer`](crate::AuthLayer))
//! that resolves the caller keeps the [`Principal`] in the request's extensions and
//! the others reuse it. Every rejection is a [`Problem`].

use std::fmt;
use std::marker::PhantomData;

use axum_core::extract::{FromRef, FromRequestParts};
use http::request::Parts;
use keyroute_core::{AuthError, CredentialError, Principal};
use keyroute_pool::Backend;
use keyroute_router::{ConnectionRouter, RoutedConnection};

use crate::problem::Problem;
use crate::state::{AuthState, incoming};

/// The caller, or the rejection of their credential.
pub(crate) async fn authenticate(
    parts: &mut Parts,
    auth: &AuthState,
) -> Result<Principal, Problem> {
    resolve(parts, auth)
        .await
        .map_err(|e| Problem::auth(&e, auth.realm()))
}

/// The caller (kept in the extensions for the next extractor), or why not.
async fn resolve(parts: &mut Parts, auth: &AuthState) -> Result<Principal, AuthError> {
    if let Some(principal) = parts.extensions.get::<Principal>() {
        return Ok(principal.clone());
    }
    let principal = auth.resolver().authenticate(&incoming(parts)).await?;
    parts.extensions.insert(principal.clone());
    Ok(principal)
}

/// The authenticated caller. Rejects with 401/400/403/503 as [`Problem::auth`] says.
///
/// ```
/// use keyroute_axum::Caller;
/// async fn whoami(Caller(caller): Caller) -> String {
///     format!("{:?} in {}", caller.user_id(), caller.environment())
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl<S> FromRequestParts<S> for Caller
where
    AuthState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        authenticate(parts, &AuthState::from_ref(state))
            .await
            .map(Caller)
    }
}

/// The caller and a pooled connection to the database their key's environment selects
/// (a test key's to the TestDb, a live key's to the LiveDb), as `Gateway::connect`
/// gives. The handler never looks at the environment.
pub struct Connected<B: Backend> {
    /// The caller.
    pub caller: Principal,
    /// Their routed connection.
    pub db: RoutedConnection<B>,
}

impl<B: Backend> fmt::Debug for Connected<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connected")
            .field("caller", &self.caller)
            .field("db", &self.db.name())
            .finish()
    }
}

impl<S, B> FromRequestParts<S> for Connected<B>
where
    AuthState: FromRef<S>,
    ConnectionRouter<B>: FromRef<S>,
    S: Send + Sync,
    B: Backend,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = AuthState::from_ref(state);
        let caller = authenticate(parts, &auth).await?;
        let db = ConnectionRouter::<B>::from_ref(state)
            .connection(&caller)
            .await
            .map_err(|e| Problem::route(&e, auth.realm()))?;
        Ok(Self { caller, db })
    }
}

/// The caller if the request has a credential, else nobody, with the connection each
/// gets: the anonymous route's for a request with no credential at all, as
/// `Gateway::connect_or_anonymous` gives. A bad credential is still rejected; it
/// never falls back to anonymous. Without an anonymous route a request with no
/// credential gets 401.
pub struct MaybeConnected<B: Backend> {
    /// The caller; `None` for an anonymous request.
    pub caller: Option<Principal>,
    /// Their routed connection, or the anonymous route's.
    pub db: RoutedConnection<B>,
}

impl<B: Backend> fmt::Debug for MaybeConnected<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MaybeConnected")
            .field("caller", &self.caller)
            .field("db", &self.db.name())
            .finish()
    }
}

impl<S, B> FromRequestParts<S> for MaybeConnected<B>
where
    AuthState: FromRef<S>,
    ConnectionRouter<B>: FromRef<S>,
    S: Send + Sync,
    B: Backend,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = AuthState::from_ref(state);
        let router = ConnectionRouter::<B>::from_ref(state);
        let realm = auth.realm();
        let caller = match resolve(parts, &auth).await {
            Ok(caller) => Some(caller),
            Err(AuthError::Credentials(CredentialError::Missing)) => None,
            Err(e) => return Err(Problem::auth(&e, realm)),
        };
        let db = match &caller {
            Some(caller) => router.connection(caller).await,
            None => router.anonymous_connection().await,
        }
        .map_err(|e| Problem::route(&e, realm))?;
        Ok(Self { caller, db })
    }
}

/// A scope a route requires, named once as a type: see [`scope!`](crate::scope!).
pub trait ScopeName: Send + Sync + 'static {
    /// The scope, e.g. `orders:read`.
    const SCOPE: &'static str;
}

/// Declares a [`ScopeName`]: `keyroute_axum::scope!(pub OrdersRead = "orders:read");`.
#[macro_export]
macro_rules! scope {
    ($(#[$meta:meta])* $vis:vis $name:ident = $scope:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        $vis struct $name;
        impl $crate::ScopeName for $name {
            const SCOPE: &'static str = $scope;
        }
    };
}

/// The caller, who must be allowed `N::SCOPE`: a key must hold it, a person's session
/// passes (as `Gateway::connect_with_scope`). A key without it gets 403 with
/// `WWW-Authenticate: Bearer error="insufficient_scope", scope="..."`. Put it before
/// [`Connected`] so a refused caller takes no connection.
pub struct Scoped<N: ScopeName> {
    /// The caller.
    pub caller: Principal,
    scope: PhantomData<fn() -> N>,
}

impl<N: ScopeName> fmt::Debug for Scoped<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scoped")
            .field("scope", &N::SCOPE)
            .field("caller", &self.caller)
            .finish()
    }
}

impl<S, N> FromRequestParts<S> for Scoped<N>
where
    AuthState: FromRef<S>,
    S: Send + Sync,
    N: ScopeName,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = AuthState::from_ref(state);
        let caller = authenticate(parts, &auth).await?;
        caller
            .require_scope(N::SCOPE)
            .map_err(|e| Problem::auth(&e, auth.realm()))?;
        Ok(Self {
            caller,
            scope: PhantomData,
        })
    }
}
