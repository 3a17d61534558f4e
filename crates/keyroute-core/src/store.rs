//! The store traits every backend implements: the memory store and the diesel-async
//! backends in `keyroute-store`, or a team's own.
//!
//! They cover ServiceStack's `IManageApiKeys` (init schema, exists, get by key, get a
//! user's keys, store all) and what a key service needs on top: users, cancellation,
//! atomic regeneration, backfill and batched last-used stamps. Lookups go by the key's
//! SHA-256 hash only; "not found" is `Ok(None)`, never an error.
//!
//! Every write takes the [`AuditRecord`]s of its change and keeps them in the same
//! transaction (see [`AuditLog`]): a write that changes nothing (a key already
//! cancelled, a roll or update that lost a race) records nothing; one that fails
//! records nothing. Pass `&[]` to write without a record (imports, fixtures).
//!
//! Past 500 lines on purpose: the traits and the `Arc` forwarding impls that let a
//! shared store be a store are one contract; a team implementing a store reads them
//! together.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::audit::{AuditLog, AuditRecord};
use crate::error::StoreResult;
use crate::feed::ChangeFeed;
use crate::ids::{KeyId, UserId};
use crate::limits::{CreditSpend, Credits};
use crate::model::{ApiKey, User};
use crate::name::Environment;
use crate::secret::KeyHash;

/// A key found by its hash, with its owner loaded in the same lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedKey {
    /// The key record.
    pub key: ApiKey,
    /// The owning user, if the key has one.
    pub user: Option<User>,
}

/// Which of a user's keys to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyQuery {
    /// Only keys of this environment; `None` for all.
    pub environment: Option<Environment>,
    /// Only keys neither cancelled nor expired at this instant; `None` for all keys.
    pub active_at: Option<DateTime<Utc>>,
}

impl KeyQuery {
    /// Every key of the user.
    pub fn all() -> Self {
        Self::default()
    }

    /// The keys that work at `now`.
    pub fn active_at(now: DateTime<Utc>) -> Self {
        Self {
            environment: None,
            active_at: Some(now),
        }
    }

    /// Restricts the query to one environment.
    pub fn in_environment(mut self, environment: Environment) -> Self {
        self.environment = Some(environment);
        self
    }

    /// Whether `key` matches this query. Backends that filter in memory use it; SQL
    /// backends express the same rule in their `WHERE` clause.
    pub fn matches(&self, key: &ApiKey) -> bool {
        self.environment
            .as_ref()
            .is_none_or(|e| *e == key.environment)
            && self.active_at.is_none_or(|now| key.is_active(now))
    }
}

/// An atomic regeneration: cancel a user's keys in one environment and store new ones.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Regeneration {
    /// Whose keys.
    pub user_id: UserId,
    /// Which environment.
    pub environment: Environment,
    /// The replacement keys, already generated.
    pub new_keys: Vec<ApiKey>,
    /// When the old keys stop working: now, or later for a grace period.
    pub cancel_at: DateTime<Utc>,
}

impl Regeneration {
    /// A regeneration of `user_id`'s keys in `environment`.
    pub fn new(
        user_id: UserId,
        environment: Environment,
        new_keys: Vec<ApiKey>,
        cancel_at: DateTime<Utc>,
    ) -> Self {
        Self {
            user_id,
            environment,
            new_keys,
            cancel_at,
        }
    }

    /// Whether `key` is one this regeneration retires: the user's key in the
    /// environment that would still work at `cancel_at`.
    pub fn retires(&self, key: &ApiKey) -> bool {
        key.user_id.as_ref() == Some(&self.user_id)
            && key.environment == self.environment
            && key.cancelled_at.is_none_or(|at| at > self.cancel_at)
    }
}

