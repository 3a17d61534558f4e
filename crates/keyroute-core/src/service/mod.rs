//! [`KeyService`]: the operations a team exposes to its users, over any store of keys
//! and users ([`ApiKeyStore`] + [`UserStore`]; the deny-list is not needed here).
//!
//! Register a user and issue one key per environment × type; issue a single key with a
//! name, scopes and expiry; list; revoke; regenerate an environment (optionally with a
//! grace period during which the old keys still work, like Stripe's roll); backfill
//! keys for users who have none. Plaintext keys leave the service exactly once, in the
//! [`IssuedKey`] returned at creation; only their hashes are stored.
//!
//! Revocations and regenerations are announced to [`KeyListener`]s, which is how the
//! resolver's cache on this instance forgets a revoked key at once.
//!
//! Every key is made on one path, whatever its secret looks like: the request is
//! checked, the record built, the team's `on_create_key` hook run, and only then is the
//! secret minted from the final record by a [`KeyMinter`] (keyroute's token format by
//! default; a signed JWT for JWT keys, whose claims must match the record), stored and
//! announced. A crate that makes another kind of secret plugs in a minter; it never
//! writes keys around this service.

pub(crate) mod roll;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::ids::{KeyId, UserId};
use crate::model::{ApiKey, User};
use crate::name::{Environment, KeyType};
use crate::options::KeyOptions;
use crate::secret::KeyHash;
use crate::store::{ApiKeyStore, KeyQuery, Regeneration, UserStore};
use crate::token::TokenFormat;

mod seams;
mod types;

use seams::TokenMinter;
pub use seams::{KeyListener, KeyMinter, Minted};
pub use types::{BackfillReport, IssuedKey, KeyRequest, NewUser, Regenerated, Registration};

/// Key management over a store of keys and users.
pub struct KeyService<S> {
    store: S,
    options: KeyOptions,
    format: TokenFormat,
    clock: Arc<dyn Clock>,
    listeners: Vec<Arc<dyn KeyListener>>,
}

impl<S> fmt::Debug for KeyService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyService")
            .field("options", &self.options)
            .field("clock", &self.clock)
            .field("listeners", &self.listeners.len())
            .finish_non_exhaustive()
    }
}

impl<S: ApiKeyStore + UserStore> KeyService<S> {
    /// A service over `store` with `options`.
    ///
    /// # Errors
    /// [`Error::Config`] when the options are invalid.
    pub fn new(store: S, options: KeyOptions) -> Result<Self, Error> {
        let format = options.token_format()?;
        Ok(Self {
            store,
            options,
            format,
            clock: Arc::new(SystemClock),
            listeners: Vec::new(),
        })
    }

