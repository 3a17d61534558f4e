//! [`Principal`]: who is calling, with what rights, in which environment.
//!
//! Every way of authenticating (an API key, a JWT exchanged for one, a JWT issued as a
//! scoped key, a person's session token) ends in the same `Principal`, so handlers and
//! the connection router treat them alike. It is cheap to clone: the key and user
//! records are shared, and a key's principal reads its id, type, user, tenant and
//! scopes from the record rather than holding copies (a clone takes the record's
//! and the user's reference counts, not one more per field: the request pipeline
//! clones the caller into the request's extensions, and with many keys in use each
//! count is a cache line of its own).

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::error::AuthError;
use crate::ids::{KeyId, UserId};
use crate::limits::LimitUsage;
use crate::model::{ApiKey, User};
use crate::name::{Environment, KeyType, Tenant};
use crate::scope::Scopes;

/// How the caller authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMethod {
    /// An API key, looked up in the store (or the cache).
    ApiKey,
    /// A short-lived JWT that an API key was exchanged for.
    KeyJwt,
    /// A long-lived JWT issued as a scoped key.
    ScopedJwt,
    /// A person's session token: a user identity, not a key.
    UserSession,
}

impl AuthMethod {
    /// Whether this is a key of some form (and so bound by its scopes).
    pub fn is_key(self) -> bool {
        !matches!(self, AuthMethod::UserSession)
    }
}

/// The resolved caller.
#[derive(Debug, Clone)]
pub struct Principal {
    method: AuthMethod,
    environment: Environment,
    key: Option<Arc<ApiKey>>,
    user: Option<Arc<User>>,
    /// What the credential's claims say (a JWT), or what a `with_*` method set; for a
    /// key's principal these start empty and the key record answers.
    claimed: Claimed,
    expires_at: Option<DateTime<Utc>>,
    /// When the authority behind the credential ends, when it differs from the
    /// credential's own expiry (a JWT exchanged from a key: the key's expiry).
    authority_expires_at: Option<Option<DateTime<Utc>>>,
    /// The usage limits' state after this request was admitted (`None` when no limit
    /// applies, or limits are off: no allocation for the common case).
    usage: Option<Arc<[LimitUsage]>>,
}

/// The fields a principal may carry of its own: `None` where the key record (if any)
/// answers. A `with_*` method sets one (the last call wins), and it then overrides
/// the record, `Some(None)` included.
#[derive(Debug, Clone, Default)]
struct Claimed {
    key_id: Option<Option<KeyId>>,
    key_type: Option<Option<KeyType>>,
    user_id: Option<Option<UserId>>,
    tenant: Option<Option<Tenant>>,
    scopes: Option<Scopes>,
}

/// The empty scope list, for a principal with neither a key nor scopes of its own.
fn no_scopes() -> &'static Scopes {
    static NONE: std::sync::LazyLock<Scopes> = std::sync::LazyLock::new(Scopes::none);
    &NONE
}

/// What the principal carries for a field: its own value if one was set, else the
/// key record's.
fn own_or_key<'a, T>(
    own: &'a Option<Option<T>>,
    key: Option<&'a ApiKey>,
    field: impl FnOnce(&'a ApiKey) -> Option<&'a T>,
) -> Option<&'a T> {
    match own {
        Some(value) => value.as_ref(),
        None => key.and_then(field),
    }
}

