//! Replacing keys: rolling one, and regenerating a user's keys in an environment. A
//! replacement keeps what the key was (type, name, scopes, notes, reference id,
//! metadata, tenant, expiry), as a reroll does in the services keyroute is modelled
//! on, while the old key keeps working for a grace period that never outlasts its own
//! expiry. Replacements are made within the actor's bounds: a caller never gets a key
//! holding scopes beyond its own, nor one outliving it.
//!
//! Both announce before they write, as revoke does: listeners (the resolver's cache,
//! the JWT deny-list) hear of the keys being retired first, so a roll whose caller
//! stops waiting after the store write (client gone, timeout) cannot leave the old key,
//! its JWTs or a JWT key working past their cancellation. If the write then fails, the
//! old key's JWTs are refused from the announced time (fail closed) until the
//! operation is retried.
//!
//! A roll is one write ([`ApiKeyStore::roll_key`]): the old key's cancellation and its
//! replacement are stored together, and only while no one has cancelled the old key.
//! Of two rolls of one key racing each other exactly one succeeds; the other is
//! `NotRollable`, as is a key already scheduled to end. The loser has announced the
//! old key's retirement too (fail closed, as for a failed write), so the old key's
//! JWTs may stop before a grace period the winner gave it.

use std::time::Duration;

use super::{IssuedKey, LEGACY_FORMAT, META_FORMAT, NewKey, Regenerated};
use crate::audit::AuditAction;
use crate::authority::Bounds;
use crate::error::KeyServiceError;
use crate::ids::{KeyId, UserId};
use crate::model::{ApiKey, User};
use crate::name::Environment;
use crate::store::{ApiKeyStore, KeyQuery, Regeneration, UserStore};

use super::acting::Acting;

/// The outcome of rolling one key.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Rolled {
    /// The replacement, with its plaintext (shown once).
    pub issued: IssuedKey,
    /// The old key as now stored: cancelled now, or at the end of the grace period.
    pub retired: ApiKey,
}

