//! The seams a key is made and announced through: [`KeyListener`] and [`KeyMinter`].

use crate::error::KeyServiceError;
use crate::model::ApiKey;
use crate::options::KeyOptions;
use crate::secret::PlaintextKey;
use crate::token::TokenFormat;

/// The metadata entry that names a key's format when its secret is not one of
/// keyroute's own tokens (`jwt` for JWTs issued as keys). Rolls and regenerations make
/// the replacement with the minter registered for that format
/// ([`KeyService::with_minter`](crate::KeyService::with_minter)).
pub const META_FORMAT: &str = "format";

/// The [`META_FORMAT`] of a key imported without keyroute's format (a team's earlier
/// scheme): found by the SHA-256 of what is presented, only while `[apikey]
/// legacy_keys` is on. Rolling or regenerating it makes a keyroute key.
pub const LEGACY_FORMAT: &str = "legacy";

/// Told when keys stop working, so caches can forget them and revocation lists learn
/// of them, and when keys are made.
#[async_trait::async_trait]
pub trait KeyListener: Send + Sync {
    /// `keys` are about to be revoked (or rolled): told *before* the store is written,
    /// so a revoke whose caller stops waiting after the write still takes effect here
    /// (caches stop serving the keys; revocation lists may deny them early, which
    /// fails closed). Default: nothing to do.
    async fn keys_revoking(&self, keys: &[ApiKey]) {
        let _ = keys;
    }

    /// `keys` were revoked (their `cancelled_at` says when they stop working), or
    /// rolled, unless the listener tells rolls apart with
    /// [`keys_rolled`](Self::keys_rolled).
    async fn keys_retired(&self, keys: &[ApiKey]);

    /// `keys` were replaced by a roll or a regeneration; their replacements are told
    /// to [`keys_issued`](Self::keys_issued), and `cancelled_at` says when the old keys
    /// stop. Default: [`keys_retired`](Self::keys_retired), which is all a cache needs.
    async fn keys_rolled(&self, keys: &[ApiKey]) {
        self.keys_retired(keys).await;
    }

    /// `keys` were just stored (issued, registered, regenerated, backfilled). Default:
    /// nothing to do.
    async fn keys_issued(&self, keys: &[ApiKey]) {
        let _ = keys;
    }

    /// `keys` are about to be changed in a way that takes authority away (a scope
    /// removed, the expiry brought forward, disabled, networks narrowed; each as it
    /// will be stored): told *before* the store is written, as
    /// [`keys_revoking`](Self::keys_revoking) is, so caches stop serving the old
    /// authority even if the caller stops waiting. Default: nothing to do.
    async fn keys_narrowing(&self, keys: &[ApiKey]) {
        let _ = keys;
    }

    /// `keys` were reported as exposed (by a secret scanner), as now stored: revoked,
    /// or left working when the app only reports leaks. Default: nothing to do.
    async fn keys_leaked(&self, keys: &[ApiKey]) {
        let _ = keys;
    }

    /// Keys were updated: each as now stored, with what changed. Default: nothing
    /// to do.
    async fn keys_updated(&self, updates: &[super::KeyUpdated]) {
        let _ = updates;
    }
}

/// The secret of a new key and how it is shown.
#[derive(Debug)]
#[non_exhaustive]
pub struct Minted {
    /// The secret, shown to its owner once.
    pub plaintext: PlaintextKey,
    /// What the key is shown as in lists (never enough to use it).
    pub hint: String,
}

impl Minted {
    /// A minted secret with its hint.
    pub fn new(plaintext: PlaintextKey, hint: impl Into<String>) -> Self {
        Self {
            plaintext,
            hint: hint.into(),
        }
    }
}

/// Makes the secret of a key whose record is final: the seam through which other kinds
/// of key (JWTs issued as keys) are made by [`KeyService`](crate::KeyService), so they pass the same checks,
/// hook, store and listeners as every other key.
pub trait KeyMinter: Send + Sync {
    /// The secret for `key`. The record is complete (id, type, environment, owner,
    /// tenant, scopes, expiry, after the `on_create_key` hook) except its hash and hint,
    /// which the service sets from what this returns.
    ///
    /// # Errors
    /// Whatever stopped the secret from being made, as [`KeyServiceError::Mint`] or
    /// [`KeyServiceError::InvalidRequest`].
    fn mint(&self, key: &ApiKey) -> Result<Minted, KeyServiceError>;
}

/// keyroute's own keys: `{prefix}_{env}_{secret}{checksum}`, from the team's
/// [`KeyGenerator`](crate::KeyGenerator) when one is configured (checked to parse).
pub(crate) struct TokenMinter<'a> {
    pub(super) format: &'a TokenFormat,
    pub(super) options: &'a KeyOptions,
}

impl KeyMinter for TokenMinter<'_> {
    fn mint(&self, key: &ApiKey) -> Result<Minted, KeyServiceError> {
        let (key_type, environment) = (&key.key_type, &key.environment);
        let plaintext = match &self.options.generate_key {
            Some(generator) => {
                let plaintext = generator.generate(self.format, key_type, environment)?;
                let parsed = self
                    .format
                    .parse(plaintext.expose_secret())
                    .map_err(KeyServiceError::GeneratedKeyInvalid)?;
                if (&parsed.key_type, &parsed.environment) != (key_type, environment) {
                    return Err(KeyServiceError::GeneratedKeyInvalid(
                        crate::TokenError::Malformed,
                    ));
                }
                plaintext
            }
            None => self.format.generate(key_type, environment)?,
        };
        let hint = TokenFormat::hint(&plaintext);
        Ok(Minted { plaintext, hint })
    }
}
