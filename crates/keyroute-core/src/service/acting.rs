//! [`Acting`]: the key service on behalf of one [`Actor`], with the authority rules
//! (`authority.rs`) applied to every operation. Rolling and regenerating are in
//! `roll.rs`.
//!
//! The order of checks is the same everywhere: who the actor is (a publishable key or
//! a credential of no user is refused before any I/O), the rules that need no I/O
//! (environment, scopes), then the stored target (a key the caller may not see is, to
//! it, no key: `Ok(None)`, never "forbidden", so ids of other users' keys cannot be
//! probed), then the rules that need it, and only then a write.

use std::fmt;
use std::time::Duration;

use super::{IssuedKey, KeyMinter, KeyRequest, KeyService, NewKey, after};
use crate::audit::{AuditAction, AuditContext, AuditLog, AuditQuery, AuditRecord};
use crate::authority::{Actor, Bounds, Denied};
use crate::error::KeyServiceError;
use crate::ids::{KeyId, UserId};
use crate::model::{ApiKey, User};
use crate::name::Environment;
use crate::store::{ApiKeyStore, KeyQuery, UserStore};

/// The most users one [`Acting::list_users`] page holds.
pub const MAX_USERS_PAGE: usize = 1000;

/// The [`KeyService`] acting on behalf of one [`Actor`]: made by
/// [`KeyService::acting_as`]. Every operation applies the authority rules first and
/// refuses with [`KeyServiceError::Denied`] (or answers "no such key") what the actor may not do.
pub struct Acting<'a, S> {
    pub(super) service: &'a KeyService<S>,
    pub(super) actor: Actor,
    /// Where the request came from, for the audit trail.
    pub(super) context: AuditContext,
}

impl<S> fmt::Debug for Acting<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acting")
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

/// The service itself acts as the application.
impl<'a, S> From<&'a KeyService<S>> for Acting<'a, S> {
    fn from(service: &'a KeyService<S>) -> Self {
        Self {
            service,
            actor: Actor::Application,
            context: AuditContext::default(),
        }
    }
}

impl<'a, S: ApiKeyStore + UserStore> Acting<'a, S> {
    pub(super) fn new(service: &'a KeyService<S>, actor: Actor) -> Self {
        Self {
            service,
            actor,
            context: AuditContext::default(),
        }
    }

    /// Records `context` (the client's address, the request's id) with every change
    /// this makes, in the audit trail. The key routes give the request's.
    pub fn with_context(mut self, context: AuditContext) -> Self {
        self.context = context;
        self
    }

    /// An audit record of `action` on `key` (or on `user`'s keys) by this actor, now,
    /// with `details`.
    pub(super) fn record(
        &self,
        action: AuditAction,
        key: Option<&ApiKey>,
        user: Option<&UserId>,
        details: serde_json::Value,
    ) -> AuditRecord {
        let mut record = AuditRecord::new(self.service.now(), self.actor.audit_name(), action);
        record.key_id = key.map(|k| k.id.clone());
        record.environment = key.map(|k| k.environment.clone());
        record.user_id = user
            .cloned()
            .or_else(|| key.and_then(|k| k.user_id.clone()));
        record.details = details;
        record.source = self.context.source;
        record.request_id.clone_from(&self.context.request_id);
        record
    }