/// The earlier of two optional instants; `None` means "no limit".
fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Principal {
    /// The principal of an API key (and its owner, if loaded): environment, type,
    /// tenant and scopes come from the key record.
    pub fn from_api_key(key: Arc<ApiKey>, user: Option<Arc<User>>) -> Self {
        Self {
            method: AuthMethod::ApiKey,
            environment: key.environment.clone(),
            expires_at: earliest(key.expires_at, key.cancelled_at),
            authority_expires_at: None,
            key: Some(key),
            user,
            claimed: Claimed::default(),
            usage: None,
        }
    }

    /// A principal built from verified claims (a JWT), with no store record behind it.
    /// Set the rest with the `with_*` methods.
    pub fn from_claims(method: AuthMethod, environment: Environment) -> Self {
        Self {
            method,
            environment,
            key: None,
            user: None,
            claimed: Claimed::default(),
            expires_at: None,
            authority_expires_at: None,
            usage: None,
        }
    }

    /// Records where the usage limits stood when this request was admitted (the
    /// resolver does this; the HTTP layer turns it into `RateLimit` headers). A
    /// `Vec` will do; an `Arc<[LimitUsage]>` is kept as it is, with no copy.
    pub fn with_usage(mut self, usage: impl Into<Arc<[LimitUsage]>>) -> Self {
        let usage = usage.into();
        self.usage = (!usage.is_empty()).then_some(usage);
        self
    }

    /// Where the usage limits stood when this request was admitted: one entry per
    /// limit that applies to the caller.
    pub fn usage(&self) -> &[LimitUsage] {
        self.usage.as_deref().unwrap_or_default()
    }

    /// Sets when the credential stops working (for a JWT: its `exp`, or its key's
    /// expiry when that is earlier). Nothing derived from the principal may outlive it.
    pub fn with_expires_at(mut self, expires_at: Option<DateTime<Utc>>) -> Self {
        self.expires_at = expires_at;
        self
    }

    /// Sets when the authority the credential carries ends, where that differs from
    /// the credential's own expiry: for a short-lived JWT exchanged from a key, the
    /// key's expiry or pending cancellation (`None`: the key does not expire). See
    /// [`authority_expires_at`](Self::authority_expires_at).
    pub fn with_authority_expires_at(mut self, expires_at: Option<DateTime<Utc>>) -> Self {
        self.authority_expires_at = Some(expires_at);
        self
    }

    /// Sets the id of the API key behind the claims.
    pub fn with_key_id(mut self, key_id: Option<KeyId>) -> Self {
        self.claimed.key_id = Some(key_id);
        self
    }

    /// Sets the key type named by the claims.
    pub fn with_key_type(mut self, key_type: Option<KeyType>) -> Self {
        self.claimed.key_type = Some(key_type);
        self
    }

    /// Sets the user the claims name.
    pub fn with_user_id(mut self, user_id: Option<UserId>) -> Self {
        self.claimed.user_id = Some(user_id);
        self
    }

    /// Sets the tenant the claims name.
    pub fn with_tenant(mut self, tenant: Option<Tenant>) -> Self {
        self.claimed.tenant = Some(tenant);
        self
    }

    /// Sets the granted scopes.
    pub fn with_scopes(mut self, scopes: Scopes) -> Self {
        self.claimed.scopes = Some(scopes);
        self
    }

    /// How the caller authenticated.
    pub fn method(&self) -> AuthMethod {
        self.method
    }

    /// The environment the caller's requests belong to: which database they reach.
    pub fn environment(&self) -> &Environment {
        &self.environment
    }

    /// The stored key record, when the caller presented an API key.
    pub fn api_key(&self) -> Option<&ApiKey> {
        self.key.as_deref()
    }

    /// When the credential stops working, if it ever does: an API key's expiry or
    /// pending cancellation, whichever is first; a JWT's `exp`, or the expiry of the
    /// key it came from when earlier. A token exchanged for this principal never
    /// outlives it.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.expires_at
    }

    /// When the authority this caller acts with ends: what bounds the expiry of keys
    /// it makes. For an API key or a JWT issued as a key, its own expiry (or pending
    /// cancellation); for a JWT exchanged from a key, that key's, which the token
    /// carries (so a 15-minute token acts with its key's authority, never more). Where
    /// a verifier set nothing, the credential's own expiry: the stricter answer.
    pub fn authority_expires_at(&self) -> Option<DateTime<Utc>> {
        self.authority_expires_at.unwrap_or(self.expires_at)
    }

    /// The id of the key the caller used, directly or through a JWT.
    pub fn key_id(&self) -> Option<&KeyId> {
        own_or_key(&self.claimed.key_id, self.api_key(), |k| Some(&k.id))
    }

    /// The type of the key the caller used.
    pub fn key_type(&self) -> Option<&KeyType> {
        own_or_key(&self.claimed.key_type, self.api_key(), |k| {
            Some(&k.key_type)
        })
    }

    /// The calling user's id, if the credential belongs to a user.
    pub fn user_id(&self) -> Option<&UserId> {
        own_or_key(&self.claimed.user_id, self.api_key(), |k| {
            k.user_id.as_ref()
        })
    }

    /// The owning user's record, when it was loaded with the key.
    pub fn user(&self) -> Option<&User> {
        self.user.as_deref()
    }

    /// The caller's tenant.
    pub fn tenant(&self) -> Option<&Tenant> {
        own_or_key(&self.claimed.tenant, self.api_key(), |k| k.tenant.as_ref())
    }

    /// The scopes the credential grants.
    pub fn scopes(&self) -> &Scopes {
        match (&self.claimed.scopes, self.api_key()) {
            (Some(scopes), _) => scopes,
            (None, Some(key)) => &key.scopes,
            (None, None) => no_scopes(),
        }
    }

    /// Whether the credential's scopes grant `required` (`orders:*` and the admin scope
    /// included). A pure check of the scopes; see [`require_scope`](Self::require_scope)
    /// for the rule endpoints apply.
    pub fn has_scope(&self, required: &str) -> bool {
        self.scopes().grants(required)
    }

    /// The rule an endpoint serving both people and keys applies: a user session passes
    /// (people are governed by their roles, not scopes); a key must hold `required`.
    ///
    /// # Errors
    /// [`AuthError::InsufficientScope`] when a key lacks the scope.
    pub fn require_scope(&self, required: &str) -> Result<(), AuthError> {
        if !self.method.is_key() || self.has_scope(required) {
            Ok(())
        } else {
            Err(AuthError::InsufficientScope {
                required: required.to_owned(),
            })
        }
    }

    /// The caller's user id however they authenticated, for endpoints that act on a
    /// user's data.
    ///
    /// # Errors
    /// [`AuthError::NotAssociatedWithUser`] for a key that belongs to no user.
    pub fn required_user_id(&self) -> Result<&UserId, AuthError> {
        self.user_id().ok_or(AuthError::NotAssociatedWithUser)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::KeyHash;

    fn key(scopes: &[&str], user: Option<&str>) -> Arc<ApiKey> {
        let mut k = ApiKey::new(
            KeyId::random(),
            KeyType::SECRET,
            Environment::TEST,
            KeyHash::of("k"),
            "sk_test_…",
            chrono::DateTime::UNIX_EPOCH,
        );
        k.scopes = Scopes::parse(scopes).unwrap();
        k.user_id = user.map(|u| UserId::new(u).unwrap());
        Arc::new(k)
    }

    /// A key's principal takes environment, scopes and user from the key record.
    #[test]
    fn from_api_key() {
        let p = Principal::from_api_key(key(&["orders:*"], Some("u1")), None);
        assert_eq!(p.environment(), &Environment::TEST);
        assert!(p.has_scope("orders:read"));
        assert!(p.require_scope("orders:write").is_ok());
        assert!(matches!(
            p.require_scope("users:read"),
            Err(AuthError::InsufficientScope { required }) if required == "users:read"
        ));
        assert_eq!(p.required_user_id().unwrap().as_str(), "u1");
    }

    /// A key's principal answers with its record's id, type, user, tenant and scopes;
    /// a `with_*` method overrides the record (`None` included), as it sets a field of
    /// a principal made from claims, which has no scopes until given some.
    #[test]
    fn record_answers_until_overridden() {
        let record = key(&["orders:read"], Some("u1"));
        let mut with_tenant = (*record).clone();
        with_tenant.tenant = Some(Tenant::new("acme").unwrap());
        let p = Principal::from_api_key(Arc::new(with_tenant), None);
        assert_eq!(p.key_id(), Some(&record.id));
        assert_eq!(p.key_type(), Some(&KeyType::SECRET));
        assert_eq!(p.user_id().map(UserId::as_str), Some("u1"));
        assert_eq!(p.tenant().map(Tenant::as_str), Some("acme"));
        assert!(p.has_scope("orders:read") && !p.has_scope("orders:write"));

        let narrowed = p
            .clone()
            .with_scopes(Scopes::none())
            .with_tenant(None)
            .with_user_id(Some(UserId::new("u2").unwrap()))
            .with_key_type(None)
            .with_key_id(None);
        assert!(!narrowed.has_scope("orders:read"));
        assert_eq!(narrowed.tenant(), None);
        assert_eq!(narrowed.user_id().map(UserId::as_str), Some("u2"));
        assert_eq!((narrowed.key_type(), narrowed.key_id()), (None, None));
        // The principal it was cloned from still answers from the record.
        assert!(p.has_scope("orders:read"));
        assert_eq!(p.tenant().map(Tenant::as_str), Some("acme"));

        let claims = Principal::from_claims(AuthMethod::ScopedJwt, Environment::LIVE);
        assert!(claims.scopes().is_empty());
        assert_eq!(
            (claims.key_id(), claims.tenant(), claims.user_id()),
            (None, None, None)
        );
    }

    /// A key without a user is refused where a user is required; a session skips scope checks.
    #[test]
    fn user_rules() {
        let p = Principal::from_api_key(key(&[], None), None);
        assert!(matches!(
            p.required_user_id(),
            Err(AuthError::NotAssociatedWithUser)
        ));
        let session = Principal::from_claims(AuthMethod::UserSession, Environment::LIVE)
            .with_user_id(Some(UserId::new("u2").unwrap()));
        assert!(session.require_scope("orders:read").is_ok());
        assert!(!session.has_scope("orders:read"));
        assert_eq!(session.required_user_id().unwrap().as_str(), "u2");
    }
}
