//! Keys: a round trip for every algorithm, verification with public keys only,
//! rotation, refused key material, and secrets kept out of `Debug`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::Arc;

use chrono::TimeDelta;
use common::{SECRET, fixture, hs_key, now_secs, part, setup, t0};
use keyroute_core::{
    AuthError, AuthMethod, Environment, JwtError, KeyRequest, KeyType, ManualClock, Tenant,
    TokenVerifier, UserId,
};
use keyroute_jwt::{
    JwtAlgorithm, JwtConfig, JwtService, JwtServiceError, SessionRequest, SigningKey,
    VerificationKey,
};

/// A service with only `key`, no deny-list, on a manual clock.
fn service_with(key: SigningKey, clock: &ManualClock) -> JwtService {
    JwtService::builder(JwtConfig::default().with_deny_list_check(false))
        .signing_key(key)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap()
}

/// Every supported algorithm's signing key, from generated secrets or PEM fixtures.
fn every_signing_key() -> Vec<SigningKey> {
    vec![
        SigningKey::generate_hs256("hs256").unwrap(),
        SigningKey::generate_hmac("hs384", JwtAlgorithm::Hs384).unwrap(),
        SigningKey::generate_hmac("hs512", JwtAlgorithm::Hs512).unwrap(),
        SigningKey::from_pem("rs256", JwtAlgorithm::Rs256, &fixture("rsa_private.pem")).unwrap(),
        SigningKey::from_pem("es256", JwtAlgorithm::Es256, &fixture("ec_private.pem")).unwrap(),
        SigningKey::from_pem("eddsa", JwtAlgorithm::EdDsa, &fixture("ed_private.pem")).unwrap(),
    ]
}

/// A session token signed with each algorithm verifies back to its principal, and its
/// header names the key's algorithm and kid.
#[tokio::test]
async fn round_trip_for_every_algorithm() {
    let clock = ManualClock::new(t0());
    for key in every_signing_key() {
        let (kid, algorithm) = (key.kid().to_owned(), key.algorithm());
        let jwt = service_with(key, &clock);
        let user = UserId::new("u-42").unwrap();
        let issued = jwt
            .issue_session(
                SessionRequest::new(user.clone())
                    .in_environment(Environment::TEST)
                    .with_tenant(Tenant::new("acme").unwrap()),
            )
            .unwrap();
        let header = part(issued.token.expose_secret(), 0);
        assert_eq!(header["alg"], algorithm.name(), "{kid}");
        assert_eq!(header["kid"], kid.as_str());
        assert_eq!(issued.kid, kid);

        let principal = jwt.verify(issued.token.expose_secret()).await.unwrap();
        assert_eq!(principal.method(), AuthMethod::UserSession, "{kid}");
        assert_eq!(principal.environment(), &Environment::TEST);
        assert_eq!(principal.user_id(), Some(&user));
        assert_eq!(principal.tenant().map(Tenant::as_str), Some("acme"));
    }
}

/// Tokens signed with a private key verify on a service that holds only the public key.
#[tokio::test]
async fn public_keys_verify_what_private_keys_sign() {
    let clock = ManualClock::new(t0());
    for (algorithm, private, public) in [
        (JwtAlgorithm::Rs256, "rsa_private.pem", "rsa_public.pem"),
        (JwtAlgorithm::Es256, "ec_private.pem", "ec_public.pem"),
        (JwtAlgorithm::EdDsa, "ed_private.pem", "ed_public.pem"),
    ] {
        let signer = service_with(
            SigningKey::from_pem("k", algorithm, &fixture(private)).unwrap(),
            &clock,
        );
        let verifier = JwtService::builder(JwtConfig::default().with_deny_list_check(false))
            .verification_key(VerificationKey::from_pem("k", algorithm, &fixture(public)).unwrap())
            .clock(Arc::new(clock.clone()))
            .build()
            .unwrap();
        let issued = signer
            .issue_session(SessionRequest::new(UserId::new("u").unwrap()))
            .unwrap();
        let principal = verifier.verify(issued.token.expose_secret()).await.unwrap();
        assert_eq!(principal.environment(), &Environment::LIVE, "{algorithm}");
        assert!(matches!(
            verifier.issue_session(SessionRequest::new(UserId::new("u").unwrap())),
            Err(JwtServiceError::NoSigningKey)
        ));
    }
}

