//! Updating keys: the store's conditional `update_key` (only the revision read, only a
//! key nobody cancelled, only the changeable fields, its change published), and
//! concurrent updates through the key service, which never undo one another.

use std::sync::Arc;

use chrono::TimeDelta;
use keyroute_core::{
    ChangeKind, Environment, IpNet, KeyOptions, KeyService, KeyUpdate, Meta, NewUser, Scope,
    Scopes, Store,
};

use super::feed::{change, next, subscribed};
use super::{key, t0, user};

fn networks(list: &[&str]) -> Vec<IpNet> {
    list.iter().map(|n| n.parse().unwrap()).collect()
}

/// `update_key` writes the changeable fields at the revision read, and only there:
/// a stale revision, a cancelled key or an unknown one change nothing. The key's
/// identity (id, owner, type, environment, hash, hint, times) is never written. Each
/// update that changed something publishes `key_updated`.
pub(crate) async fn update_key_applies_at_the_read_revision_only<S: Store>(store: Arc<S>) {
    let mut feed = subscribed(&*store).await;
    let ada = user("ada");
    let original = key(Some(&ada), Environment::LIVE, t0());
    store
        .create_user(&ada, std::slice::from_ref(&original), &[])
        .await
        .unwrap();

    let mut next_key = original.clone();
    next_key.name = Some("renamed".into());
    next_key.scopes = Scopes::parse(["orders:read"]).unwrap();
    next_key.expires_at = Some(t0() + TimeDelta::days(3));
    next_key.notes = Some("rotated".into());
    next_key.ref_id = Some("T-1".into());
    next_key.meta = Meta::from([("team".into(), "payments".into())]);
    next_key.allowed_networks = networks(&["10.0.0.0/8", "2001:db8::/32"]);
    next_key.enabled = false;
    next_key.revision = 1;
    // Fields an update never writes, changed here to prove they are not.
    let mut asked = next_key.clone();
    asked.hint = "forged".into();
    asked.created_at = t0() + TimeDelta::days(9);
    asked.cancelled_at = Some(t0());
    asked.last_used_at = Some(t0());
    let stored = store.update_key(&asked, 0, &[]).await.unwrap().unwrap();
    assert_eq!(stored, next_key, "the changeable fields, and only they");
    assert_eq!(
        store.get_api_key(&original.id).await.unwrap(),
        Some(next_key.clone())
    );
    assert_eq!(
        store
            .get_api_key_by_hash(&original.hash)
            .await
            .unwrap()
            .unwrap()
            .key,
        next_key
    );
    assert_eq!(
        next(&mut feed, "the update's event").await,
        change(ChangeKind::KeyUpdated, original.id.as_str())
    );

    // Made from the first read: refused, nothing changes.
    let mut stale = original.clone();
    stale.name = Some("stale".into());
    stale.revision = 1;
    assert_eq!(store.update_key(&stale, 0, &[]).await.unwrap(), None);
    assert_eq!(
        store.get_api_key(&original.id).await.unwrap(),
        Some(next_key.clone())
    );

    let unknown = key(Some(&ada), Environment::LIVE, t0());
    assert_eq!(store.update_key(&unknown, 0, &[]).await.unwrap(), None);

    store
        .cancel_key(&original.id, t0(), &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        next(&mut feed, "the revoke's event").await,
        change(ChangeKind::KeyRevoked, original.id.as_str()),
        "refused updates publish nothing"
    );
    let mut after_cancel = next_key.clone();
    after_cancel.enabled = true;
    after_cancel.revision = 2;
    assert_eq!(
        store.update_key(&after_cancel, 1, &[]).await.unwrap(),
        None,
        "a cancelled key is not updated"
    );
    assert!(
        !store
            .get_api_key(&original.id)
            .await
            .unwrap()
            .unwrap()
            .enabled,
        "still disabled"
    );
}

/// Two updates of one key racing each other through the key service, one renaming it
/// and one taking a scope away, both take effect every time: neither writes back what
/// it read before the other's change (a rename must never restore a removed scope).
pub(crate) async fn concurrent_updates_never_undo_each_other<S: Store + 'static>(store: Arc<S>) {
    const ROUNDS: usize = 15;
    let service = Arc::new(KeyService::new(Arc::clone(&store), KeyOptions::default()).unwrap());
    let ada = service.register_user(NewUser::named("ada")).await.unwrap();
    let id = ada.keys[0].key.id.clone();
    let all: Vec<String> = (0..ROUNDS).map(|i| format!("orders:s{i}")).collect();
    service
        .update_key(&id, &KeyUpdate::new().scopes(Scopes::parse(&all).unwrap()))
        .await
        .unwrap();
    for round in 0..ROUNDS {
        let name = format!("round {round}");
        let kept: Vec<&String> = all.iter().skip(round + 1).collect();
        let scopes = Scopes::parse(kept.iter().map(|s| s.as_str())).unwrap();
        let rename = KeyUpdate::new().name(Some(name.clone()));
        let narrow = KeyUpdate::new().scopes(scopes.clone());
        let race = |service: Arc<KeyService<Arc<S>>>, id, update: KeyUpdate| {
            tokio::spawn(async move { service.update_key(&id, &update).await })
        };
        let a = race(Arc::clone(&service), id.clone(), rename);
        let b = race(Arc::clone(&service), id.clone(), narrow);
        let (a, b) = (a.await.unwrap(), b.await.unwrap());
        assert!(a.is_ok() && b.is_ok(), "round {round}: {a:?} {b:?}");
        let stored = store.get_api_key(&id).await.unwrap().unwrap();
        assert_eq!(stored.name.as_deref(), Some(name.as_str()), "round {round}");
        assert_eq!(
            stored.scopes, scopes,
            "round {round}: the removed scope stays removed"
        );
        assert!(
            !stored
                .scopes
                .grants(Scope::new(&all[round]).unwrap().as_str()),
            "round {round}"
        );
    }
    let stored = store.get_api_key(&id).await.unwrap().unwrap();
    assert_eq!(
        stored.revision,
        1 + 2 * ROUNDS as u64,
        "one revision per update"
    );
}
