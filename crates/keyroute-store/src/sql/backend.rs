//! [`StoreBackend`]: a keyroute-pool [`Backend`] the key store runs on, and the contract
//! each backend module keeps.
//!
//! The queries are written once (`queries.rs`, `events.rs`, `notify.rs`) and compiled
//! inside each backend module through `#[path]` includes, so diesel's types stay
//! concrete. What those includes implement is stated here, as the sealed traits
//! [`StoreBackend`] requires: `queries.rs` implements [`KeyQueries`](sealed::KeyQueries),
//! [`UserQueries`](sealed::UserQueries) and [`DenyQueries`](sealed::DenyQueries) for its
//! backend's marker, `events.rs` (or `notify.rs` on PostgreSQL) [`FeedQueries`](sealed::FeedQueries),
//! and the backend module [`Migrations`](sealed::Migrations). A backend module that
//! leaves one out does not compile at its `impl StoreBackend`, and `SqlStore<B>` is a
//! [`Store`](keyroute_core::Store) for every `B: StoreBackend` (see `dispatch.rs`), so
//! code generic over backends writes `B: StoreBackend` and needs no
//! `where SqlStore<B>: Store`.

use std::future::Future;

use chrono::{DateTime, Utc};
use keyroute_core::limits::{CreditSpend, Credits};
use keyroute_core::{
    ApiKey, AuditRecord, BoxError, ChangeKind, ChangeSubscription, Denial, FeedSettings, KeyHash,
    KeyId, KeyQuery, Regeneration, ResolvedKey, StoreResult, User, UserId,
};
use keyroute_pool::{Backend, OwnedConnection};

use super::SqlStore;

/// A SQL backend the key store runs on: keyroute-pool's [`Backend`] with keyroute's own
/// tables, queries, change feed and embedded migrations. Sealed: implemented for
/// [`Postgres`](keyroute_pool::Postgres), [`Mysql`](keyroute_pool::Mysql) and
/// [`Sqlite`](keyroute_pool::Sqlite), each behind its feature.
///
/// [`SqlStore<B>`](SqlStore) implements [`Store`](keyroute_core::Store) for every
/// `B: StoreBackend`.
pub trait StoreBackend:
    Backend
    + sealed::Migrations
    + sealed::KeyQueries
    + sealed::UserQueries
    + sealed::DenyQueries
    + sealed::FeedQueries
    + sealed::AuditQueries
{
}

/// The versions of keyroute's own migrations for backend `B`, oldest first: what
/// `init_schema` applies to the key store, and what schema-parity checks leave out.
pub fn keyroute_migration_versions<B: StoreBackend>() -> Vec<String> {
    B::keyroute_migrations()
}

/// The contract of a backend module and its `#[path]` includes, one trait per core
/// store trait. Unnameable outside this crate, so only keyroute-store implements
/// [`StoreBackend`]. Each method is the core trait's method of the same name, with the
/// store passed in (an impl on the marker cannot take `&self` as the store).
pub(crate) mod sealed {
    use super::*;

    /// keyroute's embedded migrations (the backend module, `postgres.rs` etc.).
    pub trait Migrations: Backend + Sized {
        /// Runs keyroute's embedded migrations on `conn`. Called on a blocking thread.
        fn run_migrations(conn: OwnedConnection<Self>) -> Result<(), BoxError>;

        /// The versions of keyroute's own embedded migrations, oldest first.
        fn keyroute_migrations() -> Vec<String>;
    }