    /// Uses `clock` instead of the system clock (tests move a `ManualClock`).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Tells `listener` about every revocation and regeneration.
    pub fn with_listener(mut self, listener: Arc<dyn KeyListener>) -> Self {
        self.listeners.push(listener);
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The options.
    pub fn options(&self) -> &KeyOptions {
        &self.options
    }

    /// The token format keys are made and parsed with.
    pub fn format(&self) -> &TokenFormat {
        &self.format
    }

    /// The service's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Runs the store's migrations if `init_schema` is on.
    ///
    /// # Errors
    /// [`Error::Store`] when they fail.
    pub async fn init(&self) -> Result<(), Error> {
        if self.options.init_schema {
            self.store.init_schema().await?;
        }
        Ok(())
    }

    /// Registers a user with one key per environment × key type, atomically.
    ///
    /// # Errors
    /// [`Error::Name`] for a user name that is empty, over 1024 bytes or has control
    /// characters; [`Error::Store`] with a conflict when the id or user name is taken.
    pub async fn register_user(&self, new_user: NewUser) -> Result<Registration, Error> {
        check_user_name(&new_user.user_name)?;
        let mut user = User::new(
            new_user.id.unwrap_or_else(UserId::random),
            new_user.user_name,
            self.now(),
        );
        user.email = new_user.email;
        user.tenant = new_user.tenant;
        user.meta = new_user.meta;
        let keys = self.default_keys_for(&user)?;
        let records: Vec<ApiKey> = keys.iter().map(|k| k.key.clone()).collect();
        self.store.create_user(&user, &records).await?;
        self.announce_issued(&records).await;
        Ok(Registration { user, keys })
    }

    /// Issues one key.
    ///
    /// # Errors
    /// [`Error::UnknownUser`] for an owner that does not exist, the checks of the
    /// type and environment, and store errors.
    pub async fn issue_key(&self, request: KeyRequest) -> Result<IssuedKey, Error> {
        self.issue_key_with(request, &self.token_minter()).await
    }

    /// Issues one key whose secret `minter` makes from the final record (how JWT keys
    /// are made): the request is checked, the `on_create_key` hook runs, the key is
    /// stored and listeners are told, exactly as for [`issue_key`](Self::issue_key).
    ///
    /// # Errors
    /// As [`issue_key`](Self::issue_key), and the minter's errors.
    pub async fn issue_key_with(
        &self,
        request: KeyRequest,
        minter: &dyn KeyMinter,
    ) -> Result<IssuedKey, Error> {
        let owner = self.owner(request.user_id.as_ref()).await?;
        let issued = self.new_key(
            &request.key_type,
            &request.environment,
            owner.as_ref(),
            minter,
            |key| {
                key.name = request.name.clone();
                key.scopes = request.scopes.clone();
                key.notes = request.notes.clone();
                key.ref_id = request.ref_id.clone();
                key.meta = request.meta.clone();
                if request.tenant.is_some() {
                    key.tenant = request.tenant.clone();
                }
                if let Some(lifetime) = request.expires_in {
                    key.expires_at = Some(after(key.created_at, lifetime)?);
                }
                Ok(())
            },
        )?;
        let stored = std::slice::from_ref(&issued.key);
        self.store.store_all(stored).await?;
        self.announce_issued(stored).await;
        Ok(issued)
    }

    /// A user's keys matching `query`, newest first.
    ///
    /// # Errors
    /// Store errors.
    pub async fn list_keys(
        &self,
        user_id: &UserId,
        query: &KeyQuery,
    ) -> Result<Vec<ApiKey>, Error> {
        Ok(self.store.get_user_api_keys(user_id, query).await?)
    }

    /// A user's keys that work now in `environment` (ServiceStack's `GET /apikeys/{env}`).
    ///
    /// # Errors
    /// Store errors.
    pub async fn active_keys(
        &self,
        user_id: &UserId,
        environment: Environment,
    ) -> Result<Vec<ApiKey>, Error> {
        let query = KeyQuery::active_at(self.now()).in_environment(environment);
        self.list_keys(user_id, &query).await
    }

    /// Revokes a key now. Returns the key as stored, or `None` if there is no such key.
    ///
    /// # Errors
    /// Store errors.
    ///
    /// Listeners hear of the revoke before the store is written and again after, so a
    /// caller that stops waiting (a dropped future: client gone, request timed out)
    /// cannot leave a revoked key in this instance's caches or off the deny-list.
    pub async fn revoke(&self, key_id: &KeyId) -> Result<Option<ApiKey>, Error> {
        let now = self.now();
        let Some(mut key) = self.store.get_api_key(key_id).await? else {
            return Ok(None);
        };
        key.cancelled_at = Some(key.cancelled_at.map_or(now, |at| at.min(now)));
        self.announce_revoking(std::slice::from_ref(&key)).await;
        let revoked = self.store.cancel_key(key_id, now).await?;
        if let Some(key) = &revoked {
            self.announce(std::slice::from_ref(key)).await;
        }
        Ok(revoked)
    }

    /// Replaces a user's keys in `environment` with new ones, one per key type,
    /// atomically. With a `grace` period the old keys keep working until it ends.
    ///
    /// # Errors
    /// [`Error::UnknownUser`], the environment check, and store errors; on error
    /// nothing has changed.
    pub async fn regenerate(
        &self,
        user_id: &UserId,
        environment: &Environment,
        grace: Option<Duration>,
    ) -> Result<Regenerated, Error> {
        let user = self
            .store
            .get_user(user_id)
            .await?
            .ok_or_else(|| Error::UnknownUser(user_id.clone()))?;
        let issued = self
            .options
            .key_types
            .iter()
            .map(|t| {
                self.new_key(
                    t,
                    environment,
                    Some(&user),
                    &self.token_minter(),
                    |_| Ok(()),
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let now = self.now();
        let cancel_at = match grace {
            Some(grace) => after(now, grace)?,
            None => now,
        };
        let regeneration = Regeneration::new(
            user_id.clone(),
            environment.clone(),
            issued.iter().map(|k| k.key.clone()).collect(),
            cancel_at,
        );
        // Told first, as for revoke: the keys this will retire, as they will be.
        let mut retiring = self
            .store
            .get_user_api_keys(
                user_id,
                &KeyQuery::all().in_environment(environment.clone()),
            )
            .await?;
        retiring.retain(|key| regeneration.retires(key));
        for key in &mut retiring {
            key.cancelled_at = Some(cancel_at);
        }
        self.announce_revoking(&retiring).await;
        let retired = self.store.regenerate(&regeneration).await?;
        self.announce(&retired).await;
        self.announce_issued(&regeneration.new_keys).await;
        Ok(Regenerated { issued, retired })
    }

    /// Gives every user without keys one key per environment × key type, `batch_size`
    /// users per transaction. Safe to re-run, and to run on several instances at once:
    /// users who got keys, even meanwhile, are skipped, so nobody gets two sets.
    ///
    /// # Errors
    /// Store errors; batches already stored stay stored.
    pub async fn backfill(&self, batch_size: usize) -> Result<BackfillReport, Error> {
        let batch_size = batch_size.max(1);
        let mut report = BackfillReport::default();
        let mut after: Option<UserId> = None;
        loop {
            let users = self
                .store
                .users_missing_keys(after.as_ref(), batch_size)
                .await?;
            let Some(last) = users.last() else {
                return Ok(report);
            };
            after = Some(last.id.clone());
            let mut keys = Vec::with_capacity(users.len() * self.keys_per_user());
            for user in &users {
                keys.extend(self.default_keys_for(user)?.into_iter().map(|k| k.key));
            }
            // Only users still keyless get keys: a backfill running at the same
            // time may have keyed some of this page since it was read.
            let stored: std::collections::HashSet<UserId> = self
                .store
                .store_backfill(&keys)
                .await?
                .into_iter()
                .collect();
            keys.retain(|k| k.user_id.as_ref().is_some_and(|u| stored.contains(u)));
            self.announce_issued(&keys).await;
            report.users += stored.len();
            report.keys += keys.len();
        }
    }

    fn keys_per_user(&self) -> usize {
        self.options.environments.len() * self.options.key_types.len()
    }

    /// One key per environment × key type for `user`, not yet stored.
    fn default_keys_for(&self, user: &User) -> Result<Vec<IssuedKey>, Error> {
        let mut keys = Vec::with_capacity(self.keys_per_user());
        let minter = self.token_minter();
        for environment in &self.options.environments {
            for key_type in &self.options.key_types {
                keys.push(self.new_key(key_type, environment, Some(user), &minter, |_| Ok(()))?);
            }
        }
        Ok(keys)
    }

    /// The owner a key is made for: `None` for a key of no user, else the stored user.
    pub(crate) async fn owner(&self, id: Option<&UserId>) -> Result<Option<User>, Error> {
        match id {
            Some(id) => Ok(Some(
                self.store
                    .get_user(id)
                    .await?
                    .ok_or_else(|| Error::UnknownUser(id.clone()))?,
            )),
            None => Ok(None),
        }
    }

    fn token_minter(&self) -> TokenMinter<'_> {
        TokenMinter {
            format: &self.format,
            options: &self.options,
        }
    }

    /// Makes a key: checks, record, default expiry, `customise`, the team's hook, then
    /// the secret from `minter`. Nothing is stored.
    fn new_key(
        &self,
        key_type: &KeyType,
        environment: &Environment,
        owner: Option<&User>,
        minter: &dyn KeyMinter,
        customise: impl FnOnce(&mut ApiKey) -> Result<(), Error>,
    ) -> Result<IssuedKey, Error> {
        if !self.options.environments.contains(environment) {
            return Err(Error::EnvironmentNotEnabled(environment.clone()));
        }
        if !self.options.key_types.contains(key_type) {
            return Err(Error::KeyTypeNotEnabled(key_type.clone()));
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
                return Err(Error::HookChangedIdentity(field));
            }
        }
        let minted = minter.mint(&key)?;
        key.hash = minted.plaintext.hash();
        key.hint = minted.hint;
        Ok(IssuedKey {
            key,
            plaintext: minted.plaintext,
        })
    }

    /// Now, to the microsecond: the finest precision every backend stores, so a record
    /// reads back exactly as it was written.
    fn now(&self) -> DateTime<Utc> {
        use chrono::SubsecRound as _;
        self.clock.now().trunc_subsecs(6)
    }

    async fn announce(&self, keys: &[ApiKey]) {
        if keys.is_empty() {
            return;
        }
        for listener in &self.listeners {
            listener.keys_retired(keys).await;
        }
    }

    async fn announce_revoking(&self, keys: &[ApiKey]) {
        if keys.is_empty() {
            return;
        }
        for listener in &self.listeners {
            listener.keys_revoking(keys).await;
        }
    }

    async fn announce_issued(&self, keys: &[ApiKey]) {
        if keys.is_empty() {
            return;
        }
        for listener in &self.listeners {
            listener.keys_issued(keys).await;
        }
    }
}

/// `from` plus `lifetime`, or a typed refusal for a lifetime no timestamp can hold.
fn after(from: DateTime<Utc>, lifetime: Duration) -> Result<DateTime<Utc>, Error> {
    TimeDelta::from_std(lifetime)
        .ok()
        .and_then(|d| from.checked_add_signed(d))
        .ok_or_else(|| Error::InvalidRequest("the lifetime is too long to represent".to_owned()))
}

/// User names are 1 to 1024 bytes without control characters: every backend can index
/// that many bytes, and control characters have no place in a name.
fn check_user_name(user_name: &str) -> Result<(), Error> {
    if user_name.is_empty() || user_name.len() > 1024 || user_name.chars().any(char::is_control) {
        return Err(crate::NameError::new(
            "user name",
            user_name,
            "use 1 to 1024 bytes without control characters",
        )
        .into());
    }
    Ok(())
}
