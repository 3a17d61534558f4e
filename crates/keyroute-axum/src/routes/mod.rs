//! The key-management routes, ServiceStack's key services as axum routes:
//!
//! | route | does |
//! |---|---|
//! | `GET {prefix}/{env}` | the caller's working keys in `env` (hints, never hashes or plaintexts) |
//! | `GET {prefix}/users` | a page of users, in id order (`?after=<id>&limit=<n>`): admin keys only; a tenant's admin sees its tenant's |
//! | `POST {prefix}/regenerate/{env}` | cancels the caller's keys in `env`, returns new ones once; optional `{"grace": "1h"}` |
//! | `POST {prefix}` | issues a key: `type`, `environment`, `name`, `scopes`, `expires_at` or `expires_in`, `notes`, `allowed_networks` |
//! | `DELETE {prefix}/{id}` | revokes a key |
//! | `PATCH {prefix}/{id}` | changes a key: `name`, `scopes`, `expires_at` or `expires_in`, `notes`, `ref_id`, `meta`, `allowed_networks`, `enabled` (`null` removes a name, notes, reference or expiry) |
//! | `POST {prefix}/{id}/roll` | replaces one key; `{"grace": "1h"}` capped at the old key's expiry |
//! | `GET {prefix}/audit` | a page of the audit trail (`?key_id=&user_id=&since=&until=&after=&limit=`): admin keys read their environment's, other callers their own user's |
//! | `POST /token` | exchanges the caller's key or session for a short-lived JWT (feature `jwt`) |
//!
//! Who may do what is not decided here: every route acts through
//! `KeyService::acting_as(&caller)`, whose rules (environment, owner, tenant, scopes,
//! expiry, volume) live in `keyroute-core`, and answers a refusal with its stable code
//! (`environment_mismatch`, `scope_exceeds_caller`, ...) as a 403 problem. An admin key
//! names another user with `?user_id=` or `"user_id"`. Responses carrying a plaintext
//! key or token are `Cache-Control: no-store`.

mod audit;
mod body;
mod context;
mod keys;
mod leaks;
mod users;

use axum::Router;
use axum::routing::{MethodRouter, delete, get, patch, post};
use axum_core::extract::FromRef;

use crate::state::AuthState;

pub use body::MAX_BODY_BYTES;
pub use leaks::{MAX_ALERT_BYTES, ScanningKeysError, SecretScanning};

/// One of the key routes, to leave out with [`KeyRoutes::without`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyRoute {
    /// `GET {prefix}/{env}`.
    List,
    /// `POST {prefix}/regenerate/{env}`.
    Regenerate,
    /// `POST {prefix}`.
    Issue,
    /// `DELETE {prefix}/{id}`.
    Revoke,
    /// `POST {prefix}/{id}/roll`.
    Roll,
    /// `POST /token`.
    Token,
    /// `GET {prefix}/users`.
    Users,
    /// `PATCH {prefix}/{id}`.
    Update,
    /// `GET {prefix}/audit`.
    Audit,
}

/// Which key routes to serve, and where. [`key_routes`] is the default: every route,
/// under `/apikeys`, and `/token`.
#[derive(Debug, Clone)]
pub struct KeyRoutes {
    prefix: String,
    token_path: String,
    left_out: Vec<KeyRoute>,
}

impl Default for KeyRoutes {
    fn default() -> Self {
        Self {
            prefix: "/apikeys".to_owned(),
            token_path: "/token".to_owned(),
            left_out: Vec::new(),
        }
    }
}

impl KeyRoutes {
    /// Every route, under `/apikeys`, and `/token`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves the key routes under `prefix` (e.g. `/v1/apikeys`; `""` for the root).
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.trim_end_matches('/').to_owned();
        self
    }

    /// Serves the token exchange at `path` instead of `/token`.
    pub fn token_path(mut self, path: &str) -> Self {
        self.token_path = path.to_owned();
        self
    }

    /// Leaves `route` out.
    pub fn without(mut self, route: KeyRoute) -> Self {
        self.left_out.push(route);
        self
    }

    fn has(&self, route: KeyRoute) -> bool {
        !self.left_out.contains(&route)
    }

    /// The routes, as a router to merge into the app's.
    pub fn router<S>(&self) -> Router<S>
    where
        AuthState: FromRef<S>,
        S: Clone + Send + Sync + 'static,
    {
        let mut router = Router::new();
        let prefix = &self.prefix;
        let root = if prefix.is_empty() { "/" } else { prefix };
        if self.has(KeyRoute::Issue) {
            router = router.route(root, post(keys::issue));
        }
        if self.has(KeyRoute::Users) {
            // A fixed segment: matched before `{target}`, so no environment may be
            // called `users` while this route is served.
            router = router.route(&format!("{prefix}/users"), get(users::users));
        }
        // `{prefix}/{target}` is an environment for GET and a key id for DELETE and
        // PATCH: one path, a method router of the routes served.
        if self.has(KeyRoute::Audit) {
            // A fixed segment, as `users`: no environment may be called `audit` while
            // this route is served.
            router = router.route(&format!("{prefix}/audit"), get(audit::audit));
        }
        let methods = [
            (KeyRoute::List, get(keys::list)),
            (KeyRoute::Revoke, delete(keys::revoke)),
            (KeyRoute::Update, patch(keys::update)),
        ]
        .into_iter()
        .filter(|(route, _)| self.has(*route))
        .map(|(_, method)| method)
        .reduce(MethodRouter::merge);
        if let Some(methods) = methods {
            router = router.route(&format!("{prefix}/{{target}}"), methods);
        }
        if self.has(KeyRoute::Regenerate) {
            let path = format!("{prefix}/regenerate/{{target}}");
            router = router.route(&path, post(keys::regenerate));
        }
        if self.has(KeyRoute::Roll) {
            let path = format!("{prefix}/{{target}}/roll");
            router = router.route(&path, post(keys::roll));
        }
        #[cfg(feature = "jwt")]
        if self.has(KeyRoute::Token) {
            router = router.route(&self.token_path, post(keys::token));
        }
        router
    }
}

/// Every key route under `/apikeys`, and `/token`: `Router::new().merge(key_routes())`.
pub fn key_routes<S>() -> Router<S>
where
    AuthState: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    KeyRoutes::new().router()
}