    /// Who is acting.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// The service acted through.
    pub fn service(&self) -> &'a KeyService<S> {
        self.service
    }

    pub(super) fn bounds(&self) -> Result<Bounds, KeyServiceError> {
        Ok(Bounds::of(&self.actor)?)
    }

    /// The user a request acts on: `named`, or the actor's own user when none is named.
    ///
    /// # Errors
    /// [`KeyServiceError::Denied`] when the actor may not act on `named` (or on anything: a
    /// publishable key, a credential of no user); [`KeyServiceError::UserRequired`] when no user
    /// is named and the actor has none.
    pub fn user_for(&self, named: Option<&UserId>) -> Result<UserId, KeyServiceError> {
        self.bounds()?
            .user(named)?
            .ok_or(KeyServiceError::UserRequired)
    }

    /// Issues one key.
    ///
    /// # Errors
    /// [`KeyServiceError::Denied`] when the request exceeds the actor's authority (another
    /// user's key, another environment or tenant, a scope it lacks, an expiry after
    /// its own, the owner's `max_keys_per_user` reached); [`KeyServiceError::Text`] for a name,
    /// notes or reference with control characters or over 1024 bytes;
    /// [`KeyServiceError::UnknownUser`] for an owner that does not exist; the checks of the type
    /// and environment; store errors.
    pub async fn issue_key(&self, request: KeyRequest) -> Result<IssuedKey, KeyServiceError> {
        self.issue_key_with(request, &self.service.token_minter())
            .await
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
    ) -> Result<IssuedKey, KeyServiceError> {
        let bounds = self.bounds()?;
        bounds.check_environment(&request.environment)?;
        bounds.check_grant(&request.scopes)?;
        let user_id = bounds.user(request.user_id.as_ref())?;
        if user_id.is_none() && bounds.needs_user() {
            return Err(KeyServiceError::UserRequired);
        }
        let owner = self.service.owner(user_id.as_ref()).await?;
        if let Some(owner) = &owner {
            bounds.check_user(owner)?;
            // A caller's key belongs to its owner's tenant, never one it names.
            if bounds.is_caller() && request.tenant.is_some() && request.tenant != owner.tenant {
                return Err(Denied::TenantMismatch.into());
            }
        }
        self.service.check_volume(owner.as_ref(), 1).await?;
        let spec = NewKey::new(
            &request.key_type,
            &request.environment,
            owner.as_ref(),
            &bounds,
        )
        .asked_expiry(request.expires_in.is_some());
        let issued = self.service.new_key(spec, minter, |key| {
            key.name = request.name.clone();
            key.scopes = request.scopes.clone();
            key.notes = request.notes.clone();
            key.ref_id = request.ref_id.clone();
            key.meta = request.meta.clone();
            key.allowed_networks.clone_from(&request.allowed_networks);
            crate::limits::check_limits(&request.limits)
                .map_err(|e| KeyServiceError::InvalidRequest(e.to_string()))?;
            key.limits.clone_from(&request.limits);
            key.credits = request
                .credits
                .map(|credits| metered_from(credits, key.created_at));
            if request.tenant.is_some() {
                key.tenant = request.tenant.clone();
            }
            if let Some(lifetime) = request.expires_in {
                key.expires_at = Some(after(key.created_at, lifetime)?);
            }
            Ok(())
        })?;
        let stored = std::slice::from_ref(&issued.key);
        let record = self.record(
            AuditAction::KeyIssued,
            Some(&issued.key),
            None,
            key_summary(&issued.key),
        );
        self.service.store.store_all(stored, &[record]).await?;
        self.service.announce_issued(stored).await;
        Ok(issued)
    }

    /// A user's keys matching `query`, newest first. A caller bound to an
    /// environment sees only that environment's keys.
    ///
    /// # Errors
    /// [`KeyServiceError::Denied`] for another user's keys (without the admin scope), another
    /// environment or tenant; store errors.
    pub async fn list_keys(
        &self,
        user_id: &UserId,
        query: &KeyQuery,
    ) -> Result<Vec<ApiKey>, KeyServiceError> {
        let bounds = self.bounds()?;
        bounds.user(Some(user_id))?;
        let query = match (&query.environment, bounds.environment()) {
            (Some(asked), _) => {
                bounds.check_environment(asked)?;
                query.clone()
            }
            (None, Some(own)) => query.clone().in_environment(own.clone()),
            (None, None) => query.clone(),
        };
        if bounds.has_tenant() {
            self.check_tenant_of(&bounds, user_id).await?;
        }
        let mut keys = self
            .service
            .store
            .get_user_api_keys(user_id, &query)
            .await?;
        keys.retain(|key| bounds.may_see(key));
        Ok(keys)
    }

    /// A user's keys that work now in `environment` (ServiceStack's `GET /apikeys/{env}`).
    ///
    /// # Errors
    /// As [`list_keys`](Self::list_keys).
    pub async fn active_keys(
        &self,
        user_id: &UserId,
        environment: Environment,
    ) -> Result<Vec<ApiKey>, KeyServiceError> {
        let query = KeyQuery::active_at(self.service.now()).in_environment(environment);
        self.list_keys(user_id, &query).await
    }

    /// A page of users in id order, starting after `after`: at most `limit` (and at
    /// most [`MAX_USERS_PAGE`]). Only actors that may act on any user may list them
    /// (admin keys, the application, operators); a caller bound to a tenant gets only
    /// its tenant's users. A page shorter than `limit` is the last.
    ///
    /// # Errors
    /// [`KeyServiceError::Denied`] (`not_your_keys`) for a caller without the admin
    /// scope (`publishable_key`, `no_user` as for every operation); store errors.
    pub async fn list_users(
        &self,
        after: Option<&UserId>,
        limit: usize,
    ) -> Result<Vec<User>, KeyServiceError> {
        let bounds = self.bounds()?;
        bounds.check_may_list_users()?;
        let limit = limit.min(MAX_USERS_PAGE);
        let store = &self.service.store;
        if !bounds.has_tenant() || limit == 0 {
            return Ok(store.list_users(after, limit).await?);
        }
        // Bound to a tenant: read pages until `limit` of its users are found or the
        // users run out. The client's next `after` is the last user returned, so any
        // read past it is read again then, never skipped.
        let mut found = Vec::new();
        let mut cursor = after.cloned();
        loop {
            let page = store.list_users(cursor.as_ref(), limit).await?;
            let last_page = page.len() < limit;
            cursor = page.last().map(|user| user.id.clone());
            found.extend(page.into_iter().filter(|user| bounds.may_see_user(user)));
            if found.len() >= limit || last_page {
                found.truncate(limit);
                return Ok(found);
            }
        }
    }

    /// Refuses `user_id` unless the caller may act on that user (its tenant's); an
    /// unknown user is [`KeyServiceError::UnknownUser`].
    pub(super) async fn check_tenant_of(
        &self,
        bounds: &Bounds,
        user_id: &UserId,
    ) -> Result<(), KeyServiceError> {
        let user = self
            .service
            .store
            .get_user(user_id)
            .await?
            .ok_or_else(|| KeyServiceError::UnknownUser(user_id.clone()))?;
        Ok(bounds.check_user(&user)?)
    }

    /// The key `key_id`, if the actor may see it; `None` for no such key or one it may
    /// not see (another user's, another tenant's).
    ///
    /// # Errors
    /// [`KeyServiceError::Denied`] for a key of the actor's user in another environment (or a
    /// publishable key or credential of no user asking); store errors.
    pub async fn key(&self, key_id: &KeyId) -> Result<Option<ApiKey>, KeyServiceError> {
        let bounds = self.bounds()?;
        self.visible(&bounds, key_id).await
    }

    /// The stored key `key_id` if `bounds` may see it and it is of their environment.
    pub(super) async fn visible(
        &self,
        bounds: &Bounds,
        key_id: &KeyId,
    ) -> Result<Option<ApiKey>, KeyServiceError> {
        let Some(key) = self.service.store.get_api_key(key_id).await? else {
            return Ok(None);
        };
        if !bounds.may_see(&key) {
            return Ok(None);
        }
        bounds.check_environment(&key.environment)?;
        Ok(Some(key))
    }

    /// Revokes a key now. Returns the key as stored, or `None` if there is no such key
    /// (or none the actor may see).
    ///
    /// Listeners hear of the revoke before the store is written and again after, so a
    /// caller that stops waiting (a dropped future: client gone, request timed out)
    /// cannot leave a revoked key in this instance's caches or off the deny-list.
    ///
    /// # Errors
    /// [`KeyServiceError::Denied`] for a key of another environment, or (for a key caller) one
    /// holding scopes beyond the caller's; store errors.
    pub async fn revoke(&self, key_id: &KeyId) -> Result<Option<ApiKey>, KeyServiceError> {
        let bounds = self.bounds()?;
        let Some(mut key) = self.visible(&bounds, key_id).await? else {
            return Ok(None);
        };
        bounds.check_may_cancel(&key)?;
        let now = self.service.now();
        key.cancelled_at = Some(key.cancelled_at.map_or(now, |at| at.min(now)));
        self.service
            .announce_revoking(std::slice::from_ref(&key))
            .await;
        let record = self.record(
            AuditAction::KeyRevoked,
            Some(&key),
            None,
            serde_json::json!({ "cancelled_at": now }),
        );
        let revoked = self
            .service
            .store
            .cancel_key(key_id, now, &[record])
            .await?;
        if let Some(key) = &revoked {
            self.service.announce(std::slice::from_ref(key)).await;
        }
        Ok(revoked)
    }

    /// When keys retired now with `grace` stop working.
    pub(super) fn cancel_at(
        &self,
        grace: Option<Duration>,
    ) -> Result<chrono::DateTime<chrono::Utc>, KeyServiceError> {
        let now = self.service.now();
        match grace {
            Some(grace) => after(now, grace),
            None => Ok(now),
        }
    }
}

