//! The stored records: [`User`] and [`ApiKey`].
//!
//! Both are `#[non_exhaustive]` so fields can be added without breaking users: make them
//! with `new` and set the optional fields, which are public.

use std::collections::BTreeMap;

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use ipnet::IpNet;

use crate::ids::{KeyId, UserId};
use crate::limits::{Credits, RateLimit};
use crate::name::{Environment, KeyType, Tenant};
use crate::scope::Scopes;
use crate::secret::KeyHash;

/// Free-form string metadata a team attaches to users and keys.
pub type Meta = BTreeMap<String, String>;

/// A user who may own keys.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct User {
    /// The user's id.
    pub id: UserId,
    /// The unique name the user is found by.
    pub user_name: String,
    /// Contact address, if known.
    pub email: Option<String>,
    /// The tenant the user belongs to; their keys inherit it.
    pub tenant: Option<Tenant>,
    /// When the user was created.
    pub created_at: DateTime<Utc>,
    /// Team-defined metadata.
    pub meta: Meta,
}

impl User {
    /// A user with no email, tenant or metadata.
    pub fn new(id: UserId, user_name: impl Into<String>, created_at: DateTime<Utc>) -> Self {
        Self {
            id,
            user_name: user_name.into(),
            email: None,
            tenant: None,
            created_at,
            meta: Meta::new(),
        }
    }
}

/// Whether a key works at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyStatus {
    /// Neither cancelled nor expired.
    Active,
    /// Its expiry has passed.
    Expired,
    /// It was revoked (or rolled, and its grace period is over).
    Cancelled,
}

/// A stored API key: everything about it except the secret, of which only the SHA-256
/// hash is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiKey {
    /// The key's id (not secret).
    pub id: KeyId,
    /// The owning user; a key may belong to no user (a service's own key).
    pub user_id: Option<UserId>,
    /// The tenant, for multitenant routing.
    pub tenant: Option<Tenant>,
    /// The key's type.
    pub key_type: KeyType,
    /// The key's environment: which database its requests reach.
    pub environment: Environment,
    /// SHA-256 of the plaintext key.
    pub hash: KeyHash,
    /// What the key is shown as: prefix and last four characters.
    pub hint: String,
    /// A name its owner gave it ("ci deploy").
    pub name: Option<String>,
    /// When the key was created.
    pub created_at: DateTime<Utc>,
    /// When the key stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// When the key was (or will be, after a roll's grace period) cancelled.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Roughly when the key was last used (written in batches, not per request).
    pub last_used_at: Option<DateTime<Utc>>,
    /// What the key may do.
    pub scopes: Scopes,
    /// Free-form notes.
    pub notes: Option<String>,
    /// A reference to something in the team's own systems.
    pub ref_id: Option<String>,
    /// Team-defined metadata.
    pub meta: Meta,
    /// Whether the key is switched on. A disabled key is refused (`disabled_key`)
    /// until it is enabled again; unlike a revoked key it keeps its secret.
    pub enabled: bool,
    /// The address ranges requests with this key may come from; empty for anywhere.
    /// Requests from elsewhere are refused (`network_not_allowed`).
    pub allowed_networks: Vec<IpNet>,
    /// How many times the key's settings were updated. A store refuses an update
    /// made from an older read of the key, so concurrent updates never undo each
    /// other (a rename racing a narrowing cannot write the old scopes back).
    pub revision: u64,
    /// The key's own rate limits (each counted for the key, its user or its tenant),
    /// on top of the configured defaults; one named like a default replaces it.
    pub limits: Vec<RateLimit>,
    /// The key's credits, if it is metered: each request spends its cost, and a key
    /// with too few left is refused (`credits_exhausted`). The balance here is as of
    /// the read; the store holds the live one.
    pub credits: Option<Credits>,
}

impl ApiKey {
    /// A key record with the required parts; the rest start empty.
    pub fn new(
        id: KeyId,
        key_type: KeyType,
        environment: Environment,
        hash: KeyHash,
        hint: impl Into<String>,
        created_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            user_id: None,
            tenant: None,
            key_type,
            environment,
            hash,
            hint: hint.into(),
            name: None,
            created_at,
            expires_at: None,
            cancelled_at: None,
            last_used_at: None,
            scopes: Scopes::none(),
            notes: None,
            ref_id: None,
            meta: Meta::new(),
            enabled: true,
            allowed_networks: Vec::new(),
            revision: 0,
            limits: Vec::new(),
            credits: None,
        }
    }

    /// Whether a request from `address` may use this key: any address when the key
    /// has no allowed networks, else one inside them (an IPv4 address written as
    /// IPv6, `::ffff:a.b.c.d`, counts as the IPv4 address). `None`, an address not
    /// known, is allowed only for a key bound to no network.
    pub fn allows_address(&self, address: Option<IpAddr>) -> bool {
        if self.allowed_networks.is_empty() {
            return true;
        }
        let Some(address) = address else {
            return false;
        };
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            v4 => v4,
        };
        self.allowed_networks
            .iter()
            .any(|net| net.contains(&address))
    }

    /// Whether the key works at `now`. Cancellation wins over expiry.
    pub fn status(&self, now: DateTime<Utc>) -> KeyStatus {
        if self.cancelled_at.is_some_and(|at| at <= now) {
            KeyStatus::Cancelled
        } else if self.expires_at.is_some_and(|at| at <= now) {
            KeyStatus::Expired
        } else {
            KeyStatus::Active
        }
    }

    /// Whether the key works at `now` as far as its lifetime goes (neither cancelled
    /// nor expired). A disabled key is still active: it counts towards
    /// `max_keys_per_user` and is listed, and is refused when presented.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.status(now) == KeyStatus::Active
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    /// Expiry and cancellation take effect at their instant; a future cancellation
    /// (a roll's grace period) leaves the key working until then.
    #[test]
    fn status_over_time() {
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let mut key = ApiKey::new(
            KeyId::random(),
            KeyType::SECRET,
            Environment::LIVE,
            KeyHash::of("x"),
            "sk_live_…",
            t0,
        );
        assert_eq!(key.status(t0), KeyStatus::Active);
        key.expires_at = Some(t0 + TimeDelta::seconds(10));
        assert_eq!(key.status(t0 + TimeDelta::seconds(9)), KeyStatus::Active);
        assert_eq!(key.status(t0 + TimeDelta::seconds(10)), KeyStatus::Expired);
        key.cancelled_at = Some(t0 + TimeDelta::seconds(5));
        assert_eq!(key.status(t0 + TimeDelta::seconds(4)), KeyStatus::Active);
        assert_eq!(
            key.status(t0 + TimeDelta::seconds(20)),
            KeyStatus::Cancelled
        );
    }
}
