//! Defect tests across crates: each is named after a defect found in review and failed
//! before its fix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use crate::common::bearer;
use keyroute::auth::{JwtError, TokenVerifier};
use keyroute::jwt::{IssuedToken, JwtKeyRequest};
use keyroute::store::ApiKeyStore;
use keyroute::store::Sqlite;
use keyroute::{
    AuthError, Config, Environment, IncomingRequest, IssuedKey, KeyId, KeyRequest, KeyType,
    Keyroute, NewUser, UserId,
};

/// A handle on SQLite files in `dir`: keys cached for an hour, JWTs on with the
/// deny-list check, and room for the hundreds of keys a drop sweep leaves working.
async fn handle(dir: &std::path::Path) -> Keyroute<Sqlite> {
    let config = Config::from_toml_str(&format!(
        "[apikey]\nsession_cache_duration = \"1h\"\ndangerous_accept_plain_http = true\n\
         max_keys_per_user = 1000\n\
         [connections]\nlive = {:?}\ntest = {:?}\n\
         [jwt]\nenabled = true\ndeny_cache_ttl = \"10m\"",
        dir.join("live.db"),
        dir.join("test.db")
    ))
    .unwrap();
    Keyroute::<Sqlite>::from_config(config).await.unwrap()
}

/// A fresh test key of `user`, cached by a first request; its request headers and a
/// JWT exchanged for it.
async fn cached_key(
    app: &Keyroute<Sqlite>,
    user: &UserId,
) -> (IssuedKey, http::HeaderMap, IssuedToken) {
    let key = app
        .keys()
        .issue_key(KeyRequest::new(KeyType::SECRET, Environment::TEST).for_user(user.clone()))
        .await
        .unwrap();
    let headers = bearer(key.plaintext.expose_secret());
    let caller = app
        .authenticate(&IncomingRequest::new(&headers))
        .await
        .unwrap();
    let exchanged = app.jwt().unwrap().exchange(&caller).unwrap();
    (key, headers, exchanged)
}

/// Drops `operation` at every point in turn: for 160 steps, a fresh API key (cached by
/// a first request, with a JWT exchanged for it) and a JWT issued as a key with no
/// expiry each get `operation`, its future given a growing budget and dropped when the
/// budget runs out. Whenever the store shows a key cancelled, the key and everything
/// derived from it must be refused; failures name the step and say the key was
/// `done` ("revoked", "rolled-away"). The sweep must see both drops and commits.
async fn drop_sweep<T>(done: &str, operation: impl AsyncFn(&Keyroute<Sqlite>, &KeyId) -> T) {
    let dir = tempfile::tempdir().unwrap();
    let app = handle(dir.path()).await;
    let jwt = app.jwt().unwrap();
    let ada = app
        .keys()
        .register_user(NewUser::named("ada"))
        .await
        .unwrap();
    let (mut committed, mut dropped) = (0, 0);
    for step in 0..160u64 {
        // An API key, cached by a first request, and a JWT exchanged for it.
        let (key, headers, exchanged) = cached_key(&app, &ada.user.id).await;
        // A JWT issued as a key, with no expiry: only the deny-list can stop it.
        let jwt_key = jwt
            .issue_key(
                app.keys(),
                JwtKeyRequest::new(
                    KeyRequest::new(KeyType::SECRET, Environment::TEST)
                        .for_user(ada.user.id.clone()),
                ),
            )
            .await
            .unwrap();
        jwt.verify(jwt_key.plaintext.expose_secret()).await.unwrap();

        // Apply the operation to both, each future given a growing budget and dropped
        // when it runs out.
        let budget = Duration::from_micros(25 * step);
        for id in [&key.key.id, &jwt_key.key.id] {
            if tokio::time::timeout(budget, operation(&app, id))
                .await
                .is_err()
            {
                dropped += 1;
            }
        }

        let stored = app.store().get_api_key(&key.key.id).await.unwrap().unwrap();
        if stored.cancelled_at.is_some() {
            committed += 1;
            assert!(
                matches!(
                    app.authenticate(&IncomingRequest::new(&headers)).await,
                    Err(AuthError::Revoked)
                ),
                "step {step}: the {done} key was still accepted"
            );
            assert!(
                matches!(
                    jwt.verify(exchanged.token.expose_secret()).await,
                    Err(AuthError::Jwt(JwtError::Revoked))
                ),
                "step {step}: a JWT exchanged for the {done} key was still accepted"
            );
        }
        let stored = app
            .store()
            .get_api_key(&jwt_key.key.id)
            .await
            .unwrap()
            .unwrap();
        if stored.cancelled_at.is_some() {
            assert!(
                matches!(
                    jwt.verify(jwt_key.plaintext.expose_secret()).await,
                    Err(AuthError::Jwt(JwtError::Revoked))
                ),
                "step {step}: the {done} JWT key was still accepted"
            );
        }
    }
    assert!(
        dropped > 0 && committed > 0,
        "dropped {dropped}, committed {committed}"
    );
}

