//! The store conformance suite, written once and run against every backend.
//!
//! Each case is a generic `async fn` over any [`Store`]. A backend's test file brings
//! the suite in with [`conformance_suite!`], giving an expression that makes a fresh,
//! empty store and a guard that keeps its database alive for the case; the macro turns
//! every case into a `#[tokio::test]` of that file, so the output names each case per
//! backend.

#![allow(dead_code)]

use std::sync::Arc;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use keyroute_core::{
    ApiKey, Environment, ErrorKind, KeyHash, KeyId, KeyQuery, KeyType, Meta, Scopes, Store,
    StoreError, Tenant, User, UserId,
};

mod audit;
mod backfill;
mod credits;
mod deny;
mod feed;
mod robustness;
mod roll;
mod update;
mod users;
pub(crate) use audit::{
    audit_records_commit_with_their_change, audit_records_filter_page_and_purge,
};
pub(crate) use backfill::{backfill_10_000_users, concurrent_backfills_key_each_user_once};
pub(crate) use credits::{a_due_refill_happens_once, credits_are_spent_atomically};
pub(crate) use deny::{
    deny_list_entries_can_start_later, deny_list_keeps_the_latest_end_and_purges,
    deny_list_reports_when_a_pending_entry_starts,
};
pub(crate) use feed::{
    each_change_publishes_its_event_in_order, every_subscriber_receives_every_event,
    purged_events_are_gone_and_the_feed_goes_on,
};
pub(crate) use robustness::{
    concurrent_issue_and_lookup, concurrent_last_used_batches_never_deadlock,
    injection_shaped_strings_are_data, unicode_and_1kb_values_round_trip,
};
pub(crate) use roll::{
    concurrent_rolls_of_one_key_one_wins, regenerate_is_atomic, regenerate_replaces_keys,
    roll_key_replaces_a_key_once,
};
pub(crate) use update::{
    concurrent_updates_never_undo_each_other, update_key_applies_at_the_read_revision_only,
};
pub(crate) use users::list_users_pages_through_everyone;

/// Instantiates every conformance case as a test, each with a fresh store from `$make`
/// (an expression evaluating to a future of `(store, guard)`).
macro_rules! conformance_suite {
    ($make:expr) => {
        conformance_suite!(@cases $make;
            users_round_trip,
            keys_by_hash_load_their_owner,
            every_key_field_round_trips,
            user_keys_filter_by_environment_and_state,
            cancellation_keeps_the_earliest_time,
            regenerate_replaces_keys,
            regenerate_is_atomic,
            roll_key_replaces_a_key_once,
            concurrent_rolls_of_one_key_one_wins,
            update_key_applies_at_the_read_revision_only,
            concurrent_updates_never_undo_each_other,
            credits_are_spent_atomically,
            a_due_refill_happens_once,
            audit_records_commit_with_their_change,
            audit_records_filter_page_and_purge,
            store_all_is_all_or_nothing,
            keys_need_an_existing_owner,
            touch_last_used_updates_in_one_batch,
            users_missing_keys_pages_in_id_order,
            list_users_pages_through_everyone,
            backfill_10_000_users,
            concurrent_backfills_key_each_user_once,
            concurrent_issue_and_lookup,
            concurrent_last_used_batches_never_deadlock,
            unicode_and_1kb_values_round_trip,
            injection_shaped_strings_are_data,
            init_schema_is_idempotent,
            deny_list_keeps_the_latest_end_and_purges,
            deny_list_entries_can_start_later,
            deny_list_reports_when_a_pending_entry_starts,
            each_change_publishes_its_event_in_order,
            every_subscriber_receives_every_event,
            purged_events_are_gone_and_the_feed_goes_on,
        );
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {$(
        /// A conformance case (see `tests/conformance/mod.rs`).
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            let (store, _guard) = $make.await;
            conformance::$case(std::sync::Arc::new(store)).await;
        }
    )*};
}

/// A fixed instant at microsecond precision, as every backend stores.
fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-02T03:04:05.678901Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn user(name: &str) -> User {
    User::new(UserId::new(format!("user-{name}")).unwrap(), name, t0())
}