/// Storage of API keys.
#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// Creates the tables if needed (runs migrations). Idempotent.
    async fn init_schema(&self) -> StoreResult<()>;

    /// Whether a key with this hash exists (in any state).
    async fn api_key_exists(&self, hash: &KeyHash) -> StoreResult<bool>;

    /// The key with this hash and its owner, in one indexed lookup; any state.
    async fn get_api_key_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<ResolvedKey>>;

    /// The key with this id; any state.
    async fn get_api_key(&self, id: &KeyId) -> StoreResult<Option<ApiKey>>;

    /// A user's keys matching `query`, newest first.
    async fn get_user_api_keys(
        &self,
        user_id: &UserId,
        query: &KeyQuery,
    ) -> StoreResult<Vec<ApiKey>>;

    /// Stores new keys, all or none.
    ///
    /// A duplicate id or hash is [`StoreError::Conflict`](crate::StoreError::Conflict).
    async fn store_all(&self, keys: &[ApiKey], audit: &[AuditRecord]) -> StoreResult<()>;

    /// Cancels a key at `at` and returns it as now stored; `None` if there is no such
    /// key. A key already cancelled earlier keeps its earlier cancellation time.
    async fn cancel_key(
        &self,
        id: &KeyId,
        at: DateTime<Utc>,
        audit: &[AuditRecord],
    ) -> StoreResult<Option<ApiKey>>;

    /// Rolls one key, atomically: cancels `old` at `cancel_at` and stores
    /// `replacement`, but only while `old` has no cancellation (neither revoked nor
    /// rolled before). Returns the old key as now stored, or `None` when there is no
    /// such key or it was already cancelled; then nothing has changed. Of two rolls of
    /// one key racing each other, exactly one changes anything.
    ///
    /// A replacement whose id or hash is taken is
    /// [`StoreError::Conflict`](crate::StoreError::Conflict), and nothing has changed.
    async fn roll_key(
        &self,
        old: &KeyId,
        replacement: &ApiKey,
        cancel_at: DateTime<Utc>,
        audit: &[AuditRecord],
    ) -> StoreResult<Option<ApiKey>>;

    /// Stores `key`'s changeable fields (name, scopes, expiry, notes, reference id,
    /// metadata, allowed networks, enabled, revision), but only while the stored key
    /// is at `expected_revision` and not cancelled; publishes
    /// [`ChangeKind::KeyUpdated`](crate::ChangeKind::KeyUpdated) in the same
    /// transaction. Returns the key as now stored, or `None` when there is no such
    /// key, it was cancelled, or another update got there first; then nothing has
    /// changed. The other fields (id, owner, type, environment, hash, times) are
    /// never written.
    async fn update_key(
        &self,
        key: &ApiKey,
        expected_revision: u64,
        audit: &[AuditRecord],
    ) -> StoreResult<Option<ApiKey>>;

    /// Sets key `id`'s credits outright (`None`: unmetered), with `audit`, and
    /// publishes [`ChangeKind::KeyUpdated`](crate::ChangeKind::KeyUpdated), all in one
    /// transaction. Returns the key as now stored, or `None` when there is no such key
    /// or it is cancelled.
    async fn set_credits(
        &self,
        id: &KeyId,
        credits: Option<&Credits>,
        audit: &[AuditRecord],
    ) -> StoreResult<Option<ApiKey>>;

    /// Spends `cost` of key `id`'s credits at `now`, all or nothing, atomically
    /// against every other instance: first the refill that is due, if one is (applied
    /// by exactly one writer, however many race for it), then the cost if the balance
    /// covers it. [`CreditSpend::Unmetered`] for a key without credits (or no key).
    async fn spend_credits(
        &self,
        id: &KeyId,
        cost: u64,
        now: DateTime<Utc>,
    ) -> StoreResult<CreditSpend>;

    /// Atomically cancels (at `cancel_at`) every key [`Regeneration::retires`] and
    /// stores the new keys; returns the retired keys as now stored. On any error
    /// nothing has changed.
    async fn regenerate(
        &self,
        regeneration: &Regeneration,
        audit: &[AuditRecord],
    ) -> StoreResult<Vec<ApiKey>>;

    /// Records that the keys in `ids` were used at about `at`, in one write. Called
    /// with batches, never per request. Returns how many keys were updated.
    async fn touch_last_used(&self, ids: &[KeyId], at: DateTime<Utc>) -> StoreResult<u64>;
}

