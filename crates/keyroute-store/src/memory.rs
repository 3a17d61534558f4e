//! [`MemoryStore`]: users and keys in process memory.
//!
//! A product backend, like ServiceStack's `InMemoryAuthRepository`: for single-process
//! services, demos and tests of the code above the store. It keeps the same rules as the
//! SQL backends (unique ids, hashes and user names, keys owned by existing users,
//! all-or-nothing writes) and passes the same conformance suite.
//!
//! One `RwLock` guards all maps. Every write checks everything it will do before
//! changing anything, so a failed call leaves the store as it was. The lock is a std
//! lock because it is never held across an `.await`; lookups take the read side and
//! run concurrently.
//!
//! Changes that other instances' caches must learn of (revocations, rolls, deny-list
//! entries) are published on an in-process broadcast channel while the write lock is
//! held, so an event goes out exactly when its change is made. A subscriber that falls
//! more than [`FEED_CAPACITY`] events behind is told its feed was interrupted.
//!
//! Past 500 lines on purpose: one store's every trait (keys, users, deny-list, feed,
//! audit) over one lock, whose invariants are easiest to check in one place.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keyroute_core::limits::{CreditSpend, Credits};
use keyroute_core::{
    ApiKey, ApiKeyStore, AuditLog, AuditQuery, AuditRecord, ChangeEvent, ChangeFeed, ChangeKind,
    ChangeSubscription, Denial, DenyList, FeedSettings, FeedSignal, KeyHash, KeyId, KeyQuery,
    Regeneration, ResolvedKey, StoreError, StoreResult, User, UserId, UserStore,
};

use crate::UserFilter;

/// How many unread events a subscriber may fall behind before its feed counts as
/// interrupted.
pub(crate) const FEED_CAPACITY: usize = 4096;

/// Users and keys in memory. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct MemoryStore {
    inner: RwLock<Inner>,
    events: tokio::sync::broadcast::Sender<ChangeEvent>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self {
            inner: RwLock::default(),
            events: tokio::sync::broadcast::Sender::new(FEED_CAPACITY),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// Ordered by id, for the backfill's pages.
    users: BTreeMap<UserId, User>,
    user_names: HashMap<String, UserId>,
    keys: HashMap<KeyId, ApiKey>,
    by_hash: HashMap<KeyHash, KeyId>,
    by_user: HashMap<UserId, Vec<KeyId>>,
    /// Denied token and key ids, with the time each entry stops mattering.
    /// Denied id to (from, until); `None` from: at once.
    denied: HashMap<String, (Option<DateTime<Utc>>, DateTime<Utc>)>,
    /// The audit trail, in id order.
    audit: Vec<AuditRecord>,
    /// The last audit id given.
    audit_id: u64,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    // No code panics while holding the lock, and every write validates before it
    // mutates, so a poisoned lock still guards consistent maps.
    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes a change; called with the write lock held. No subscriber is no error.
    fn publish(&self, kind: ChangeKind, subject: &str) {
        let _ = self.events.send(ChangeEvent::new(kind, subject));
    }
}

impl Inner {
    /// Appends `records` to the audit trail, each with the next id.
    fn record(&mut self, records: &[AuditRecord]) {
        for record in records {
            self.audit_id = self.audit_id.saturating_add(1);
            let mut record = record.clone();
            record.id = self.audit_id;
            self.audit.push(record);
        }
    }

    /// Checks that `keys` can all be inserted: new ids and hashes (also among
    /// themselves), owners that exist (or are among `new_users`).
    fn check_new_keys(&self, keys: &[ApiKey], new_users: &[&User]) -> StoreResult<()> {
        let mut ids = std::collections::HashSet::new();
        let mut hashes = std::collections::HashSet::new();
        for key in keys {
            if self.keys.contains_key(&key.id) || !ids.insert(&key.id) {
                return Err(StoreError::Conflict(format!(
                    "a key with id '{}' already exists",
                    key.id
                )));
            }
            if self.by_hash.contains_key(&key.hash) || !hashes.insert(key.hash) {
                return Err(StoreError::Conflict(
                    "a key with the same hash already exists".into(),
                ));
            }
            if let Some(owner) = &key.user_id
                && !self.users.contains_key(owner)
                && !new_users.iter().any(|u| &u.id == owner)
            {
                return Err(StoreError::Conflict(format!(
                    "key '{}' belongs to user '{owner}', who does not exist",
                    key.id
                )));
            }
        }
        Ok(())
    }