    /// [`ApiKeyStore`](keyroute_core::ApiKeyStore)'s queries (`queries.rs`);
    /// `init_schema` is [`SqlStore::migrate`] on every backend.
    pub trait KeyQueries: Backend + Sized {
        /// See [`ApiKeyStore::api_key_exists`](keyroute_core::ApiKeyStore::api_key_exists).
        fn api_key_exists(
            store: &SqlStore<Self>,
            hash: &KeyHash,
        ) -> impl Future<Output = StoreResult<bool>> + Send;
        /// See [`ApiKeyStore::get_api_key_by_hash`](keyroute_core::ApiKeyStore::get_api_key_by_hash).
        fn get_api_key_by_hash(
            store: &SqlStore<Self>,
            hash: &KeyHash,
        ) -> impl Future<Output = StoreResult<Option<ResolvedKey>>> + Send;
        /// See [`ApiKeyStore::get_api_key`](keyroute_core::ApiKeyStore::get_api_key).
        fn get_api_key(
            store: &SqlStore<Self>,
            id: &KeyId,
        ) -> impl Future<Output = StoreResult<Option<ApiKey>>> + Send;
        /// See [`ApiKeyStore::get_user_api_keys`](keyroute_core::ApiKeyStore::get_user_api_keys).
        fn get_user_api_keys(
            store: &SqlStore<Self>,
            user_id: &UserId,
            query: &KeyQuery,
        ) -> impl Future<Output = StoreResult<Vec<ApiKey>>> + Send;
        /// See [`ApiKeyStore::store_all`](keyroute_core::ApiKeyStore::store_all).
        fn store_all(
            store: &SqlStore<Self>,
            keys: &[ApiKey],
            audit: &[AuditRecord],
        ) -> impl Future<Output = StoreResult<()>> + Send;
        /// See [`ApiKeyStore::cancel_key`](keyroute_core::ApiKeyStore::cancel_key).
        fn cancel_key(
            store: &SqlStore<Self>,
            id: &KeyId,
            at: DateTime<Utc>,
            audit: &[AuditRecord],
        ) -> impl Future<Output = StoreResult<Option<ApiKey>>> + Send;
        /// See [`ApiKeyStore::roll_key`](keyroute_core::ApiKeyStore::roll_key).
        fn roll_key(
            store: &SqlStore<Self>,
            old: &KeyId,
            replacement: &ApiKey,
            cancel_at: DateTime<Utc>,
            audit: &[AuditRecord],
        ) -> impl Future<Output = StoreResult<Option<ApiKey>>> + Send;
        /// See [`ApiKeyStore::update_key`](keyroute_core::ApiKeyStore::update_key).
        fn update_key(
            store: &SqlStore<Self>,
            key: &ApiKey,
            expected_revision: u64,
            audit: &[AuditRecord],
        ) -> impl Future<Output = StoreResult<Option<ApiKey>>> + Send;
        /// See [`ApiKeyStore::set_credits`](keyroute_core::ApiKeyStore::set_credits).
        fn set_credits(
            store: &SqlStore<Self>,
            id: &KeyId,
            credits: Option<&Credits>,
            audit: &[AuditRecord],
        ) -> impl Future<Output = StoreResult<Option<ApiKey>>> + Send;
        /// See [`ApiKeyStore::spend_credits`](keyroute_core::ApiKeyStore::spend_credits).
        fn spend_credits(
            store: &SqlStore<Self>,
            id: &KeyId,
            cost: u64,
            now: DateTime<Utc>,
        ) -> impl Future<Output = StoreResult<CreditSpend>> + Send;
        /// See [`ApiKeyStore::regenerate`](keyroute_core::ApiKeyStore::regenerate).
        fn regenerate(
            store: &SqlStore<Self>,
            regeneration: &Regeneration,
            audit: &[AuditRecord],
        ) -> impl Future<Output = StoreResult<Vec<ApiKey>>> + Send;
        /// See [`ApiKeyStore::touch_last_used`](keyroute_core::ApiKeyStore::touch_last_used).
        fn touch_last_used(
            store: &SqlStore<Self>,
            ids: &[KeyId],
            at: DateTime<Utc>,
        ) -> impl Future<Output = StoreResult<u64>> + Send;
    }

    /// [`UserStore`](keyroute_core::UserStore)'s queries (`queries.rs`).
    pub trait UserQueries: Backend + Sized {
        /// See [`UserStore::create_user`](keyroute_core::UserStore::create_user).
        fn create_user(
            store: &SqlStore<Self>,
            user: &User,
            keys: &[ApiKey],
            audit: &[AuditRecord],
        ) -> impl Future<Output = StoreResult<()>> + Send;
        /// See [`UserStore::import_users`](keyroute_core::UserStore::import_users).
        fn import_users(
            store: &SqlStore<Self>,
            users: &[User],
        ) -> impl Future<Output = StoreResult<()>> + Send;
        /// See [`UserStore::get_user`](keyroute_core::UserStore::get_user).
        fn get_user(
            store: &SqlStore<Self>,
            id: &UserId,
        ) -> impl Future<Output = StoreResult<Option<User>>> + Send;
        /// See [`UserStore::find_user_by_name`](keyroute_core::UserStore::find_user_by_name).
        fn find_user_by_name(
            store: &SqlStore<Self>,
            user_name: &str,
        ) -> impl Future<Output = StoreResult<Option<User>>> + Send;
        /// See [`UserStore::list_users`](keyroute_core::UserStore::list_users).
        fn list_users(
            store: &SqlStore<Self>,
            after: Option<&UserId>,
            limit: usize,
        ) -> impl Future<Output = StoreResult<Vec<User>>> + Send;
        /// See [`UserStore::count_users`](keyroute_core::UserStore::count_users).
        fn count_users(store: &SqlStore<Self>) -> impl Future<Output = StoreResult<u64>> + Send;
        /// See [`UserStore::users_missing_keys`](keyroute_core::UserStore::users_missing_keys).
        fn users_missing_keys(
            store: &SqlStore<Self>,
            after: Option<&UserId>,
            limit: usize,
        ) -> impl Future<Output = StoreResult<Vec<User>>> + Send;
        /// See [`UserStore::store_backfill`](keyroute_core::UserStore::store_backfill).
        fn store_backfill(
            store: &SqlStore<Self>,
            keys: &[ApiKey],
            audit: &[AuditRecord],
        ) -> impl Future<Output = StoreResult<Vec<UserId>>> + Send;
    }

