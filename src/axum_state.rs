//! `Keyroute<B>` as the state of an axum app (feature `axum`): the extractors and
//! key routes of [`keyroute_axum`] reach it through `FromRef`.

use std::sync::Arc;

use axum_core::extract::FromRef;
use keyroute_axum::AuthState;
use keyroute_pool::Backend;
use keyroute_router::ConnectionRouter;

use crate::handle::Keyroute;

impl<B: Backend> Keyroute<B> {
    /// What the axum extractors and key routes need: the resolver, the key service
    /// and JWTs. For an app whose state holds the handle, implement
    /// `FromRef<AppState> for AuthState` with this (and `FromRef` for
    /// [`ConnectionRouter`] with `router().clone()`).
    pub fn axum_state(&self) -> AuthState {
        let state = AuthState::new(self.resolver().clone(), Arc::clone(&self.inner.keys));
        #[cfg(feature = "jwt")]
        let state = state.with_jwt(self.inner.jwt.clone());
        state
    }
}

impl<B: Backend> FromRef<Keyroute<B>> for AuthState {
    fn from_ref(keyroute: &Keyroute<B>) -> Self {
        keyroute.axum_state()
    }
}

impl<B: Backend> FromRef<Keyroute<B>> for ConnectionRouter<B> {
    fn from_ref(keyroute: &Keyroute<B>) -> Self {
        keyroute.router().clone()
    }
}
