//! Conformance cases for backfill: batches, and two backfills at once.

use std::collections::HashSet;
use std::sync::Arc;

use keyroute_core::{Environment, KeyOptions, KeyQuery, KeyService, Store, User};

use super::{key, t0, user};

/// The key service backfills 10 000 existing users in batches: one key per
/// environment × type each, users who had keys untouched.
pub(crate) async fn backfill_10_000_users<S: Store>(store: Arc<S>) {
    let users: Vec<User> = (0..10_000)
        .map(|i| user(&format!("imported-{i:05}")))
        .collect();
    for chunk in users.chunks(2_000) {
        store.import_users(chunk).await.unwrap();
    }
    let keyed = user("already-keyed");
    let existing = key(Some(&keyed), Environment::LIVE, t0());
    store
        .create_user(&keyed, std::slice::from_ref(&existing), &[])
        .await
        .unwrap();

    let service = KeyService::new(Arc::clone(&store), KeyOptions::default()).unwrap();
    let report = service.backfill(1_000).await.unwrap();
    assert_eq!((report.users, report.keys), (10_000, 20_000));
    assert!(store.users_missing_keys(None, 10).await.unwrap().is_empty());
    for u in [&users[0], &users[4_999], &users[9_999]] {
        let keys = store
            .get_user_api_keys(&u.id, &KeyQuery::all())
            .await
            .unwrap();
        let envs: HashSet<_> = keys.iter().map(|k| k.environment.clone()).collect();
        assert_eq!(
            envs,
            HashSet::from([Environment::LIVE, Environment::TEST]),
            "{}",
            u.user_name
        );
    }
    let untouched = store
        .get_user_api_keys(&keyed.id, &KeyQuery::all())
        .await
        .unwrap();
    assert_eq!(untouched, [existing]);
    assert_eq!(
        service.backfill(1_000).await.unwrap().users,
        0,
        "a second run finds nobody"
    );
}

/// Two backfills of the same 400 users run at once: every user ends with exactly one
/// key per environment × type, never two sets, and the reports add up to one set each.
pub(crate) async fn concurrent_backfills_key_each_user_once<S: Store + 'static>(store: Arc<S>) {
    let users: Vec<User> = (0..400).map(|i| user(&format!("racing-{i:03}"))).collect();
    store.import_users(&users).await.unwrap();
    let options = KeyOptions::default();
    let per_user = options.environments.len() * options.key_types.len();
    let service = Arc::new(KeyService::new(Arc::clone(&store), options).unwrap());
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let service = Arc::clone(&service);
            tokio::spawn(async move { service.backfill(25).await })
        })
        .collect();
    let mut keyed_users = 0;
    let mut made_keys = 0;
    for run in runs {
        let report = run.await.unwrap().unwrap();
        keyed_users += report.users;
        made_keys += report.keys;
    }
    let mut wrong = Vec::new();
    for u in &users {
        let keys = store
            .get_user_api_keys(&u.id, &KeyQuery::all())
            .await
            .unwrap();
        let kinds: HashSet<_> = keys
            .iter()
            .map(|k| (k.environment.clone(), k.key_type.clone()))
            .collect();
        if keys.len() != per_user || kinds.len() != per_user {
            wrong.push(format!("{}: {} keys", u.user_name, keys.len()));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of 400 users lack exactly one key per environment × type: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    assert_eq!((keyed_users, made_keys), (400, 400 * per_user));
}
