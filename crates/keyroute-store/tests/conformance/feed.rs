//! Conformance cases for the change feed: every change other instances must learn of
//! publishes its event when (and only when) it commits, in order; purging old events
//! keeps the feed working.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use keyroute_core::{
    ChangeEvent, ChangeKind, ChangeSubscription, Environment, FeedSettings, FeedSignal,
    Regeneration, Store,
};

use super::{assert_conflict, key, t0, user};

fn fast() -> FeedSettings {
    FeedSettings::default().with_poll_interval(Duration::from_millis(20))
}

/// The next signal, or a failure naming what was awaited.
pub(super) async fn next(feed: &mut Box<dyn ChangeSubscription>, awaiting: &str) -> FeedSignal {
    tokio::time::timeout(Duration::from_secs(10), feed.next())
        .await
        .unwrap_or_else(|_| panic!("no signal within 10 s; awaiting {awaiting}"))
}

pub(super) async fn subscribed<S: Store>(store: &S) -> Box<dyn ChangeSubscription> {
    let mut feed = store
        .subscribe(&fast())
        .await
        .expect("every keyroute backend publishes changes");
    assert_eq!(next(&mut feed, "Live").await, FeedSignal::Live);
    feed
}

pub(super) fn change(kind: ChangeKind, subject: &str) -> FeedSignal {
    FeedSignal::Change(ChangeEvent::new(kind, subject))
}

/// Revoke, regenerate and deny each publish one event per key or id they change, in
/// commit order; issuing keys publishes nothing, and neither does a regeneration that
/// failed (rolled back) or a revoke that changed nothing.
pub(crate) async fn each_change_publishes_its_event_in_order<S: Store>(store: Arc<S>) {
    let mut feed = subscribed(&*store).await;
    let ada = user("ada");
    let first = key(Some(&ada), Environment::LIVE, t0());
    let second = key(Some(&ada), Environment::LIVE, t0());
    let other = key(None, Environment::LIVE, t0());
    store
        .create_user(&ada, &[first.clone(), second.clone()], &[])
        .await
        .unwrap();
    store
        .store_all(std::slice::from_ref(&other), &[])
        .await
        .unwrap();

    store
        .cancel_key(&first.id, t0(), &[])
        .await
        .unwrap()
        .unwrap();
    // Cancelling again, later, changes nothing and publishes nothing.
    store
        .cancel_key(&first.id, t0() + TimeDelta::hours(1), &[])
        .await
        .unwrap();
    let mut colliding = key(Some(&ada), Environment::LIVE, t0());
    colliding.hash = other.hash;
    let failed = Regeneration::new(ada.id.clone(), Environment::LIVE, vec![colliding], t0());
    assert_conflict(
        store.regenerate(&failed, &[]).await,
        "colliding regeneration",
    );
    let fresh = key(Some(&ada), Environment::LIVE, t0());
    let rolled = Regeneration::new(
        ada.id.clone(),
        Environment::LIVE,
        vec![fresh],
        t0() + TimeDelta::minutes(10),
    );
    let retired = store.regenerate(&rolled, &[]).await.unwrap();
    assert_eq!(retired.len(), 1, "only the second key was still working");
    store
        .deny("jti-77", None, Utc::now() + TimeDelta::hours(1))
        .await
        .unwrap();
    store
        .deny("jti-77", None, Utc::now() + TimeDelta::hours(2))
        .await
        .unwrap();

    let expected = [
        change(ChangeKind::KeyRevoked, first.id.as_str()),
        change(ChangeKind::KeyRolled, second.id.as_str()),
        change(ChangeKind::Denied, "jti-77"),
        change(ChangeKind::Denied, "jti-77"),
    ];
    for (i, want) in expected.iter().enumerate() {
        assert_eq!(
            &next(&mut feed, &format!("event {i}")).await,
            want,
            "event {i}"
        );
    }
    // Nothing else was published: the next change is the next signal.
    store
        .cancel_key(&other.id, t0(), &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        next(&mut feed, "the last revoke").await,
        change(ChangeKind::KeyRevoked, other.id.as_str())
    );
}

/// Two subscribers each receive every event (one per instance).
pub(crate) async fn every_subscriber_receives_every_event<S: Store>(store: Arc<S>) {
    let mut a = subscribed(&*store).await;
    let mut b = subscribed(&*store).await;
    let keys: Vec<_> = (0..5).map(|_| key(None, Environment::TEST, t0())).collect();
    store.store_all(&keys, &[]).await.unwrap();
    for k in &keys {
        store.cancel_key(&k.id, t0(), &[]).await.unwrap();
    }
    for feed in [&mut a, &mut b] {
        for k in &keys {
            assert_eq!(
                next(feed, "a revoke").await,
                change(ChangeKind::KeyRevoked, k.id.as_str())
            );
        }
    }
}

/// Purging removes events recorded before the cut-off and nothing after it, and the
/// feed goes on working afterwards (ids are never reused).
pub(crate) async fn purged_events_are_gone_and_the_feed_goes_on<S: Store>(store: Arc<S>) {
    let keys: Vec<_> = (0..3).map(|_| key(None, Environment::TEST, t0())).collect();
    store.store_all(&keys, &[]).await.unwrap();
    for k in &keys {
        store.cancel_key(&k.id, t0(), &[]).await.unwrap();
    }
    let long_ago = Utc::now() - TimeDelta::days(1);
    assert_eq!(
        store.purge_events(long_ago).await.unwrap(),
        0,
        "nothing that old"
    );
    let removed = store
        .purge_events(Utc::now() + TimeDelta::minutes(1))
        .await
        .unwrap();
    // Stores that keep events (tables) remove all three; push-only ones keep none.
    assert!(removed == 0 || removed == 3, "removed {removed}");
    assert_eq!(
        store
            .purge_events(Utc::now() + TimeDelta::minutes(1))
            .await
            .unwrap(),
        0,
        "all gone"
    );
    let mut feed = subscribed(&*store).await;
    let late = key(None, Environment::TEST, t0());
    store
        .store_all(std::slice::from_ref(&late), &[])
        .await
        .unwrap();
    store.cancel_key(&late.id, t0(), &[]).await.unwrap();
    assert_eq!(
        next(&mut feed, "the revoke after the purge").await,
        change(ChangeKind::KeyRevoked, late.id.as_str())
    );
}
