//! The rows of keyroute's tables and their conversions to and from the domain types,
//! compiled inside each backend module like `queries.rs` (see `sql/mod.rs`): the
//! backend supplies `schema` and `Ts`, its timestamp type.

use diesel::prelude::*;
use keyroute_core::limits::{Credits, Refill};
use keyroute_core::{
    ApiKey, Environment, KeyHash, KeyId, KeyType, StoreError, StoreResult, Tenant, User, UserId,
};

use super::Ts;
use super::schema::{keyroute_api_keys as keys, keyroute_users as users};
use crate::sql::{
    Timestamp, decode, decode_limits, decode_meta, decode_networks, decode_scopes, encode_limits,
    encode_meta, encode_networks, encode_scopes,
};

/// A `keyroute_users` row.
#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = users, treat_none_as_null = true)]
pub(super) struct UserRow {
    id: String,
    user_name: String,
    email: Option<String>,
    tenant: Option<String>,
    created_at: Ts,
    meta: String,
}

impl UserRow {
    pub(super) fn from_user(user: &User) -> Self {
        Self {
            id: user.id.as_str().to_owned(),
            user_name: user.user_name.clone(),
            email: user.email.clone(),
            tenant: user.tenant.as_ref().map(|t| t.as_str().to_owned()),
            created_at: Ts::from_instant(user.created_at),
            meta: encode_meta(&user.meta),
        }
    }

    pub(super) fn into_user(self) -> StoreResult<User> {
        let mut user = User::new(
            decode("users.id", &self.id, UserId::new)?,
            self.user_name,
            self.created_at.into_instant()?,
        );
        user.email = self.email;
        user.tenant = self
            .tenant
            .map(|t| decode("users.tenant", &t, Tenant::new))
            .transpose()?;
        user.meta = decode_meta("users.meta", &self.meta)?;
        Ok(user)
    }
}

/// The columns an update writes ([`KeyRow`]'s changeable part).
#[derive(AsChangeset)]
#[diesel(table_name = keys, treat_none_as_null = true)]
pub(super) struct KeyChanges {
    name: Option<String>,
    scopes: String,
    expires_at: Option<Ts>,
    notes: Option<String>,
    ref_id: Option<String>,
    meta: String,
    enabled: bool,
    allowed_networks: Option<String>,
    revision: i64,
    limits: Option<String>,
}

impl KeyChanges {
    pub(super) fn of(key: &ApiKey) -> Self {
        Self {
            name: key.name.clone(),
            scopes: encode_scopes(&key.scopes),
            expires_at: key.expires_at.map(Ts::from_instant),
            notes: key.notes.clone(),
            ref_id: key.ref_id.clone(),
            meta: encode_meta(&key.meta),
            enabled: key.enabled,
            allowed_networks: encode_networks(&key.allowed_networks),
            revision: stored_revision(key.revision),
            limits: encode_limits(&key.limits),
        }
    }
}

/// The credit columns of a `keyroute_api_keys` row: what sets a key's credits writes.
#[derive(AsChangeset)]
#[diesel(table_name = keys, treat_none_as_null = true)]
pub(super) struct CreditColumns {
    pub(super) credits_remaining: Option<i64>,
    pub(super) credits_refill: Option<String>,
    pub(super) credits_next_refill_at: Option<Ts>,
}

impl CreditColumns {
    pub(super) fn of(credits: Option<&Credits>) -> Self {
        Self {
            credits_remaining: credits.map(|c| i64::try_from(c.remaining).unwrap_or(i64::MAX)),
            credits_refill: credits.and_then(|c| c.refill).map(|r| r.to_string()),
            credits_next_refill_at: credits.and_then(|c| c.next_refill_at).map(Ts::from_instant),
        }
    }

    /// The credits these columns hold; `None` for an unmetered key.
    pub(super) fn into_credits(self) -> StoreResult<Option<Credits>> {
        let Some(remaining) = self.credits_remaining else {
            return Ok(None);
        };
        let mut credits = Credits::new(u64::try_from(remaining).unwrap_or(0));
        credits.refill = self
            .credits_refill
            .map(|r| decode("api_keys.credits_refill", &r, |r: &str| r.parse::<Refill>()))
            .transpose()?;
        credits.next_refill_at = self
            .credits_next_refill_at
            .map(Timestamp::into_instant)
            .transpose()?;
        Ok(Some(credits))
    }
}