    /// Checks that `users` can all be inserted: new ids and user names.
    fn check_new_users(&self, users: &[&User]) -> StoreResult<()> {
        let mut ids = std::collections::HashSet::new();
        let mut names = std::collections::HashSet::new();
        for user in users {
            if self.users.contains_key(&user.id) || !ids.insert(&user.id) {
                return Err(StoreError::Conflict(format!(
                    "a user with id '{}' already exists",
                    user.id
                )));
            }
            if self.user_names.contains_key(&user.user_name) || !names.insert(&user.user_name) {
                return Err(StoreError::Conflict(
                    "a user with that user name already exists".into(),
                ));
            }
        }
        Ok(())
    }

    /// Up to `limit` users that `filter` keeps, in id order, after `after`.
    fn users_page(&self, after: Option<&UserId>, limit: usize, filter: UserFilter) -> Vec<User> {
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.users
            .range::<UserId, _>((start, Bound::Unbounded))
            .map(|(_, user)| user)
            .filter(|user| match filter {
                UserFilter::Any => true,
                UserFilter::WithoutKeys => self.owns_no_key(&user.id),
            })
            .take(limit)
            .cloned()
            .collect()
    }

    /// Whether `user` owns no key at all.
    fn owns_no_key(&self, user: &UserId) -> bool {
        self.by_user.get(user).is_none_or(Vec::is_empty)
    }

    fn insert_user(&mut self, user: &User) {
        self.user_names
            .insert(user.user_name.clone(), user.id.clone());
        self.users.insert(user.id.clone(), user.clone());
    }

    fn insert_key(&mut self, key: &ApiKey) {
        if let Some(owner) = &key.user_id {
            self.by_user
                .entry(owner.clone())
                .or_default()
                .push(key.id.clone());
        }
        self.by_hash.insert(key.hash, key.id.clone());
        self.keys.insert(key.id.clone(), key.clone());
    }
}

#[async_trait]
impl ApiKeyStore for MemoryStore {
    async fn init_schema(&self) -> StoreResult<()> {
        Ok(())
    }

    async fn api_key_exists(&self, hash: &KeyHash) -> StoreResult<bool> {
        Ok(self.read().by_hash.contains_key(hash))
    }

    async fn get_api_key_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<ResolvedKey>> {
        let inner = self.read();
        let Some(key) = inner.by_hash.get(hash).and_then(|id| inner.keys.get(id)) else {
            return Ok(None);
        };
        let user = key
            .user_id
            .as_ref()
            .and_then(|id| inner.users.get(id))
            .cloned();
        Ok(Some(ResolvedKey {
            key: key.clone(),
            user,
        }))
    }

    async fn get_api_key(&self, id: &KeyId) -> StoreResult<Option<ApiKey>> {
        Ok(self.read().keys.get(id).cloned())
    }

    async fn get_user_api_keys(
        &self,
        user_id: &UserId,
        query: &KeyQuery,
    ) -> StoreResult<Vec<ApiKey>> {
        let inner = self.read();
        let mut keys: Vec<ApiKey> = inner
            .by_user
            .get(user_id)
            .into_iter()
            .flatten()
            .filter_map(|id| inner.keys.get(id))
            .filter(|key| query.matches(key))
            .cloned()
            .collect();
        keys.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        Ok(keys)
    }

    async fn store_all(&self, keys: &[ApiKey], audit: &[AuditRecord]) -> StoreResult<()> {
        let mut inner = self.write();
        inner.check_new_keys(keys, &[])?;
        for key in keys {
            inner.insert_key(key);
        }
        inner.record(audit);
        Ok(())
    }

    async fn cancel_key(
        &self,
        id: &KeyId,
        at: DateTime<Utc>,
        audit: &[AuditRecord],
    ) -> StoreResult<Option<ApiKey>> {
        let mut inner = self.write();
        let Some(key) = inner.keys.get_mut(id) else {
            return Ok(None);
        };
        // Only a cancellation brought forward is a change (as the SQL stores see it).
        if key.cancelled_at.is_none_or(|earlier| earlier > at) {
            key.cancelled_at = Some(at);
            let key = key.clone();
            inner.record(audit);
            self.publish(ChangeKind::KeyRevoked, id.as_str());
            return Ok(Some(key));
        }
        Ok(Some(key.clone()))
    }

    async fn roll_key(
        &self,
        old: &KeyId,
        replacement: &ApiKey,
        cancel_at: DateTime<Utc>,
        audit: &[AuditRecord],
    ) -> StoreResult<Option<ApiKey>> {
        let mut inner = self.write();
        if inner.keys.get(old).is_none_or(|k| k.cancelled_at.is_some()) {
            return Ok(None);
        }
        inner.check_new_keys(std::slice::from_ref(replacement), &[])?;
        let Some(key) = inner.keys.get_mut(old) else {
            return Ok(None);
        };
        key.cancelled_at = Some(cancel_at);
        let retired = key.clone();
        inner.insert_key(replacement);
        inner.record(audit);
        self.publish(ChangeKind::KeyRolled, old.as_str());
        Ok(Some(retired))
    }

