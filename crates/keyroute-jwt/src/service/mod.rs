//! [`JwtService`]: issues exchange, key and session tokens, and verifies them into the
//! same [`Principal`] an API key gives.
//!
//! Verification runs the cheap, certain checks first and the store last: the length
//! cap, the shape, the header (algorithm supported, `kid` known, algorithm pinned to
//! that key), the signature, the claims (times against the injected clock, issuer,
//! audience, environment, ids, scopes), and only then the deny-list, through its cache.
//!
//! | file | holds |
//! |---|---|
//! | `mod.rs` | [`JwtService`], key rotation, configuration accessors |
//! | `types.rs` | [`IssuedToken`], [`IssuedJwtKey`], [`VerifiedToken`], [`SessionRequest`], [`JwtKeyRequest`] |
//! | `builder.rs` | [`JwtServiceBuilder`] |
//! | `issue.rs` | exchange, sessions, JWT keys, logout |
//! | `verify.rs` | decoding, the claim checks, the deny-list check |

mod builder;
mod issue;
mod key_env;
mod types;
mod verify;

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta};
use keyroute_core::{AuthError, Clock, Environment, Principal, TokenVerifier};

use crate::config::JwtConfig;
use crate::deny::{DenyState, RevocationListener};
use crate::error::JwtServiceError;
use crate::key::{KeyRing, SigningKey, VerificationKey};

pub use builder::JwtServiceBuilder;
pub use types::{IssuedJwtKey, IssuedToken, JwtKeyRequest, SessionRequest, VerifiedToken};

/// Issues and verifies keyroute's JWTs. Share it behind an `Arc`; it is the
/// [`TokenVerifier`] the router takes (`Arc<dyn TokenVerifier>`).
pub struct JwtService {
    config: JwtConfig,
    /// Replaced whole on rotation; readers clone the `Arc` and never wait on a writer
    /// for longer than that clone.
    keys: RwLock<Arc<KeyRing>>,
    deny: Arc<DenyState>,
    /// The stored keys' environments, when the service was given the key store.
    key_environments: Option<key_env::KeyEnvironments>,
    clock: Arc<dyn Clock>,
    exchange_lifetime: TimeDelta,
    session_lifetime: TimeDelta,
    leeway: TimeDelta,
    leeway_secs: i64,
}

impl fmt::Debug for JwtService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtService")
            .field("config", &self.config)
            .field("keys", &self.ring())
            .field("deny", &self.deny)
            .field("clock", &self.clock)
            .finish()
    }
}

impl JwtService {
    /// The configuration.
    pub fn config(&self) -> &JwtConfig {
        &self.config
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The deny cache's listener on the store's change feed (see
    /// [`deny_cache_follows_feed`](JwtServiceBuilder::deny_cache_follows_feed)).
    pub fn feed_listener(&self) -> Arc<crate::deny::DenyFeed> {
        Arc::new(crate::deny::DenyFeed::new(self.deny.clone()))
    }

    /// The minter of JWT keys' replacements, to register on the [`KeyService`] for
    /// `format = jwt` (`keys.with_minter(META_JWT, jwt.key_minter())`; the front door
    /// does this), so rolling or regenerating a JWT key gives a JWT key signed the
    /// same way.
    ///
    /// [`KeyService`]: keyroute_core::KeyService
    pub fn key_minter(self: &Arc<Self>) -> Arc<dyn keyroute_core::KeyMinter> {
        Arc::new(issue::ReplacementMinter {
            service: Arc::clone(self),
        })
    }

    /// The listener to attach to the [`KeyService`] ([`KeyService::with_listener`]), so
    /// revoked and regenerated keys are denied at once here and through the deny-list
    /// everywhere.
    ///
    /// [`KeyService`]: keyroute_core::KeyService
    /// [`KeyService::with_listener`]: keyroute_core::KeyService::with_listener
    pub fn revocation_listener(&self) -> Arc<RevocationListener> {
        let window = self
            .exchange_lifetime
            .checked_add(&self.leeway)
            .unwrap_or(TimeDelta::MAX);
        Arc::new(RevocationListener::new(
            self.deny.clone(),
            window,
            self.leeway,
        ))
    }

    fn ring(&self) -> Arc<KeyRing> {
        // A poisoned lock still holds a complete ring: writers swap the Arc in one step.
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn update_ring(
        &self,
        change: impl FnOnce(&mut KeyRing) -> Result<bool, JwtServiceError>,
    ) -> Result<bool, JwtServiceError> {
        let mut guard = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        let mut ring = KeyRing::clone(&guard);
        let changed = change(&mut ring)?;
        *guard = Arc::new(ring);
        Ok(changed)
    }

    /// Makes `key` the signing key. The previous one keeps verifying its tokens until
    /// it is removed with [`remove_key`](Self::remove_key).
    ///
    /// # Errors
    /// [`JwtServiceError::DuplicateKeyId`] when a key with this `kid` is already known.
    pub fn rotate(&self, key: SigningKey) -> Result<(), JwtServiceError> {
        self.update_ring(|ring| ring.rotate(key).map(|()| true))
            .map(drop)
    }

    /// Adds a key that only verifies.
    ///
    /// # Errors
    /// [`JwtServiceError::DuplicateKeyId`] when a key with this `kid` is already known.
    pub fn add_verification_key(&self, key: VerificationKey) -> Result<(), JwtServiceError> {
        self.update_ring(|ring| ring.add_verification(key).map(|()| true))
            .map(drop)
    }

    /// Stops accepting tokens signed by the key `kid`. Returns whether it was known.
    ///
    /// # Errors
    /// [`JwtServiceError::Config`] when `kid` is the current signing key.
    pub fn remove_key(&self, kid: &str) -> Result<bool, JwtServiceError> {
        self.update_ring(|ring| ring.remove(kid))
    }

    /// The `kid`s of every key that verifies, oldest first.
    pub fn key_ids(&self) -> Vec<String> {
        self.ring().kids()
    }

    /// The `kid` of the key that signs new tokens.
    pub fn signing_key_id(&self) -> Option<String> {
        self.ring().signing().map(|k| k.kid().to_owned())
    }

    /// Now, in whole seconds (as NumericDates are).
    fn now_secs(&self) -> i64 {
        self.clock.now().timestamp()
    }

    fn check_environment(&self, environment: &Environment) -> Result<(), JwtServiceError> {
        if self.config.environments.contains(environment) {
            Ok(())
        } else {
            Err(JwtServiceError::InvalidRequest(format!(
                "environment '{environment}' is not in this service's `environments`; its tokens would be refused"
            )))
        }
    }

    fn seconds_after(from: i64, lifetime: TimeDelta) -> Result<i64, JwtServiceError> {
        from.checked_add(lifetime.num_seconds())
            .filter(|at| DateTime::from_timestamp(*at, 0).is_some())
            .ok_or_else(|| {
                JwtServiceError::InvalidRequest("the lifetime is too long to represent".to_owned())
            })
    }
}

#[async_trait]
impl TokenVerifier for JwtService {
    async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        self.verify_token(token).await.map(|v| v.principal)
    }
}
