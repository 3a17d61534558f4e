//! Issuing: exchanged tokens, session tokens, JWTs issued as keys, and revoking one
//! token (a logout).

use chrono::{DateTime, Utc};
use keyroute_core::{
    ApiKey, AuthMethod, Environment, KeyHash, KeyId, KeyService, KeyType, PlaintextKey, Principal,
    Store, Tenant, UserId,
};

use super::{IssuedJwtKey, IssuedToken, JwtKeyRequest, JwtService, SessionRequest, VerifiedToken};
use crate::claims::{OutgoingClaims, OutgoingScopes, TokenKind};
use crate::config::delta;
use crate::error::Error;
use crate::key::SigningKey;
use crate::{META_FORMAT, META_JWT};

/// Signs with `key`. Algorithm and `kid` come from the key, never from the caller.
fn sign(key: &SigningKey, claims: &OutgoingClaims<'_>) -> Result<String, Error> {
    let mut header = jsonwebtoken::Header::new(key.algorithm().jwt());
    header.kid = Some(key.kid().to_owned());
    jsonwebtoken::encode(&header, claims, key.encoding()).map_err(|e| Error::Signing(Box::new(e)))
}

/// What a JWT key is shown as: its first 8 and last 4 characters.
fn hint(token: &str) -> String {
    let tail = token.len().saturating_sub(4).max(8);
    format!(
        "{}…{}",
        token.get(..8).unwrap_or_default(),
        token.get(tail..).unwrap_or_default()
    )
}

/// The parts of a token being issued that differ between kinds.
struct Draft<'a> {
    kind: TokenKind,
    environment: &'a Environment,
    user_id: Option<&'a UserId>,
    key_type: Option<&'a KeyType>,
    key_id: Option<&'a str>,
    tenant: Option<&'a Tenant>,
    scopes: OutgoingScopes<'a>,
    jti: &'a str,
    issued_at: i64,
    expires_at: Option<i64>,
    key_exp: Option<i64>,
}

impl JwtService {
    fn issue(&self, draft: Draft<'_>) -> Result<(String, String), Error> {
        let ring = self.ring();
        let key = ring.signing().ok_or(Error::NoSigningKey)?;
        let claims = OutgoingClaims {
            iss: self.config.issuer.as_deref(),
            sub: draft.user_id.map(UserId::as_str),
            aud: self.config.audience.as_deref(),
            exp: draft.expires_at,
            nbf: draft.issued_at,
            iat: draft.issued_at,
            jti: draft.jti,
            kind: draft.kind.as_str(),
            env: draft.environment.as_str(),
            key_type: draft.key_type.map(KeyType::as_str),
            key_id: draft.key_id,
            tenant: draft.tenant.map(Tenant::as_str),
            key_exp: draft.key_exp,
            scopes: draft.scopes,
        };
        Ok((sign(key, &claims)?, key.kid().to_owned()))
    }

