//! [`CountingStore`]: any store, with a count of the calls made through it.
//!
//! For tests that prove a path makes no store call (a cached resolve, a JWT request),
//! and for a team that wants to export its store traffic as metrics.

use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keyroute_core::limits::{CreditSpend, Credits};
use keyroute_core::{
    ApiKey, ApiKeyStore, AuditLog, AuditQuery, AuditRecord, ChangeFeed, ChangeSubscription, Denial,
    DenyList, FeedSettings, KeyHash, KeyId, KeyQuery, Regeneration, ResolvedKey, StoreResult, User,
    UserId, UserStore,
};

/// Wraps a store and counts the calls made through it.
#[derive(Debug, Default)]
pub struct CountingStore<S> {
    inner: S,
    calls: AtomicU64,
    lookups: AtomicU64,
    touches: AtomicU64,
}

impl<S> CountingStore<S> {
    /// Counts the calls made to `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            calls: AtomicU64::new(0),
            lookups: AtomicU64::new(0),
            touches: AtomicU64::new(0),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Every call so far, of any kind.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Lookups of a key by hash: what resolving an uncached API key costs.
    pub fn lookups(&self) -> u64 {
        self.lookups.load(Ordering::Relaxed)
    }

    /// Batched last-used writes.
    pub fn touches(&self) -> u64 {
        self.touches.load(Ordering::Relaxed)
    }

    fn count(&self, counter: Option<&AtomicU64>) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if let Some(counter) = counter {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[async_trait]
impl<S: ApiKeyStore> ApiKeyStore for CountingStore<S> {
    async fn init_schema(&self) -> StoreResult<()> {
        self.count(None);
        self.inner.init_schema().await
    }
    async fn api_key_exists(&self, hash: &KeyHash) -> StoreResult<bool> {
        self.count(None);
        self.inner.api_key_exists(hash).await
    }
    async fn get_api_key_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<ResolvedKey>> {
        self.count(Some(&self.lookups));
        self.inner.get_api_key_by_hash(hash).await
    }
    async fn get_api_key(&self, id: &KeyId) -> StoreResult<Option<ApiKey>> {
        self.count(None);
        self.inner.get_api_key(id).await
    }
    async fn get_user_api_keys(
        &self,
        user_id: &UserId,
        query: &KeyQuery,
    ) -> StoreResult<Vec<ApiKey>> {
        self.count(None);
        self.inner.get_user_api_keys(user_id, query).await
    }
    async fn store_all(&self, keys: &[ApiKey], audit: &[AuditRecord]) -> StoreResult<()> {
        self.count(None);
        self.inner.store_all(keys, audit).await
    }
    async fn cancel_key(
        &self,
        id: &KeyId,
        at: DateTime<Utc>,
        audit: &[AuditRecord],
    ) -> StoreResult<Option<ApiKey>> {
        self.count(None);
        self.inner.cancel_key(id, at, audit).await
    }
    async fn roll_key(
        &self,
        old: &KeyId,
        replacement: &ApiKey,
        cancel_at: DateTime<Utc>,
        audit: &[AuditRecord],
    ) -> StoreResult<Option<ApiKey>> {
        self.count(None);
        self.inner
            .roll_key(old, replacement, cancel_at, audit)
            .await
    }
    async fn update_key(
        &self,
        key: &ApiKey,
        expected_revision: u64,
        audit: &[AuditRecord],
    ) -> StoreResult<Option<ApiKey>> {
        self.count(None);
        self.inner.update_key(key, expected_revision, audit).await
    }
    async fn set_credits(
        &self,
        id: &KeyId,
        credits: Option<&Credits>,
        audit: &[AuditRecord],
    ) -> StoreResult<Option<ApiKey>> {
        self.count(None);
        self.inner.set_credits(id, credits, audit).await
    }
    async fn spend_credits(
        &self,
        id: &KeyId,
        cost: u64,
        now: DateTime<Utc>,
    ) -> StoreResult<CreditSpend> {
        self.count(None);
        self.inner.spend_credits(id, cost, now).await
    }
    async fn regenerate(
        &self,
        regeneration: &Regeneration,
        audit: &[AuditRecord],
    ) -> StoreResult<Vec<ApiKey>> {
        self.count(None);
        self.inner.regenerate(regeneration, audit).await
    }
    async fn touch_last_used(&self, ids: &[KeyId], at: DateTime<Utc>) -> StoreResult<u64> {
        self.count(Some(&self.touches));
        self.inner.touch_last_used(ids, at).await
    }
}

#[async_trait]
impl<S: UserStore> UserStore for CountingStore<S> {
    async fn create_user(
        &self,
        user: &User,
        keys: &[ApiKey],
        audit: &[AuditRecord],
    ) -> StoreResult<()> {
        self.count(None);
        self.inner.create_user(user, keys, audit).await
    }
    async fn import_users(&self, users: &[User]) -> StoreResult<()> {
        self.count(None);
        self.inner.import_users(users).await
    }
    async fn get_user(&self, id: &UserId) -> StoreResult<Option<User>> {
        self.count(None);
        self.inner.get_user(id).await
    }
    async fn find_user_by_name(&self, user_name: &str) -> StoreResult<Option<User>> {
        self.count(None);
        self.inner.find_user_by_name(user_name).await
    }
    async fn list_users(&self, after: Option<&UserId>, limit: usize) -> StoreResult<Vec<User>> {
        self.count(None);
        self.inner.list_users(after, limit).await
    }
    async fn count_users(&self) -> StoreResult<u64> {
        self.count(None);
        self.inner.count_users().await
    }
    async fn users_missing_keys(
        &self,
        after: Option<&UserId>,
        limit: usize,
    ) -> StoreResult<Vec<User>> {
        self.count(None);
        self.inner.users_missing_keys(after, limit).await
    }
    async fn store_backfill(
        &self,
        keys: &[ApiKey],
        audit: &[AuditRecord],
    ) -> StoreResult<Vec<UserId>> {
        self.count(None);
        self.inner.store_backfill(keys, audit).await
    }
}

#[async_trait]
impl<S: DenyList> DenyList for CountingStore<S> {
    async fn deny(
        &self,
        id: &str,
        from: Option<DateTime<Utc>>,
        until: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.count(None);
        self.inner.deny(id, from, until).await
    }
    async fn denial(&self, ids: &[&str], now: DateTime<Utc>) -> StoreResult<Denial> {
        self.count(None);
        self.inner.denial(ids, now).await
    }
    async fn purge_denied(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        self.count(None);
        self.inner.purge_denied(now).await
    }
}

#[async_trait]
impl<S: AuditLog> AuditLog for CountingStore<S> {
    async fn audit_records(&self, query: &AuditQuery) -> StoreResult<Vec<AuditRecord>> {
        self.count(None);
        self.inner.audit_records(query).await
    }
    async fn purge_audit(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        self.count(None);
        self.inner.purge_audit(before).await
    }
    async fn append_audit(&self, records: &[AuditRecord]) -> StoreResult<()> {
        self.count(None);
        self.inner.append_audit(records).await
    }
}

/// The feed passes through uncounted: subscribing is once per instance, not per request.
#[async_trait]
impl<S: ChangeFeed> ChangeFeed for CountingStore<S> {
    async fn subscribe(&self, settings: &FeedSettings) -> Option<Box<dyn ChangeSubscription>> {
        self.inner.subscribe(settings).await
    }
    async fn purge_events(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        self.count(None);
        self.inner.purge_events(before).await
    }
}
