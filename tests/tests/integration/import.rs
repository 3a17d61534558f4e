//! Importing keys through the key service: keyroute-format plaintexts become ordinary
//! keys, other formats and bare hashes legacy keys (only with `legacy_keys`), found by
//! hash; a legacy key can be updated, and rolling it gives a keyroute key. Callers
//! cannot import.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use keyroute::auth::KeyResolver;
use keyroute::keys::{
    ImportOutcome, ImportedKey, ImportedSecret, KeyHash, KeyOptions, KeyService, KeyUpdate,
    LEGACY_FORMAT, META_FORMAT, Operator,
};
use keyroute::store::MemoryStore;
use keyroute::{AuthError, Environment, KeyType, NewUser, PlaintextKey, Principal, Scopes};

fn service(legacy: bool) -> (KeyService<Arc<MemoryStore>>, KeyOptions) {
    let mut options = KeyOptions::default();
    options.legacy_keys = legacy;
    options.dangerous_accept_plain_http = true;
    let store = Arc::new(MemoryStore::new());
    (KeyService::new(store, options.clone()).unwrap(), options)
}

fn plaintext(text: &str) -> ImportedSecret {
    ImportedSecret::Plaintext(PlaintextKey::new(text))
}

#[tokio::test]
async fn imported_keys_resolve_and_move_to_keyroute_keys() {
    let (keys, options) = service(true);
    let ada = keys
        .register_user(NewUser::named("ada"))
        .await
        .unwrap()
        .user;
    let operator = keys.acting_as(Operator::new("cli:ops").unwrap());
    let resolver = KeyResolver::builder(Arc::clone(keys.store()), options.clone())
        .build()
        .unwrap();

    // A keyroute key made elsewhere (another deployment of the same format).
    let format = options.token_format().unwrap();
    let ours = format
        .generate(&KeyType::SECRET, &Environment::TEST)
        .unwrap();
    let mut imported = ImportedKey::new(
        ImportedSecret::Plaintext(ours.clone()),
        KeyType::SECRET,
        Environment::LIVE,
    );
    let refused = operator.import_key(&imported).await.unwrap_err();
    assert!(
        refused.to_string().contains("environment 'test'"),
        "{refused}"
    );
    imported.environment = Environment::TEST;
    imported.user_id = Some(ada.id.clone());
    let ImportOutcome::Imported(key) = operator.import_key(&imported).await.unwrap() else {
        panic!("imported")
    };
    assert!(!key.meta.contains_key(META_FORMAT), "an ordinary key");
    assert!(key.hint.starts_with("sk_test_"));
    assert_eq!(
        resolver
            .resolve(ours.expose_secret())
            .await
            .unwrap()
            .key_id(),
        Some(&key.id)
    );
    assert_eq!(
        operator.import_key(&imported).await.unwrap(),
        ImportOutcome::AlreadyStored
    );

    // A legacy key, by plaintext and by hash.
    let mut legacy = ImportedKey::new(
        plaintext("old-scheme-key-1234"),
        KeyType::SECRET,
        Environment::LIVE,
    );
    legacy.user_id = Some(ada.id.clone());
    legacy.scopes = Scopes::parse(["orders:*"]).unwrap();
    let ImportOutcome::Imported(old) = operator.import_key(&legacy).await.unwrap() else {
        panic!("imported")
    };
    assert_eq!(
        old.meta.get(META_FORMAT).map(String::as_str),
        Some(LEGACY_FORMAT)
    );
    assert_eq!(old.hint, "legacy…1234");
    assert_eq!(
        old.hash,
        KeyHash::of("old-scheme-key-1234"),
        "only the hash is kept"
    );
    let by_hash = ImportedKey::new(
        ImportedSecret::Hash(KeyHash::of("hashed-only")),
        KeyType::SECRET,
        Environment::TEST,
    );
    operator.import_key(&by_hash).await.unwrap();
    assert_eq!(
        resolver.resolve("hashed-only").await.unwrap().environment(),
        &Environment::TEST
    );
    let caller = resolver.resolve("old-scheme-key-1234").await.unwrap();
    assert!(caller.has_scope("orders:write"));
    assert!(matches!(
        resolver.resolve("old-scheme-key-1235").await,
        Err(AuthError::UnknownKey)
    ));

    // Callers cannot import.
    let refused = keys
        .acting_as(&caller)
        .import_key(&legacy)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "operators_only");

    // A legacy key's settings can change, and a roll replaces it with a keyroute key.
    keys.update_key(
        &old.id,
        &KeyUpdate::new().scopes(Scopes::parse(["orders:read"]).unwrap()),
    )
    .await
    .unwrap();
    let rolled = keys.roll(&old.id, None).await.unwrap().unwrap();
    assert!(!rolled.issued.key.meta.contains_key(META_FORMAT));
    let new_secret = rolled.issued.plaintext.expose_secret();
    assert!(format.parse(new_secret).is_ok(), "a keyroute key now");
    let moved: Principal = resolver.resolve(new_secret).await.unwrap();
    assert!(moved.has_scope("orders:read") && !moved.has_scope("orders:write"));
    assert!(matches!(
        resolver.resolve("old-scheme-key-1234").await,
        Err(AuthError::Revoked)
    ));
}

#[tokio::test]
async fn legacy_keys_need_the_setting() {
    let (keys, options) = service(false);
    let operator = keys.acting_as(Operator::new("cli").unwrap());
    let legacy = ImportedKey::new(
        plaintext("old-scheme-key-1234"),
        KeyType::SECRET,
        Environment::LIVE,
    );
    let refused = operator.import_key(&legacy).await.unwrap_err();
    assert!(refused.to_string().contains("legacy_keys"), "{refused}");
    let by_hash = ImportedKey::new(
        ImportedSecret::Hash(KeyHash::of("x")),
        KeyType::SECRET,
        Environment::LIVE,
    );
    assert!(operator.import_key(&by_hash).await.is_err());
    // And without it, a token of another format is refused offline, with no lookup.
    let resolver = KeyResolver::builder(Arc::clone(keys.store()), options)
        .build()
        .unwrap();
    assert!(matches!(
        resolver.resolve("old-scheme-key-1234").await,
        Err(AuthError::Token(_))
    ));
}
