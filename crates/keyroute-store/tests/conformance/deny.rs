//! Conformance cases for the deny-list: ends, starts (and their reporting), purging.

use std::sync::Arc;

use chrono::TimeDelta;
use keyroute_core::{Denial, DenyList, Store};

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

/// A pending entry is reported with its start (the earliest among the asked ids),
/// exactly to the microsecond, and denies from that start on; denied-now wins over
/// pending, and ended entries or ones that would start after their end report nothing.
pub(crate) async fn deny_list_reports_when_a_pending_entry_starts<S: Store>(store: Arc<S>) {
    let (a, b, c, now_denied) = ("key-1a2b", "key-3c4d", "key-5e6f", "jti-7a8b");
    let first = t0() + TimeDelta::minutes(5);
    let later = t0() + TimeDelta::minutes(9);
    let end = t0() + TimeDelta::hours(1);
    store.deny(a, Some(later), end).await.unwrap();
    store.deny(b, Some(first), end).await.unwrap();
    store
        .deny(c, Some(end + TimeDelta::hours(1)), end)
        .await
        .unwrap();
    store.deny(now_denied, None, end).await.unwrap();

    assert_eq!(
        store.denial(&[a], t0()).await.unwrap(),
        Denial::pending(later)
    );
    assert_eq!(
        store.denial(&["jti-none", a, b], t0()).await.unwrap(),
        Denial::pending(first),
        "the earliest start among the ids"
    );
    let just_before = first - TimeDelta::microseconds(1);
    assert_eq!(
        store.denial(&[b], just_before).await.unwrap(),
        Denial::pending(first)
    );
    assert!(!store.is_denied(&[b], just_before).await.unwrap());
    assert_eq!(store.denial(&[b], first).await.unwrap(), Denial::DENIED);
    assert!(store.is_denied(&[a, b], first).await.unwrap());
    assert_eq!(
        store.denial(&[a, now_denied], t0()).await.unwrap(),
        Denial::DENIED,
        "denied now wins over pending"
    );
    assert_eq!(
        store.denial(&[c], t0()).await.unwrap(),
        Denial::ALLOWED,
        "an entry that would start after its end never denies"
    );
    assert_eq!(store.denial(&[a, b], end).await.unwrap(), Denial::ALLOWED);
    assert_eq!(store.denial(&[], t0()).await.unwrap(), Denial::ALLOWED);
}
