//! Replacing keys: regenerating an environment's keys, the store's one-transaction
//! `roll_key`, and two rolls of one key racing through the key service, of which
//! exactly one may succeed.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use keyroute_core::{
    Environment, KeyOptions, KeyQuery, KeyService, KeyServiceError, NewUser, Regeneration, Store,
};

use super::{assert_conflict, key, t0, user};

/// `roll_key` cancels the old key and stores its replacement together, once: a key
/// already cancelled (rolled or revoked) or unknown is not rolled again, and a
/// replacement that collides changes nothing.
pub(crate) async fn roll_key_replaces_a_key_once<S: Store>(store: Arc<S>) {
    let ada = user("ada");
    let old = key(Some(&ada), Environment::LIVE, t0());
    let other = key(Some(&ada), Environment::LIVE, t0());
    store
        .create_user(&ada, &[old.clone(), other.clone()], &[])
        .await
        .unwrap();
    let at = t0() + TimeDelta::hours(1);

    // A replacement whose hash is taken: a conflict, and the old key is untouched.
    let mut colliding = key(Some(&ada), Environment::LIVE, t0());
    colliding.hash = other.hash;
    assert_conflict(
        store.roll_key(&old.id, &colliding, at, &[]).await,
        "a taken hash",
    );
    assert_eq!(
        store
            .get_api_key(&old.id)
            .await
            .unwrap()
            .unwrap()
            .cancelled_at,
        None
    );
    assert!(store.get_api_key(&colliding.id).await.unwrap().is_none());

    let first = key(Some(&ada), Environment::LIVE, t0());
    let retired = store
        .roll_key(&old.id, &first, at, &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(retired.id, old.id);
    assert_eq!(retired.cancelled_at, Some(at));
    assert_eq!(
        store.get_api_key(&first.id).await.unwrap(),
        Some(first.clone())
    );

    let second = key(Some(&ada), Environment::LIVE, t0());
    assert!(
        store
            .roll_key(&old.id, &second, at, &[])
            .await
            .unwrap()
            .is_none(),
        "rolled once only"
    );
    assert!(
        store.get_api_key(&second.id).await.unwrap().is_none(),
        "no stray replacement"
    );
    let unknown = key(Some(&ada), Environment::LIVE, t0());
    assert!(
        store
            .roll_key(&unknown.id, &second, at, &[])
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.get_api_key(&second.id).await.unwrap().is_none());

    // A revoked key is not rolled either.
    store.cancel_key(&other.id, t0(), &[]).await.unwrap();
    assert!(
        store
            .roll_key(&other.id, &second, at, &[])
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.get_api_key(&second.id).await.unwrap().is_none());
}

/// Two rolls of one key racing each other through the key service: exactly one
/// succeeds, the other is `NotRollable`, and exactly one replacement works.
pub(crate) async fn concurrent_rolls_of_one_key_one_wins<S: Store + 'static>(store: Arc<S>) {
    const ROUNDS: usize = 10;
    let service = Arc::new(KeyService::new(Arc::clone(&store), KeyOptions::default()).unwrap());
    let ada = service.register_user(NewUser::named("ada")).await.unwrap();
    let mut current = ada.keys[0].key.clone();
    for round in 0..ROUNDS {
        let race = |service: Arc<KeyService<Arc<S>>>, id| {
            tokio::spawn(async move { service.roll(&id, None).await })
        };
        let a = race(Arc::clone(&service), current.id.clone());
        let b = race(Arc::clone(&service), current.id.clone());
        let outcomes = [a.await.unwrap(), b.await.unwrap()];
        let won: Vec<_> = outcomes
            .iter()
            .filter_map(|o| o.as_ref().ok().and_then(Option::as_ref))
            .collect();
        let refused = outcomes
            .iter()
            .filter(|o| matches!(o, Err(KeyServiceError::NotRollable)))
            .count();
        assert_eq!((won.len(), refused), (1, 1), "round {round}: {outcomes:?}");
        let working = store
            .get_user_api_keys(&ada.user.id, &KeyQuery::active_at(Utc::now()))
            .await
            .unwrap();
        let environment_keys = working
            .iter()
            .filter(|k| k.environment == current.environment && k.key_type == current.key_type)
            .count();
        assert_eq!(
            environment_keys, 1,
            "round {round}: one working key, not two"
        );
        current = won[0].issued.key.clone();
    }
}

/// Regeneration cancels the environment's working keys, leaves the rest, stores the new.
pub(crate) async fn regenerate_replaces_keys<S: Store>(store: Arc<S>) {
    let ada = user("ada");
    let live = key(Some(&ada), Environment::LIVE, t0());
    let test = key(Some(&ada), Environment::TEST, t0());
    let mut already = key(Some(&ada), Environment::LIVE, t0());
    already.cancelled_at = Some(t0());
    store
        .create_user(&ada, &[live.clone(), test.clone(), already.clone()], &[])
        .await
        .unwrap();

    let fresh = key(Some(&ada), Environment::LIVE, t0() + TimeDelta::seconds(1));
    let cancel_at = t0() + TimeDelta::hours(1);
    let regeneration = Regeneration::new(
        ada.id.clone(),
        Environment::LIVE,
        vec![fresh.clone()],
        cancel_at,
    );
    let retired = store.regenerate(&regeneration, &[]).await.unwrap();
    assert_eq!(
        retired.iter().map(|k| &k.id).collect::<Vec<_>>(),
        [&live.id]
    );
    assert_eq!(retired[0].cancelled_at, Some(cancel_at));
    assert_eq!(
        store
            .get_api_key(&live.id)
            .await
            .unwrap()
            .unwrap()
            .cancelled_at,
        Some(cancel_at)
    );
    assert_eq!(
        store
            .get_api_key(&already.id)
            .await
            .unwrap()
            .unwrap()
            .cancelled_at,
        Some(t0())
    );
    assert_eq!(
        store
            .get_api_key(&test.id)
            .await
            .unwrap()
            .unwrap()
            .cancelled_at,
        None
    );
    assert_eq!(store.get_api_key(&fresh.id).await.unwrap(), Some(fresh));
}

/// A regeneration that fails half-way (its second new key collides with an existing
/// hash, after the old keys were cancelled) leaves nothing changed.
pub(crate) async fn regenerate_is_atomic<S: Store>(store: Arc<S>) {
    let ada = user("ada");
    let live = key(Some(&ada), Environment::LIVE, t0());
    let other = key(None, Environment::LIVE, t0());
    store
        .create_user(&ada, std::slice::from_ref(&live), &[])
        .await
        .unwrap();
    store
        .store_all(std::slice::from_ref(&other), &[])
        .await
        .unwrap();

    let good = key(Some(&ada), Environment::LIVE, t0());
    let mut colliding = key(Some(&ada), Environment::LIVE, t0());
    colliding.hash = other.hash;
    let regeneration = Regeneration::new(
        ada.id.clone(),
        Environment::LIVE,
        vec![good.clone(), colliding],
        t0(),
    );
    assert_conflict(
        store.regenerate(&regeneration, &[]).await,
        "regenerate with a colliding key",
    );

    assert_eq!(
        store.get_api_key(&live.id).await.unwrap(),
        Some(live),
        "old key untouched"
    );
    assert_eq!(
        store.get_api_key(&good.id).await.unwrap(),
        None,
        "no new key stored"
    );
    let keys = store
        .get_user_api_keys(&ada.id, &KeyQuery::all())
        .await
        .unwrap();
    assert_eq!(keys.len(), 1);
}
