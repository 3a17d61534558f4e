//! What the key service takes and gives: requests, new users, issued keys, reports.

use std::time::Duration;

use chrono::{DateTime, Utc};
use ipnet::IpNet;

use crate::ids::UserId;
use crate::limits::{Credits, RateLimit};
use crate::model::{ApiKey, Meta, User};
use crate::name::{Environment, KeyType, Tenant};
use crate::scope::Scopes;
use crate::secret::PlaintextKey;

/// A key just created: its record and its plaintext, which is never available again.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IssuedKey {
    /// The stored record.
    pub key: ApiKey,
    /// The plaintext key. Show it to its owner once; it is not stored.
    pub plaintext: PlaintextKey,
}

/// A new user to register.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NewUser {
    /// The user's id; a random one when `None`.
    pub id: Option<UserId>,
    /// The unique user name.
    pub user_name: String,
    /// Contact address.
    pub email: Option<String>,
    /// The tenant; the user's keys inherit it.
    pub tenant: Option<Tenant>,
    /// Team-defined metadata.
    pub meta: Meta,
}

impl NewUser {
    /// A user with this user name and nothing else.
    pub fn named(user_name: impl Into<String>) -> Self {
        Self {
            id: None,
            user_name: user_name.into(),
            email: None,
            tenant: None,
            meta: Meta::new(),
        }
    }

    /// Sets the user's id.
    pub fn with_id(mut self, id: UserId) -> Self {
        self.id = Some(id);
        self
    }

    /// Sets the email.
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Sets the tenant.
    pub fn with_tenant(mut self, tenant: Tenant) -> Self {
        self.tenant = Some(tenant);
        self
    }
}

/// A registered user and the keys made for them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Registration {
    /// The stored user.
    pub user: User,
    /// One key per environment × key type.
    pub keys: Vec<IssuedKey>,
}

impl Registration {
    /// The key of `key_type` for `environment`, if one was made.
    pub fn key(&self, key_type: &KeyType, environment: &Environment) -> Option<&IssuedKey> {
        self.keys
            .iter()
            .find(|k| &k.key.key_type == key_type && &k.key.environment == environment)
    }
}

/// A request for one key.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KeyRequest {
    /// The key's type.
    pub key_type: KeyType,
    /// The key's environment.
    pub environment: Environment,
    /// The owner; `None` for a key that belongs to no user.
    pub user_id: Option<UserId>,
    /// The tenant; defaults to the owner's.
    pub tenant: Option<Tenant>,
    /// A name for the key.
    pub name: Option<String>,
    /// What the key may do.
    pub scopes: Scopes,
    /// Lifetime; defaults to `expire_keys_after`.
    pub expires_in: Option<Duration>,
    /// Free-form notes.
    pub notes: Option<String>,
    /// A reference into the team's own systems.
    pub ref_id: Option<String>,
    /// Team-defined metadata.
    pub meta: Meta,
    /// The address ranges the key may be used from; empty for anywhere (or, for a
    /// caller bound to networks, the caller's own).
    pub allowed_networks: Vec<IpNet>,
    /// The key's own rate limits (a limited caller's are added when not named here).
    pub limits: Vec<RateLimit>,
    /// The key's credits; unmetered when `None`. A refill's first instant is set from
    /// the time the key is made when `next_refill_at` is empty.
    pub credits: Option<Credits>,
}

impl KeyRequest {
    /// A request for a key of `key_type` in `environment`, for no user.
    pub fn new(key_type: KeyType, environment: Environment) -> Self {
        Self {
            key_type,
            environment,
            user_id: None,
            tenant: None,
            name: None,
            scopes: Scopes::none(),
            expires_in: None,
            notes: None,
            ref_id: None,
            meta: Meta::new(),
            allowed_networks: Vec::new(),
            limits: Vec::new(),
            credits: None,
        }
    }

    /// Sets the key's rate limits.
    pub fn with_limits(mut self, limits: Vec<RateLimit>) -> Self {
        self.limits = limits;
        self
    }

    /// Meters the key with these credits.
    pub fn with_credits(mut self, credits: Credits) -> Self {
        self.credits = Some(credits);
        self
    }

    /// Sets the owner.
    pub fn for_user(mut self, user_id: UserId) -> Self {
        self.user_id = Some(user_id);
        self
    }

    /// Sets the tenant.
    pub fn with_tenant(mut self, tenant: Tenant) -> Self {
        self.tenant = Some(tenant);
        self
    }