/// A revoke whose future was dropped after the store write (client gone, request timed
/// out) left the key in the revoking instance's cache and a JWT issued as a key with no
/// expiry off the deny-list, so both kept working. Dropped at every point in turn.
/// (SQLite queries run on their connection's thread, so the revoke's future is pending
/// while each of its queries runs and can be dropped there.)
#[tokio::test(flavor = "current_thread")]
async fn revoke_dropped_after_the_store_write_is_not_lost() {
    drop_sweep("revoked", async |app, id| app.keys().revoke(id).await).await;
}

/// A roll whose future was dropped between its store write and telling the listeners
/// left the old key cancelled in the store but in this instance's cache, and a JWT key
/// off the deny-list, valid for ever. Rolls now announce first, as revokes do. Dropped
/// at every point in turn, on the current-thread runtime where SQLite queries pend.
/// Rolled with no grace, so the old key stops at once.
#[tokio::test(flavor = "current_thread")]
async fn roll_dropped_after_the_store_write_is_not_lost() {
    drop_sweep("rolled-away", async |app, id| {
        app.keys().roll(id, None).await
    })
    .await;
}

/// Disabling a key (a narrowing update) dropped at every point in turn: whenever the
/// store shows the key disabled, the revoking instance must refuse it (its cache was
/// told before the write) and the JWT exchanged from it must be refused too. The
/// sweep must see both drops and commits.
#[tokio::test(flavor = "current_thread")]
async fn disable_dropped_after_the_store_write_is_not_lost() {
    use keyroute::keys::KeyUpdate;
    let dir = tempfile::tempdir().unwrap();
    let app = handle(dir.path()).await;
    let jwt = app.jwt().unwrap();
    let ada = app
        .keys()
        .register_user(NewUser::named("ada"))
        .await
        .unwrap();
    let (mut committed, mut dropped) = (0, 0);
    for step in 0..160u64 {
        let (key, headers, exchanged) = cached_key(&app, &ada.user.id).await;
        let budget = Duration::from_micros(25 * step);
        let disable = KeyUpdate::new().enabled(false);
        if tokio::time::timeout(budget, app.keys().update_key(&key.key.id, &disable))
            .await
            .is_err()
        {
            dropped += 1;
        }
        let stored = app.store().get_api_key(&key.key.id).await.unwrap().unwrap();
        if !stored.enabled {
            committed += 1;
            assert!(
                matches!(
                    app.authenticate(&IncomingRequest::new(&headers)).await,
                    Err(AuthError::Disabled)
                ),
                "step {step}: the disabled key was still accepted"
            );
            assert!(
                matches!(
                    jwt.verify(exchanged.token.expose_secret()).await,
                    Err(AuthError::Jwt(JwtError::Revoked))
                ),
                "step {step}: a JWT exchanged for the disabled key was still accepted"
            );
        }
    }
    assert!(
        dropped > 0 && committed > 0,
        "dropped {dropped}, committed {committed}"
    );
}
