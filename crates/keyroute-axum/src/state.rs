//! [`AuthState`]: what the extractors, the layer and the key routes need from the
//! app's state, reached through axum's [`FromRef`](axum_core::extract::FromRef).
//!
//! The facade's `Keyroute<B>` provides it (and the [`ConnectionRouter`](keyroute_router::ConnectionRouter)
//! the connection extractors need) when its `axum` feature is on, so a service whose
//! state *is* the handle needs no glue. A service with a state of its own implements
//! `FromRef<AppState>` for both, returning `keyroute.axum_state()` and
//! `keyroute.router().clone()`.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use http::request::Parts;
use keyroute_core::{KeyService, KeyStore};
use keyroute_router::{IncomingRequest, KeyResolver};

/// Marks a request whose socket was TLS. A TLS acceptor inserts it into the request's
/// extensions (`request.extensions_mut().insert(TlsConnection)`); keyroute never
/// guesses it from headers the client controls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TlsConnection;

/// The peer's address, for servers that do not use axum's `ConnectInfo<SocketAddr>`:
/// insert it into the request's extensions. Forwarded headers count only when the
/// peer is in `[resolver] trusted_proxies`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub IpAddr);

/// The parts of keyroute that HTTP needs: the resolver, the key service, JWTs (with
/// the `jwt` feature) and the realm named in `WWW-Authenticate`. Cheap to clone.
#[derive(Clone)]
pub struct AuthState {
    resolver: KeyResolver<KeyStore>,
    keys: Arc<KeyService<KeyStore>>,
    #[cfg(feature = "jwt")]
    jwt: Option<Arc<keyroute_jwt::JwtService>>,
    realm: Cow<'static, str>,
}

impl fmt::Debug for AuthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthState")
            .field("resolver", &self.resolver)
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

impl AuthState {
    /// The state for `resolver` and `keys`, with realm `keyroute` and no JWTs.
    pub fn new(resolver: KeyResolver<KeyStore>, keys: Arc<KeyService<KeyStore>>) -> Self {
        Self {
            resolver,
            keys,
            #[cfg(feature = "jwt")]
            jwt: None,
            realm: Cow::Borrowed("keyroute"),
        }
    }

    /// Exchanges keys for JWTs with `jwt` (`POST /token`).
    #[cfg(feature = "jwt")]
    pub fn with_jwt(mut self, jwt: Option<Arc<keyroute_jwt::JwtService>>) -> Self {
        self.jwt = jwt;
        self
    }

    /// Names `realm` in `WWW-Authenticate` challenges. Default `keyroute`. Quotes
    /// and backslashes are dropped so the header stays well-formed.
    pub fn with_realm(mut self, realm: &str) -> Self {
        let clean: String = realm
            .chars()
            .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
            .collect();
        self.realm = Cow::Owned(clean);
        self
    }

    /// The resolver.
    pub fn resolver(&self) -> &KeyResolver<KeyStore> {
        &self.resolver
    }

    /// The key service.
    pub fn keys(&self) -> &KeyService<KeyStore> {
        &self.keys
    }

    /// The JWT service, when one is configured.
    #[cfg(feature = "jwt")]
    pub fn jwt(&self) -> Option<&keyroute_jwt::JwtService> {
        self.jwt.as_deref()
    }

    /// The realm named in challenges.
    pub fn realm(&self) -> &str {
        &self.realm
    }
}

/// What the resolver needs of a request's head: headers, query, whether the socket was
/// TLS ([`TlsConnection`]) and the peer (axum's `ConnectInfo<SocketAddr>` or
/// [`PeerAddr`]).
pub(crate) fn incoming(parts: &Parts) -> IncomingRequest<'_> {
    let peer = parts.extensions.get::<PeerAddr>().map(|p| p.0).or_else(|| {
        parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip())
    });
    let cost = parts
        .extensions
        .get::<crate::RequestCost>()
        .map_or(1, |c| c.0);
    IncomingRequest::new(&parts.headers)
        .with_cost(cost)
        .with_query(parts.uri.query())
        .over_tls(parts.extensions.get::<TlsConnection>().is_some())
        .from_peer(peer)
}
