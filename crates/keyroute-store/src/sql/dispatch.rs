//! The core store traits for every [`SqlStore<B>`](SqlStore) with `B: StoreBackend`,
//! each method handing over to `B`'s queries (see `backend.rs` for why they live on
//! the marker). One impl for all backends is what lets generic code write
//! `B: StoreBackend` and use the store, with no `where SqlStore<B>: Store`.
//!
//! The backends' methods return `impl Future + Send` rather than boxed futures, so a
//! call through here boxes once (async-trait's box), as a direct impl did.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keyroute_core::limits::{CreditSpend, Credits};
use keyroute_core::{
    ApiKey, ApiKeyStore, AuditLog, AuditQuery, AuditRecord, ChangeFeed, ChangeSubscription, Denial,
    DenyList, FeedSettings, KeyHash, KeyId, KeyQuery, Regeneration, ResolvedKey, StoreResult, User,
    UserId, UserStore,
};

use super::{SqlStore, StoreBackend};

#[async_trait]
impl<B: StoreBackend> ApiKeyStore for SqlStore<B> {
    async fn init_schema(&self) -> StoreResult<()> {
        self.migrate().await
    }

    async fn api_key_exists(&self, hash: &KeyHash) -> StoreResult<bool> {
        B::api_key_exists(self, hash).await
    }

    async fn get_api_key_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<ResolvedKey>> {
        B::get_api_key_by_hash(self, hash).await
    }

    async fn get_api_key(&self, id: &KeyId) -> StoreResult<Option<ApiKey>> {
        B::get_api_key(self, id).await
    }

    async fn get_user_api_keys(
        &self,
        user_id: &UserId,
        query: &KeyQuery,
    ) -> StoreResult<Vec<ApiKey>> {
        B::get_user_api_keys(self, user_id, query).await
    }

    async fn store_all(&self, keys: &[ApiKey], audit: &[AuditRecord]) -> StoreResult<()> {
        B::store_all(self, keys, audit).await
    }

    async fn cancel_key(
        &self,
        id: &KeyId,
        at: DateTime<Utc>,
        audit: &[AuditRecord],
    ) -> StoreResult<Option<ApiKey>> {
        B::cancel_key(self, id, at, audit).await
    }

    async fn roll_key(
        &self,
        old: &KeyId,
        replacement: &ApiKey,
        cancel_at: DateTime<Utc>,
        audit: &[AuditRecord],
    ) -> StoreResult<Option<ApiKey>> {
        B::roll_key(self, old, replacement, cancel_at, audit).await
    }
    async fn update_key(
        &self,
        key: &ApiKey,
        expected_revision: u64,
        audit: &[AuditRecord],
    ) -> StoreResult<Option<ApiKey>> {
        B::update_key(self, key, expected_revision, audit).await
    }
    async fn set_credits(
        &self,
        id: &KeyId,
        credits: Option<&Credits>,
        audit: &[AuditRecord],
    ) -> StoreResult<Option<ApiKey>> {
        B::set_credits(self, id, credits, audit).await
    }
    async fn spend_credits(
        &self,
        id: &KeyId,
        cost: u64,
        now: DateTime<Utc>,
    ) -> StoreResult<CreditSpend> {
        B::spend_credits(self, id, cost, now).await
    }
    async fn regenerate(
        &self,
        regeneration: &Regeneration,
        audit: &[AuditRecord],
    ) -> StoreResult<Vec<ApiKey>> {
        B::regenerate(self, regeneration, audit).await
    }

    async fn touch_last_used(&self, ids: &[KeyId], at: DateTime<Utc>) -> StoreResult<u64> {
        B::touch_last_used(self, ids, at).await
    }
}

#[async_trait]
impl<B: StoreBackend> UserStore for SqlStore<B> {
    async fn create_user(
        &self,
        user: &User,
        keys: &[ApiKey],
        audit: &[AuditRecord],
    ) -> StoreResult<()> {
        B::create_user(self, user, keys, audit).await
    }

    async fn import_users(&self, users: &[User]) -> StoreResult<()> {
        B::import_users(self, users).await
    }

    async fn get_user(&self, id: &UserId) -> StoreResult<Option<User>> {
        B::get_user(self, id).await
    }

    async fn find_user_by_name(&self, user_name: &str) -> StoreResult<Option<User>> {
        B::find_user_by_name(self, user_name).await
    }

    async fn list_users(&self, after: Option<&UserId>, limit: usize) -> StoreResult<Vec<User>> {
        B::list_users(self, after, limit).await
    }

    async fn count_users(&self) -> StoreResult<u64> {
        B::count_users(self).await
    }

    async fn users_missing_keys(
        &self,
        after: Option<&UserId>,
        limit: usize,
    ) -> StoreResult<Vec<User>> {
        B::users_missing_keys(self, after, limit).await
    }

    async fn store_backfill(
        &self,
        keys: &[ApiKey],
        audit: &[AuditRecord],
    ) -> StoreResult<Vec<UserId>> {
        B::store_backfill(self, keys, audit).await
    }
}

#[async_trait]
impl<B: StoreBackend> AuditLog for SqlStore<B> {
    async fn audit_records(&self, query: &AuditQuery) -> StoreResult<Vec<AuditRecord>> {
        B::audit_records(self, query).await
    }

    async fn purge_audit(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        B::purge_audit(self, before).await
    }

    async fn append_audit(&self, records: &[AuditRecord]) -> StoreResult<()> {
        B::append_audit(self, records).await
    }
}

#[async_trait]
impl<B: StoreBackend> DenyList for SqlStore<B> {
    async fn deny(
        &self,
        id: &str,
        from: Option<DateTime<Utc>>,
        until: DateTime<Utc>,
    ) -> StoreResult<()> {
        B::deny(self, id, from, until).await
    }

    async fn denial(&self, ids: &[&str], now: DateTime<Utc>) -> StoreResult<Denial> {
        B::denial(self, ids, now).await
    }

    async fn purge_denied(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        B::purge_denied(self, now).await
    }
}

#[async_trait]
impl<B: StoreBackend> ChangeFeed for SqlStore<B> {
    async fn subscribe(&self, settings: &FeedSettings) -> Option<Box<dyn ChangeSubscription>> {
        B::subscribe(self, settings).await
    }

    async fn purge_events(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        B::purge_events(self, before).await
    }
}
