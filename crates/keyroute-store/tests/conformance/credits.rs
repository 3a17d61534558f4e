//! Limits and credits in the store: a key's own limits and its credits round-trip; the
//! balance is spent atomically (many instances spending at once never take it below
//! zero, nor spend more than it held); a due refill happens once however many race for
//! it; an update of the key's settings never touches the balance; `set_credits` sets
//! it outright and publishes the change.

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use keyroute_core::limits::{CreditSpend, Credits, LimitScope, RateLimit, Refill, RefillPeriod};
use keyroute_core::{ChangeKind, Environment, Store};

use super::feed::{change, next, subscribed};
use super::{key, t0, user};

/// Spends `cost` `times` times from `tasks` concurrent tasks at `now`: how many were
/// spent and how many refused.
async fn spend_concurrently<S: Store + 'static>(
    store: &Arc<S>,
    id: &keyroute_core::KeyId,
    tasks: usize,
    times: usize,
    now: chrono::DateTime<chrono::Utc>,
) -> (usize, usize) {
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let store = Arc::clone(store);
            let id = id.clone();
            tokio::spawn(async move {
                let (mut spent, mut refused) = (0, 0);
                for _ in 0..times {
                    match store.spend_credits(&id, 1, now).await.unwrap() {
                        CreditSpend::Spent { .. } => spent += 1,
                        CreditSpend::Exhausted { .. } => refused += 1,
                        other => panic!("a metered key: {other:?}"),
                    }
                }
                (spent, refused)
            })
        })
        .collect();
    let mut totals = (0, 0);
    for handle in handles {
        let (spent, refused) = handle.await.unwrap();
        totals.0 += spent;
        totals.1 += refused;
    }
    totals
}

/// Limits and credits round-trip; concurrent spends take exactly the balance; an
/// update of other fields leaves the balance alone; `set_credits` sets it and
/// publishes `key_updated`; an unmetered key spends nothing.
pub(crate) async fn credits_are_spent_atomically<S: Store + 'static>(store: Arc<S>) {
    let ada = user("ada");
    let mut metered = key(Some(&ada), Environment::LIVE, t0());
    metered.limits = vec![
        RateLimit::new("requests", 100, Duration::from_secs(60))
            .unwrap()
            .with_burst(20)
            .unwrap(),
        RateLimit::new("writes", 5, Duration::from_secs(1))
            .unwrap()
            .per(LimitScope::Tenant),
    ];
    metered.credits =
        Some(Credits::new(60).with_refill(Refill::new(60, RefillPeriod::Monthly).unwrap(), t0()));
    let unmetered = key(Some(&ada), Environment::LIVE, t0());
    store
        .create_user(&ada, &[metered.clone(), unmetered.clone()], &[])
        .await
        .unwrap();
    assert_eq!(
        store.get_api_key(&metered.id).await.unwrap(),
        Some(metered.clone()),
        "limits and credits round-trip"
    );
    let now = t0() + TimeDelta::hours(1);
    let (spent, refused) = spend_concurrently(&store, &metered.id, 8, 10, now).await;
    assert_eq!(
        (spent, refused),
        (60, 20),
        "exactly the balance, never below zero"
    );
    let stored = store.get_api_key(&metered.id).await.unwrap().unwrap();
    assert_eq!(stored.credits.unwrap().remaining, 0);

    // An update made from a read with the old balance writes its settings, not it.
    let mut renamed = metered.clone();
    renamed.name = Some("renamed".into());
    renamed.limits.truncate(1);
    renamed.revision = 1;
    let updated = store.update_key(&renamed, 0, &[]).await.unwrap().unwrap();
    assert_eq!(updated.limits, renamed.limits);
    assert_eq!(
        updated.credits.unwrap().remaining,
        0,
        "the balance is not undone"
    );

    let mut feed = subscribed(&*store).await;
    let topped = Credits::new(3);
    let stored = store
        .set_credits(&metered.id, Some(&topped), &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.credits, Some(topped));
    assert_eq!(
        next(&mut feed, "set_credits' event").await,
        change(ChangeKind::KeyUpdated, metered.id.as_str())
    );
    assert_eq!(
        store.spend_credits(&metered.id, 4, now).await.unwrap(),
        CreditSpend::Exhausted {
            remaining: 3,
            next_refill_at: None
        },
        "all or nothing"
    );
    assert!(matches!(
        store.spend_credits(&metered.id, 3, now).await.unwrap(),
        CreditSpend::Spent { .. }
    ));
    store.set_credits(&metered.id, None, &[]).await.unwrap();
    for id in [&metered.id, &unmetered.id] {
        assert_eq!(
            store.spend_credits(id, 1, now).await.unwrap(),
            CreditSpend::Unmetered
        );
    }
    let missing = keyroute_core::KeyId::random();
    assert_eq!(
        store.spend_credits(&missing, 1, now).await.unwrap(),
        CreditSpend::Unmetered
    );
    assert_eq!(
        store
            .set_credits(&missing, Some(&topped), &[])
            .await
            .unwrap(),
        None
    );
}

/// A refill that is due is applied by exactly one of many concurrent spenders, and
/// only once per period: the balance spent is one refill's amount, and the next
/// refill is the next period's.
pub(crate) async fn a_due_refill_happens_once<S: Store + 'static>(store: Arc<S>) {
    let ada = user("ada");
    let mut metered = key(Some(&ada), Environment::LIVE, t0());
    let hourly = Refill::new(10, RefillPeriod::Every(Duration::from_secs(3600))).unwrap();
    metered.credits = Some(Credits::new(0).with_refill(hourly, t0()));
    store
        .create_user(&ada, std::slice::from_ref(&metered), &[])
        .await
        .unwrap();
    let before = t0() + TimeDelta::minutes(30);
    assert!(matches!(
        store.spend_credits(&metered.id, 1, before).await.unwrap(),
        CreditSpend::Exhausted { next_refill_at: Some(at), .. } if at == t0() + TimeDelta::hours(1)
    ));
    // Two and a half periods later: one refill (missed periods are skipped).
    let later = t0() + TimeDelta::minutes(150);
    let (spent, refused) = spend_concurrently(&store, &metered.id, 8, 5, later).await;
    assert_eq!(
        (spent, refused),
        (10, 30),
        "one refill of 10, however many raced"
    );
    let credits = store
        .get_api_key(&metered.id)
        .await
        .unwrap()
        .unwrap()
        .credits
        .unwrap();
    assert_eq!(credits.remaining, 0);
    assert_eq!(credits.next_refill_at, Some(t0() + TimeDelta::hours(3)));
}