fn key(owner: Option<&User>, env: Environment, created: DateTime<Utc>) -> ApiKey {
    let secret = format!("secret-{}", KeyId::random());
    let mut key = ApiKey::new(
        KeyId::random(),
        KeyType::SECRET,
        env,
        KeyHash::of(&secret),
        "sk_test_…abcd",
        created,
    );
    key.user_id = owner.map(|u| u.id.clone());
    key
}

fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(err) => assert_eq!(err.kind(), ErrorKind::Conflict, "{what}: {err}"),
        Ok(v) => panic!("{what}: expected a conflict, got {v:?}"),
    }
}

/// Users are created with their keys, found by id and name, and unique in both.
pub(crate) async fn users_round_trip<S: Store>(store: Arc<S>) {
    let mut ada = user("ada");
    ada.email = Some("ada@example.com".into());
    ada.tenant = Some(Tenant::new("acme").unwrap());
    ada.meta = Meta::from([("plan".into(), "pro".into())]);
    let k = key(Some(&ada), Environment::LIVE, t0());
    store
        .create_user(&ada, std::slice::from_ref(&k), &[])
        .await
        .unwrap();

    assert_eq!(store.get_user(&ada.id).await.unwrap(), Some(ada.clone()));
    assert_eq!(
        store.find_user_by_name("ada").await.unwrap(),
        Some(ada.clone())
    );
    assert_eq!(
        store.find_user_by_name("ADA").await.unwrap(),
        None,
        "names are case-sensitive"
    );
    assert_eq!(
        store
            .get_user(&UserId::new("nobody").unwrap())
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.get_api_key(&k.id).await.unwrap(), Some(k));

    let mut same_id = user("other");
    same_id.id = ada.id.clone();
    assert_conflict(
        store.create_user(&same_id, &[], &[]).await,
        "duplicate user id",
    );
    let mut same_name = user("ada");
    same_name.id = UserId::new("another-id").unwrap();
    assert_conflict(
        store.create_user(&same_name, &[], &[]).await,
        "duplicate user name",
    );
}

/// A lookup by hash returns the key and its owner; unknown hashes are `None`.
pub(crate) async fn keys_by_hash_load_their_owner<S: Store>(store: Arc<S>) {
    let ada = user("ada");
    let owned = key(Some(&ada), Environment::TEST, t0());
    let orphan = key(None, Environment::LIVE, t0());
    store
        .create_user(&ada, std::slice::from_ref(&owned), &[])
        .await
        .unwrap();
    store
        .store_all(std::slice::from_ref(&orphan), &[])
        .await
        .unwrap();

    let found = store
        .get_api_key_by_hash(&owned.hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.key, owned);
    assert_eq!(found.user, Some(ada));
    let found = store
        .get_api_key_by_hash(&orphan.hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.key, found.user), (orphan.clone(), None));

    let unknown = KeyHash::of("never issued");
    assert_eq!(store.get_api_key_by_hash(&unknown).await.unwrap(), None);
    assert!(store.api_key_exists(&orphan.hash).await.unwrap());
    assert!(!store.api_key_exists(&unknown).await.unwrap());
    assert_eq!(store.get_api_key(&KeyId::random()).await.unwrap(), None);
}

/// Every field of a key, optional ones set, reads back exactly.
pub(crate) async fn every_key_field_round_trips<S: Store>(store: Arc<S>) {
    let ada = user("ada");
    store.create_user(&ada, &[], &[]).await.unwrap();
    let mut k = key(Some(&ada), Environment::new("staging").unwrap(), t0());
    k.key_type = KeyType::PUBLISHABLE;
    k.tenant = Some(Tenant::new("tenant-42").unwrap());
    k.name = Some("ci deploy".into());
    k.expires_at = Some(t0() + TimeDelta::days(90));
    k.cancelled_at = Some(t0() + TimeDelta::days(30));
    k.last_used_at = Some(t0() + TimeDelta::seconds(1));
    k.scopes = Scopes::parse(["orders:*", "users:read", "admin"]).unwrap();
    k.notes = Some("rotated quarterly".into());
    k.ref_id = Some("JIRA-123".into());
    k.meta = Meta::from([
        ("team".into(), "payments".into()),
        ("cost-centre".into(), "7".into()),
    ]);
    k.enabled = false;
    k.allowed_networks = ["192.0.2.0/24", "2001:db8::/32"]
        .iter()
        .map(|n| n.parse().unwrap())
        .collect();
    k.revision = 7;
    store
        .store_all(std::slice::from_ref(&k), &[])
        .await
        .unwrap();
    assert_eq!(store.get_api_key(&k.id).await.unwrap(), Some(k.clone()));
    assert_eq!(
        store
            .get_api_key_by_hash(&k.hash)
            .await
            .unwrap()
            .unwrap()
            .key,
        k
    );
}

