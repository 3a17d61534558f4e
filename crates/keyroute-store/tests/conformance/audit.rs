//! The audit trail: each write keeps its records in its own transaction (a write that
//! changes nothing, loses a race or fails records nothing), records read back exactly,
//! filter by key, user and time, page by id, and are purged by age.

use std::sync::Arc;

use chrono::TimeDelta;
use keyroute_core::{
    AuditAction, AuditQuery, AuditRecord, Environment, Regeneration, Store, UserId,
};

use super::{assert_conflict, key, t0, user};

fn record(action: AuditAction, minutes: i64) -> AuditRecord {
    let mut record = AuditRecord::new(t0() + TimeDelta::minutes(minutes), "operator:cli", action);
    record.details = serde_json::json!({ "minute": minutes, "scopes": ["orders:read"] });
    record
}

async fn trail<S: Store>(store: &S) -> Vec<AuditRecord> {
    store
        .audit_records(&AuditQuery::new().limit(1000))
        .await
        .unwrap()
}

/// Records commit with their change and only with it.
pub(crate) async fn audit_records_commit_with_their_change<S: Store>(store: Arc<S>) {
    let ada = user("ada");
    let first = key(Some(&ada), Environment::LIVE, t0());
    let mut registered = record(AuditAction::UserRegistered, 0);
    registered.user_id = Some(ada.id.clone());
    registered.source = Some("192.0.2.7".parse().unwrap());
    registered.request_id = Some("req-1".into());
    registered.environment = Some(Environment::LIVE);
    store
        .create_user(
            &ada,
            std::slice::from_ref(&first),
            std::slice::from_ref(&registered),
        )
        .await
        .unwrap();
    let read = trail(&*store).await;
    assert_eq!(read.len(), 1);
    assert!(read[0].id > 0, "the store gives the id");
    let mut expected = registered.clone();
    expected.id = read[0].id;
    assert_eq!(read[0], expected, "every field reads back");

    let second = key(Some(&ada), Environment::LIVE, t0());
    let mut issued = record(AuditAction::KeyIssued, 1);
    issued.key_id = Some(second.id.clone());
    issued.user_id = Some(ada.id.clone());
    store
        .store_all(std::slice::from_ref(&second), &[issued])
        .await
        .unwrap();
    // A failed write records nothing.
    let mut colliding = key(Some(&ada), Environment::LIVE, t0());
    colliding.hash = second.hash;
    assert_conflict(
        store
            .store_all(&[colliding], &[record(AuditAction::KeyIssued, 2)])
            .await,
        "a taken hash",
    );
    let regeneration = Regeneration::new(
        ada.id.clone(),
        Environment::LIVE,
        vec![key(Some(&ada), Environment::LIVE, t0()), {
            let mut k = key(Some(&ada), Environment::LIVE, t0());
            k.hash = first.hash;
            k
        }],
        t0(),
    );
    assert_conflict(
        store
            .regenerate(&regeneration, &[record(AuditAction::KeysRegenerated, 2)])
            .await,
        "a regeneration that collides",
    );
    assert_eq!(
        trail(&*store).await.len(),
        2,
        "failed writes record nothing"
    );

    // A revoke records once; revoking again changes nothing and records nothing.
    let mut revoked = record(AuditAction::KeyRevoked, 3);
    revoked.key_id = Some(first.id.clone());
    store
        .cancel_key(&first.id, t0(), &[revoked.clone()])
        .await
        .unwrap();
    store
        .cancel_key(&first.id, t0() + TimeDelta::hours(1), &[revoked])
        .await
        .unwrap();
    // A roll of a cancelled key, an update at a stale revision: nothing.
    let replacement = key(Some(&ada), Environment::LIVE, t0());
    assert!(
        store
            .roll_key(
                &first.id,
                &replacement,
                t0(),
                &[record(AuditAction::KeyRolled, 4)]
            )
            .await
            .unwrap()
            .is_none()
    );
    let mut stale = second.clone();
    stale.revision = 6;
    assert!(
        store
            .update_key(&stale, 5, &[record(AuditAction::KeyUpdated, 4)])
            .await
            .unwrap()
            .is_none()
    );
    let actions: Vec<AuditAction> = trail(&*store).await.iter().map(|r| r.action).collect();
    assert_eq!(
        actions,
        [
            AuditAction::UserRegistered,
            AuditAction::KeyIssued,
            AuditAction::KeyRevoked
        ]
    );
    // An update and a roll that change something record.
    let mut renamed = second.clone();
    renamed.name = Some("renamed".into());
    renamed.revision = 1;
    store
        .update_key(&renamed, 0, &[record(AuditAction::KeyUpdated, 5)])
        .await
        .unwrap()
        .unwrap();
    store
        .roll_key(
            &second.id,
            &replacement,
            t0(),
            &[record(AuditAction::KeyRolled, 6)],
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(trail(&*store).await.len(), 5);
}

/// Records filter by key, user and time, page by id in order, and are purged by age.
pub(crate) async fn audit_records_filter_page_and_purge<S: Store>(store: Arc<S>) {
    let ada = user("ada");
    let bob = user("bob");
    store.create_user(&ada, &[], &[]).await.unwrap();
    store.create_user(&bob, &[], &[]).await.unwrap();
    let mut keys = Vec::new();
    for minute in 0..30 {
        let owner = if minute % 3 == 0 { &bob } else { &ada };
        let k = key(Some(owner), Environment::TEST, t0());
        let mut issued = record(AuditAction::KeyIssued, minute);
        issued.key_id = Some(k.id.clone());
        issued.user_id = Some(owner.id.clone());
        // Every fifth about no one environment; the rest alternate.
        issued.environment = match minute % 5 {
            0 => None,
            m if m % 2 == 0 => Some(Environment::TEST),
            _ => Some(Environment::LIVE),
        };
        store
            .store_all(std::slice::from_ref(&k), &[issued])
            .await
            .unwrap();
        keys.push(k);
    }
    let of = |query: AuditQuery| {
        let store = Arc::clone(&store);
        async move { store.audit_records(&query).await.unwrap() }
    };
    let bobs = of(AuditQuery::new().for_user(bob.id.clone())).await;
    assert_eq!(bobs.len(), 10);
    assert!(bobs.iter().all(|r| r.user_id.as_ref() == Some(&bob.id)));
    let one = of(AuditQuery::new().for_key(keys[7].id.clone())).await;
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].details["minute"], 7);
    let mut window = AuditQuery::new();
    window.since = Some(t0() + TimeDelta::minutes(10));
    window.until = Some(t0() + TimeDelta::minutes(20));
    let window = of(window).await;
    assert_eq!(
        window
            .iter()
            .map(|r| r.details["minute"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        (10..20).collect::<Vec<_>>()
    );
    // Pages of 7, in id order, each after the last id of the one before.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let mut page = AuditQuery::new().limit(7);
        page.after = after;
        let page = of(page).await;
        assert!(page.len() <= 7);
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        seen.extend(page.iter().map(|r| r.details["minute"].as_i64().unwrap()));
    }
    assert_eq!(seen, (0..30).collect::<Vec<_>>());
    let mut live = AuditQuery::new();
    live.environment = Some(Environment::LIVE);
    let live = of(live).await;
    let expected: Vec<i64> = (0..30).filter(|m| m % 5 == 0 || (m % 5) % 2 == 1).collect();
    assert_eq!(
        live.iter()
            .map(|r| r.details["minute"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        expected,
        "live records and those of no one environment"
    );
    assert!(
        live.iter()
            .all(|r| r.environment != Some(Environment::TEST))
    );
    let nobody = of(AuditQuery::new().for_user(UserId::new("nobody").unwrap())).await;
    assert!(nobody.is_empty());
    assert!(of(AuditQuery::new().after(u64::MAX)).await.is_empty());

    assert_eq!(
        store
            .purge_audit(t0() + TimeDelta::minutes(25))
            .await
            .unwrap(),
        25
    );
    let left = of(AuditQuery::new()).await;
    assert_eq!(left.len(), 5);
    assert_eq!(left[0].details["minute"], 25);
}
