//! Conformance cases for hostile and heavy input: concurrency, unicode and long
//! values, SQL-injection-shaped strings.

use std::collections::HashSet;
use std::sync::Arc;

use keyroute_core::{Environment, KeyOptions, KeyService, Meta, Store, User, UserId};

use super::{key, t0, user};

/// Many tasks register users and look keys up at once; every lookup finds its key.
pub(crate) async fn concurrent_issue_and_lookup<S: Store + 'static>(store: Arc<S>) {
    let service = Arc::new(KeyService::new(Arc::clone(&store), KeyOptions::default()).unwrap());
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let service = Arc::clone(&service);
            tokio::spawn(async move {
                let registration = service
                    .register_user(keyroute_core::NewUser::named(format!("concurrent-{i}")))
                    .await
                    .unwrap();
                for issued in &registration.keys {
                    let found = service
                        .store()
                        .get_api_key_by_hash(&issued.plaintext.hash())
                        .await
                        .unwrap();
                    assert_eq!(found.unwrap().key.id, issued.key.id);
                }
                registration.user.id
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for task in tasks {
        ids.insert(task.await.unwrap());
    }
    assert_eq!(ids.len(), 64);
}

/// Unicode and 1 kB user names, key names, notes and metadata read back exactly.
pub(crate) async fn unicode_and_1kb_values_round_trip<S: Store>(store: Arc<S>) {
    let long_name = "ü".repeat(512); // 1024 bytes
    assert_eq!(long_name.len(), 1024);
    let mut u = User::new(
        UserId::new("unicode-user").unwrap(),
        long_name.clone(),
        t0(),
    );
    u.email = Some("名前@例え.jp".into());
    u.meta = Meta::from([("🔑".into(), "値".repeat(341))]);
    let mut k = key(Some(&u), Environment::LIVE, t0());
    k.name = Some("ключ 🗝️ ".repeat(64));
    k.notes = Some("x".repeat(1024));
    k.meta = Meta::from([("ελληνικά".into(), "🚀".repeat(256))]);
    store
        .create_user(&u, std::slice::from_ref(&k), &[])
        .await
        .unwrap();
    assert_eq!(
        store.find_user_by_name(&long_name).await.unwrap(),
        Some(u.clone())
    );
    let found = store.get_api_key_by_hash(&k.hash).await.unwrap().unwrap();
    assert_eq!((found.key, found.user), (k, Some(u)));
}

/// SQL-injection-shaped strings are stored and read back verbatim, and match only
/// themselves.
pub(crate) async fn injection_shaped_strings_are_data<S: Store>(store: Arc<S>) {
    let hostile = [
        "'; DROP TABLE api_keys; --",
        "\" OR 1=1 --",
        "admin'--",
        "%",
        "_",
        "\\",
        "' UNION SELECT * FROM users --",
    ];
    for (i, text) in hostile.iter().enumerate() {
        let mut u = user(text);
        u.id = UserId::new(format!("{text}-{i}")).unwrap();
        let mut k = key(Some(&u), Environment::TEST, t0());
        k.name = Some((*text).to_owned());
        k.notes = Some((*text).to_owned());
        k.meta = Meta::from([((*text).to_owned(), (*text).to_owned())]);
        store
            .create_user(&u, std::slice::from_ref(&k), &[])
            .await
            .unwrap();
        assert_eq!(
            store.find_user_by_name(text).await.unwrap(),
            Some(u.clone()),
            "{text}"
        );
        assert_eq!(store.get_api_key(&k.id).await.unwrap(), Some(k), "{text}");
    }
    assert_eq!(
        store.find_user_by_name("%%").await.unwrap(),
        None,
        "no wildcard matching"
    );
    assert_eq!(
        store.get_user(&UserId::new("%").unwrap()).await.unwrap(),
        None
    );
    assert!(
        store
            .find_user_by_name("'; DROP TABLE api_keys; --")
            .await
            .unwrap()
            .is_some(),
        "tables intact"
    );
}

/// Instances stamp last-used times of the same keys at the same time, each batch in
/// its own order (found by keyroute-bench's capacity run: 20 instances' batches
/// deadlocked and their stamps were lost). No batch fails, and every key ends up
/// stamped.
pub(crate) async fn concurrent_last_used_batches_never_deadlock<S: Store + 'static>(store: Arc<S>) {
    let keys: Vec<_> = (0..300)
        .map(|_| key(None, Environment::LIVE, t0()))
        .collect();
    store.store_all(&keys, &[]).await.unwrap();
    let ids: Arc<Vec<keyroute_core::KeyId>> = Arc::new(keys.iter().map(|k| k.id.clone()).collect());
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let (store, ids) = (Arc::clone(&store), Arc::clone(&ids));
            tokio::spawn(async move {
                for round in 0..6 {
                    // Each batch in an order of its own, as instances' sets iterate.
                    let mut batch: Vec<_> = ids.iter().cloned().collect();
                    let turn = (task * 37 + round * 11) % batch.len();
                    batch.rotate_left(turn);
                    if (task + round) % 2 == 1 {
                        batch.reverse();
                    }
                    let at = t0() + chrono::TimeDelta::seconds(i64::try_from(round).unwrap());
                    store.touch_last_used(&batch, at).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    for k in &keys {
        let stored = store.get_api_key(&k.id).await.unwrap().unwrap();
        assert!(stored.last_used_at.is_some(), "{} never stamped", k.id);
    }
}
