//! [`KeyService`]: the operations a team exposes to its users, over any store of keys
//! and users ([`ApiKeyStore`] + [`UserStore`]; the deny-list is not needed here).
//!
//! Register a user and issue one key per environment × type; issue a single key with a
//! name, scopes and expiry; list; revoke; regenerate an environment (optionally with a
//! grace period during which the old keys still work, like Stripe's roll); backfill
//! keys for users who have none. Plaintext keys leave the service exactly once, in the
//! [`IssuedKey`] returned at creation; only their hashes are stored.
//!
//! Every management operation runs on behalf of an [`Actor`](crate::Actor) and goes
//! through [`KeyService::acting_as`], where the authority rules (`authority.rs`) are
//! applied: an HTTP route acts as its caller, the `keyroute` command as a named
//! operator. The shorthand methods on the service itself ([`issue_key`](KeyService::issue_key),
//! [`revoke`](KeyService::revoke), ...) act as [`Actor::Application`](crate::Actor::Application),
//! the application's own code; never use them for something a caller asked for.
//!
//! Revocations and regenerations are announced to [`KeyListener`]s, which is how the
//! resolver's cache on this instance forgets a revoked key at once.
//!
//! | file | holds |
//! |---|---|
//! | `mod.rs` | [`KeyService`]: construction, users, backfill, how a key is made |
//! | `acting.rs` | [`Acting`]: issue, list, show, revoke, on behalf of an actor |
//! | `make.rs` | how a key is made: record, hook, the actor's bounds, then the secret |
//! | `roll.rs` | roll and regenerate: replacements that keep what a key was |
//! | `import.rs` | import: keys a team already handed out, by plaintext or hash |
//! | `leak.rs` | leak response: a token a scanner found, revoked or reported |
//! | `update.rs` | update: a key's name, scopes, expiry, notes, metadata, networks, state |
//! | `seams.rs` | [`KeyListener`], [`KeyMinter`] |
//! | `types.rs` | requests and results |
//!
//! Every key is made on one path, whatever its secret looks like: the request is
//! checked, the record built, the team's `on_create_key` hook run, and only then is the
//! secret minted from the final record by a [`KeyMinter`] (keyroute's token format by
//! default; a signed JWT for JWT keys, whose claims must match the record), stored and
//! announced. A crate that makes another kind of secret plugs in a minter; it never
//! writes keys around this service.

mod acting;
mod import;
mod leak;
mod make;
pub(crate) mod roll;
mod update;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::audit::AuditAction;
use crate::authority::Actor;
use crate::clock::{Clock, SystemClock};
use crate::error::KeyServiceError;
use crate::ids::{KeyId, UserId};
use crate::model::{ApiKey, User};
use crate::name::Environment;
use crate::options::KeyOptions;
use crate::store::{ApiKeyStore, KeyQuery, UserStore};

use crate::token::TokenFormat;

mod seams;
mod types;

pub use acting::{Acting, MAX_USERS_PAGE};
pub use import::{ImportOutcome, ImportedKey, ImportedSecret};
pub use leak::{LeakReport, LeakResponse, LeakVerdict};
pub(crate) use make::{NewKey, after};
pub use seams::{KeyListener, KeyMinter, LEGACY_FORMAT, META_FORMAT, Minted};
pub use types::{
    BackfillReport, IssuedKey, KeyRequest, KeyUpdate, KeyUpdated, NewUser, Regenerated,
    Registration,
};

/// Key management over a store of keys and users.
pub struct KeyService<S> {
    store: S,
    options: KeyOptions,
    format: TokenFormat,
    clock: Arc<dyn Clock>,
    listeners: Vec<Arc<dyn KeyListener>>,
    /// Minters of keys whose `meta.format` names another kind of secret, by format:
    /// what rolls and regenerations make their replacements with.
    minters: Vec<(String, Arc<dyn KeyMinter>)>,
}