    async fn update_key(
        &self,
        key: &ApiKey,
        expected_revision: u64,
        audit: &[AuditRecord],
    ) -> StoreResult<Option<ApiKey>> {
        let mut inner = self.write();
        let Some(stored) = inner.keys.get_mut(&key.id) else {
            return Ok(None);
        };
        if stored.revision != expected_revision || stored.cancelled_at.is_some() {
            return Ok(None);
        }
        stored.name.clone_from(&key.name);
        stored.scopes = key.scopes.clone();
        stored.expires_at = key.expires_at;
        stored.notes.clone_from(&key.notes);
        stored.ref_id.clone_from(&key.ref_id);
        stored.meta.clone_from(&key.meta);
        stored.allowed_networks.clone_from(&key.allowed_networks);
        stored.enabled = key.enabled;
        stored.limits.clone_from(&key.limits);
        stored.revision = key.revision;
        let updated = stored.clone();
        inner.record(audit);
        self.publish(ChangeKind::KeyUpdated, key.id.as_str());
        Ok(Some(updated))
    }

    async fn set_credits(
        &self,
        id: &KeyId,
        credits: Option<&Credits>,
        audit: &[AuditRecord],
    ) -> StoreResult<Option<ApiKey>> {
        let mut inner = self.write();
        let Some(stored) = inner.keys.get_mut(id) else {
            return Ok(None);
        };
        if stored.cancelled_at.is_some() {
            return Ok(None);
        }
        stored.credits = credits.copied();
        let updated = stored.clone();
        inner.record(audit);
        self.publish(ChangeKind::KeyUpdated, id.as_str());
        Ok(Some(updated))
    }

    async fn spend_credits(
        &self,
        id: &KeyId,
        cost: u64,
        now: DateTime<Utc>,
    ) -> StoreResult<CreditSpend> {
        let mut inner = self.write();
        let credits = inner.keys.get_mut(id).and_then(|key| key.credits.as_mut());
        Ok(credits.map_or(CreditSpend::Unmetered, |credits| credits.spend(cost, now)))
    }

    async fn regenerate(
        &self,
        regeneration: &Regeneration,
        audit: &[AuditRecord],
    ) -> StoreResult<Vec<ApiKey>> {
        let mut inner = self.write();
        inner.check_new_keys(&regeneration.new_keys, &[])?;
        let retiring: Vec<KeyId> = inner
            .by_user
            .get(&regeneration.user_id)
            .into_iter()
            .flatten()
            .filter(|id| inner.keys.get(*id).is_some_and(|k| regeneration.retires(k)))
            .cloned()
            .collect();
        let mut retired = Vec::with_capacity(retiring.len());
        for id in retiring {
            if let Some(key) = inner.keys.get_mut(&id) {
                key.cancelled_at = Some(regeneration.cancel_at);
                retired.push(key.clone());
            }
        }
        for key in &retired {
            self.publish(ChangeKind::KeyRolled, key.id.as_str());
        }
        for key in &regeneration.new_keys {
            inner.insert_key(key);
        }
        inner.record(audit);
        Ok(retired)
    }

