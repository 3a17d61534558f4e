//! keyroute's JWTs: API keys exchanged for short-lived tokens, JWTs issued as scoped
//! API keys, session tokens for people, and the verifier that turns any of them into
//! the same [`Principal`](keyroute_core::Principal) an API key gives.
//!
//! Depends on `keyroute-core` alone: JWT keys are minted through its `KeyService`,
//! never around it.
//!
//! | module | holds |
//! |---|---|
//! | `key` | [`SigningKey`], [`VerificationKey`], [`JwtAlgorithm`]: keys named by `kid`, each pinned to one algorithm |
//! | `claims` | the claim names, [`TokenKind`], [`ScopeFormat`] (flat or structured scopes) |
//! | `config` | [`JwtConfig`]: lifetimes, issuer, audience, environments, leeway, deny cache |
//! | `section` | [`JwtSection`]: the `[jwt]` section of keyroute's configuration, and the signing key it names |
//! | `service` | [`JwtService`]: issue (exchange, key, session), verify, rotate keys |
//! | `deny` | the deny-list check and its cache, [`RevocationListener`] |
//! | `error` | [`JwtServiceError`] for loading keys and issuing; rejections are core's [`JwtError`](keyroute_core::JwtError) |
//!
//! # Why JWTs next to API keys
//!
//! An API key needs a store lookup (or a cache hit) on every request. Exchanging it
//! once for a short-lived JWT that carries the environment, key id, type, tenant, user
//! and scopes lets every later request be checked and routed with no I/O: the
//! environment that picks the database is in the signed token. A JWT can also *be* a
//! key (after Auth0's "JWTs as API keys"): long-lived, scoped, recorded in the store
//! as an [`ApiKey`](keyroute_core::ApiKey) so it is listed and revoked like any other.
//!
//! # How a token is checked
//!
//! 1. Length: over `max_token_bytes` (8 KiB) is `TooLong`, before any work.
//! 2. Header: `alg` must be one of [`JwtAlgorithm`] (`none` is `UnsupportedAlgorithm`);
//!    `kid` must name a known key (`UnknownKeyId`); and `alg` must be *that key's*
//!    algorithm (`AlgorithmMismatch`). The key, not the token, decides the
//!    algorithm, so an RS256 public key can never be used as an HS256 secret. A token
//!    without `kid` (RFC 7515 makes it optional) is checked with the one configured
//!    key of its `alg`; with none or several such keys it is `MissingKeyId`.
//! 3. Signature, by `jsonwebtoken`; a signature of the wrong length is `Malformed`
//!    (cut short), a wrong one `BadSignature`.
//! 4. Registered claims, read by keyroute rather than `jsonwebtoken`'s validator:
//!    `exp` and `nbf` against the injected [`Clock`](keyroute_core::Clock) (never the
//!    wall clock directly, so tests move a `ManualClock`), with `leeway` (default 5 s)
//!    for clock differences between instances; `iss` and `aud` when configured. Any
//!    standard JWT thus gets the standard answer (an expired one is `Expired`) before
//!    keyroute's own claims are asked for.
//! 5. keyroute's claims: `kind` and `jti` (and `exp`, required but for keys), `env`
//!    among the configured environments; ids, names and scopes validated as core
//!    validates them.
//! 6. Revocation: the deny-list, through a cache (below).
//!
//! Every failure is a typed [`AuthError::Jwt`](keyroute_core::AuthError::Jwt); no input
//! panics.
//!
//! # Revocation, and its trade-off
//!
//! A JWT is self-contained, so revoking the key it came from changes nothing by
//! itself. [`RevocationListener`], attached to the [`KeyService`](keyroute_core::KeyService),
//! writes every revoked key's id to the deny-list (the store's
//! [`DenyList`](keyroute_core::DenyList)) and marks it denied in this instance's cache
//! at once. Verification then refuses a token whose `jti` or `key_id` is denied. A key
//! rolled with a grace period is denied from the grace's end: the deny-list reports
//! that start and no cached "not denied" is trusted past it, so every instance that
//! read the entry refuses the key's tokens from then on, with no wait.
//!
//! - **Check on** (default): a revocation is honoured at once on the revoking
//!   instance, and on others within `deny_cache_ttl` (default 10 s), the time they
//!   trust a cached "not denied". The cost is one cache lookup per request, and one
//!   store query per token id per TTL.
//! - **Check off** (`check_deny_list = false`): no store is touched while verifying,
//!   but a revoked key's exchanged tokens keep working until they expire (at most
//!   `exchange_lifetime`, default 15 minutes), and a revoked JWT issued as a key keeps
//!   working until its own expiry. Keys without expiry are therefore refused in this
//!   mode. Keep `exchange_lifetime` short if you turn the check off.
//!
//! # Backend
//!
//! `jsonwebtoken` 11 with its `rust_crypto` backend (RustCrypto's `hmac`, `rsa`, `p256`,
//! `ed25519-dalek`): pure Rust, so the crate builds on a fresh machine with no C
//! toolchain or cmake, which the `aws_lc_rs` backend needs. keyroute's key types hold
//! `jsonwebtoken`'s keys, which zero their material on drop; their `Debug` prints only
//! the `kid` and algorithm.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//!
//! use keyroute_core::{
//!     AuthError, AuthMethod, Environment, JwtError, KeyOptions, KeyRequest, KeyService,
//!     KeyType, Principal, Scopes, TokenVerifier,
//! };
//! use keyroute_jwt::{JwtConfig, JwtService, SigningKey};
//! use keyroute_store::MemoryStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(MemoryStore::new());
//! let jwt = Arc::new(
//!     JwtService::builder(JwtConfig::default())
//!         .signing_key(SigningKey::generate_hs256("2026-11")?)
//!         .deny_list(store.clone())
//!         .build()?,
//! );
//! let keys = KeyService::new(store.clone(), KeyOptions::default())?
//!     .with_listener(jwt.revocation_listener());
//!
//! // An API key, resolved to its principal (the router does this per request)...
//! let issued = keys
//!     .issue_key(
//!         KeyRequest::new(KeyType::SECRET, Environment::TEST)
//!             .with_scopes(Scopes::parse(["orders:read"])?),
//!     )
//!     .await?;
//! let principal = Principal::from_api_key(Arc::new(issued.key.clone()), None);
//!
//! // ...exchanged for a 15-minute JWT, which verifies with no store lookup.
//! let exchanged = jwt.exchange(&principal)?;
//! let verifier: Arc<dyn TokenVerifier> = jwt.clone();
//! let caller = verifier.verify(exchanged.token.expose_secret()).await?;
//! assert_eq!(caller.environment(), &Environment::TEST);
//! assert_eq!(caller.method(), AuthMethod::KeyJwt);
//! assert!(caller.has_scope("orders:read"));
//!
//! // Revoking the key stops its JWTs at once.
//! keys.revoke(&issued.key.id).await?;
//! assert!(matches!(
//!     verifier.verify(exchanged.token.expose_secret()).await,
//!     Err(AuthError::Jwt(JwtError::Revoked))
//! ));
//! # Ok(())
//! # }
//! ```

