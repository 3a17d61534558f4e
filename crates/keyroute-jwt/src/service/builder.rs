//! [`JwtServiceBuilder`]: configuration, keys, deny-list and clock, checked once.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::TimeDelta;
use keyroute_core::{ApiKeyStore, Clock, DenyList, SystemClock};

use super::JwtService;
use crate::config::{JwtConfig, delta};
use crate::deny::DenyState;
use crate::error::JwtServiceError;
use crate::key::{KeyRing, SigningKey, VerificationKey};

/// Builds a [`JwtService`]: configuration, keys, deny-list, clock.
pub struct JwtServiceBuilder {
    config: JwtConfig,
    signing: Vec<SigningKey>,
    verification: Vec<VerificationKey>,
    deny_list: Option<Arc<dyn DenyList>>,
    key_store: Option<Arc<dyn ApiKeyStore>>,
    clock: Arc<dyn Clock>,
    follow_feed: bool,
}

impl fmt::Debug for JwtServiceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtServiceBuilder")
            .field("config", &self.config)
            .field("signing", &self.signing)
            .field("verification", &self.verification)
            .field("deny_list", &self.deny_list.as_ref().map(|_| "configured"))
            .field("clock", &self.clock)
            .field("follow_feed", &self.follow_feed)
            .finish()
    }
}

impl JwtServiceBuilder {
    /// Adds a signing key. Added in order of age: the last one signs new tokens, the
    /// earlier ones still verify the tokens they signed.
    pub fn signing_key(mut self, key: SigningKey) -> Self {
        self.signing.push(key);
        self
    }

    /// Adds a key that only verifies (a public key of a signer elsewhere, or a
    /// retired key whose tokens are still live).
    pub fn verification_key(mut self, key: VerificationKey) -> Self {
        self.verification.push(key);
        self
    }

    /// The deny-list to check and to write revocations to (the store). Required while
    /// `check_deny_list` is on.
    pub fn deny_list(mut self, deny_list: Arc<dyn DenyList>) -> Self {
        self.deny_list = Some(deny_list);
        self
    }

    /// The store keys live in: every token that names a key (`key_id`) is then checked
    /// to carry that key's environment (one cached lookup per key). Defence in depth
    /// against a forged `env`; the `Keyroute` front door always sets it.
    pub fn key_store(mut self, store: Arc<dyn ApiKeyStore>) -> Self {
        self.key_store = Some(store);
        self
    }

    /// Uses `clock` for issuing and checking times (tests move a `ManualClock`).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Trusts the deny cache's "not denied" answers only while the store's change feed
    /// is live, as told through [`JwtService::feed_listener`] (the front door does
    /// this). Default off: answers are trusted for `deny_cache_ttl`.
    pub fn deny_cache_follows_feed(mut self) -> Self {
        self.follow_feed = true;
        self
    }

    /// Builds the service.
    ///
    /// # Errors
    /// [`JwtServiceError::Config`] for invalid options, no keys at all, or the deny-list check
    /// on with no deny-list; [`JwtServiceError::DuplicateKeyId`] when two keys share a `kid`.
    pub fn build(self) -> Result<JwtService, JwtServiceError> {
        self.config.validate()?;
        if self.config.check_deny_list && self.deny_list.is_none() {
            return Err(JwtServiceError::Config(
                "check_deny_list is on: give the service a deny-list (the store), or turn the check off"
                    .to_owned(),
            ));
        }
        let mut ring = KeyRing::default();
        for key in self.verification {
            ring.add_verification(key)?;
        }
        for key in self.signing {
            ring.rotate(key)?;
        }
        if ring.is_empty() {
            return Err(JwtServiceError::Config(
                "no keys: add a signing or a verification key".to_owned(),
            ));
        }
        // validate() has checked that every duration fits.
        let to_delta = |d: Duration| delta(d).unwrap_or(TimeDelta::MAX);
        let leeway = to_delta(self.config.leeway);
        let deny = Arc::new(DenyState::new(
            self.deny_list,
            to_delta(self.config.deny_cache_ttl),
            self.config.deny_cache_capacity,
            self.clock.clone(),
            if self.follow_feed {
                keyroute_core::FeedGate::expecting_feed()
            } else {
                keyroute_core::FeedGate::unmanaged()
            },
        ));
        let key_environments = self.key_store.map(|store| {
            super::key_env::KeyEnvironments::new(store, self.config.deny_cache_capacity)
        });
        Ok(JwtService {
            key_environments,
            exchange_lifetime: to_delta(self.config.exchange_lifetime),
            session_lifetime: to_delta(self.config.session_lifetime),
            leeway,
            leeway_secs: self.config.leeway_secs(),
            config: self.config,
            keys: RwLock::new(Arc::new(ring)),
            deny,
            clock: self.clock,
        })
    }
}

impl JwtService {
    /// Starts building a service with `config`.
    pub fn builder(config: JwtConfig) -> JwtServiceBuilder {
        JwtServiceBuilder {
            config,
            signing: Vec::new(),
            verification: Vec::new(),
            deny_list: None,
            key_store: None,
            clock: Arc::new(SystemClock),
            follow_feed: false,
        }
    }
}
