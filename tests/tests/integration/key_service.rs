//! The key service's rules, on the memory store: what registration, issuing, hooks,
//! revocation and regeneration promise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use keyroute::keys::{
    GenerateError, KeyListener, KeyOptions, KeyQuery, KeyService, KeyStatus, Tenant, TokenFormat,
};
use keyroute::store::MemoryStore;
use keyroute::store::{ApiKeyStore, UserStore};
use keyroute::test_util::ManualClock;
use keyroute::{
    ApiKey, Environment, KeyRequest, KeyServiceError, KeyType, NewUser, PlaintextKey, Scopes,
    UserId,
};

fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn new_service(options: KeyOptions) -> (KeyService<Arc<MemoryStore>>, ManualClock) {
    let clock = ManualClock::new(start());
    let service = KeyService::new(Arc::new(MemoryStore::new()), options)
        .unwrap()
        .with_clock(Arc::new(clock.clone()));
    (service, clock)
}

/// Remembers every retired key it is told about.
#[derive(Default)]
struct Recorder(Mutex<Vec<ApiKey>>);

#[async_trait::async_trait]
impl KeyListener for Recorder {
    async fn keys_retired(&self, keys: &[ApiKey]) {
        self.0.lock().unwrap().extend_from_slice(keys);
    }
}

/// Registration makes one key per environment × type; plaintexts parse and only their
/// hashes are stored.
#[tokio::test]
async fn registration_issues_a_key_per_environment_and_type() {
    let mut options = KeyOptions::default();
    options.key_types = vec![KeyType::SECRET, KeyType::PUBLISHABLE];
    let (service, _) = new_service(options);
    let registration = service
        .register_user(NewUser::named("ada").with_tenant(Tenant::new("acme").unwrap()))
        .await
        .unwrap();
    assert_eq!(registration.keys.len(), 4);
    for (t, e, prefix) in [
        (KeyType::SECRET, Environment::LIVE, "sk_live_"),
        (KeyType::SECRET, Environment::TEST, "sk_test_"),
        (KeyType::PUBLISHABLE, Environment::LIVE, "pk_live_"),
        (KeyType::PUBLISHABLE, Environment::TEST, "pk_test_"),
    ] {
        let issued = registration.key(&t, &e).unwrap();
        let secret = issued.plaintext.expose_secret();
        assert!(secret.starts_with(prefix), "{secret}");
        assert_eq!(
            service.format().parse(secret).unwrap().hash,
            issued.key.hash
        );
        assert_eq!(
            issued.key.tenant.as_ref().map(Tenant::as_str),
            Some("acme"),
            "keys inherit the tenant"
        );
        assert!(issued.key.hint.starts_with(prefix) && issued.key.hint.len() < 16);
        let stored = service
            .store()
            .get_api_key(&issued.key.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored, issued.key);
        assert!(
            !format!("{stored:?}").contains(&secret[8..]),
            "the record holds no plaintext"
        );
    }
    let conflict = service
        .register_user(NewUser::named("ada"))
        .await
        .unwrap_err();
    assert!(
        matches!(conflict, KeyServiceError::Store(e) if e.kind() == keyroute::store::ErrorKind::Conflict)
    );
    assert!(matches!(
        service.register_user(NewUser::named("")).await,
        Err(KeyServiceError::Name(_))
    ));
}