/// Storage of users.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates a user together with its first keys, all or none.
    ///
    /// A duplicate id or user name is [`StoreError::Conflict`](crate::StoreError::Conflict).
    async fn create_user(
        &self,
        user: &User,
        keys: &[ApiKey],
        audit: &[AuditRecord],
    ) -> StoreResult<()>;

    /// Imports existing users (no keys) in one transaction: for teams bringing an
    /// existing user base, whose keys [`backfill`](crate::KeyService::backfill) then makes.
    async fn import_users(&self, users: &[User]) -> StoreResult<()>;

    /// The user with this id.
    async fn get_user(&self, id: &UserId) -> StoreResult<Option<User>>;

    /// The user with this user name.
    async fn find_user_by_name(&self, user_name: &str) -> StoreResult<Option<User>>;

    /// Up to `limit` users, with keys or without, in id order, after `after`: keyset
    /// paging, so each page is one indexed range read however far in it starts.
    async fn list_users(&self, after: Option<&UserId>, limit: usize) -> StoreResult<Vec<User>>;

    /// How many users there are.
    async fn count_users(&self) -> StoreResult<u64>;

    /// Up to `limit` users who own no key at all, in id order, after `after`: the
    /// pages of a backfill.
    async fn users_missing_keys(
        &self,
        after: Option<&UserId>,
        limit: usize,
    ) -> StoreResult<Vec<User>>;

    /// Stores a backfill batch: `keys` (each with a `user_id`) for the users who still
    /// own no key at all; the keys of a user who got one meanwhile (from another
    /// backfill running at the same time, or any other path) are skipped. Returns the
    /// users whose keys were stored. Atomic: all of them or, on error, none.
    ///
    /// Checking and inserting must be one step that a concurrent backfill cannot
    /// interleave with (a row lock on the users, a write lock, a mutex): checking with
    /// [`users_missing_keys`](Self::users_missing_keys) and then calling
    /// [`store_all`](ApiKeyStore::store_all) gives users two key sets when two
    /// backfills run at once, so there is no default.
    async fn store_backfill(
        &self,
        keys: &[ApiKey],
        audit: &[AuditRecord],
    ) -> StoreResult<Vec<UserId>>;
}

/// What the deny-list says about some ids at one instant: whether one of them is
/// denied now and, if none is, when the first entry among them that starts later
/// begins (a key rolled with a grace period is denied from the grace's end). A cache
/// of "not denied" must not be trusted past that start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denial {
    denied: bool,
    pending_from: Option<DateTime<Utc>>,
}

impl Denial {
    /// One of the ids is denied now.
    pub const DENIED: Self = Self {
        denied: true,
        pending_from: None,
    };

    /// No entry for any of the ids denies now or later.
    pub const ALLOWED: Self = Self {
        denied: false,
        pending_from: None,
    };

    /// None of the ids is denied at the instant asked about; the first entry among
    /// them starts at `from`, after that instant.
    pub fn pending(from: DateTime<Utc>) -> Self {
        Self {
            denied: false,
            pending_from: Some(from),
        }
    }

    /// The answer at `now` from the entries of the asked ids, each given as its start
    /// (`None`: at once) and its end. An entry denies from its start until its end;
    /// one that has ended, or starts only once it has ended, denies nothing.
    pub fn of_entries(
        entries: impl IntoIterator<Item = (Option<DateTime<Utc>>, DateTime<Utc>)>,
        now: DateTime<Utc>,
    ) -> Self {
        let mut answer = Self::ALLOWED;
        for (from, until) in entries {
            match from {
                _ if until <= now => {}
                None => return Self::DENIED,
                Some(from) if from <= now => return Self::DENIED,
                Some(from) if from < until => {
                    answer.pending_from = Some(answer.pending_from.map_or(from, |p| p.min(from)));
                }
                Some(_) => {}
            }
        }
        answer
    }

    /// Whether one of the ids is denied now.
    pub fn is_denied(&self) -> bool {
        self.denied
    }

    /// When none is denied now: the start of the first entry among the ids that
    /// denies later, if any. `None` when one is denied now.
    pub fn pending_from(&self) -> Option<DateTime<Utc>> {
        self.pending_from
    }
}