    /// Exchanges an authenticated caller for a short-lived token (`exchange_lifetime`,
    /// capped at the key's own expiry or pending cancellation) carrying its
    /// environment, key type, key id, user, tenant and scopes, so routing it needs no
    /// I/O. A caller holding a session gets a session token instead.
    ///
    /// The cap travels with the token as its `key_exp` claim. A caller who presents a
    /// token (a re-exchange) is capped by that token's `exp` and `key_exp` too
    /// ([`Principal::expires_at`]), so re-exchanging never extends anything: a chain of
    /// re-exchanges ends no later than the first exchange, and never after the key's
    /// expiry or cancellation. For a fresh token, exchange the API key itself again.
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] for an environment this service does not accept, a
    /// key that no longer works, or a session without a user; [`Error::NoSigningKey`].
    pub fn exchange(&self, principal: &Principal) -> Result<IssuedToken, Error> {
        let kind = if principal.method() == AuthMethod::UserSession {
            if principal.user_id().is_none() {
                return Err(Error::InvalidRequest("a session needs a user".to_owned()));
            }
            TokenKind::Session
        } else {
            TokenKind::Exchange
        };
        self.check_environment(principal.environment())?;
        let now = self.now_secs();
        let mut expires_at = Self::seconds_after(now, self.exchange_lifetime)?;
        // The key's expiry or cancellation, or for a re-exchange the presented token's
        // exp (itself capped by its key's): the new token never outlives it.
        let limit = principal.expires_at().map(|at| at.timestamp());
        if let Some(limit) = limit {
            expires_at = expires_at.min(limit);
            if expires_at <= now {
                return Err(Error::InvalidRequest(
                    "the key has expired or was revoked, or the token presented has expired"
                        .to_owned(),
                ));
            }
        }
        let jti = KeyId::random();
        let (token, kid) = self.issue(Draft {
            kind,
            environment: principal.environment(),
            user_id: principal.user_id(),
            key_type: principal.key_type(),
            key_id: principal.key_id().map(KeyId::as_str),
            tenant: principal.tenant(),
            scopes: OutgoingScopes::Flat(principal.scopes().iter().map(|s| s.as_str()).collect()),
            jti: jti.as_str(),
            issued_at: now,
            expires_at: Some(expires_at),
            key_exp: limit.filter(|_| kind == TokenKind::Exchange),
        })?;
        Ok(IssuedToken::new(token, kid, &jti, kind, expires_at))
    }

    /// Issues a session token for a person (`kind: session`).
    ///
    /// # Errors
    /// [`Error::InvalidRequest`] for an environment this service does not accept or an
    /// unrepresentable lifetime; [`Error::NoSigningKey`].
    pub fn issue_session(&self, request: SessionRequest) -> Result<IssuedToken, Error> {
        self.check_environment(&request.environment)?;
        let lifetime = match request.lifetime {
            Some(lifetime) if lifetime.is_zero() => {
                return Err(Error::InvalidRequest(
                    "a session lifetime must be over zero".to_owned(),
                ));
            }
            Some(lifetime) => delta(lifetime).ok_or_else(|| {
                Error::InvalidRequest("the lifetime is too long to represent".to_owned())
            })?,
            None => self.session_lifetime,
        };
        let now = self.now_secs();
        let expires_at = Self::seconds_after(now, lifetime)?;
        let jti = KeyId::random();
        let (token, kid) = self.issue(Draft {
            kind: TokenKind::Session,
            environment: &request.environment,
            user_id: Some(&request.user_id),
            key_type: None,
            key_id: None,
            tenant: request.tenant.as_ref(),
            scopes: OutgoingScopes::Flat(Vec::new()),
            jti: jti.as_str(),
            issued_at: now,
            expires_at: Some(expires_at),
            key_exp: None,
        })?;
        Ok(IssuedToken::new(
            token,
            kid,
            &jti,
            TokenKind::Session,
            expires_at,
        ))
    }

    /// Issues a JWT as a long-lived scoped API key and records it in `keys`' store like
    /// any key: id = `jti`, hash = SHA-256 of the token, hint = first 8 and last 4
    /// characters, `meta.format = jwt`. It then appears in the owner's key list and is
    /// revoked with [`KeyService::revoke`]. The token is returned once.
    ///
    /// The key service's environment and key type rules apply; its `on_create_key` hook
    /// does not (it could change scopes or expiry the signed token already holds). Use
    /// the same clock for both services.
    ///
    /// # Errors
    /// [`Error::Service`] for an unknown owner, or an environment or key type the key
    /// service does not issue; [`Error::InvalidRequest`] for an environment this
    /// service does not accept, a structured scope without a resource, or no expiry
    /// while the deny-list check is off; [`Error::Store`]; [`Error::NoSigningKey`].
    pub async fn issue_key<S: Store>(
        &self,
        keys: &KeyService<S>,
        request: impl Into<JwtKeyRequest>,
    ) -> Result<IssuedJwtKey, Error> {
        let JwtKeyRequest {
            key: request,
            scope_format,
        } = request.into();
        let options = keys.options();
        if !options.environments.contains(&request.environment) {
            return Err(keyroute_core::Error::EnvironmentNotEnabled(request.environment).into());
        }
        if !options.key_types.contains(&request.key_type) {
            return Err(keyroute_core::Error::KeyTypeNotEnabled(request.key_type).into());
        }
        self.check_environment(&request.environment)?;
        if request.expires_in.is_none() && !self.config.check_deny_list {
            return Err(Error::InvalidRequest(
                "a JWT key without expiry could never be revoked while the deny-list check is off; set expires_in"
                    .to_owned(),
            ));
        }
        let owner = match &request.user_id {
            Some(id) => Some(
                keys.store()
                    .get_user(id)
                    .await?
                    .ok_or_else(|| keyroute_core::Error::UnknownUser(id.clone()))?,
            ),
            None => None,
        };
        let tenant = request
            .tenant
            .clone()
            .or_else(|| owner.as_ref().and_then(|u| u.tenant.clone()));
        let scopes = OutgoingScopes::new(&request.scopes, scope_format).map_err(|s| {
            Error::InvalidRequest(format!(
                "scope '{s}' has no resource; the structured format needs resource:action"
            ))
        })?;
        let now = self.now_secs();
        let expires_at = match request.expires_in {
            Some(lifetime) => Some(Self::seconds_after(
                now,
                delta(lifetime).ok_or_else(|| {
                    Error::InvalidRequest("the lifetime is too long to represent".to_owned())
                })?,
            )?),
            None => None,
        };
        let id = KeyId::random();
        let (token, _kid) = self.issue(Draft {
            kind: TokenKind::Key,
            environment: &request.environment,
            user_id: request.user_id.as_ref(),
            key_type: Some(&request.key_type),
            key_id: Some(id.as_str()),
            tenant: tenant.as_ref(),
            scopes,
            jti: id.as_str(),
            issued_at: now,
            expires_at,
            key_exp: None,
        })?;
        let created_at = DateTime::from_timestamp(now, 0).unwrap_or_else(|| self.clock.now());
        let mut key = ApiKey::new(
            id,
            request.key_type,
            request.environment,
            KeyHash::of(&token),
            hint(&token),
            created_at,
        );
        key.user_id = request.user_id;
        key.tenant = tenant;
        key.name = request.name;
        key.expires_at = expires_at.and_then(|at| DateTime::from_timestamp(at, 0));
        key.scopes = request.scopes;
        key.notes = request.notes;
        key.ref_id = request.ref_id;
        key.meta = request.meta;
        key.meta.insert(META_FORMAT.to_owned(), META_JWT.to_owned());
        let plaintext = PlaintextKey::new(token);
        keys.store().store_all(std::slice::from_ref(&key)).await?;
        Ok(IssuedJwtKey { key, plaintext })
    }

    /// Revokes one verified token (a logout): denies its `jti` until it expires, here
    /// at once and through the deny-list everywhere.
    ///
    /// # Errors
    /// [`Error::Config`] when the service has no deny-list; [`Error::Store`].
    pub async fn revoke_token(&self, token: &VerifiedToken) -> Result<(), Error> {
        if !self.deny.has_list() {
            return Err(Error::Config("no deny-list is configured".to_owned()));
        }
        let until = token
            .expires_at
            .and_then(|at| at.checked_add_signed(self.leeway))
            .unwrap_or_else(|| {
                DateTime::from_timestamp(253_402_300_799, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
            });
        Ok(self.deny.deny(&token.jti, until).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hints keep 8 leading and 4 trailing characters and never the middle.
    #[test]
    fn hints() {
        assert_eq!(hint("abcdefghijklmnopqrstuvwxyz"), "abcdefgh…wxyz");
    }
}