    /// [`DenyList`](keyroute_core::DenyList)'s queries (`queries.rs`); `is_denied` is
    /// the core trait's own, on `denial`.
    pub trait DenyQueries: Backend + Sized {
        /// See [`DenyList::deny`](keyroute_core::DenyList::deny).
        fn deny(
            store: &SqlStore<Self>,
            id: &str,
            from: Option<DateTime<Utc>>,
            until: DateTime<Utc>,
        ) -> impl Future<Output = StoreResult<()>> + Send;
        /// See [`DenyList::denial`](keyroute_core::DenyList::denial).
        fn denial(
            store: &SqlStore<Self>,
            ids: &[&str],
            now: DateTime<Utc>,
        ) -> impl Future<Output = StoreResult<Denial>> + Send;
        /// See [`DenyList::purge_denied`](keyroute_core::DenyList::purge_denied).
        fn purge_denied(
            store: &SqlStore<Self>,
            now: DateTime<Utc>,
        ) -> impl Future<Output = StoreResult<u64>> + Send;
    }

    /// The change feed (`events.rs`, or `notify.rs` on PostgreSQL): how a write
    /// publishes its change, and [`ChangeFeed`](keyroute_core::ChangeFeed)'s methods.
    /// [`AuditLog`](keyroute_core::AuditLog)'s queries (`audit.rs`), and the insert every
    /// write makes in its transaction.
    pub trait AuditQueries: Backend + Sized {
        /// See [`AuditLog::audit_records`](keyroute_core::AuditLog::audit_records).
        fn audit_records(
            store: &SqlStore<Self>,
            query: &keyroute_core::AuditQuery,
        ) -> impl Future<Output = StoreResult<Vec<AuditRecord>>> + Send;
        /// See [`AuditLog::purge_audit`](keyroute_core::AuditLog::purge_audit).
        fn purge_audit(
            store: &SqlStore<Self>,
            before: DateTime<Utc>,
        ) -> impl Future<Output = StoreResult<u64>> + Send;
        /// See [`AuditLog::append_audit`](keyroute_core::AuditLog::append_audit).
        fn append_audit(
            store: &SqlStore<Self>,
            records: &[AuditRecord],
        ) -> impl Future<Output = StoreResult<()>> + Send;
    }

    pub trait FeedQueries: Backend + Sized {
        /// Publishes one event per subject inside the caller's transaction (`queries.rs`
        /// calls it as each changing transaction's last write).
        fn publish(
            conn: &mut Self::Connection,
            kind: ChangeKind,
            subjects: &[&str],
        ) -> impl Future<Output = diesel::QueryResult<()>> + Send;
        /// See [`ChangeFeed::subscribe`](keyroute_core::ChangeFeed::subscribe).
        fn subscribe(
            store: &SqlStore<Self>,
            settings: &FeedSettings,
        ) -> impl Future<Output = Option<Box<dyn ChangeSubscription>>> + Send;
        /// See [`ChangeFeed::purge_events`](keyroute_core::ChangeFeed::purge_events).
        fn purge_events(
            store: &SqlStore<Self>,
            before: DateTime<Utc>,
        ) -> impl Future<Output = StoreResult<u64>> + Send;
        /// See [`SqlStore::verify_feed`]: nothing to check where the feed is polled.
        fn verify_feed(store: &SqlStore<Self>) -> impl Future<Output = StoreResult<()>> + Send {
            let _ = store;
            async { Ok(()) }
        }
    }
}

/// The body of every backend's [`Migrations`](sealed::Migrations): diesel's harness,
/// run over diesel-async's wrapper, on the backend's embedded `$migrations`.
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
macro_rules! keyroute_migrations {
    ($migrations:expr) => {
        fn run_migrations(
            conn: keyroute_pool::OwnedConnection<Self>,
        ) -> Result<(), keyroute_core::BoxError> {
            use diesel_migrations::MigrationHarness as _;
            diesel_async::AsyncMigrationHarness::new(conn).run_pending_migrations($migrations)?;
            Ok(())
        }

        fn keyroute_migrations() -> Vec<String> {
            use diesel::migration::Migration as _;
            let migrations =
                diesel::migration::MigrationSource::<keyroute_pool::BackendDb<Self>>::migrations(
                    &$migrations,
                )
                .unwrap_or_default();
            let mut versions: Vec<String> = migrations
                .iter()
                .map(|m| m.name().version().to_string())
                .collect();
            versions.sort();
            versions
        }
    };
}
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub(crate) use keyroute_migrations;
