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
use crate::model::{ApiKey, Meta, User};
use crate::name::{Environment, KeyType, Tenant};
use crate::options::KeyOptions;
use crate::scope::Scopes;
use crate::secret::{KeyHash, PlaintextKey};
use crate::store::{ApiKeyStore, KeyQuery, Regeneration, UserStore};
use crate::token::TokenFormat;

/// Told when keys stop working, so caches can forget them and revocation lists learn
/// of them, and when keys are made.
#[async_trait::async_trait]
pub trait KeyListener: Send + Sync {
    /// `keys` were revoked, or rolled by a regeneration (their `cancelled_at` says when
    /// they stop working).
    async fn keys_retired(&self, keys: &[ApiKey]);

    /// `keys` were just stored (issued, registered, regenerated, backfilled). Default:
    /// nothing to do.
    async fn keys_issued(&self, keys: &[ApiKey]) {
        let _ = keys;
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
/// of key (JWTs issued as keys) are made by [`KeyService`], so they pass the same checks,
/// hook, store and listeners as every other key.
pub trait KeyMinter: Send + Sync {
    /// The secret for `key`. The record is complete (id, type, environment, owner,
    /// tenant, scopes, expiry, after the `on_create_key` hook) except its hash and hint,
    /// which the service sets from what this returns.
    ///
    /// # Errors
    /// Whatever stopped the secret from being made, as [`Error::Mint`] or
    /// [`Error::InvalidRequest`].
    fn mint(&self, key: &ApiKey) -> Result<Minted, Error>;
}

/// keyroute's own keys: `{prefix}_{env}_{secret}{checksum}`, from the team's
/// [`KeyGenerator`](crate::KeyGenerator) when one is configured (checked to parse).
struct TokenMinter<'a> {
    format: &'a TokenFormat,
    options: &'a KeyOptions,
}

impl KeyMinter for TokenMinter<'_> {
    fn mint(&self, key: &ApiKey) -> Result<Minted, Error> {
        let (key_type, environment) = (&key.key_type, &key.environment);
        let plaintext = match &self.options.generate_key {
            Some(generator) => {
                let plaintext = generator.generate(self.format, key_type, environment)?;
                let parsed = self
                    .format
                    .parse(plaintext.expose_secret())
                    .map_err(Error::GeneratedKeyInvalid)?;
                if (&parsed.key_type, &parsed.environment) != (key_type, environment) {
                    return Err(Error::GeneratedKeyInvalid(crate::TokenError::Malformed));
                }
                plaintext
            }
            None => self.format.generate(key_type, environment)?,
        };
        let hint = TokenFormat::hint(&plaintext);
        Ok(Minted { plaintext, hint })
    }
}

/// A key just created: its record and its plaintext, which is never available again.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IssuedKey {
    /// The stored record.
    pub key: ApiKey,
    /// The plaintext key. Show it to its owner once; it is not stored.
    pub plaintext: PlaintextKey,
}

/// A new user to register.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NewUser {
    /// The user's id; a random one when `None`.
    pub id: Option<UserId>,
    /// The unique user name.
    pub user_name: String,
    /// Contact address.
    pub email: Option<String>,
    /// The tenant; the user's keys inherit it.
    pub tenant: Option<Tenant>,
    /// Team-defined metadata.
    pub meta: Meta,
}

impl NewUser {
    /// A user with this user name and nothing else.
    pub fn named(user_name: impl Into<String>) -> Self {
        Self {
            id: None,
            user_name: user_name.into(),
            email: None,
            tenant: None,
            meta: Meta::new(),
        }
    }

    /// Sets the user's id.
    pub fn with_id(mut self, id: UserId) -> Self {
        self.id = Some(id);
        self
    }

    /// Sets the email.
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// Sets the tenant.
    pub fn with_tenant(mut self, tenant: Tenant) -> Self {
        self.tenant = Some(tenant);
        self
    }
}

/// A registered user and the keys made for them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Registration {
    /// The stored user.
    pub user: User,
    /// One key per environment × key type.
    pub keys: Vec<IssuedKey>,
}

impl Registration {
    /// The key of `key_type` for `environment`, if one was made.
    pub fn key(&self, key_type: &KeyType, environment: &Environment) -> Option<&IssuedKey> {
        self.keys
            .iter()
            .find(|k| &k.key.key_type == key_type && &k.key.environment == environment)
    }
}

/// A request for one key.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KeyRequest {
    /// The key's type.
    pub key_type: KeyType,
    /// The key's environment.
    pub environment: Environment,
    /// The owner; `None` for a key that belongs to no user.
    pub user_id: Option<UserId>,
    /// The tenant; defaults to the owner's.
    pub tenant: Option<Tenant>,
    /// A name for the key.
    pub name: Option<String>,
    /// What the key may do.
    pub scopes: Scopes,
    /// Lifetime; defaults to `expire_keys_after`.
    pub expires_in: Option<Duration>,
    /// Free-form notes.
    pub notes: Option<String>,
    /// A reference into the team's own systems.
    pub ref_id: Option<String>,
    /// Team-defined metadata.
    pub meta: Meta,
}

impl KeyRequest {
    /// A request for a key of `key_type` in `environment`, for no user.
    pub fn new(key_type: KeyType, environment: Environment) -> Self {
        Self {
            key_type,
            environment,
            user_id: None,
            tenant: None,
            name: None,
            scopes: Scopes::none(),
            expires_in: None,
            notes: None,
            ref_id: None,
            meta: Meta::new(),
        }
    }

    /// Sets the owner.
    pub fn for_user(mut self, user_id: UserId) -> Self {
        self.user_id = Some(user_id);
        self
    }

    /// Sets the tenant.
    pub fn with_tenant(mut self, tenant: Tenant) -> Self {
        self.tenant = Some(tenant);
        self
    }

    /// Sets the name.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the scopes.
    pub fn with_scopes(mut self, scopes: Scopes) -> Self {
        self.scopes = scopes;
        self
    }

    /// Sets the lifetime.
    pub fn expires_in(mut self, lifetime: Duration) -> Self {
        self.expires_in = Some(lifetime);
        self
    }
}

/// The outcome of a regeneration.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Regenerated {
    /// The new keys, one per key type.
    pub issued: Vec<IssuedKey>,
    /// The old keys, cancelled now or at the end of the grace period.
    pub retired: Vec<ApiKey>,
}

/// What a backfill did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackfillReport {
    /// Users who got keys.
    pub users: usize,
    /// Keys made.
    pub keys: usize,
}

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
        let owner = match &request.user_id {
            Some(id) => Some(
                self.store
                    .get_user(id)
                    .await?
                    .ok_or_else(|| Error::UnknownUser(id.clone()))?,
            ),
            None => None,
        };
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
    pub async fn revoke(&self, key_id: &KeyId) -> Result<Option<ApiKey>, Error> {
        let revoked = self.store.cancel_key(key_id, self.now()).await?;
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