impl<S: ApiKeyStore + UserStore + AuditLog> Acting<'_, S> {
    /// A page of the audit trail matching `query` (at most [`MAX_AUDIT_PAGE`](crate::MAX_AUDIT_PAGE)
    /// records, in id order). The application and operators read everything; an
    /// admin key reads its environment's records (and those of no one environment);
    /// any other caller reads only its own user's records. A caller bound to a tenant
    /// must name a user of its tenant (`user_id`), whose records it then reads.
    ///
    /// # Errors
    /// [`KeyServiceError::Denied`] for another user's records without the admin
    /// scope, or a tenant's caller naming no user (or one of another tenant); store
    /// errors.
    pub async fn audit_records(
        &self,
        query: &AuditQuery,
    ) -> Result<Vec<AuditRecord>, KeyServiceError> {
        let bounds = self.bounds()?;
        let mut query = query.clone();
        if let Some(own) = bounds.environment() {
            query.environment = Some(own.clone());
        }
        if bounds.check_may_list_users().is_err() {
            // Not an admin: its own user's records only.
            query.user_id = Some(self.user_for(query.user_id.as_ref())?);
        }
        if bounds.has_tenant() {
            let Some(user_id) = &query.user_id else {
                return Err(Denied::TenantMismatch.into());
            };
            self.check_tenant_of(&bounds, user_id).await?;
        }
        Ok(self.service.store.audit_records(&query).await?)
    }
}

/// What the audit trail keeps of a new key: never its hash or secret.
pub(super) fn key_summary(key: &ApiKey) -> serde_json::Value {
    serde_json::json!({
        "type": key.key_type.as_str(),
        "environment": key.environment.as_str(),
        "name": key.name,
        "scopes": key.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "expires_at": key.expires_at,
        "allowed_networks": key.allowed_networks.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "enabled": key.enabled,
        "limits": key.limits,
        "credits": key.credits,
    })
}

/// Credits as set at `now`: a refill without its first instant gets one.
pub(super) fn metered_from(
    credits: crate::limits::Credits,
    now: chrono::DateTime<chrono::Utc>,
) -> crate::limits::Credits {
    match (credits.refill, credits.next_refill_at) {
        (Some(refill), None) => credits.with_refill(refill, now),
        _ => credits,
    }
}

/// [`key_summary`] with the key's id, for records about several keys.
pub(super) fn key_summary_with_id(key: &ApiKey) -> serde_json::Value {
    let mut summary = key_summary(key);
    if let Some(fields) = summary.as_object_mut() {
        fields.insert("id".to_owned(), serde_json::json!(key.id.as_str()));
    }
    summary
}
