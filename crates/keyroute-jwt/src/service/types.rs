//! What the service takes and gives: issued and verified tokens, and the requests for
//! sessions and JWT keys.

use std::time::Duration;

use chrono::{DateTime, Utc};
use keyroute_core::{
    ApiKey, Environment, KeyId, KeyRequest, PlaintextKey, Principal, Tenant, UserId,
};

use crate::claims::{ScopeFormat, TokenKind};

/// A token just issued (exchange or session). The token is shown once: keep it in
/// the [`PlaintextKey`] until it is sent.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IssuedToken {
    /// The JWT.
    pub token: PlaintextKey,
    /// Its `jti`.
    pub jti: String,
    /// What it is for.
    pub kind: TokenKind,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// The `kid` of the key that signed it.
    pub kid: String,
}

impl IssuedToken {
    /// A token signed with `kid`, expiring at `expires_at` (Unix seconds).
    pub(super) fn new(
        token: String,
        kid: String,
        jti: &KeyId,
        kind: TokenKind,
        expires_at: i64,
    ) -> Self {
        Self {
            token: PlaintextKey::new(token),
            jti: jti.as_str().to_owned(),
            kind,
            expires_at: DateTime::from_timestamp(expires_at, 0).unwrap_or(DateTime::<Utc>::MAX_UTC),
            kid,
        }
    }
}

/// A JWT issued as an API key: the stored record and the token, shown once.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IssuedJwtKey {
    /// The stored record: its id is the token's `jti`, its hash the token's SHA-256.
    pub key: ApiKey,
    /// The JWT. Show it to its owner once; only its hash is stored.
    pub plaintext: PlaintextKey,
}

/// A verified token: the caller and the facts the deny-list and a logout need.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifiedToken {
    /// The caller, as an API key would give it.
    pub principal: Principal,
    /// What the token is for.
    pub kind: TokenKind,
    /// The token's `jti`.
    pub jti: String,
    /// When it expires; `None` for a key issued without expiry.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A request for a session token.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionRequest {
    /// The person.
    pub user_id: UserId,
    /// The environment their requests reach. Default `live`.
    pub environment: Environment,
    /// Their tenant.
    pub tenant: Option<Tenant>,
    /// Lifetime; default the configured `session_lifetime`.
    pub lifetime: Option<Duration>,
}

impl SessionRequest {
    /// A session for `user_id` in the live environment.
    pub fn new(user_id: UserId) -> Self {
        Self {
            user_id,
            environment: Environment::LIVE,
            tenant: None,
            lifetime: None,
        }
    }

    /// Sets the environment.
    pub fn in_environment(mut self, environment: Environment) -> Self {
        self.environment = environment;
        self
    }

    /// Sets the tenant.
    pub fn with_tenant(mut self, tenant: Tenant) -> Self {
        self.tenant = Some(tenant);
        self
    }

    /// Sets the lifetime.
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = Some(lifetime);
        self
    }
}

/// A request for a JWT issued as an API key: the key's details, as for any key, and how
/// its scopes are written into the token. A plain [`KeyRequest`] converts into one
/// with flat scopes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JwtKeyRequest {
    /// The key: type, environment, owner, tenant, name, scopes, lifetime (`None` for a
    /// key that does not expire, refused when the deny-list check is off, as nothing
    /// could then revoke it), notes, ref id, meta (`format = jwt` is added).
    pub key: KeyRequest,
    /// How the scopes are written into the token.
    pub scope_format: ScopeFormat,
}

impl JwtKeyRequest {
    /// A request for the key `key` describes, with flat scopes.
    pub fn new(key: KeyRequest) -> Self {
        Self {
            key,
            scope_format: ScopeFormat::Flat,
        }
    }

    /// Sets how scopes are written.
    pub fn with_scope_format(mut self, format: ScopeFormat) -> Self {
        self.scope_format = format;
        self
    }
}

impl From<KeyRequest> for JwtKeyRequest {
    fn from(key: KeyRequest) -> Self {
        Self::new(key)
    }
}
