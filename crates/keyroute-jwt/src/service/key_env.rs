//! Defence in depth: a token that names a key must carry that key's environment.
//!
//! A JWT's `env` decides which database its requests reach, and its signature makes
//! it trustworthy; but if a signing key ever leaked, a forged `env: live` on a test
//! key's id would reach the LiveDb. With the key store given to the service, every
//! token naming a key (`key_id`) is checked against the stored key's environment. A
//! key's environment never changes, so each answer is cached (bounded) after one
//! lookup.

use std::sync::Arc;

use keyroute_core::{ApiKeyStore, AuthError, Environment, JwtError, KeyId};

pub(crate) struct KeyEnvironments {
    store: Arc<dyn ApiKeyStore>,
    cache: moka::sync::Cache<KeyId, Environment>,
}

impl KeyEnvironments {
    pub(crate) fn new(store: Arc<dyn ApiKeyStore>, capacity: u64) -> Self {
        Self {
            store,
            cache: moka::sync::Cache::new(capacity.max(1)),
        }
    }

    /// Refuses a token whose `env` differs from the environment of the key it names,
    /// or that names a key the store does not have.
    pub(crate) async fn check(&self, key_id: &KeyId, env: &Environment) -> Result<(), AuthError> {
        let stored = match self.cache.get(key_id) {
            Some(environment) => environment,
            None => {
                let Some(key) = self.store.get_api_key(key_id).await? else {
                    return Err(JwtError::InvalidClaim("key_id").into());
                };
                self.cache.insert(key_id.clone(), key.environment.clone());
                key.environment
            }
        };
        if stored == *env {
            Ok(())
        } else {
            Err(JwtError::InvalidClaim("env").into())
        }
    }
}