/// A user's keys filter by environment and by state at an instant, newest first.
pub(crate) async fn user_keys_filter_by_environment_and_state<S: Store>(store: Arc<S>) {
    let ada = user("ada");
    let live_old = key(Some(&ada), Environment::LIVE, t0());
    let live_new = key(Some(&ada), Environment::LIVE, t0() + TimeDelta::seconds(1));
    let mut test_expired = key(Some(&ada), Environment::TEST, t0() + TimeDelta::seconds(2));
    test_expired.expires_at = Some(t0() + TimeDelta::seconds(5));
    let mut test_cancelled = key(Some(&ada), Environment::TEST, t0() + TimeDelta::seconds(3));
    test_cancelled.cancelled_at = Some(t0() + TimeDelta::seconds(6));
    let keys = [
        live_old.clone(),
        live_new.clone(),
        test_expired.clone(),
        test_cancelled.clone(),
    ];
    store.create_user(&ada, &keys, &[]).await.unwrap();
    let bob = user("bob");
    store
        .create_user(&bob, &[key(Some(&bob), Environment::LIVE, t0())], &[])
        .await
        .unwrap();

    let ids = |keys: Vec<ApiKey>| keys.into_iter().map(|k| k.id).collect::<Vec<_>>();
    let all = store
        .get_user_api_keys(&ada.id, &KeyQuery::all())
        .await
        .unwrap();
    assert_eq!(
        ids(all),
        [&test_cancelled, &test_expired, &live_new, &live_old].map(|k| k.id.clone()),
        "newest first"
    );
    let live = KeyQuery::all().in_environment(Environment::LIVE);
    assert_eq!(
        ids(store.get_user_api_keys(&ada.id, &live).await.unwrap()),
        [&live_new, &live_old].map(|k| k.id.clone())
    );
    let before =
        KeyQuery::active_at(t0() + TimeDelta::seconds(4)).in_environment(Environment::TEST);
    assert_eq!(
        ids(store.get_user_api_keys(&ada.id, &before).await.unwrap()).len(),
        2
    );
    let after_expiry =
        KeyQuery::active_at(t0() + TimeDelta::seconds(5)).in_environment(Environment::TEST);
    assert_eq!(
        ids(store
            .get_user_api_keys(&ada.id, &after_expiry)
            .await
            .unwrap()),
        [test_cancelled.id.clone()]
    );
    let after_both = KeyQuery::active_at(t0() + TimeDelta::seconds(6));
    assert_eq!(
        ids(store.get_user_api_keys(&ada.id, &after_both).await.unwrap()),
        [&live_new, &live_old].map(|k| k.id.clone())
    );
    let nobody = store
        .get_user_api_keys(&UserId::new("nobody").unwrap(), &KeyQuery::all())
        .await
        .unwrap();
    assert!(nobody.is_empty());
}

/// Cancelling returns the stored key; cancelling again keeps the earliest time; a
/// scheduled cancellation can be brought forward.
pub(crate) async fn cancellation_keeps_the_earliest_time<S: Store>(store: Arc<S>) {
    let k = key(None, Environment::LIVE, t0());
    store
        .store_all(std::slice::from_ref(&k), &[])
        .await
        .unwrap();
    let at = t0() + TimeDelta::seconds(10);
    let cancelled = store.cancel_key(&k.id, at, &[]).await.unwrap().unwrap();
    assert_eq!(cancelled.cancelled_at, Some(at));
    let again = store
        .cancel_key(&k.id, at + TimeDelta::seconds(5), &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        again.cancelled_at,
        Some(at),
        "a later cancel keeps the earlier time"
    );
    let sooner = store
        .cancel_key(&k.id, at - TimeDelta::seconds(5), &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sooner.cancelled_at, Some(at - TimeDelta::seconds(5)));
    assert_eq!(store.get_api_key(&k.id).await.unwrap(), Some(sooner));
    assert_eq!(
        store.cancel_key(&KeyId::random(), at, &[]).await.unwrap(),
        None
    );
}

