//! Conformance cases for the deny-list: ends, starts, purging.

use std::sync::Arc;

use chrono::TimeDelta;
use keyroute_core::{DenyList, Store};

use super::t0;

/// Denied ids stay denied until their end, a later end wins, and purging removes only
/// entries that ended.
pub(crate) async fn deny_list_keeps_the_latest_end_and_purges<S: Store>(store: Arc<S>) {
    let (a, b) = ("jti-0f3a", "key-9b1c");
    assert!(!store.is_denied(&[a, b], t0()).await.unwrap());
    store
        .deny(a, None, t0() + TimeDelta::minutes(15))
        .await
        .unwrap();
    store
        .deny(a, None, t0() + TimeDelta::minutes(5))
        .await
        .unwrap();
    assert!(
        store
            .is_denied(&[b, a], t0() + TimeDelta::minutes(10))
            .await
            .unwrap(),
        "the later end is kept"
    );
    assert!(!store.is_denied(&[b], t0()).await.unwrap());
    store
        .deny(a, None, t0() + TimeDelta::minutes(30))
        .await
        .unwrap();
    store
        .deny(b, None, t0() + TimeDelta::minutes(1))
        .await
        .unwrap();
    assert!(
        store
            .is_denied(&[a], t0() + TimeDelta::minutes(20))
            .await
            .unwrap(),
        "a later end extends"
    );
    assert!(
        !store
            .is_denied(&[b], t0() + TimeDelta::minutes(1))
            .await
            .unwrap(),
        "ended entries no longer deny"
    );
    assert_eq!(
        store
            .purge_denied(t0() + TimeDelta::minutes(2))
            .await
            .unwrap(),
        1
    );
    assert!(
        store
            .is_denied(&[a], t0() + TimeDelta::minutes(2))
            .await
            .unwrap()
    );
    assert!(!store.is_denied(&[], t0()).await.unwrap());
    assert!(
        !store
            .is_denied(&["\'; DELETE FROM keyroute_denylist; --"], t0())
            .await
            .unwrap()
    );
}

/// A denial can start later (a roll's grace period): not denied before its start,
/// denied from it; denying again keeps the earlier start, and "at once" is earliest.
pub(crate) async fn deny_list_entries_can_start_later<S: Store>(store: Arc<S>) {
    let id = "key-7d20";
    let (start, end) = (t0() + TimeDelta::hours(1), t0() + TimeDelta::hours(3));
    store.deny(id, Some(start), end).await.unwrap();
    assert!(
        !store.is_denied(&[id], t0()).await.unwrap(),
        "not before its start"
    );
    assert!(
        store.is_denied(&[id], start).await.unwrap(),
        "from its start"
    );
    store
        .deny(id, Some(t0() + TimeDelta::hours(2)), end)
        .await
        .unwrap();
    assert!(
        store
            .is_denied(&[id], t0() + TimeDelta::minutes(90))
            .await
            .unwrap(),
        "a later start does not postpone an earlier one"
    );
    store.deny(id, None, end).await.unwrap();
    assert!(store.is_denied(&[id], t0()).await.unwrap(), "at once wins");
    assert_eq!(store.purge_denied(end).await.unwrap(), 1);
}
