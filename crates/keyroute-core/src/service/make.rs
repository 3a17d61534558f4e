//! How a key is made: the record, the default expiry, the request's customisation, the
//! team's `on_create_key` hook, the actor's bounds on the final record, and only then
//! the secret from a [`KeyMinter`]; and the checks around it (the owner, the volume of
//! working keys, which minter makes a replacement).

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use super::seams::TokenMinter;
use super::{IssuedKey, KeyMinter, KeyService, META_FORMAT};
use crate::authority::{Bounds, check_key_texts};
use crate::error::KeyServiceError;
use crate::ids::{KeyId, UserId};
use crate::model::{ApiKey, User};
use crate::name::{Environment, KeyType};
use crate::secret::KeyHash;
use crate::store::{ApiKeyStore, KeyQuery, UserStore};

impl<S: ApiKeyStore + UserStore> KeyService<S> {
    pub(super) fn keys_per_user(&self) -> usize {
        self.options.environments.len() * self.options.key_types.len()
    }

    /// One key per environment × key type for `user`, not yet stored.
    pub(super) fn default_keys_for(&self, user: &User) -> Result<Vec<IssuedKey>, KeyServiceError> {
        let mut keys = Vec::with_capacity(self.keys_per_user());
        let minter = self.token_minter();
        let bounds = Bounds::application();
        for environment in &self.options.environments {
            for key_type in &self.options.key_types {
                keys.push(self.new_key(
                    NewKey::new(key_type, environment, Some(user), &bounds),
                    &minter,
                    |_| Ok(()),
                )?);
            }
        }
        Ok(keys)
    }

    /// Refuses to add `adding` working keys to `owner`'s when that would pass
    /// `max_keys_per_user`. Checked before writing, so concurrent issues for one user
    /// may pass it together: it bounds what one caller can pile up, not a race.
    pub(crate) async fn check_volume(
        &self,
        owner: Option<&User>,
        adding: usize,
    ) -> Result<(), KeyServiceError> {
        let Some(owner) = owner else {
            return Ok(());
        };
        let limit = self.options.max_keys_per_user;
        let working = self
            .store
            .get_user_api_keys(&owner.id, &KeyQuery::active_at(self.now()))
            .await?
            .len();
        if working.saturating_add(adding) > limit {
            return Err(crate::Denied::TooManyKeys { limit }.into());
        }
        Ok(())
    }

    /// The minter of `key`'s replacement: keyroute's tokens, or the one registered for
    /// its `meta.format`.
    pub(crate) fn replacement_minter<'m>(
        &'m self,
        key: &ApiKey,
        token: &'m TokenMinter<'m>,
    ) -> Result<&'m dyn KeyMinter, KeyServiceError> {
        match key.meta.get(META_FORMAT).map(String::as_str) {
            // An imported key's replacement is one of keyroute's own.
            None | Some(super::LEGACY_FORMAT) => Ok(token),
            Some(format) => self
                .minters
                .iter()
                .find(|(f, _)| f == format)
                .map(|(_, minter)| minter.as_ref())
                .ok_or_else(|| KeyServiceError::NoMinter(format.to_owned())),
        }
    }

    /// The owner a key is made for: `None` for a key of no user, else the stored user.
    pub(crate) async fn owner(&self, id: Option<&UserId>) -> Result<Option<User>, KeyServiceError> {
        match id {
            Some(id) => Ok(Some(
                self.store
                    .get_user(id)
                    .await?
                    .ok_or_else(|| KeyServiceError::UnknownUser(id.clone()))?,
            )),
            None => Ok(None),
        }
    }

    pub(crate) fn token_minter(&self) -> TokenMinter<'_> {
        TokenMinter {
            format: &self.format,
            options: &self.options,
        }
    }

    /// Makes a key: checks, record, default expiry, `customise`, the team's hook, the
    /// actor's bounds on the final record, then the secret from `minter`. Nothing is
    /// stored.
    pub(crate) fn new_key(
        &self,
        spec: NewKey<'_>,
        minter: &dyn KeyMinter,
        customise: impl FnOnce(&mut ApiKey) -> Result<(), KeyServiceError>,
    ) -> Result<IssuedKey, KeyServiceError> {
        let NewKey {
            key_type,
            environment,
            owner,
            bounds,
            asked_expiry,
        } = spec;
        if !self.options.environments.contains(environment) {
            return Err(KeyServiceError::EnvironmentNotEnabled(environment.clone()));
        }
        if !self.options.key_types.contains(key_type) {
            return Err(KeyServiceError::KeyTypeNotEnabled(key_type.clone()));
        }
        let now = self.now();
        // The hash and hint are set from the minted secret, once the record is final.
        let mut key = ApiKey::new(
            KeyId::random(),
            key_type.clone(),
            environment.clone(),
            KeyHash::of(""),
            String::new(),
            now,
        );
        key.user_id = owner.map(|u| u.id.clone());
        key.tenant = owner.and_then(|u| u.tenant.clone());
        if let Some(lifetime) = self.options.expire_keys_after {
            key.expires_at = Some(after(now, lifetime)?);
        }
        customise(&mut key)?;
        if let Some(hook) = &self.options.on_create_key {
            let before = key.clone();
            hook(&mut key);
            let changed = [
                ("id", before.id != key.id),
                ("hash", before.hash != key.hash),
                ("hint", before.hint != key.hint),
                ("type", before.key_type != key.key_type),
                ("environment", before.environment != key.environment),
                ("owner", before.user_id != key.user_id),
                ("creation time", before.created_at != key.created_at),
            ];
            if let Some((field, _)) = changed.iter().find(|(_, changed)| *changed) {
                return Err(KeyServiceError::HookChangedIdentity(field));
            }
        }
        // On the final record: whatever the request and the hook made of it.
        check_key_texts(&key)?;
        bounds.check_new_key(&mut key, asked_expiry)?;
        let minted = minter.mint(&key)?;
        key.hash = minted.plaintext.hash();
        key.hint = minted.hint;
        Ok(IssuedKey {
            key,
            plaintext: minted.plaintext,
        })
    }
}

/// What [`KeyService::new_key`] makes: a key of this type and environment for this
/// owner, within these bounds.
pub(crate) struct NewKey<'a> {
    key_type: &'a KeyType,
    environment: &'a Environment,
    owner: Option<&'a User>,
    bounds: &'a Bounds,
    /// Whether the actor chose the expiry (a later one than it may give is then an
    /// error rather than capped).
    asked_expiry: bool,
}

impl<'a> NewKey<'a> {
    pub(crate) fn new(
        key_type: &'a KeyType,
        environment: &'a Environment,
        owner: Option<&'a User>,
        bounds: &'a Bounds,
    ) -> Self {
        Self {
            key_type,
            environment,
            owner,
            bounds,
            asked_expiry: false,
        }
    }

    pub(crate) fn asked_expiry(mut self, asked: bool) -> Self {
        self.asked_expiry = asked;
        self
    }
}

/// `from` plus `lifetime`, or a typed refusal for a lifetime no timestamp can hold.
pub(crate) fn after(
    from: DateTime<Utc>,
    lifetime: Duration,
) -> Result<DateTime<Utc>, KeyServiceError> {
    TimeDelta::from_std(lifetime)
        .ok()
        .and_then(|d| from.checked_add_signed(d))
        .ok_or_else(|| {
            KeyServiceError::InvalidRequest("the lifetime is too long to represent".to_owned())
        })
}