// Every public item is documented: a published crate's docs are its manual.
#![deny(missing_docs)]

mod claims;
mod config;
mod deny;
mod error;
mod key;
mod section;
mod service;

pub use claims::{ScopeFormat, TokenKind};
pub use config::{DEFAULT_MAX_TOKEN_BYTES, JwtConfig};
pub use deny::{DenyFeed, RevocationListener};
pub use error::JwtServiceError;
pub use key::{JwtAlgorithm, SigningKey, VerificationKey};
pub use section::JwtSection;
pub use service::{
    IssuedJwtKey, IssuedToken, JwtKeyRequest, JwtService, JwtServiceBuilder, SessionRequest,
    VerifiedToken,
};

/// The [`ApiKey::meta`](keyroute_core::ApiKey::meta) entry that marks a key record as a
/// JWT issued as a key: `format = jwt` (core's [`META_FORMAT`]).
pub use keyroute_core::META_FORMAT;

/// The value of [`META_FORMAT`] for JWT keys.
pub const META_JWT: &str = "jwt";

/// The meta entry of a JWT key signed with structured scopes (`jwt_scopes =
/// structured`), so its replacement is signed the same way when it is rolled.
pub const META_SCOPE_FORMAT: &str = "jwt_scopes";

/// The value of [`META_SCOPE_FORMAT`] for structured scopes.
pub const META_STRUCTURED: &str = "structured";
