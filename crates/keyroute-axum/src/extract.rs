//! Extractors: the caller, the caller with their routed connection, and a per-route
//! scope guard; `Option<_>` of the first two for routes a caller may skip.
//!
//! None of them holds a rule of its own: each runs one step of the router's request
//! pipeline ([`Gateway`] and [`KeyResolver`](keyroute_router::KeyResolver)'s
//! `authenticate*`), the same steps `Keyroute::connect` runs, and answers a failure
//! with its [`Problem`]. Each authenticates once per request: the first extractor
//! (or [`AuthLayer`](crate::AuthLayer)) that resolves the caller keeps the
//! [`Principal`] in the request's extensions, and the pipeline takes it from there
//! ([`IncomingRequest::with_caller`](keyroute_router::IncomingRequest::with_caller)).
//!
//! | extractor | no credential | a bad credential |
//! |---|---|---|
//! | [`Caller`], [`Scoped`], [`Connected<B>`](Connected) | 401 `no_credentials` | its rejection |
//! | `Option<Caller>`, `Option<Connected<B>>` | `None` (no connection taken) | its rejection, never `None` |
//! | [`Connected<B, Option<Principal>>`](Connected) | no caller, the anonymous route's connection (401 without one) | its rejection, never anonymous |

use std::fmt;
use std::marker::PhantomData;

use axum_core::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;
use keyroute_core::Principal;
use keyroute_pool::Backend;
use keyroute_router::{ConnectionRouter, Gateway, IncomingRequest, RoutedConnection};

use crate::problem::Problem;
use crate::state::{AuthState, incoming};
use keyroute_core::KeyStore;

/// The request as the pipeline sees it, with the caller an earlier extractor or the
/// layer already resolved.
fn request(parts: &Parts) -> IncomingRequest<'_> {
    incoming(parts).with_caller(parts.extensions.get::<Principal>())
}

/// Keeps `caller` in the extensions for the next extractor of the same request.
fn remember(parts: &mut Parts, caller: &Principal) {
    if parts.extensions.get::<Principal>().is_none() {
        parts.extensions.insert(caller.clone());
    }
}

/// The caller (kept in the extensions for the next extractor), or the rejection of
/// their credential: the pipeline's required authentication.
pub(crate) async fn authenticate(
    parts: &mut Parts,
    auth: &AuthState,
) -> Result<Principal, Problem> {
    let caller = auth
        .resolver()
        .authenticate(&request(parts))
        .await
        .map_err(|e| Problem::auth(&e, auth.realm()))?;
    remember(parts, &caller);
    Ok(caller)
}

/// The pipeline's whole path for the state's resolver and router `B`.
fn gateway<S, B>(auth: &AuthState, state: &S) -> Gateway<KeyStore, B>
where
    ConnectionRouter<B>: FromRef<S>,
    B: Backend,
{
    Gateway::new(
        auth.resolver().clone(),
        ConnectionRouter::<B>::from_ref(state),
    )
}

/// The authenticated caller. Rejects with 401/400/403/503 as [`Problem::auth`] says.
///
/// `Option<Caller>` is the caller if the request has a credential and `None` if it has
/// none at all; a credential that is present but bad is still rejected, never taken
/// for no credential.
///
/// ```
/// use keyroute_axum::Caller;
/// async fn whoami(Caller(caller): Caller) -> String {
///     format!("{:?} in {}", caller.user_id(), caller.environment())
/// }
/// async fn hello(caller: Option<Caller>) -> String {
///     match caller {
///         Some(Caller(caller)) => format!("hello, {:?}", caller.user_id()),
///         None => "hello, stranger".to_owned(),
///     }
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

impl<S> OptionalFromRequestParts<S> for Caller
where
    AuthState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        let auth = AuthState::from_ref(state);
        let caller = auth
            .resolver()
            .authenticate_optional(&request(parts))
            .await
            .map_err(|e| Problem::auth(&e, auth.realm()))?;
        if let Some(caller) = &caller {
            remember(parts, caller);
        }
        Ok(caller.map(Caller))
    }
}

/// The caller and a pooled connection to the database their key's environment selects
/// (a test key's to the TestDb, a live key's to the LiveDb), as `Gateway::connect`
/// gives. The handler never looks at the environment.
///
/// `C`, the caller, is a [`Principal`] by default. Two optional forms, for routes a
/// caller may skip:
///
/// - `Option<Connected<B>>`: the caller and their connection, or `None` for a request
///   with no credential, which takes no connection (an anonymous route, if one is
///   configured, is not used: `Connected` always names its caller).
/// - `Connected<B, Option<Principal>>`: a connection for everyone, as
///   `Gateway::connect_or_anonymous` gives: the caller's own, or for a request with no
///   credential, no caller and the anonymous route's connection (401 `no_credentials`
///   when none is configured).
///
/// In both, a credential that is present but bad is rejected: it never falls back to
/// `None` or to anonymous.
///
/// ```
/// use keyroute::axum::Connected;
/// use keyroute::Principal;
/// use keyroute::store::Sqlite;
///
/// async fn catalogue(Connected { caller, db }: Connected<Sqlite, Option<Principal>>) -> String {
///     // a key's request reads its environment's database; anyone else the public one
///     format!("{} reads {}", if caller.is_some() { "a caller" } else { "anyone" }, db.name())
/// }
/// ```
pub struct Connected<B: Backend, C = Principal> {
    /// The caller.
    pub caller: C,
    /// Their routed connection.
    pub db: RoutedConnection<B>,
}

