//! Issuing: exchanged tokens, session tokens, JWTs issued as keys, and revoking one
//! token (a logout).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use keyroute_core::{
    Acting, ApiKey, ApiKeyStore, AuthMethod, Environment, KeyId, KeyMinter, KeyServiceError,
    KeyType, Minted, PlaintextKey, Principal, Tenant, UserId, UserStore,
};

use super::{IssuedJwtKey, IssuedToken, JwtKeyRequest, JwtService, SessionRequest, VerifiedToken};
use crate::claims::{OutgoingClaims, OutgoingScopes, TokenKind};
use crate::config::delta;
use crate::error::JwtServiceError;
use crate::key::SigningKey;
use crate::{META_FORMAT, META_JWT, META_SCOPE_FORMAT, META_STRUCTURED};

/// Signs with `key`. Algorithm and `kid` come from the key, never from the caller.
fn sign(key: &SigningKey, claims: &OutgoingClaims<'_>) -> Result<String, JwtServiceError> {
    let mut header = jsonwebtoken::Header::new(key.algorithm().jwt());
    header.kid = Some(key.kid().to_owned());
    jsonwebtoken::encode(&header, claims, key.encoding())
        .map_err(|e| JwtServiceError::Signing(Box::new(e)))
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

/// Signs a JWT key from its final record, for [`Acting::issue_key_with`].
struct JwtMinter<'a> {
    service: &'a JwtService,
    scope_format: crate::claims::ScopeFormat,
}

/// The JWT minter the key service keeps for rolling and regenerating JWT keys: the
/// replacement is signed like the key it replaces (its scope format is in its meta).
#[derive(Debug)]
pub(crate) struct ReplacementMinter {
    pub(crate) service: Arc<JwtService>,
}

impl KeyMinter for ReplacementMinter {
    fn mint(&self, key: &ApiKey) -> Result<Minted, KeyServiceError> {
        let scope_format = match key.meta.get(META_SCOPE_FORMAT).map(String::as_str) {
            Some(META_STRUCTURED) => crate::claims::ScopeFormat::Structured,
            _ => crate::claims::ScopeFormat::Flat,
        };
        JwtMinter {
            service: &self.service,
            scope_format,
        }
        .mint(key)
    }
}