    /// Sets the name.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the scopes.
    pub fn with_scopes(mut self, scopes: Scopes) -> Self {
        self.scopes = scopes;
        self
    }

    /// Sets the lifetime.
    pub fn expires_in(mut self, lifetime: Duration) -> Self {
        self.expires_in = Some(lifetime);
        self
    }
}

/// A change to a stored key: each field set is changed, each `None` left as it is.
/// Made with [`KeyUpdate::new`] and its setters, applied by
/// [`Acting::update_key`](crate::Acting::update_key) within the actor's authority.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyUpdate {
    /// The new name (`Some(None)` removes it).
    pub name: Option<Option<String>>,
    /// The new scopes, replacing the old.
    pub scopes: Option<Scopes>,
    /// The new expiry (`Some(None)`: never expires).
    pub expires_at: Option<Option<DateTime<Utc>>>,
    /// The new notes (`Some(None)` removes them).
    pub notes: Option<Option<String>>,
    /// The new reference id (`Some(None)` removes it).
    pub ref_id: Option<Option<String>>,
    /// The new metadata, replacing the old (its `format` entry cannot change).
    pub meta: Option<Meta>,
    /// The new allowed networks (empty: anywhere).
    pub allowed_networks: Option<Vec<IpNet>>,
    /// Enables (`true`) or disables (`false`) the key.
    pub enabled: Option<bool>,
    /// The key's new rate limits, replacing the old (empty: only the defaults).
    pub limits: Option<Vec<RateLimit>>,
    /// The key's new credits (`Some(None)`: unmetered). Sets the balance outright: a
    /// top-up is a new balance, not an addition.
    pub credits: Option<Option<Credits>>,
}

impl KeyUpdate {
    /// An update that changes nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets (or, with `None`, removes) the name.
    pub fn name(mut self, name: Option<String>) -> Self {
        self.name = Some(name);
        self
    }

    /// Replaces the scopes.
    pub fn scopes(mut self, scopes: Scopes) -> Self {
        self.scopes = Some(scopes);
        self
    }

    /// Sets the expiry (`None`: never).
    pub fn expires_at(mut self, expires_at: Option<DateTime<Utc>>) -> Self {
        self.expires_at = Some(expires_at);
        self
    }

    /// Sets (or removes) the notes.
    pub fn notes(mut self, notes: Option<String>) -> Self {
        self.notes = Some(notes);
        self
    }

    /// Sets (or removes) the reference id.
    pub fn ref_id(mut self, ref_id: Option<String>) -> Self {
        self.ref_id = Some(ref_id);
        self
    }

    /// Replaces the metadata.
    pub fn meta(mut self, meta: Meta) -> Self {
        self.meta = Some(meta);
        self
    }

    /// Replaces the allowed networks (empty: anywhere).
    pub fn allowed_networks(mut self, networks: Vec<IpNet>) -> Self {
        self.allowed_networks = Some(networks);
        self
    }

    /// Enables or disables the key.
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = Some(enabled);
        self
    }

    /// Replaces the rate limits.
    pub fn limits(mut self, limits: Vec<RateLimit>) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Sets the credits (`None`: unmetered).
    pub fn credits(mut self, credits: Option<Credits>) -> Self {
        self.credits = Some(credits);
        self
    }

    /// Whether the update changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The outcome of an update.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KeyUpdated {
    /// The key as now stored.
    pub key: ApiKey,
    /// The fields that changed (`name`, `scopes`, `expires_at`, `notes`, `ref_id`,
    /// `meta`, `allowed_networks`, `enabled`, `limits`, `credits`); empty when the update changed nothing
    /// and nothing was written.
    pub changed: Vec<&'static str>,
    /// Whether the update took authority away (a scope removed, the expiry brought
    /// forward, the key disabled, its networks narrowed): such a change reaches every
    /// instance's caches like a revocation, and ends the tokens exchanged from the
    /// key before it.
    pub narrowed: bool,
}

/// The outcome of a regeneration.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Regenerated {
    /// The new keys, one per key type.
    pub issued: Vec<IssuedKey>,
    /// The old keys, cancelled now or at the end of the grace period.
    pub retired: Vec<ApiKey>,
}

/// What a backfill did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackfillReport {
    /// Users who got keys.
    pub users: usize,
    /// Keys made.
    pub keys: usize,
}
