//! Shared set-up of the JWT fuzz targets: one HS256 service on a fixed clock, and a
//! signer for hand-made tokens.

use std::sync::{Arc, LazyLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey};
use keyroute_core::ManualClock;
use keyroute_jwt::{JwtAlgorithm, JwtConfig, JwtService, SigningKey};

/// The fuzz service's HS256 secret (fuzzing only; the seed tokens are signed with it).
pub const SECRET: &[u8] = b"keyroute-fuzz-secret-0123456789-abcdefghij";

/// The `kid` of [`SECRET`].
pub const KID: &str = "fuzz-hs";

/// The instant the service's clock stands at: 2026-11-01T12:00:00Z.
pub const NOW: i64 = 1_793_534_400;

/// The service every JWT target verifies with: HS256, no deny-list (decode needs none),
/// issuer and audience unset, clock fixed at [`NOW`] so seeds never expire.
pub static SERVICE: LazyLock<Option<JwtService>> = LazyLock::new(|| {
    let key = SigningKey::from_hmac_secret(KID, JwtAlgorithm::Hs256, SECRET).ok()?;
    let now = DateTime::<Utc>::from_timestamp(NOW, 0)?;
    JwtService::builder(JwtConfig::default().with_deny_list_check(false))
        .signing_key(key)
        .clock(Arc::new(ManualClock::new(now)))
        .build()
        .ok()
});

/// Base64url without padding, as JWTs encode their parts.
pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A token with any header and payload text, HS256-signed with [`SECRET`], so the
/// verifier gets past the signature to the parts under test.
pub fn sign(header: &str, payload: &str) -> Option<String> {
    let message = format!("{}.{}", b64(header), b64(payload));
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(SECRET),
        Algorithm::HS256,
    )
    .ok()?;
    Some(format!("{message}.{signature}"))
}

/// Checks what any token `decode` accepts must satisfy: an environment the service
/// accepts. Panics (a fuzz finding) otherwise.
pub fn check_accepted(service: &JwtService, token: &str) {
    if let Ok(verified) = service.decode(token) {
        assert!(
            service
                .config()
                .environments
                .contains(verified.principal.environment()),
            "accepted a token for an environment the service does not take"
        );
    }
}