/// A batch with one bad key stores none of the batch.
pub(crate) async fn store_all_is_all_or_nothing<S: Store>(store: Arc<S>) {
    let first = key(None, Environment::LIVE, t0());
    store
        .store_all(std::slice::from_ref(&first), &[])
        .await
        .unwrap();
    let a = key(None, Environment::LIVE, t0());
    let b = key(None, Environment::TEST, t0());
    let mut dup = key(None, Environment::TEST, t0());
    dup.hash = first.hash;
    assert_conflict(
        store.store_all(&[a.clone(), b.clone(), dup], &[]).await,
        "duplicate hash",
    );
    let mut same_id = key(None, Environment::TEST, t0());
    same_id.id = first.id.clone();
    assert_conflict(
        store.store_all(&[a.clone(), same_id], &[]).await,
        "duplicate id",
    );
    for k in [a, b] {
        assert!(
            !store.api_key_exists(&k.hash).await.unwrap(),
            "nothing of a failed batch is kept"
        );
    }
    store.store_all(&[], &[]).await.unwrap();
}

/// A key's owner must exist.
pub(crate) async fn keys_need_an_existing_owner<S: Store>(store: Arc<S>) {
    let ghost = user("ghost");
    let k = key(Some(&ghost), Environment::LIVE, t0());
    assert_conflict(
        store.store_all(std::slice::from_ref(&k), &[]).await,
        "key of a missing user",
    );
    assert!(!store.api_key_exists(&k.hash).await.unwrap());
}

/// `touch_last_used` stamps every known key of a batch and counts them.
pub(crate) async fn touch_last_used_updates_in_one_batch<S: Store>(store: Arc<S>) {
    let keys = [
        key(None, Environment::LIVE, t0()),
        key(None, Environment::TEST, t0()),
    ];
    store.store_all(&keys, &[]).await.unwrap();
    let at = t0() + TimeDelta::minutes(3);
    let ids = [keys[0].id.clone(), keys[1].id.clone(), KeyId::random()];
    assert_eq!(store.touch_last_used(&ids, at).await.unwrap(), 2);
    for k in &keys {
        assert_eq!(
            store
                .get_api_key(&k.id)
                .await
                .unwrap()
                .unwrap()
                .last_used_at,
            Some(at)
        );
    }
    assert_eq!(store.touch_last_used(&[], at).await.unwrap(), 0);
}

/// Users without keys come back in id order, page by page, each exactly once.
pub(crate) async fn users_missing_keys_pages_in_id_order<S: Store>(store: Arc<S>) {
    let without: Vec<User> = ["c", "a", "e", "b", "d"].iter().map(|n| user(n)).collect();
    store.import_users(&without).await.unwrap();
    for name in ["x", "y"] {
        let u = user(name);
        store
            .create_user(&u, &[key(Some(&u), Environment::LIVE, t0())], &[])
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut after: Option<UserId> = None;
    loop {
        let page = store.users_missing_keys(after.as_ref(), 2).await.unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        seen.extend(page.into_iter().map(|u| u.user_name));
    }
    assert_eq!(seen, ["a", "b", "c", "d", "e"]);
    assert_conflict(
        store.import_users(&[user("f"), user("a")]).await,
        "import with a taken name",
    );
    assert_eq!(
        store.find_user_by_name("f").await.unwrap(),
        None,
        "a failed import keeps nobody"
    );
}

/// Running the schema set-up again changes nothing.
pub(crate) async fn init_schema_is_idempotent<S: Store>(store: Arc<S>) {
    store.init_schema().await.unwrap();
    store.init_schema().await.unwrap();
    let k = key(None, Environment::LIVE, t0().trunc_subsecs(0));
    store
        .store_all(std::slice::from_ref(&k), &[])
        .await
        .unwrap();
    store.init_schema().await.unwrap();
    assert!(store.api_key_exists(&k.hash).await.unwrap());
}