/// A single key carries its name, scopes and expiry; keys may belong to no user.
#[tokio::test]
async fn issued_keys_carry_scopes_and_expiry() {
    let mut options = KeyOptions::default();
    options.expire_keys_after = Some(Duration::from_secs(3600));
    let (service, clock) = new_service(options);
    let ada = service
        .register_user(NewUser::named("ada"))
        .await
        .unwrap()
        .user;
    let default_expiry = service
        .issue_key(KeyRequest::new(KeyType::SECRET, Environment::TEST).for_user(ada.id.clone()))
        .await
        .unwrap();
    assert_eq!(
        default_expiry.key.expires_at,
        Some(start() + TimeDelta::hours(1))
    );

    let scoped = service
        .issue_key(
            KeyRequest::new(KeyType::SECRET, Environment::LIVE)
                .named("reporting")
                .with_scopes(Scopes::parse(["orders:read"]).unwrap())
                .expires_in(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    assert_eq!(scoped.key.user_id, None);
    assert_eq!(scoped.key.name.as_deref(), Some("reporting"));
    assert!(scoped.key.scopes.grants("orders:read"));
    clock.advance(TimeDelta::seconds(60));
    let stored = service
        .store()
        .get_api_key(&scoped.key.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status(clock_now(&clock)), KeyStatus::Expired);

    let unknown =
        KeyRequest::new(KeyType::SECRET, Environment::LIVE).for_user(UserId::new("ghost").unwrap());
    assert!(matches!(
        service.issue_key(unknown).await,
        Err(KeyServiceError::UnknownUser(_))
    ));
    let staging = KeyRequest::new(KeyType::SECRET, Environment::new("staging").unwrap());
    assert!(matches!(
        service.issue_key(staging).await,
        Err(KeyServiceError::EnvironmentNotEnabled(_))
    ));
    let publishable = KeyRequest::new(KeyType::PUBLISHABLE, Environment::LIVE);
    assert!(matches!(
        service.issue_key(publishable).await,
        Err(KeyServiceError::KeyTypeNotEnabled(_))
    ));
}

fn clock_now(clock: &ManualClock) -> DateTime<Utc> {
    keyroute::clock::Clock::now(clock)
}

/// Revocation cancels the key now and tells listeners, so caches can evict it.
#[tokio::test]
async fn revoke_cancels_and_announces() {
    let recorder = Arc::new(Recorder::default());
    let (service, _) = new_service(KeyOptions::default());
    let service = service.with_listener(recorder.clone());
    let registration = service.register_user(NewUser::named("ada")).await.unwrap();
    let key = &registration.keys[0].key;
    let revoked = service.revoke(&key.id).await.unwrap().unwrap();
    assert_eq!(revoked.status(start()), KeyStatus::Cancelled);
    assert_eq!(
        recorder
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|k| &k.id)
            .collect::<Vec<_>>(),
        [&key.id]
    );
    assert!(
        service
            .revoke(&keyroute::KeyId::random())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        recorder.0.lock().unwrap().len(),
        1,
        "nothing announced for an unknown key"
    );
}

/// Regenerating rolls an environment's keys: with a grace period the old keys work
/// until it ends; the other environment is untouched.
#[tokio::test]
async fn regenerate_with_grace_period() {
    let recorder = Arc::new(Recorder::default());
    let (service, clock) = new_service(KeyOptions::default());
    let service = service.with_listener(recorder.clone());
    let registration = service.register_user(NewUser::named("ada")).await.unwrap();
    let user = &registration.user.id;
    let old_live = registration
        .key(&KeyType::SECRET, &Environment::LIVE)
        .unwrap()
        .key
        .clone();
    let old_test = registration
        .key(&KeyType::SECRET, &Environment::TEST)
        .unwrap()
        .key
        .clone();

    let rolled = service
        .regenerate(user, &Environment::LIVE, Some(Duration::from_secs(3600)))
        .await
        .unwrap();
    assert_eq!(rolled.issued.len(), 1);
    assert_eq!(
        rolled.retired.iter().map(|k| &k.id).collect::<Vec<_>>(),
        [&old_live.id]
    );
    assert_eq!(recorder.0.lock().unwrap().len(), 1);

    let live_now = service.active_keys(user, Environment::LIVE).await.unwrap();
    assert_eq!(
        live_now.len(),
        2,
        "old and new both work during the grace period"
    );
    clock.advance(TimeDelta::hours(1));
    let live_later = service.active_keys(user, Environment::LIVE).await.unwrap();
    assert_eq!(
        live_later.iter().map(|k| &k.id).collect::<Vec<_>>(),
        [&rolled.issued[0].key.id]
    );
    let test_keys = service.active_keys(user, Environment::TEST).await.unwrap();
    assert_eq!(test_keys, [old_test]);

    let immediate = service
        .regenerate(user, &Environment::LIVE, None)
        .await
        .unwrap();
    assert_eq!(
        immediate.retired[0].status(clock_now(&clock)),
        KeyStatus::Cancelled
    );
    let all = service
        .list_keys(user, &KeyQuery::all().in_environment(Environment::LIVE))
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
}

/// The creation hook customises keys but may not change what identifies them.
#[tokio::test]
async fn creation_hook_customises_but_cannot_change_identity() {
    let mut options = KeyOptions::default();
    options.on_create_key = Some(Arc::new(|key: &mut ApiKey| {
        key.notes = Some(format!("made for {}", key.environment));
    }));
    let (service, _) = new_service(options);
    let registration = service.register_user(NewUser::named("ada")).await.unwrap();
    assert_eq!(
        registration.keys[0].key.notes.as_deref(),
        Some("made for live")
    );

    let mut options = KeyOptions::default();
    options.on_create_key = Some(Arc::new(|key: &mut ApiKey| {
        key.environment = Environment::LIVE
    }));
    let (service, _) = new_service(options);
    let err = service
        .register_user(NewUser::named("bob"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, KeyServiceError::HookChangedIdentity("environment")),
        "{err}"
    );
    assert!(
        service
            .store()
            .find_user_by_name("bob")
            .await
            .unwrap()
            .is_none(),
        "nothing stored"
    );
}

/// A custom generator is used, and its output must parse under the token format.
#[tokio::test]
async fn custom_generator_output_is_checked() {
    let mut options = KeyOptions::default();
    options.generate_key = Some(Arc::new(
        |format: &TokenFormat,
         t: &KeyType,
         e: &Environment|
         -> Result<PlaintextKey, GenerateError> { Ok(format.encode(t, e, &[7u8; 24])?) },
    ));
    let (service, _) = new_service(options);
    let first = service
        .issue_key(KeyRequest::new(KeyType::SECRET, Environment::TEST))
        .await
        .unwrap();
    assert!(first.plaintext.expose_secret().starts_with("sk_test_BwcH"));
    let again = service
        .issue_key(KeyRequest::new(KeyType::SECRET, Environment::TEST))
        .await;
    assert!(
        matches!(again, Err(KeyServiceError::Store(_))),
        "the same key twice is a conflict"
    );

    let mut options = KeyOptions::default();
    options.generate_key = Some(Arc::new(
        |_: &TokenFormat, _: &KeyType, _: &Environment| -> Result<PlaintextKey, GenerateError> {
            Ok(PlaintextKey::new("not-a-key"))
        },
    ));
    let (service, _) = new_service(options);
    let bad = service
        .issue_key(KeyRequest::new(KeyType::SECRET, Environment::TEST))
        .await;
    assert!(matches!(bad, Err(KeyServiceError::GeneratedKeyInvalid(_))));
}