impl KeyMinter for JwtMinter<'_> {
    fn mint(&self, key: &ApiKey) -> Result<Minted, KeyServiceError> {
        // After the key service's own checks: its errors come first.
        self.service
            .check_environment(&key.environment)
            .map_err(|e| KeyServiceError::Mint(Box::new(e)))?;
        let scopes = OutgoingScopes::new(&key.scopes, self.scope_format).map_err(|s| {
            KeyServiceError::InvalidRequest(format!(
                "scope '{s}' has no resource; the structured format needs resource:action"
            ))
        })?;
        // A JWT is accepted from any address, so it cannot carry a network binding.
        if !key.allowed_networks.is_empty() {
            return Err(KeyServiceError::InvalidRequest(
                "a JWT key cannot be bound to allowed networks (a JWT is accepted from any address); issue a keyroute key instead"
                    .to_owned(),
            ));
        }
        // A JWT is verified without the store, so nothing would count its requests.
        if !key.limits.is_empty() || key.credits.is_some() {
            return Err(KeyServiceError::InvalidRequest(
                "a JWT key cannot carry its own rate limits or credits (a JWT is checked without the store); issue a keyroute key instead"
                    .to_owned(),
            ));
        }
        // Checked on the final record: the creation hook may have set an expiry.
        if key.expires_at.is_none() && !self.service.config.check_deny_list {
            return Err(KeyServiceError::InvalidRequest(
                "a JWT key without expiry could never be revoked while the deny-list check is off; set expires_in"
                    .to_owned(),
            ));
        }
        let (token, _kid) = self
            .service
            .issue(Draft {
                kind: TokenKind::Key,
                environment: &key.environment,
                user_id: key.user_id.as_ref(),
                key_type: Some(&key.key_type),
                key_id: Some(key.id.as_str()),
                tenant: key.tenant.as_ref(),
                scopes,
                jti: key.id.as_str(),
                issued_at: key.created_at.timestamp(),
                // Whole seconds, rounded down: the token never outlives its record.
                expires_at: key.expires_at.map(|at| at.timestamp()),
                key_exp: None,
            })
            .map_err(|e| KeyServiceError::Mint(Box::new(e)))?;
        let shown = hint(&token);
        Ok(Minted::new(PlaintextKey::new(token), shown))
    }
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
    fn issue(&self, draft: Draft<'_>) -> Result<(String, String), JwtServiceError> {
        let ring = self.ring();
        let key = ring.signing().ok_or(JwtServiceError::NoSigningKey)?;
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
    /// [`JwtServiceError::InvalidRequest`] for an environment this service does not accept, a
    /// key that no longer works, or a session without a user; [`JwtServiceError::NoSigningKey`].
    pub fn exchange(&self, principal: &Principal) -> Result<IssuedToken, JwtServiceError> {
        let kind = if principal.method() == AuthMethod::UserSession {
            if principal.user_id().is_none() {
                return Err(JwtServiceError::InvalidRequest(
                    "a session needs a user".to_owned(),
                ));
            }
            TokenKind::Session
        } else {
            TokenKind::Exchange
        };
        self.check_environment(principal.environment())?;
        if principal
            .api_key()
            .is_some_and(|key| !key.allowed_networks.is_empty())
        {
            return Err(JwtServiceError::InvalidRequest(
                "a key bound to allowed networks cannot be exchanged for a JWT: a JWT is accepted from any address"
                    .to_owned(),
            ));
        }
        if principal
            .api_key()
            .is_some_and(|key| !key.limits.is_empty() || key.credits.is_some())
        {
            return Err(JwtServiceError::InvalidRequest(
                "a key with its own rate limits or credits cannot be exchanged for a JWT: the JWT's requests would not be counted against them"
                    .to_owned(),
            ));
        }
        let now = self.now_secs();
        let mut expires_at = Self::seconds_after(now, self.exchange_lifetime)?;
        // The key's expiry or cancellation, or for a re-exchange the presented token's
        // exp (itself capped by its key's): the new token never outlives it.
        let limit = principal.expires_at().map(|at| at.timestamp());
        if let Some(limit) = limit {
            expires_at = expires_at.min(limit);
            if expires_at <= now {
                return Err(JwtServiceError::InvalidRequest(
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
    /// [`JwtServiceError::InvalidRequest`] for an environment this service does not accept or an
    /// unrepresentable lifetime; [`JwtServiceError::NoSigningKey`].
    pub fn issue_session(&self, request: SessionRequest) -> Result<IssuedToken, JwtServiceError> {
        self.check_environment(&request.environment)?;
        let lifetime = match request.lifetime {
            Some(lifetime) if lifetime.is_zero() => {
                return Err(JwtServiceError::InvalidRequest(
                    "a session lifetime must be over zero".to_owned(),
                ));
            }
            Some(lifetime) => delta(lifetime).ok_or_else(|| {
                JwtServiceError::InvalidRequest("the lifetime is too long to represent".to_owned())
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

    /// Issues a JWT as a long-lived scoped API key, minted through the key service like
    /// any key and within the authority of whoever `keys` acts for (pass the
    /// [`KeyService`](keyroute_core::KeyService) itself to act as the application, or
    /// `keys.acting_as(&caller)`): the key service checks the request (authority,
    /// owner, environment, key type), builds the record, runs its `on_create_key`
    /// hook, then this service signs a token from the final record (id = `jti`,
    /// scopes, expiry, tenant), and the service stores it (hash = SHA-256 of the
    /// token, hint = first 8 and last 4 characters, `meta.format = jwt`) and tells its
    /// listeners. It appears in the owner's key list and is revoked with
    /// [`KeyService::revoke`](keyroute_core::KeyService::revoke). The token is
    /// returned once.
    ///
    /// # Errors
    /// [`JwtServiceError::Service`] for an unknown owner, a refusal of the authority
    /// rules, or an environment or key type the key service does not issue;
    /// [`JwtServiceError::InvalidRequest`] for an environment this service does not
    /// accept, a structured scope without a resource, or no expiry while the
    /// deny-list check is off; [`JwtServiceError::Store`]; [`JwtServiceError::NoSigningKey`].
    pub async fn issue_key<'k, S: ApiKeyStore + UserStore + 'k>(
        &self,
        keys: impl Into<Acting<'k, S>>,
        request: impl Into<JwtKeyRequest>,
    ) -> Result<IssuedJwtKey, JwtServiceError> {
        let JwtKeyRequest {
            key: mut request,
            scope_format,
        } = request.into();
        request
            .meta
            .insert(META_FORMAT.to_owned(), META_JWT.to_owned());
        if scope_format == crate::claims::ScopeFormat::Structured {
            request
                .meta
                .insert(META_SCOPE_FORMAT.to_owned(), META_STRUCTURED.to_owned());
        }
        let minter = JwtMinter {
            service: self,
            scope_format,
        };
        let issued = keys
            .into()
            .issue_key_with(request, &minter)
            .await
            .map_err(|e| match e {
                KeyServiceError::InvalidRequest(message) => {
                    JwtServiceError::InvalidRequest(message)
                }
                KeyServiceError::Store(e) => JwtServiceError::Store(e),
                KeyServiceError::Mint(cause) => match cause.downcast::<JwtServiceError>() {
                    Ok(error) => *error,
                    Err(cause) => JwtServiceError::Signing(cause),
                },
                other => JwtServiceError::Service(other),
            })?;
        Ok(IssuedJwtKey {
            key: issued.key,
            plaintext: issued.plaintext,
        })
    }

    /// Revokes one verified token (a logout): denies its `jti` until it expires, here
    /// at once and through the deny-list everywhere.
    ///
    /// # Errors
    /// [`JwtServiceError::Config`] when the service has no deny-list; [`JwtServiceError::Store`].
    pub async fn revoke_token(&self, token: &VerifiedToken) -> Result<(), JwtServiceError> {
        if !self.deny.has_list() {
            return Err(JwtServiceError::Config(
                "no deny-list is configured".to_owned(),
            ));
        }
        let until = token
            .expires_at
            .and_then(|at| at.checked_add_signed(self.leeway))
            .unwrap_or_else(|| {
                DateTime::from_timestamp(253_402_300_799, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
            });
        Ok(self.deny.deny(&token.jti, None, until).await?)
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