/// After a rotation new tokens carry the new kid, old tokens verify while the old key
/// is listed, and stop once it is removed; the signing key cannot be removed.
#[tokio::test]
async fn rotation() {
    let s = setup(JwtConfig::default());
    let session = || SessionRequest::new(UserId::new("u").unwrap());
    let old = s.jwt.issue_session(session()).unwrap();
    assert_eq!(old.kid, "hs-1");

    s.jwt
        .rotate(SigningKey::generate_hmac("hs-2", JwtAlgorithm::Hs512).unwrap())
        .unwrap();
    let new = s.jwt.issue_session(session()).unwrap();
    assert_eq!(new.kid, "hs-2");
    assert_eq!(part(new.token.expose_secret(), 0)["alg"], "HS512");
    assert_eq!(s.jwt.signing_key_id().as_deref(), Some("hs-2"));
    assert_eq!(s.jwt.key_ids(), ["rsa-1", "hs-1", "hs-2"]);
    assert!(s.jwt.verify(old.token.expose_secret()).await.is_ok());
    assert!(s.jwt.verify(new.token.expose_secret()).await.is_ok());

    assert!(s.jwt.remove_key("hs-1").unwrap());
    assert!(!s.jwt.remove_key("hs-1").unwrap());
    assert!(matches!(
        s.jwt.verify(old.token.expose_secret()).await,
        Err(AuthError::Jwt(JwtError::UnknownKeyId))
    ));
    assert!(s.jwt.verify(new.token.expose_secret()).await.is_ok());
    assert!(matches!(
        s.jwt.remove_key("hs-2"),
        Err(JwtServiceError::Config(_))
    ));
    assert!(matches!(
        s.jwt.rotate(SigningKey::generate_hs256("hs-2").unwrap()),
        Err(JwtServiceError::DuplicateKeyId(kid)) if kid == "hs-2"
    ));
}

/// Given several signing keys, the builder signs with the last (newest) and verifies all.
#[tokio::test]
async fn the_newest_signing_key_signs() {
    let clock = ManualClock::new(t0());
    let old = SigningKey::generate_hs256("2026-10").unwrap();
    let older_service = service_with(old.clone(), &clock);
    let earlier = older_service
        .issue_session(SessionRequest::new(UserId::new("u").unwrap()))
        .unwrap();
    let jwt = JwtService::builder(JwtConfig::default().with_deny_list_check(false))
        .signing_key(old)
        .signing_key(SigningKey::generate_hs256("2026-11").unwrap())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let issued = jwt
        .issue_session(SessionRequest::new(UserId::new("u").unwrap()))
        .unwrap();
    assert_eq!(issued.kid, "2026-11");
    assert!(jwt.verify(earlier.token.expose_secret()).await.is_ok());
}

/// Short secrets, wrong key families, garbage PEM, bad kids and duplicate kids are refused
/// when the key is loaded or the service built.
#[test]
fn bad_key_material_is_refused() {
    let invalid = |r: Result<SigningKey, JwtServiceError>| {
        matches!(r, Err(JwtServiceError::InvalidKey { .. }))
    };
    assert!(invalid(SigningKey::from_hmac_secret(
        "k",
        JwtAlgorithm::Hs256,
        &[7; 31]
    )));
    assert!(invalid(SigningKey::from_hmac_secret(
        "k",
        JwtAlgorithm::Hs512,
        &[7; 63]
    )));
    assert!(invalid(SigningKey::from_hmac_secret(
        "k",
        JwtAlgorithm::Rs256,
        SECRET
    )));
    assert!(invalid(SigningKey::generate_hmac("k", JwtAlgorithm::EdDsa)));
    assert!(invalid(SigningKey::from_pem(
        "k",
        JwtAlgorithm::Hs256,
        &fixture("rsa_private.pem")
    )));
    assert!(invalid(SigningKey::from_pem(
        "k",
        JwtAlgorithm::Es256,
        &fixture("rsa_private.pem")
    )));
    assert!(invalid(SigningKey::from_pem(
        "k",
        JwtAlgorithm::EdDsa,
        &fixture("ec_private.pem")
    )));
    assert!(invalid(SigningKey::from_pem(
        "k",
        JwtAlgorithm::Rs256,
        b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"
    )));
    assert!(invalid(SigningKey::from_hmac_secret(
        "",
        JwtAlgorithm::Hs256,
        SECRET
    )));
    assert!(invalid(SigningKey::from_hmac_secret(
        "a kid",
        JwtAlgorithm::Hs256,
        SECRET
    )));
    for (algorithm, pem) in [
        (JwtAlgorithm::Hs256, "rsa_public.pem"),
        (JwtAlgorithm::Rs256, "ec_public.pem"),
        (JwtAlgorithm::Es256, "ed_public.pem"),
        (JwtAlgorithm::EdDsa, "rsa_public.pem"),
        (JwtAlgorithm::EdDsa, "ed_private.pem"),
    ] {
        assert!(
            matches!(
                VerificationKey::from_pem("k", algorithm, &fixture(pem)),
                Err(JwtServiceError::InvalidKey { .. })
            ),
            "{algorithm} {pem}"
        );
    }

    let duplicate = JwtService::builder(JwtConfig::default().with_deny_list_check(false))
        .signing_key(hs_key())
        .signing_key(SigningKey::generate_hs256("hs-1").unwrap())
        .build();
    assert!(matches!(duplicate, Err(JwtServiceError::DuplicateKeyId(_))));
    let no_deny_list = JwtService::builder(JwtConfig::default())
        .signing_key(hs_key())
        .build();
    assert!(matches!(no_deny_list, Err(JwtServiceError::Config(_))));
    let no_keys = JwtService::builder(JwtConfig::default().with_deny_list_check(false)).build();
    assert!(matches!(no_keys, Err(JwtServiceError::Config(_))));
}