/// Revoked token and key ids, for verifiers of self-contained tokens (JWTs), which
/// no key lookup would otherwise stop.
///
/// An entry names a JWT's `jti` or an API key's id; a JWT is refused if either its
/// own id or the id of the key it came from is denied. Entries carry the time after
/// which they no longer matter (the token would have expired anyway) and are purged
/// after it, and may start later than now (a key rolled with a grace period is denied
/// from the end of its grace): a lookup reports that start, so a verifier that caches
/// the answer knows when it stops being true.
#[async_trait]
pub trait DenyList: Send + Sync {
    /// Denies `id` from `from` (`None`: at once) until `until`. Denying an id again
    /// keeps the earlier start and the later end.
    async fn deny(
        &self,
        id: &str,
        from: Option<DateTime<Utc>>,
        until: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Whether any of `ids` is denied at `now` and, if none is, the earliest start
    /// after `now` of an entry among them ([`Denial::of_entries`] computes it from the
    /// entries). One read: callers ask on the request path.
    async fn denial(&self, ids: &[&str], now: DateTime<Utc>) -> StoreResult<Denial>;

    /// Whether any of `ids` is denied at `now`: [`denial`](Self::denial), without the
    /// pending start. Implementations need not override it.
    async fn is_denied(&self, ids: &[&str], now: DateTime<Utc>) -> StoreResult<bool> {
        Ok(self.denial(ids, now).await?.is_denied())
    }

    /// Removes entries that ended before `now`; returns how many.
    async fn purge_denied(&self, now: DateTime<Utc>) -> StoreResult<u64>;
}

/// Everything a store backend provides: keys, users, the deny-list, the change feed
/// (whose methods all have defaults: `impl ChangeFeed for MyStore {}` is a store that
/// publishes no changes) and the audit trail.
pub trait Store: ApiKeyStore + UserStore + DenyList + ChangeFeed + AuditLog {}

impl<T: ApiKeyStore + UserStore + DenyList + ChangeFeed + AuditLog + ?Sized> Store for T {}

/// A store shared behind one pointer, whatever backend it is: the one type app state,
/// the front door and the HTTP layer name. A call through it costs one pointer hop on
/// top of the boxed future every store call already makes.
pub type KeyStore = std::sync::Arc<dyn Store>;

// A shared store is a store too, so a service and a resolver can hold one each.
#[async_trait]
impl<S: ApiKeyStore + ?Sized> ApiKeyStore for std::sync::Arc<S> {
    async fn init_schema(&self) -> StoreResult<()> {
        (**self).init_schema().await
    }
    async fn api_key_exists(&self, hash: &KeyHash) -> StoreResult<bool> {
        (**self).api_key_exists(hash).await
    }
    async fn get_api_key_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<ResolvedKey>> {
        (**self).get_api_key_by_hash(hash).await
    }
    async fn get_api_key(&self, id: &KeyId) -> StoreResult<Option<ApiKey>> {
        (**self).get_api_key(id).await
    }
    async fn get_user_api_keys(
        &self,
        user_id: &UserId,
        query: &KeyQuery,
    ) -> StoreResult<Vec<ApiKey>> {
        (**self).get_user_api_keys(user_id, query).await
    }
    async fn store_all(&self, keys: &[ApiKey], audit: &[AuditRecord]) -> StoreResult<()> {
        (**self).store_all(keys, audit).await
    }
    async fn cancel_key(
        &self,
        id: &KeyId,
        at: DateTime<Utc>,
        audit: &[AuditRecord],
    ) -> StoreResult<Option<ApiKey>> {
        (**self).cancel_key(id, at, audit).await
    }
    async fn roll_key(
        &self,
        old: &KeyId,
        replacement: &ApiKey,
        cancel_at: DateTime<Utc>,
        audit: &[AuditRecord],
    ) -> StoreResult<Option<ApiKey>> {
        (**self).roll_key(old, replacement, cancel_at, audit).await
    }
    async fn update_key(
        &self,
        key: &ApiKey,
        expected_revision: u64,
        audit: &[AuditRecord],
    ) -> StoreResult<Option<ApiKey>> {
        (**self).update_key(key, expected_revision, audit).await
    }
    async fn set_credits(
        &self,
        id: &KeyId,
        credits: Option<&Credits>,
        audit: &[AuditRecord],
    ) -> StoreResult<Option<ApiKey>> {
        (**self).set_credits(id, credits, audit).await
    }
    async fn spend_credits(
        &self,
        id: &KeyId,
        cost: u64,
        now: DateTime<Utc>,
    ) -> StoreResult<CreditSpend> {
        (**self).spend_credits(id, cost, now).await
    }
    async fn regenerate(
        &self,
        regeneration: &Regeneration,
        audit: &[AuditRecord],
    ) -> StoreResult<Vec<ApiKey>> {
        (**self).regenerate(regeneration, audit).await
    }
    async fn touch_last_used(&self, ids: &[KeyId], at: DateTime<Utc>) -> StoreResult<u64> {
        (**self).touch_last_used(ids, at).await
    }
}

#[async_trait]
impl<S: UserStore + ?Sized> UserStore for std::sync::Arc<S> {
    async fn create_user(
        &self,
        user: &User,
        keys: &[ApiKey],
        audit: &[AuditRecord],
    ) -> StoreResult<()> {
        (**self).create_user(user, keys, audit).await
    }
    async fn import_users(&self, users: &[User]) -> StoreResult<()> {
        (**self).import_users(users).await
    }
    async fn get_user(&self, id: &UserId) -> StoreResult<Option<User>> {
        (**self).get_user(id).await
    }
    async fn find_user_by_name(&self, user_name: &str) -> StoreResult<Option<User>> {
        (**self).find_user_by_name(user_name).await
    }
    async fn list_users(&self, after: Option<&UserId>, limit: usize) -> StoreResult<Vec<User>> {
        (**self).list_users(after, limit).await
    }
    async fn count_users(&self) -> StoreResult<u64> {
        (**self).count_users().await
    }
    async fn users_missing_keys(
        &self,
        after: Option<&UserId>,
        limit: usize,
    ) -> StoreResult<Vec<User>> {
        (**self).users_missing_keys(after, limit).await
    }
    async fn store_backfill(
        &self,
        keys: &[ApiKey],
        audit: &[AuditRecord],
    ) -> StoreResult<Vec<UserId>> {
        (**self).store_backfill(keys, audit).await
    }
}

#[async_trait]
impl<S: DenyList + ?Sized> DenyList for std::sync::Arc<S> {
    async fn deny(
        &self,
        id: &str,
        from: Option<DateTime<Utc>>,
        until: DateTime<Utc>,
    ) -> StoreResult<()> {
        (**self).deny(id, from, until).await
    }
    async fn denial(&self, ids: &[&str], now: DateTime<Utc>) -> StoreResult<Denial> {
        (**self).denial(ids, now).await
    }
    async fn purge_denied(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        (**self).purge_denied(now).await
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    /// An entry denies from its start until its end; among pending entries the
    /// earliest start is reported; ended entries and ones starting after their end
    /// deny nothing.
    #[test]
    fn denial_of_entries_reports_the_earliest_pending_start() {
        let now = DateTime::<Utc>::UNIX_EPOCH + TimeDelta::days(20_000);
        let at = |minutes: i64| now + TimeDelta::minutes(minutes);
        assert_eq!(Denial::of_entries([], now), Denial::ALLOWED);
        assert_eq!(Denial::of_entries([(None, at(1))], now), Denial::DENIED);
        assert_eq!(
            Denial::of_entries([(Some(now), at(1))], now),
            Denial::DENIED
        );
        assert_eq!(
            Denial::of_entries([(None, now), (Some(at(-5)), at(-1))], now),
            Denial::ALLOWED,
            "ended entries deny nothing"
        );
        assert_eq!(
            Denial::of_entries([(Some(at(9)), at(20)), (Some(at(4)), at(20))], now),
            Denial::pending(at(4))
        );
        assert_eq!(
            Denial::of_entries([(Some(at(4)), at(20)), (None, at(1))], now),
            Denial::DENIED,
            "denied now wins over pending"
        );
        assert_eq!(
            Denial::of_entries([(Some(at(5)), at(5))], now),
            Denial::ALLOWED,
            "an entry ending when it starts never denies"
        );
        assert_eq!(Denial::pending(at(4)).pending_from(), Some(at(4)));
        assert!(!Denial::pending(at(4)).is_denied());
    }
}
