//! Rolling one key: a replacement with the old key's name, scopes and notes, while the
//! old key keeps working for a grace period that never outlasts its own expiry.
//!
//! The store has no single-key counterpart of `regenerate`, so a roll is two writes:
//! the replacement is stored first, then the old key's cancellation is scheduled. If
//! the second write fails the replacement is cancelled again, so the caller is left
//! with the old key working and no stray replacement. Two rolls of one key racing each
//! other can both succeed (each has a working replacement, the old key ends at the
//! earlier time); a key that is already scheduled to end is refused.

use std::time::Duration;

use super::{IssuedKey, KeyService, after};
use crate::error::Error;
use crate::ids::KeyId;
use crate::model::ApiKey;
use crate::store::{ApiKeyStore, UserStore};

/// The outcome of rolling one key.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Rolled {
    /// The replacement, with its plaintext (shown once).
    pub issued: IssuedKey,
    /// The old key as now stored: cancelled now, or at the end of the grace period.
    pub retired: ApiKey,
}

impl<S: ApiKeyStore + UserStore> KeyService<S> {
    /// Replaces the key `key_id` with a new one of the same type, environment, owner,
    /// name, scopes and notes. With a `grace` period the old key keeps working until
    /// it ends, but never past the old key's own expiry. Returns `None` if there is no
    /// such key.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] for a key that is revoked, expired or already
    /// scheduled to end; [`Error::UnknownUser`] if its owner is gone; store errors
    /// (then the old key still works and no replacement is left working).
    pub async fn roll(
        &self,
        key_id: &KeyId,
        grace: Option<Duration>,
    ) -> Result<Option<Rolled>, Error> {
        let Some(old) = self.store.get_api_key(key_id).await? else {
            return Ok(None);
        };
        let now = self.now();
        if old.cancelled_at.is_some() || !old.is_active(now) {
            return Err(Error::InvalidRequest(
                "the key is revoked, expired or already being rolled; issue a new key instead"
                    .to_owned(),
            ));
        }
        let owner = self.owner(old.user_id.as_ref()).await?;
        let issued = self.new_key(
            &old.key_type,
            &old.environment,
            owner.as_ref(),
            &self.token_minter(),
            |key| {
                key.name = old.name.clone();
                key.scopes = old.scopes.clone();
                key.notes = old.notes.clone();
                key.ref_id = old.ref_id.clone();
                key.meta = old.meta.clone();
                key.tenant = old.tenant.clone();
                Ok(())
            },
        )?;
        let mut cancel_at = match grace {
            Some(grace) => after(now, grace)?,
            None => now,
        };
        if let Some(expires_at) = old.expires_at {
            cancel_at = cancel_at.min(expires_at);
        }
        let stored = std::slice::from_ref(&issued.key);
        self.store.store_all(stored).await?;
        let retired = match self.store.cancel_key(&old.id, cancel_at).await {
            Ok(Some(retired)) => retired,
            outcome => {
                // Undo the replacement so a failed roll leaves exactly the old key.
                // If the undo fails too, the first error is the one worth reporting.
                let _undone = self.store.cancel_key(&issued.key.id, now).await;
                return match outcome {
                    Err(e) => Err(e.into()),
                    _ => Ok(None),
                };
            }
        };
        self.announce(std::slice::from_ref(&retired)).await;
        self.announce_issued(stored).await;
        Ok(Some(Rolled { issued, retired }))
    }
}