impl<S> fmt::Debug for KeyService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyService")
            .field("options", &self.options)
            .field("clock", &self.clock)
            .field("listeners", &self.listeners.len())
            .field(
                "minters",
                &self.minters.iter().map(|(f, _)| f).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl<S: ApiKeyStore + UserStore> KeyService<S> {
    /// A service over `store` with `options`.
    ///
    /// # Errors
    /// [`KeyServiceError::Config`] when the options are invalid.
    pub fn new(store: S, options: KeyOptions) -> Result<Self, KeyServiceError> {
        let format = options.token_format()?;
        Ok(Self {
            store,
            options,
            format,
            clock: Arc::new(SystemClock),
            listeners: Vec::new(),
            minters: Vec::new(),
        })
    }

    /// Makes the replacements of keys whose `meta.format` is `format` with `minter`
    /// when they are rolled or regenerated (the front door registers the JWT minter
    /// for `format = jwt`). Keys without a format are keyroute's own tokens.
    pub fn with_minter(mut self, format: impl Into<String>, minter: Arc<dyn KeyMinter>) -> Self {
        let format = format.into();
        self.minters.retain(|(f, _)| *f != format);
        self.minters.push((format, minter));
        self
    }

    /// This service acting on behalf of `actor`: every management operation, with the
    /// authority rules applied. An HTTP route acts as its caller
    /// (`keys.acting_as(&principal)`), a command-line tool as a named
    /// [`Operator`](crate::Operator).
    pub fn acting_as(&self, actor: impl Into<Actor>) -> Acting<'_, S> {
        Acting::new(self, actor.into())
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
    /// [`KeyServiceError::Store`] when they fail.
    pub async fn init(&self) -> Result<(), KeyServiceError> {
        if self.options.init_schema {
            self.store.init_schema().await?;
        }
        Ok(())
    }

    /// Registers a user with one key per environment × key type, atomically.
    ///
    /// # Errors
    /// [`KeyServiceError::Name`] for a user name that is empty, over 1024 bytes or has control
    /// characters; [`KeyServiceError::Store`] with a conflict when the id or user name is taken.
    pub async fn register_user(&self, new_user: NewUser) -> Result<Registration, KeyServiceError> {
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
        let acting = self.as_application();
        let record = acting.record(
            AuditAction::UserRegistered,
            None,
            Some(&user.id),
            serde_json::json!({
                "user_name": user.user_name,
                "keys": records.iter().map(acting::key_summary_with_id).collect::<Vec<_>>(),
            }),
        );
        self.store.create_user(&user, &records, &[record]).await?;
        self.announce_issued(&records).await;
        Ok(Registration { user, keys })
    }

    /// Issues one key, as the application ([`Acting::issue_key`]).
    ///
    /// # Errors
    /// As [`Acting::issue_key`].
    pub async fn issue_key(&self, request: KeyRequest) -> Result<IssuedKey, KeyServiceError> {
        self.as_application().issue_key(request).await
    }

    /// Issues one key whose secret `minter` makes, as the application
    /// ([`Acting::issue_key_with`]).
    ///
    /// # Errors
    /// As [`Acting::issue_key_with`].
    pub async fn issue_key_with(
        &self,
        request: KeyRequest,
        minter: &dyn KeyMinter,
    ) -> Result<IssuedKey, KeyServiceError> {
        self.as_application().issue_key_with(request, minter).await
    }

    /// A user's keys matching `query`, newest first, as the application.
    ///
    /// # Errors
    /// Store errors.
    pub async fn list_keys(
        &self,
        user_id: &UserId,
        query: &KeyQuery,
    ) -> Result<Vec<ApiKey>, KeyServiceError> {
        self.as_application().list_keys(user_id, query).await
    }

    /// A user's keys that work now in `environment` (ServiceStack's `GET /apikeys/{env}`),
    /// as the application.
    ///
    /// # Errors
    /// Store errors.
    pub async fn active_keys(
        &self,
        user_id: &UserId,
        environment: Environment,
    ) -> Result<Vec<ApiKey>, KeyServiceError> {
        self.as_application()
            .active_keys(user_id, environment)
            .await
    }

    /// Revokes a key now, as the application ([`Acting::revoke`]).
    ///
    /// # Errors
    /// Store errors.
    pub async fn revoke(&self, key_id: &KeyId) -> Result<Option<ApiKey>, KeyServiceError> {
        self.as_application().revoke(key_id).await
    }

    /// Replaces a user's keys in `environment`, as the application
    /// ([`Acting::regenerate`]).
    ///
    /// # Errors
    /// As [`Acting::regenerate`].
    pub async fn regenerate(
        &self,
        user_id: &UserId,
        environment: &Environment,
        grace: Option<Duration>,
    ) -> Result<Regenerated, KeyServiceError> {
        self.as_application()
            .regenerate(user_id, environment, grace)
            .await
    }

    /// Replaces one key, as the application ([`Acting::roll`]).
    ///
    /// # Errors
    /// As [`Acting::roll`].
    pub async fn roll(
        &self,
        key_id: &KeyId,
        grace: Option<Duration>,
    ) -> Result<Option<roll::Rolled>, KeyServiceError> {
        self.as_application().roll(key_id, grace).await
    }

    /// Changes a key, as the application ([`Acting::update_key`]).
    ///
    /// # Errors
    /// As [`Acting::update_key`].
    pub async fn update_key(
        &self,
        key_id: &KeyId,
        update: &KeyUpdate,
    ) -> Result<Option<KeyUpdated>, KeyServiceError> {
        self.as_application().update_key(key_id, update).await
    }

    fn as_application(&self) -> Acting<'_, S> {
        self.acting_as(Actor::Application)
    }

    /// Gives every user without keys one key per environment × key type, `batch_size`
    /// users per transaction. Safe to re-run, and to run on several instances at once:
    /// users who got keys, even meanwhile, are skipped, so nobody gets two sets.
    ///
    /// # Errors
    /// Store errors; batches already stored stay stored.
    pub async fn backfill(&self, batch_size: usize) -> Result<BackfillReport, KeyServiceError> {
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
            let record = self.as_application().record(
                AuditAction::KeysBackfilled,
                None,
                None,
                serde_json::json!({ "users_considered": users.len(), "keys_offered": keys.len() }),
            );
            let stored: std::collections::HashSet<UserId> = self
                .store
                .store_backfill(&keys, &[record])
                .await?
                .into_iter()
                .collect();
            keys.retain(|k| k.user_id.as_ref().is_some_and(|u| stored.contains(u)));
            self.announce_issued(&keys).await;
            report.users += stored.len();
            report.keys += keys.len();
        }
    }

    /// Now, to the microsecond: the finest precision every backend stores, so a record
    /// reads back exactly as it was written.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        use chrono::SubsecRound as _;
        self.clock.now().trunc_subsecs(6)
    }

    pub(crate) async fn announce(&self, keys: &[ApiKey]) {
        if keys.is_empty() {
            return;
        }
        for listener in &self.listeners {
            listener.keys_retired(keys).await;
        }
    }

    pub(crate) async fn announce_rolled(&self, keys: &[ApiKey]) {
        if keys.is_empty() {
            return;
        }
        for listener in &self.listeners {
            listener.keys_rolled(keys).await;
        }
    }

    pub(crate) async fn announce_revoking(&self, keys: &[ApiKey]) {
        if keys.is_empty() {
            return;
        }
        for listener in &self.listeners {
            listener.keys_revoking(keys).await;
        }
    }

    pub(crate) async fn announce_leaked(&self, keys: &[ApiKey]) {
        for listener in &self.listeners {
            listener.keys_leaked(keys).await;
        }
    }

    pub(crate) async fn announce_narrowing(&self, keys: &[ApiKey]) {
        for listener in &self.listeners {
            listener.keys_narrowing(keys).await;
        }
    }

    pub(crate) async fn announce_updated(&self, updates: &[KeyUpdated]) {
        for listener in &self.listeners {
            listener.keys_updated(updates).await;
        }
    }

    pub(crate) async fn announce_issued(&self, keys: &[ApiKey]) {
        if keys.is_empty() {
            return;
        }
        for listener in &self.listeners {
            listener.keys_issued(keys).await;
        }
    }
}

/// User names are 1 to 1024 bytes without control characters: every backend can index
/// that many bytes, and control characters have no place in a name.
fn check_user_name(user_name: &str) -> Result<(), KeyServiceError> {
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