impl<S: ApiKeyStore + UserStore> Acting<'_, S> {
    /// A replacement for `old`: same type, environment, owner, name, scopes, notes,
    /// reference id, metadata, tenant, expiry, allowed networks and enabled state,
    /// within `bounds`; its secret made by
    /// the minter of `old`'s format.
    fn replacement(
        &self,
        old: &ApiKey,
        owner: Option<&User>,
        bounds: &Bounds,
    ) -> Result<IssuedKey, KeyServiceError> {
        let service = self.service;
        let token = service.token_minter();
        let minter = service.replacement_minter(old, &token)?;
        let spec = NewKey::new(&old.key_type, &old.environment, owner, bounds);
        service.new_key(spec, minter, |key| {
            key.name = old.name.clone();
            key.scopes = old.scopes.clone();
            key.notes = old.notes.clone();
            key.ref_id = old.ref_id.clone();
            key.meta = old.meta.clone();
            if key.meta.get(META_FORMAT).map(String::as_str) == Some(LEGACY_FORMAT) {
                key.meta.remove(META_FORMAT);
            }
            key.tenant = old.tenant.clone();
            key.expires_at = old.expires_at;
            key.enabled = old.enabled;
            key.allowed_networks.clone_from(&old.allowed_networks);
            key.limits.clone_from(&old.limits);
            key.credits = old.credits;
            Ok(())
        })
    }

    /// Replaces the key `key_id` with a new one that keeps what it was (see the
    /// module docs). With a `grace` period the old key keeps working until it ends,
    /// but never past the old key's own expiry. Returns `None` if there is no such
    /// key, or none the actor may see.
    ///
    /// # Errors
    /// [`KeyServiceError::Denied`] for a key of another environment or one holding scopes
    /// beyond the caller's, or when a grace period would pass the owner's
    /// `max_keys_per_user`; [`KeyServiceError::NotRollable`] for a key that is revoked, expired
    /// or already scheduled to end; [`KeyServiceError::UnknownUser`] if its owner is gone;
    /// [`KeyServiceError::NoMinter`] for a key of a format this service cannot make; store
    /// errors (then the old key still works and no replacement is left working).
    pub async fn roll(
        &self,
        key_id: &KeyId,
        grace: Option<Duration>,
    ) -> Result<Option<Rolled>, KeyServiceError> {
        let bounds = self.bounds()?;
        let Some(old) = self.visible(&bounds, key_id).await? else {
            return Ok(None);
        };
        bounds.check_may_replace(&old)?;
        let service = self.service;
        let now = service.now();
        if old.cancelled_at.is_some() || !old.is_active(now) {
            return Err(KeyServiceError::NotRollable);
        }
        let owner = service.owner(old.user_id.as_ref()).await?;
        refuse_grace_for_metered(grace, std::slice::from_ref(&old))?;
        if grace.is_some() {
            // The old key keeps working alongside its replacement until the grace ends.
            service.check_volume(owner.as_ref(), 1).await?;
        }
        let issued = self.replacement(&old, owner.as_ref(), &bounds)?;
        let mut cancel_at = self.cancel_at(grace)?;
        if let Some(expires_at) = old.expires_at {
            cancel_at = cancel_at.min(expires_at);
        }
        let record = self.record(
            AuditAction::KeyRolled,
            Some(&old),
            None,
            serde_json::json!({ "replacement": issued.key.id.as_str(), "cancel_at": cancel_at }),
        );
        // Told first: a roll dropped after the write below is not lost.
        let mut retiring = old.clone();
        retiring.cancelled_at = Some(cancel_at);
        service
            .announce_revoking(std::slice::from_ref(&retiring))
            .await;
        let Some(retired) = service
            .store
            .roll_key(&old.id, &issued.key, cancel_at, &[record])
            .await?
        else {
            // Rolled or revoked by someone else since it was read.
            return Err(KeyServiceError::NotRollable);
        };
        service
            .announce_rolled(std::slice::from_ref(&retired))
            .await;
        service
            .announce_issued(std::slice::from_ref(&issued.key))
            .await;
        Ok(Some(Rolled { issued, retired }))
    }

    /// Replaces `user_id`'s keys in `environment`, atomically: each key that works now
    /// gets a replacement that keeps what it was (see the module docs); a user with no
    /// working key there gets one new key per configured key type. With a `grace`
    /// period the old keys keep working until it ends.
    ///
    /// # Errors
    /// [`KeyServiceError::Denied`] for another user's keys (without the admin scope), another
    /// environment or tenant, a key among them holding scopes beyond the caller's, or
    /// a grace period that would pass `max_keys_per_user`; [`KeyServiceError::UnknownUser`]; the
    /// environment check; [`KeyServiceError::NoMinter`]; store errors. On error nothing has
    /// changed.
    pub async fn regenerate(
        &self,
        user_id: &UserId,
        environment: &Environment,
        grace: Option<Duration>,
    ) -> Result<Regenerated, KeyServiceError> {
        let bounds = self.bounds()?;
        bounds.user(Some(user_id))?;
        bounds.check_environment(environment)?;
        let service = self.service;
        let user = service
            .store
            .get_user(user_id)
            .await?
            .ok_or_else(|| KeyServiceError::UnknownUser(user_id.clone()))?;
        bounds.check_user(&user)?;
        let cancel_at = self.cancel_at(grace)?;
        let now = service.now();
        let mut current = service
            .store
            .get_user_api_keys(
                user_id,
                &KeyQuery::all().in_environment(environment.clone()),
            )
            .await?;
        // Only what the store would retire; every one must be within the caller's reach.
        current.retain(|key| key.cancelled_at.is_none_or(|at| at > cancel_at));
        for key in &current {
            if !bounds.may_see(key) {
                return Err(crate::Denied::TenantMismatch.into());
            }
            bounds.check_may_replace(key)?;
        }
        refuse_grace_for_metered(grace, &current)?;
        let replaced: Vec<&ApiKey> = current
            .iter()
            .filter(|key| key.cancelled_at.is_none() && key.is_active(now))
            .collect();
        let issued = if replaced.is_empty() {
            service
                .options
                .key_types
                .iter()
                .map(|key_type| {
                    let spec = NewKey::new(key_type, environment, Some(&user), &bounds);
                    service.new_key(spec, &service.token_minter(), |_| Ok(()))
                })
                .collect::<Result<Vec<_>, _>>()?
        } else {
            replaced
                .iter()
                .map(|old| self.replacement(old, Some(&user), &bounds))
                .collect::<Result<Vec<_>, _>>()?
        };
        if grace.is_some() {
            service.check_volume(Some(&user), issued.len()).await?;
        }
        let regeneration = Regeneration::new(
            user_id.clone(),
            environment.clone(),
            issued.iter().map(|k| k.key.clone()).collect(),
            cancel_at,
        );
        // Told first, as for revoke: the keys this will retire, as they will be.
        let mut retiring = current;
        retiring.retain(|key| regeneration.retires(key));
        for key in &mut retiring {
            key.cancelled_at = Some(cancel_at);
        }
        service.announce_revoking(&retiring).await;
        let record = self.record(
            AuditAction::KeysRegenerated,
            None,
            Some(user_id),
            serde_json::json!({
                "environment": environment.as_str(),
                "retiring": retiring.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
                "issued": regeneration.new_keys.iter().map(|k| k.id.as_str()).collect::<Vec<_>>(),
                "cancel_at": cancel_at,
            }),
        );
        let mut record = record;
        record.environment = Some(environment.clone());
        let retired = service.store.regenerate(&regeneration, &[record]).await?;
        service.announce_rolled(&retired).await;
        service.announce_issued(&regeneration.new_keys).await;
        Ok(Regenerated { issued, retired })
    }
}

/// A metered key is replaced without a grace period: its replacement takes its balance
/// whole, and two keys spending one balance side by side would double it.
fn refuse_grace_for_metered(
    grace: Option<Duration>,
    keys: &[ApiKey],
) -> Result<(), KeyServiceError> {
    if grace.is_some() && keys.iter().any(|key| key.credits.is_some()) {
        return Err(KeyServiceError::InvalidRequest(
            "a key with credits is replaced without a grace period (its replacement takes its balance whole); leave out the grace period".to_owned(),
        ));
    }
    Ok(())
}