    async fn touch_last_used(&self, ids: &[KeyId], at: DateTime<Utc>) -> StoreResult<u64> {
        let mut inner = self.write();
        let mut touched = 0;
        for id in ids {
            if let Some(key) = inner.keys.get_mut(id) {
                key.last_used_at = Some(at);
                touched += 1;
            }
        }
        Ok(touched)
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn create_user(
        &self,
        user: &User,
        keys: &[ApiKey],
        audit: &[AuditRecord],
    ) -> StoreResult<()> {
        let mut inner = self.write();
        inner.check_new_users(&[user])?;
        inner.check_new_keys(keys, &[user])?;
        inner.insert_user(user);
        for key in keys {
            inner.insert_key(key);
        }
        inner.record(audit);
        Ok(())
    }

    async fn import_users(&self, users: &[User]) -> StoreResult<()> {
        let mut inner = self.write();
        inner.check_new_users(&users.iter().collect::<Vec<_>>())?;
        for user in users {
            inner.insert_user(user);
        }
        Ok(())
    }

    async fn get_user(&self, id: &UserId) -> StoreResult<Option<User>> {
        Ok(self.read().users.get(id).cloned())
    }

    async fn find_user_by_name(&self, user_name: &str) -> StoreResult<Option<User>> {
        let inner = self.read();
        Ok(inner
            .user_names
            .get(user_name)
            .and_then(|id| inner.users.get(id))
            .cloned())
    }

    async fn list_users(&self, after: Option<&UserId>, limit: usize) -> StoreResult<Vec<User>> {
        Ok(self.read().users_page(after, limit, UserFilter::Any))
    }

    async fn count_users(&self) -> StoreResult<u64> {
        Ok(u64::try_from(self.read().users.len()).unwrap_or(u64::MAX))
    }

    async fn users_missing_keys(
        &self,
        after: Option<&UserId>,
        limit: usize,
    ) -> StoreResult<Vec<User>> {
        Ok(self
            .read()
            .users_page(after, limit, UserFilter::WithoutKeys))
    }

    async fn store_backfill(
        &self,
        keys: &[ApiKey],
        audit: &[AuditRecord],
    ) -> StoreResult<Vec<UserId>> {
        // One write lock for the check and the insert: a concurrent backfill waits.
        let mut inner = self.write();
        let fresh: Vec<ApiKey> = keys
            .iter()
            .filter(|k| k.user_id.as_ref().is_some_and(|u| inner.owns_no_key(u)))
            .cloned()
            .collect();
        inner.check_new_keys(&fresh, &[])?;
        let mut seen = std::collections::HashSet::new();
        let mut stored = Vec::new();
        for key in &fresh {
            inner.insert_key(key);
            if let Some(owner) = &key.user_id
                && seen.insert(owner)
            {
                stored.push(owner.clone());
            }
        }
        if !stored.is_empty() {
            inner.record(audit);
        }
        Ok(stored)
    }
}

#[async_trait]
impl DenyList for MemoryStore {
    async fn deny(
        &self,
        id: &str,
        from: Option<DateTime<Utc>>,
        until: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut inner = self.write();
        let entry = inner.denied.entry(id.to_owned()).or_insert((from, until));
        // The earlier start (None, at once, is earliest) and the later end.
        entry.0 = match (entry.0, from) {
            (Some(a), Some(b)) => Some(a.min(b)),
            _ => None,
        };
        entry.1 = entry.1.max(until);
        self.publish(ChangeKind::Denied, id);
        Ok(())
    }

    async fn denial(&self, ids: &[&str], now: DateTime<Utc>) -> StoreResult<Denial> {
        let inner = self.read();
        Ok(Denial::of_entries(
            ids.iter().filter_map(|id| inner.denied.get(*id).copied()),
            now,
        ))
    }

    async fn purge_denied(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let mut inner = self.write();
        let before = inner.denied.len();
        inner.denied.retain(|_, (_, until)| *until > now);
        Ok((before - inner.denied.len()) as u64)
    }
}

#[async_trait]
impl AuditLog for MemoryStore {
    async fn audit_records(&self, query: &AuditQuery) -> StoreResult<Vec<AuditRecord>> {
        Ok(self
            .read()
            .audit
            .iter()
            .filter(|record| query.matches(record))
            .take(query.page_size())
            .cloned()
            .collect())
    }

    async fn purge_audit(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let mut inner = self.write();
        let was = inner.audit.len();
        inner.audit.retain(|record| record.at >= before);
        Ok(u64::try_from(was.saturating_sub(inner.audit.len())).unwrap_or(u64::MAX))
    }

    async fn append_audit(&self, records: &[AuditRecord]) -> StoreResult<()> {
        self.write().record(records);
        Ok(())
    }
}

#[async_trait]
impl ChangeFeed for MemoryStore {
    async fn subscribe(&self, _settings: &FeedSettings) -> Option<Box<dyn ChangeSubscription>> {
        Some(Box::new(MemorySubscription {
            events: self.events.subscribe(),
            live: false,
        }))
    }
}

/// A subscriber to a [`MemoryStore`]'s broadcast.
struct MemorySubscription {
    events: tokio::sync::broadcast::Receiver<ChangeEvent>,
    /// Whether `Live` was said since the last interruption.
    live: bool,
}

#[async_trait]
impl ChangeSubscription for MemorySubscription {
    async fn next(&mut self) -> FeedSignal {
        use tokio::sync::broadcast::error::RecvError;
        if !self.live {
            self.live = true;
            return FeedSignal::Live;
        }
        match self.events.recv().await {
            Ok(event) => FeedSignal::Change(event),
            Err(RecvError::Lagged(missed)) => {
                // Reading on from here is possible, but the missed events are gone.
                self.live = false;
                FeedSignal::Interrupted {
                    reason: format!("the subscriber fell {missed} events behind"),
                }
            }
            // The store is gone: nothing will ever be published again.
            Err(RecvError::Closed) => std::future::pending().await,
        }
    }
}
