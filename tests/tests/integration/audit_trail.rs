//! The audit trail through the key service: every operation that changes keys or users
//! leaves one record naming who, what and which key, written with the change; refused
//! or failed operations leave none; the background task purges by `audit_retention`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use keyroute::keys::{
    AuditAction, AuditContext, AuditQuery, KeyOptions, KeyService, KeyUpdate, Operator,
};
use keyroute::store::{AuditLog, MemoryStore, UserStore};
use keyroute::test_util::ManualClock;
use keyroute::{Environment, KeyRequest, KeyType, Keyroute, NewUser, Scopes, User, UserId};

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

async fn actions(store: &MemoryStore) -> Vec<(AuditAction, String)> {
    store
        .audit_records(&AuditQuery::new().limit(1000))
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.action, r.actor))
        .collect()
}

#[tokio::test]
async fn every_change_is_recorded_once_with_its_actor() {
    let store = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(start());
    let service = KeyService::new(Arc::clone(&store), KeyOptions::default())
        .unwrap()
        .with_clock(Arc::new(clock.clone()));
    let ada = service.register_user(NewUser::named("ada")).await.unwrap();
    let ada_key = ada.keys[0].key.clone();
    let caller = service
        .format()
        .parse(ada.keys[0].plaintext.expose_secret())
        .unwrap();
    assert_eq!(caller.environment, Environment::LIVE);
    let principal = keyroute::Principal::from_api_key(
        Arc::new({
            let mut k = ada_key.clone();
            k.scopes = Scopes::parse(["orders:*"]).unwrap();
            k
        }),
        Some(Arc::new(ada.user.clone())),
    );
    let context = AuditContext::new(Some("198.51.100.4".parse().unwrap()), Some("req-7"));
    let as_ada = service.acting_as(&principal).with_context(context);
    let issued = as_ada
        .issue_key(
            KeyRequest::new(KeyType::SECRET, Environment::LIVE)
                .for_user(ada.user.id.clone())
                .with_scopes(Scopes::parse(["orders:read"]).unwrap()),
        )
        .await
        .unwrap();
    // Refused: nothing recorded.
    as_ada
        .issue_key(
            KeyRequest::new(KeyType::SECRET, Environment::LIVE)
                .with_scopes(Scopes::parse(["admin"]).unwrap()),
        )
        .await
        .unwrap_err();
    as_ada
        .update_key(
            &issued.key.id,
            &KeyUpdate::new().name(Some("ci".into())).enabled(false),
        )
        .await
        .unwrap();
    // An update that changes nothing writes nothing and records nothing.
    as_ada
        .update_key(&issued.key.id, &KeyUpdate::new().enabled(false))
        .await
        .unwrap();
    let rolled = as_ada.roll(&issued.key.id, None).await.unwrap().unwrap();
    // Rolled already: refused, not recorded.
    as_ada.roll(&issued.key.id, None).await.unwrap_err();
    as_ada.revoke(&rolled.issued.key.id).await.unwrap();
    let operator = service.acting_as(Operator::new("cli:alice").unwrap());
    operator
        .regenerate(&ada.user.id, &Environment::TEST, None)
        .await
        .unwrap();
    store
        .import_users(&[User::new(
            UserId::new("imported").unwrap(),
            "imported",
            start(),
        )])
        .await
        .unwrap();
    service.backfill(10).await.unwrap();

    let ada_actor = format!("key:{}", ada_key.id);
    assert_eq!(
        actions(&store).await,
        [
            (AuditAction::UserRegistered, "application".to_owned()),
            (AuditAction::KeyIssued, ada_actor.clone()),
            (AuditAction::KeyUpdated, ada_actor.clone()),
            (AuditAction::KeyRolled, ada_actor.clone()),
            (AuditAction::KeyRevoked, ada_actor.clone()),
            (
                AuditAction::KeysRegenerated,
                "operator:cli:alice".to_owned()
            ),
            (AuditAction::KeysBackfilled, "application".to_owned()),
        ]
    );
    let about_key = store
        .audit_records(&AuditQuery::new().for_key(issued.key.id.clone()))
        .await
        .unwrap();
    assert_eq!(about_key.len(), 3, "issued, updated, rolled");
    let update = &about_key[1];
    assert_eq!(update.source, Some("198.51.100.4".parse().unwrap()));
    assert_eq!(update.request_id.as_deref(), Some("req-7"));
    assert_eq!(update.user_id.as_ref(), Some(&ada.user.id));
    assert_eq!(update.environment, Some(Environment::LIVE));
    assert_eq!(
        update.details["changed"]["enabled"],
        serde_json::json!({ "from": true, "to": false })
    );
    assert_eq!(
        update.details["changed"]["name"],
        serde_json::json!({ "from": null, "to": "ci" })
    );
    // Never a secret or a hash.
    let everything = serde_json::to_string(
        &store
            .audit_records(&AuditQuery::new().limit(1000))
            .await
            .unwrap()
            .iter()
            .map(|r| r.details.clone())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    for key in ada.keys.iter().chain([&issued, &rolled.issued]) {
        assert!(!everything.contains(key.plaintext.expose_secret()));
        let hex: String = key
            .key
            .hash
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(!everything.contains(&hex));
    }
}

/// Who reads what: an operator everything; a key its own user's records of its
/// environment; another user's records only with the admin scope.
#[tokio::test]
async fn callers_read_only_what_they_may() {
    let store = Arc::new(MemoryStore::new());
    let service = KeyService::new(Arc::clone(&store), KeyOptions::default()).unwrap();
    let ada = service.register_user(NewUser::named("ada")).await.unwrap();
    let bob = service.register_user(NewUser::named("bob")).await.unwrap();
    for user in [&ada, &bob] {
        for env in [Environment::LIVE, Environment::TEST] {
            service
                .issue_key(KeyRequest::new(KeyType::SECRET, env).for_user(user.user.id.clone()))
                .await
                .unwrap();
        }
    }
    let test_key = ada.key(&KeyType::SECRET, &Environment::TEST).unwrap();
    let principal = keyroute::Principal::from_api_key(
        Arc::new(test_key.key.clone()),
        Some(Arc::new(ada.user.clone())),
    );
    let as_ada = service.acting_as(&principal);
    let mine = as_ada.audit_records(&AuditQuery::new()).await.unwrap();
    assert!(!mine.is_empty());
    assert!(
        mine.iter()
            .all(|r| r.user_id.as_ref() == Some(&ada.user.id))
    );
    assert!(
        mine.iter()
            .all(|r| r.environment.is_none() || r.environment == Some(Environment::TEST)),
        "a test key reads no live key's record"
    );
    let refused = as_ada
        .audit_records(&AuditQuery::new().for_user(bob.user.id.clone()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "not_your_keys");
    let all = service
        .acting_as(Operator::new("cli").unwrap())
        .audit_records(&AuditQuery::new())
        .await
        .unwrap();
    assert_eq!(all.len(), 6, "two registrations, four issues");
}

/// The background task purges records older than `audit_retention`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_task_purges_by_retention() {
    let store = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(start());
    let mut options = KeyOptions::default();
    options.dangerous_accept_plain_http = true;
    options.audit_retention = Some(Duration::from_secs(24 * 3600));
    let app = Keyroute::<keyroute::store::Sqlite>::builder()
        .shared_store(store.clone())
        .options(options)
        .clock(Arc::new(clock.clone()))
        .connection("live", "sqlite::memory:")
        .connection("test", "sqlite::memory:")
        .build()
        .await
        .unwrap();
    app.keys()
        .register_user(NewUser::named("old"))
        .await
        .unwrap();
    clock.advance(TimeDelta::hours(30));
    app.keys()
        .register_user(NewUser::named("new"))
        .await
        .unwrap();
    assert_eq!(actions(&store).await.len(), 2);
    // The purge runs when the task starts, then every few minutes.
    app.spawn_background().unwrap();
    for _ in 0..500 {
        if actions(&store).await.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let left = store.audit_records(&AuditQuery::new()).await.unwrap();
    assert_eq!(left.len(), 1, "the record past retention is gone");
    assert_eq!(left[0].details["user_name"], "new");
}