impl<B: Backend, C: fmt::Debug> fmt::Debug for Connected<B, C> {
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
        let (caller, db) = connected::<S, B>(parts, state, Access::Write).await?;
        Ok(Self { caller, db })
    }
}

/// Which connection an extractor asks for.
#[derive(Clone, Copy)]
enum Access {
    Write,
    Read,
}

/// The caller and their connection, as [`Connected`] and [`ConnectedRead`] take them.
async fn connected<S, B>(
    parts: &mut Parts,
    state: &S,
    access: Access,
) -> Result<(Principal, RoutedConnection<B>), Problem>
where
    AuthState: FromRef<S>,
    ConnectionRouter<B>: FromRef<S>,
    S: Send + Sync,
    B: Backend,
{
    let auth = AuthState::from_ref(state);
    let gateway = gateway::<S, B>(&auth, state);
    let request = request(parts);
    let connected = match access {
        Access::Write => gateway.connect(&request).await,
        Access::Read => gateway.connect_read(&request).await,
    };
    let (caller, db) = connected.map_err(|e| Problem::route(&e, auth.realm()))?;
    remember(parts, &caller);
    Ok((caller, db))
}

/// The caller and a connection for reads: a read replica of their connection
/// (`[replicas]`) when one is up and current and they have not taken a write
/// connection within `read_your_writes`, the primary otherwise, so a caller always
/// reads its own writes (`Gateway::connect_read`). Rejections as [`Connected`]'s.
///
/// ```
/// use keyroute::axum::ConnectedRead;
/// use keyroute::store::Sqlite;
///
/// async fn list_orders(ConnectedRead { caller, db }: ConnectedRead<Sqlite>) -> String {
///     // SELECTs on `db` (a replica, or the primary right after this caller wrote)
///     format!("{:?} reads {}", caller.user_id(), db.name())
/// }
/// ```
pub struct ConnectedRead<B: Backend> {
    /// The caller.
    pub caller: Principal,
    /// Their connection for reads.
    pub db: RoutedConnection<B>,
}

impl<B: Backend> fmt::Debug for ConnectedRead<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectedRead")
            .field("caller", &self.caller)
            .field("db", &self.db.name())
            .finish()
    }
}

impl<S, B> FromRequestParts<S> for ConnectedRead<B>
where
    AuthState: FromRef<S>,
    ConnectionRouter<B>: FromRef<S>,
    S: Send + Sync,
    B: Backend,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let (caller, db) = connected::<S, B>(parts, state, Access::Read).await?;
        Ok(Self { caller, db })
    }
}

impl<S, B> OptionalFromRequestParts<S> for Connected<B>
where
    AuthState: FromRef<S>,
    ConnectionRouter<B>: FromRef<S>,
    S: Send + Sync,
    B: Backend,
{
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        let auth = AuthState::from_ref(state);
        let gateway = gateway::<S, B>(&auth, state);
        let Some(caller) = gateway
            .authenticate_optional(&request(parts))
            .await
            .map_err(|e| Problem::auth(&e, auth.realm()))?
        else {
            return Ok(None);
        };
        remember(parts, &caller);
        let (caller, db) = gateway
            .connect(&request(parts))
            .await
            .map_err(|e| Problem::route(&e, auth.realm()))?;
        Ok(Some(Self { caller, db }))
    }
}

impl<S, B> FromRequestParts<S> for Connected<B, Option<Principal>>
where
    AuthState: FromRef<S>,
    ConnectionRouter<B>: FromRef<S>,
    S: Send + Sync,
    B: Backend,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = AuthState::from_ref(state);
        let (caller, db) = gateway::<S, B>(&auth, state)
            .connect_or_anonymous(&request(parts))
            .await
            .map_err(|e| Problem::route(&e, auth.realm()))?;
        if let Some(caller) = &caller {
            remember(parts, caller);
        }
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
        let caller = auth
            .resolver()
            .authenticate_with_scope(&request(parts), N::SCOPE)
            .await
            .map_err(|e| Problem::auth(&e, auth.realm()))?;
        remember(parts, &caller);
        Ok(Self {
            caller,
            scope: PhantomData,
        })
    }
}
