//! [`KeyRing`]: the keys one JWT service holds, every verification key by `kid` and
//! the newest signing key, and the rules of rotating them (a key signs only once it
//! also verifies; the signing key cannot be removed). Loading and checking a single
//! key is `key.rs`'s job.

use std::fmt;

use super::{JwtAlgorithm, SigningKey, VerificationKey};
use crate::error::JwtServiceError;

/// The keys of one service: every verification key by `kid`, and the newest signing key.
///
/// Few keys are live at once (the current one and one or two being rotated out), so a
/// linear scan finds a `kid` faster than hashing it would.
#[derive(Clone, Default)]
pub(crate) struct KeyRing {
    verification: Vec<VerificationKey>,
    signing: Option<SigningKey>,
}

impl KeyRing {
    pub(crate) fn find(&self, kid: &str) -> Option<&VerificationKey> {
        self.verification.iter().find(|k| k.kid() == kid)
    }

    /// The one key of `algorithm`, for a token that names no `kid`; `None` when there
    /// is none or more than one (the token could not say which).
    pub(crate) fn sole_key_for(&self, algorithm: JwtAlgorithm) -> Option<&VerificationKey> {
        let mut of_algorithm = self
            .verification
            .iter()
            .filter(|k| k.algorithm() == algorithm);
        match (of_algorithm.next(), of_algorithm.next()) {
            (Some(key), None) => Some(key),
            _ => None,
        }
    }

    pub(crate) fn signing(&self) -> Option<&SigningKey> {
        self.signing.as_ref()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.verification.is_empty()
    }

    /// Adds a key to verify with.
    pub(crate) fn add_verification(&mut self, key: VerificationKey) -> Result<(), JwtServiceError> {
        if self.find(key.kid()).is_some() {
            return Err(JwtServiceError::DuplicateKeyId(key.kid().to_owned()));
        }
        self.verification.push(key);
        Ok(())
    }

    /// Makes `key` the signing key; the previous one stays as a verification key.
    pub(crate) fn rotate(&mut self, key: SigningKey) -> Result<(), JwtServiceError> {
        self.add_verification(key.verification_key().clone())?;
        self.signing = Some(key);
        Ok(())
    }

    /// Removes a verification key; the signing key cannot be removed.
    pub(crate) fn remove(&mut self, kid: &str) -> Result<bool, JwtServiceError> {
        if self.signing.as_ref().is_some_and(|k| k.kid() == kid) {
            return Err(JwtServiceError::Config(format!(
                "key '{kid}' signs new tokens; rotate to another key before removing it"
            )));
        }
        let before = self.verification.len();
        self.verification.retain(|k| k.kid() != kid);
        Ok(self.verification.len() != before)
    }

    pub(crate) fn kids(&self) -> Vec<String> {
        self.verification
            .iter()
            .map(|k| k.kid().to_owned())
            .collect()
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("verification", &self.verification)
            .field("signing", &self.signing.as_ref().map(SigningKey::kid))
            .finish()
    }
}