/// A `keyroute_api_keys` row.
#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = keys, treat_none_as_null = true)]
pub(super) struct KeyRow {
    id: String,
    user_id: Option<String>,
    tenant: Option<String>,
    key_type: String,
    environment: String,
    hash: Vec<u8>,
    hint: String,
    name: Option<String>,
    created_at: Ts,
    expires_at: Option<Ts>,
    cancelled_at: Option<Ts>,
    last_used_at: Option<Ts>,
    scopes: String,
    notes: Option<String>,
    ref_id: Option<String>,
    meta: String,
    enabled: bool,
    allowed_networks: Option<String>,
    revision: i64,
    limits: Option<String>,
    credits_remaining: Option<i64>,
    credits_refill: Option<String>,
    credits_next_refill_at: Option<Ts>,
}

/// A revision as stored: a signed 64-bit column (the type every backend has), which a
/// count of updates never fills.
fn stored_revision(revision: u64) -> i64 {
    i64::try_from(revision).unwrap_or(i64::MAX)
}

impl KeyRow {
    pub(super) fn from_key(key: &ApiKey) -> Self {
        let credits = CreditColumns::of(key.credits.as_ref());
        Self {
            id: key.id.as_str().to_owned(),
            user_id: key.user_id.as_ref().map(|u| u.as_str().to_owned()),
            tenant: key.tenant.as_ref().map(|t| t.as_str().to_owned()),
            key_type: key.key_type.as_str().to_owned(),
            environment: key.environment.as_str().to_owned(),
            hash: key.hash.as_bytes().to_vec(),
            hint: key.hint.clone(),
            name: key.name.clone(),
            created_at: Ts::from_instant(key.created_at),
            expires_at: key.expires_at.map(Ts::from_instant),
            cancelled_at: key.cancelled_at.map(Ts::from_instant),
            last_used_at: key.last_used_at.map(Ts::from_instant),
            scopes: encode_scopes(&key.scopes),
            notes: key.notes.clone(),
            ref_id: key.ref_id.clone(),
            meta: encode_meta(&key.meta),
            enabled: key.enabled,
            allowed_networks: encode_networks(&key.allowed_networks),
            revision: stored_revision(key.revision),
            limits: encode_limits(&key.limits),
            credits_remaining: credits.credits_remaining,
            credits_refill: credits.credits_refill,
            credits_next_refill_at: credits.credits_next_refill_at,
        }
    }

    pub(super) fn into_key(self) -> StoreResult<ApiKey> {
        let hash = KeyHash::from_slice(&self.hash).map_err(|len| {
            StoreError::InvalidData(format!("api_keys.hash: {len} bytes, expected 32"))
        })?;
        let mut key = ApiKey::new(
            decode("api_keys.id", &self.id, KeyId::new)?,
            decode("api_keys.key_type", &self.key_type, KeyType::new)?,
            decode("api_keys.environment", &self.environment, Environment::new)?,
            hash,
            self.hint,
            self.created_at.into_instant()?,
        );
        key.user_id = self
            .user_id
            .map(|u| decode("api_keys.user_id", &u, UserId::new))
            .transpose()?;
        key.tenant = self
            .tenant
            .map(|t| decode("api_keys.tenant", &t, Tenant::new))
            .transpose()?;
        key.name = self.name;
        key.expires_at = self.expires_at.map(Timestamp::into_instant).transpose()?;
        key.cancelled_at = self.cancelled_at.map(Timestamp::into_instant).transpose()?;
        key.last_used_at = self.last_used_at.map(Timestamp::into_instant).transpose()?;
        key.scopes = decode_scopes(&self.scopes)?;
        key.notes = self.notes;
        key.ref_id = self.ref_id;
        key.meta = decode_meta("api_keys.meta", &self.meta)?;
        key.enabled = self.enabled;
        key.allowed_networks = decode_networks(self.allowed_networks.as_deref())?;
        key.revision = u64::try_from(self.revision)
            .map_err(|_| StoreError::InvalidData("api_keys.revision: negative".to_owned()))?;
        key.limits = decode_limits(self.limits.as_deref())?;
        key.credits = CreditColumns {
            credits_remaining: self.credits_remaining,
            credits_refill: self.credits_refill,
            credits_next_refill_at: self.credits_next_refill_at,
        }
        .into_credits()?;
        Ok(key)
    }
}
