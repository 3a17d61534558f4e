//! Shared by the router's tests: a store that counts its lookups, and fixtures.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use http::HeaderMap;
use keyroute_core::{
    ApiKey, ApiKeyStore, DenyList, KeyHash, KeyId, KeyQuery, Regeneration, ResolvedKey,
    StoreResult, User, UserId, UserStore,
};
use keyroute_store::MemoryStore;

/// A real store that counts the calls the resolver's hot path could make.
#[derive(Debug, Default)]
pub struct CountingStore {
    pub inner: MemoryStore,
    pub lookups: AtomicUsize,
    pub touches: AtomicUsize,
}

impl CountingStore {
    pub fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl ApiKeyStore for CountingStore {
    async fn init_schema(&self) -> StoreResult<()> {
        self.inner.init_schema().await
    }
    async fn api_key_exists(&self, hash: &KeyHash) -> StoreResult<bool> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        self.inner.api_key_exists(hash).await
    }
    async fn get_api_key_by_hash(&self, hash: &KeyHash) -> StoreResult<Option<ResolvedKey>> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        self.inner.get_api_key_by_hash(hash).await
    }
    async fn get_api_key(&self, id: &KeyId) -> StoreResult<Option<ApiKey>> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        self.inner.get_api_key(id).await
    }
    async fn get_user_api_keys(
        &self,
        user_id: &UserId,
        query: &KeyQuery,
    ) -> StoreResult<Vec<ApiKey>> {
        self.inner.get_user_api_keys(user_id, query).await
    }
    async fn store_all(&self, keys: &[ApiKey]) -> StoreResult<()> {
        self.inner.store_all(keys).await
    }
    async fn cancel_key(&self, id: &KeyId, at: DateTime<Utc>) -> StoreResult<Option<ApiKey>> {
        self.inner.cancel_key(id, at).await
    }
    async fn regenerate(&self, regeneration: &Regeneration) -> StoreResult<Vec<ApiKey>> {
        self.inner.regenerate(regeneration).await
    }
    async fn touch_last_used(&self, ids: &[KeyId], at: DateTime<Utc>) -> StoreResult<u64> {
        self.touches.fetch_add(1, Ordering::SeqCst);
        self.inner.touch_last_used(ids, at).await
    }
}

#[async_trait]
impl UserStore for CountingStore {
    async fn create_user(&self, user: &User, keys: &[ApiKey]) -> StoreResult<()> {
        self.inner.create_user(user, keys).await
    }
    async fn import_users(&self, users: &[User]) -> StoreResult<()> {
        self.inner.import_users(users).await
    }
    async fn get_user(&self, id: &UserId) -> StoreResult<Option<User>> {
        self.inner.get_user(id).await
    }
    async fn find_user_by_name(&self, user_name: &str) -> StoreResult<Option<User>> {
        self.inner.find_user_by_name(user_name).await
    }
    async fn users_missing_keys(
        &self,
        after: Option<&UserId>,
        limit: usize,
    ) -> StoreResult<Vec<User>> {
        self.inner.users_missing_keys(after, limit).await
    }
}

#[async_trait]
impl DenyList for CountingStore {
    async fn deny(&self, id: &str, until: DateTime<Utc>) -> StoreResult<()> {
        self.inner.deny(id, until).await
    }
    async fn is_denied(&self, ids: &[&str], now: DateTime<Utc>) -> StoreResult<bool> {
        self.inner.is_denied(ids, now).await
    }
    async fn purge_denied(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        self.inner.purge_denied(now).await
    }
}

/// Headers carrying `key` as a bearer token.
pub fn bearer(key: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {key}").parse().unwrap(),
    );
    headers
}

/// A fixed start for manual clocks.
pub fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-05-01T09:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// Shared ownership helper for stores handed to services and resolvers.
pub fn shared<T>(value: T) -> Arc<T> {
    Arc::new(value)
}