/// Neither signing keys, the service, issued tokens nor key errors show secret material
/// in `Debug` or `Display`.
#[tokio::test]
async fn secrets_never_appear_in_debug_output() {
    let s = setup(JwtConfig::default());
    let rsa_pem = fixture("rsa_private.pem");
    let rsa = SigningKey::from_pem("rs", JwtAlgorithm::Rs256, &rsa_pem).unwrap();
    let pem_body: String = String::from_utf8(rsa_pem)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_owned();
    let secret_text = std::str::from_utf8(SECRET).unwrap();
    let secret_b64 = common::b64(SECRET);

    let session = s
        .jwt
        .issue_session(SessionRequest::new(UserId::new("u").unwrap()))
        .unwrap();
    let jwt_key = s
        .jwt
        .issue_key(
            &s.keys,
            KeyRequest::new(KeyType::SECRET, Environment::TEST)
                .expires_in(std::time::Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let verified = s
        .jwt
        .verify_token(session.token.expose_secret())
        .await
        .unwrap();
    let short_secret_error =
        SigningKey::from_hmac_secret("k", JwtAlgorithm::Hs256, b"short-secret").unwrap_err();

    let shown = format!(
        "{:?} {:?} {:?} {:?} {:?} {:?} {:?} {} {:?}",
        hs_key(),
        rsa,
        rsa.verification_key(),
        s.jwt,
        session,
        jwt_key,
        verified,
        short_secret_error,
        short_secret_error,
    );
    for secret in [
        secret_text,
        &secret_b64,
        &pem_body,
        session.token.expose_secret(),
        jwt_key.plaintext.expose_secret(),
        "short-secret",
    ] {
        assert!(!shown.contains(secret), "{secret} leaked in {shown}");
    }
    // The parts that are not secret are shown.
    assert!(shown.contains("hs-1") && shown.contains("Rs256"), "{shown}");
}

/// A token is accepted up to `exp` plus the leeway and refused from then on; `nbf` gets
/// the same slack.
#[tokio::test]
async fn leeway_applies_to_exp_and_nbf() {
    let s = setup(JwtConfig::default().with_leeway(std::time::Duration::from_secs(5)));
    let issued = s
        .jwt
        .issue_session(
            SessionRequest::new(UserId::new("u").unwrap())
                .with_lifetime(std::time::Duration::from_secs(60)),
        )
        .unwrap();
    let token = issued.token.expose_secret();
    assert_eq!(issued.expires_at, t0() + TimeDelta::seconds(60));
    s.clock.advance(TimeDelta::seconds(64));
    assert!(s.jwt.verify(token).await.is_ok());
    s.clock.advance(TimeDelta::seconds(1));
    assert!(matches!(
        s.jwt.verify(token).await,
        Err(AuthError::Jwt(JwtError::Expired))
    ));

    // Issued by an instance whose clock runs 4 s ahead: accepted here; 6 s ahead: not yet.
    s.clock.set(t0());
    let ahead = common::jwt_service(
        JwtConfig::default(),
        &s.store,
        &ManualClock::new(t0() + TimeDelta::seconds(4)),
    );
    let slightly_ahead = ahead
        .issue_session(SessionRequest::new(UserId::new("u").unwrap()))
        .unwrap();
    assert!(
        s.jwt
            .verify(slightly_ahead.token.expose_secret())
            .await
            .is_ok()
    );
    let far = common::jwt_service(
        JwtConfig::default(),
        &s.store,
        &ManualClock::new(t0() + TimeDelta::seconds(6)),
    );
    let too_far = far
        .issue_session(SessionRequest::new(UserId::new("u").unwrap()))
        .unwrap();
    assert!(matches!(
        s.jwt.verify(too_far.token.expose_secret()).await,
        Err(AuthError::Jwt(JwtError::NotYetValid))
    ));
    assert_eq!(now_secs(&s.clock), t0().timestamp());
}
