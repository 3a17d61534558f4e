//! Shared set-up for the integration tests: a memory store, a manual clock, services
//! and hand-made tokens.
// Each test file uses a different part of this module.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeZone as _, Utc};
use jsonwebtoken::{Algorithm, EncodingKey};
use keyroute_core::{KeyOptions, KeyService, ManualClock};
use keyroute_jwt::{JwtAlgorithm, JwtConfig, JwtService, SigningKey, VerificationKey};
use keyroute_store::MemoryStore;

/// The shared HS256 secret of the test services (test-only).
pub const SECRET: &[u8] = b"keyroute-jwt-test-secret-0123456789-abcdef";

/// The `kid` of that secret.
pub const HS_KID: &str = "hs-1";

/// The `kid` of the RSA verification key every test service also holds.
pub const RSA_KID: &str = "rsa-1";

/// A test-only key pair from `tests/fixtures` (made once with openssl).
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The instant every test starts at.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap()
}

/// Now on `clock`, in whole seconds (as JWT times are).
pub fn now_secs(clock: &ManualClock) -> i64 {
    use keyroute_core::Clock as _;
    clock.now().timestamp()
}

/// A store, a clock, a JWT service and a key service that tells the JWT service of
/// revocations.
pub struct Setup {
    pub clock: ManualClock,
    pub store: Arc<MemoryStore>,
    pub jwt: Arc<JwtService>,
    pub keys: KeyService<Arc<MemoryStore>>,
}

/// The HS256 signing key made from [`SECRET`].
pub fn hs_key() -> SigningKey {
    SigningKey::from_hmac_secret(HS_KID, JwtAlgorithm::Hs256, SECRET).unwrap()
}

/// The RSA public key from the fixtures, as a verification key.
pub fn rsa_public() -> VerificationKey {
    VerificationKey::from_pem(RSA_KID, JwtAlgorithm::Rs256, &fixture("rsa_public.pem")).unwrap()
}

/// A JWT service over `store` and `clock`, signing with [`hs_key`] and also holding
/// the RSA verification key.
pub fn jwt_service(config: JwtConfig, store: &Arc<MemoryStore>, clock: &ManualClock) -> JwtService {
    JwtService::builder(config)
        .verification_key(rsa_public())
        .signing_key(hs_key())
        .deny_list(store.clone())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap()
}

/// Everything wired together with `config`.
pub fn setup(config: JwtConfig) -> Setup {
    let clock = ManualClock::new(t0());
    let store = Arc::new(MemoryStore::new());
    let jwt = Arc::new(jwt_service(config, &store, &clock));
    let keys = KeyService::new(store.clone(), KeyOptions::default())
        .unwrap()
        .with_clock(Arc::new(clock.clone()))
        .with_listener(jwt.revocation_listener());
    Setup {
        clock,
        store,
        jwt,
        keys,
    }
}

/// Base64url without padding, as JWTs encode their parts.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token with any header and payload text, HMAC-SHA256-signed with `secret`.
pub fn sign_raw(header: &str, payload: &str, secret: &[u8]) -> String {
    let message = format!("{}.{}", b64(header), b64(payload));
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(secret),
        Algorithm::HS256,
    )
    .unwrap();
    format!("{message}.{signature}")
}

/// A token with JSON header and claims, signed with [`SECRET`].
pub fn sign_json(header: &serde_json::Value, claims: &serde_json::Value) -> String {
    sign_raw(&header.to_string(), &claims.to_string(), SECRET)
}

/// The header of the test services' HS256 key.
pub fn hs_header() -> serde_json::Value {
    serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": HS_KID})
}

/// The decoded JSON of a token's part (0 header, 1 payload).
pub fn part(token: &str, index: usize) -> serde_json::Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}
