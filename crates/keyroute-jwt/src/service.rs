//! [`JwtService`]: issues exchange, key and session tokens, and verifies them into the
//! same [`Principal`] an API key gives.
//!
//! Verification runs the cheap, certain checks first and the store last: the length
//! cap, the shape, the header (algorithm supported, `kid` known, algorithm pinned to
//! that key), the signature, the claims (times against the injected clock, issuer,
//! audience, environment, ids, scopes), and only then the deny-list, through its cache.

use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use keyroute_core::{
    ApiKey, AuthError, AuthMethod, Clock, DenyList, Environment, JwtError, KeyHash, KeyId,
    KeyRequest, KeyService, KeyType, PlaintextKey, Principal, Scopes, Store, SystemClock, Tenant,
    TokenVerifier, UserId,
};

use crate::claims::{
    Audience, Claim, IncomingClaims, IncomingHeader, OutgoingClaims, OutgoingScopes, Scalar,
    ScopeFormat, TokenKind,
};
use crate::config::{JwtConfig, delta};
use crate::deny::{DenyState, RevocationListener};
use crate::error::Error;
use crate::key::{JwtAlgorithm, KeyRing, SigningKey, VerificationKey};
use crate::{META_FORMAT, META_JWT};

/// A token just issued (exchange or session). The token is shown once: keep it in
/// the [`PlaintextKey`] until it is sent.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IssuedToken {
    /// The JWT.
    pub token: PlaintextKey,
    /// Its `jti`.
    pub jti: String,
    /// What it is for.
    pub kind: TokenKind,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
    /// The `kid` of the key that signed it.
    pub kid: String,
}

impl IssuedToken {
    /// A token signed with `kid`, expiring at `expires_at` (Unix seconds).
    fn new(token: String, kid: String, jti: &KeyId, kind: TokenKind, expires_at: i64) -> Self {
        Self {
            token: PlaintextKey::new(token),
            jti: jti.as_str().to_owned(),
            kind,
            expires_at: DateTime::from_timestamp(expires_at, 0).unwrap_or(DateTime::<Utc>::MAX_UTC),
            kid,
        }
    }
}

/// A JWT issued as an API key: the stored record and the token, shown once.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IssuedJwtKey {
    /// The stored record: its id is the token's `jti`, its hash the token's SHA-256.
    pub key: ApiKey,
    /// The JWT. Show it to its owner once; only its hash is stored.
    pub plaintext: PlaintextKey,
}

/// A verified token: the caller and the facts the deny-list and a logout need.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VerifiedToken {
    /// The caller, as an API key would give it.
    pub principal: Principal,
    /// What the token is for.
    pub kind: TokenKind,
    /// The token's `jti`.
    pub jti: String,
    /// When it expires; `None` for a key issued without expiry.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A request for a session token.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SessionRequest {
    /// The person.
    pub user_id: UserId,
    /// The environment their requests reach. Default `live`.
    pub environment: Environment,
    /// Their tenant.
    pub tenant: Option<Tenant>,
    /// Lifetime; default the configured `session_lifetime`.
    pub lifetime: Option<Duration>,
}

impl SessionRequest {
    /// A session for `user_id` in the live environment.
    pub fn new(user_id: UserId) -> Self {
        Self {
            user_id,
            environment: Environment::LIVE,
            tenant: None,
            lifetime: None,
        }
    }

    /// Sets the environment.
    pub fn in_environment(mut self, environment: Environment) -> Self {
        self.environment = environment;
        self
    }

    /// Sets the tenant.
    pub fn with_tenant(mut self, tenant: Tenant) -> Self {
        self.tenant = Some(tenant);
        self
    }

    /// Sets the lifetime.
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = Some(lifetime);
        self
    }
}

/// A request for a JWT issued as an API key: the key's details, as for any key, and how
/// its scopes are written into the token. A plain [`KeyRequest`] converts into one
/// with flat scopes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JwtKeyRequest {
    /// The key: type, environment, owner, tenant, name, scopes, lifetime (`None` for a
    /// key that does not expire, refused when the deny-list check is off, as nothing
    /// could then revoke it), notes, ref id, meta (`format = jwt` is added).
    pub key: KeyRequest,
    /// How the scopes are written into the token.
    pub scope_format: ScopeFormat,
}

impl JwtKeyRequest {
    /// A request for the key `key` describes, with flat scopes.
    pub fn new(key: KeyRequest) -> Self {
        Self {
            key,
            scope_format: ScopeFormat::Flat,
        }
    }

    /// Sets how scopes are written.
    pub fn with_scope_format(mut self, format: ScopeFormat) -> Self {
        self.scope_format = format;
        self
    }
}

impl From<KeyRequest> for JwtKeyRequest {
    fn from(key: KeyRequest) -> Self {
        Self::new(key)
    }
}

/// Builds a [`JwtService`]: configuration, keys, deny-list, clock.
pub struct JwtServiceBuilder {
    config: JwtConfig,
    signing: Vec<SigningKey>,
    verification: Vec<VerificationKey>,
    deny_list: Option<Arc<dyn DenyList>>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for JwtServiceBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtServiceBuilder")
            .field("config", &self.config)
            .field("signing", &self.signing)
            .field("verification", &self.verification)
            .field("deny_list", &self.deny_list.as_ref().map(|_| "configured"))
            .field("clock", &self.clock)
            .finish()
    }
}

impl JwtServiceBuilder {
    /// Adds a signing key. Added in order of age: the last one signs new tokens, the
    /// earlier ones still verify the tokens they signed.
    pub fn signing_key(mut self, key: SigningKey) -> Self {
        self.signing.push(key);
        self
    }

    /// Adds a key that only verifies (a public key of a signer elsewhere, or a
    /// retired key whose tokens are still live).
    pub fn verification_key(mut self, key: VerificationKey) -> Self {
        self.verification.push(key);
        self
    }

    /// The deny-list to check and to write revocations to (the store). Required while
    /// `check_deny_list` is on.
    pub fn deny_list(mut self, deny_list: Arc<dyn DenyList>) -> Self {
        self.deny_list = Some(deny_list);
        self
    }

    /// Uses `clock` for issuing and checking times (tests move a `ManualClock`).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Builds the service.
    ///
    /// # Errors
    /// [`Error::Config`] for invalid options, no keys at all, or the deny-list check
    /// on with no deny-list; [`Error::DuplicateKeyId`] when two keys share a `kid`.
    pub fn build(self) -> Result<JwtService, Error> {
        self.config.validate()?;
        if self.config.check_deny_list && self.deny_list.is_none() {
            return Err(Error::Config(
                "check_deny_list is on: give the service a deny-list (the store), or turn the check off"
                    .to_owned(),
            ));
        }
        let mut ring = KeyRing::default();
        for key in self.verification {
            ring.add_verification(key)?;
        }
        for key in self.signing {
            ring.rotate(key)?;
        }
        if ring.is_empty() {
            return Err(Error::Config(
                "no keys: add a signing or a verification key".to_owned(),
            ));
        }
        // validate() has checked that every duration fits.
        let to_delta = |d: Duration| delta(d).unwrap_or(TimeDelta::MAX);
        let leeway = to_delta(self.config.leeway);
        let deny = Arc::new(DenyState::new(
            self.deny_list,
            to_delta(self.config.deny_cache_ttl),
            self.config.deny_cache_capacity,
            self.clock.clone(),
        ));
        Ok(JwtService {
            exchange_lifetime: to_delta(self.config.exchange_lifetime),
            session_lifetime: to_delta(self.config.session_lifetime),
            leeway,
            leeway_secs: self.config.leeway_secs(),
            config: self.config,
            keys: RwLock::new(Arc::new(ring)),
            deny,
            clock: self.clock,
        })
    }
}

/// Issues and verifies keyroute's JWTs. Share it behind an `Arc`; it is the
/// [`TokenVerifier`] the router takes (`Arc<dyn TokenVerifier>`).
pub struct JwtService {
    config: JwtConfig,
    /// Replaced whole on rotation; readers clone the `Arc` and never wait on a writer
    /// for longer than that clone.
    keys: RwLock<Arc<KeyRing>>,
    deny: Arc<DenyState>,
    clock: Arc<dyn Clock>,
    exchange_lifetime: TimeDelta,
    session_lifetime: TimeDelta,
    leeway: TimeDelta,
    leeway_secs: i64,
}

impl fmt::Debug for JwtService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtService")
            .field("config", &self.config)
            .field("keys", &self.ring())
            .field("deny", &self.deny)
            .field("clock", &self.clock)
            .finish()
    }
}

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

fn decode_part(part: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed)
}

/// Decodes a header or payload: base64url without padding, holding a JSON object.
fn decode_object(part: &str) -> Result<Vec<u8>, JwtError> {
    let json = decode_part(part)?;
    match json.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(json),
        _ => Err(JwtError::Malformed),
    }
}

fn string_claim<'c>(
    claim: &'c Option<Scalar<'_>>,
    name: &'static str,
) -> Result<Option<&'c str>, JwtError> {
    match claim.as_ref().map(Scalar::as_str) {
        None => Ok(None),
        Some(Claim::Valid(s)) => Ok(Some(s)),
        Some(Claim::Invalid) => Err(JwtError::InvalidClaim(name)),
    }
}

fn required_string<'c>(
    claim: &'c Option<Scalar<'_>>,
    name: &'static str,
) -> Result<&'c str, JwtError> {
    string_claim(claim, name)?.ok_or(JwtError::MissingClaim(name))
}

fn date_claim(claim: &Option<Scalar<'_>>, name: &'static str) -> Result<Option<i64>, JwtError> {
    match claim.as_ref().map(Scalar::as_seconds) {
        None => Ok(None),
        Some(Claim::Valid(s)) => Ok(Some(s)),
        Some(Claim::Invalid) => Err(JwtError::InvalidClaim(name)),
    }
}

/// Parses an optional string claim into a validated name or id.
fn typed_claim<T, E>(
    claim: &Option<Scalar<'_>>,
    name: &'static str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<Option<T>, JwtError> {
    string_claim(claim, name)?
        .map(|s| parse(s).map_err(|_| JwtError::InvalidClaim(name)))
        .transpose()
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
}

impl JwtService {
    /// Starts building a service with `config`.
    pub fn builder(config: JwtConfig) -> JwtServiceBuilder {
        JwtServiceBuilder {
            config,
            signing: Vec::new(),
            verification: Vec::new(),
            deny_list: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &JwtConfig {
        &self.config
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The listener to attach to the [`KeyService`] (`with_listener`), so revoked and
    /// regenerated keys are denied at once here and through the deny-list everywhere.
    pub fn revocation_listener(&self) -> Arc<RevocationListener> {
        let window = self
            .exchange_lifetime
            .checked_add(&self.leeway)
            .unwrap_or(TimeDelta::MAX);
        Arc::new(RevocationListener::new(
            self.deny.clone(),
            window,
            self.leeway,
        ))
    }

    fn ring(&self) -> Arc<KeyRing> {
        // A poisoned lock still holds a complete ring: writers swap the Arc in one step.
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn update_ring(
        &self,
        change: impl FnOnce(&mut KeyRing) -> Result<bool, Error>,
    ) -> Result<bool, Error> {
        let mut guard = self.keys.write().unwrap_or_else(PoisonError::into_inner);
        let mut ring = KeyRing::clone(&guard);
        let changed = change(&mut ring)?;
        *guard = Arc::new(ring);
        Ok(changed)
    }

    /// Makes `key` the signing key. The previous one keeps verifying its tokens until
    /// it is removed with [`remove_key`](Self::remove_key).
    ///
    /// # Errors
    /// [`Error::DuplicateKeyId`] when a key with this `kid` is already known.
    pub fn rotate(&self, key: SigningKey) -> Result<(), Error> {
        self.update_ring(|ring| ring.rotate(key).map(|()| true))
            .map(drop)
    }

    /// Adds a key that only verifies.
    ///
    /// # Errors
    /// [`Error::DuplicateKeyId`] when a key with this `kid` is already known.
    pub fn add_verification_key(&self, key: VerificationKey) -> Result<(), Error> {
        self.update_ring(|ring| ring.add_verification(key).map(|()| true))
            .map(drop)
    }

    /// Stops accepting tokens signed by the key `kid`. Returns whether it was known.
    ///
    /// # Errors
    /// [`Error::Config`] when `kid` is the current signing key.
    pub fn remove_key(&self, kid: &str) -> Result<bool, Error> {
        self.update_ring(|ring| ring.remove(kid))
    }

    /// The `kid`s of every key that verifies, oldest first.
    pub fn key_ids(&self) -> Vec<String> {
        self.ring().kids()
    }

    /// The `kid` of the key that signs new tokens.
    pub fn signing_key_id(&self) -> Option<String> {
        self.ring().signing().map(|k| k.kid().to_owned())
    }

    /// Now, in whole seconds (as NumericDates are).
    fn now_secs(&self) -> i64 {
        self.clock.now().timestamp()
    }

    fn check_environment(&self, environment: &Environment) -> Result<(), Error> {
        if self.config.environments.contains(environment) {
            Ok(())
        } else {
            Err(Error::InvalidRequest(format!(
                "environment '{environment}' is not in this service's `environments`; its tokens would be refused"
            )))
        }
    }

    fn seconds_after(from: i64, lifetime: TimeDelta) -> Result<i64, Error> {
        from.checked_add(lifetime.num_seconds())
            .filter(|at| DateTime::from_timestamp(*at, 0).is_some())
            .ok_or_else(|| {
                Error::InvalidRequest("the lifetime is too long to represent".to_owned())
            })
    }

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
            scopes: draft.scopes,
        };
        Ok((sign(key, &claims)?, key.kid().to_owned()))
    }

    /// Exchanges an authenticated caller for a short-lived token (`exchange_lifetime`,
    /// capped at the key's own expiry or pending cancellation) carrying its
    /// environment, key type, key id, user, tenant and scopes, so routing it needs no
    /// I/O. A caller holding a session gets a session token instead.
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
        if let Some(key) = principal.api_key() {
            for limit in [key.expires_at, key.cancelled_at].into_iter().flatten() {
                expires_at = expires_at.min(limit.timestamp());
            }
            if expires_at <= now {
                return Err(Error::InvalidRequest(
                    "the key has expired or was revoked".to_owned(),
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

    /// Verifies everything but revocation: shape, header, pinned algorithm, signature,
    /// times, issuer, audience and claims. No I/O; [`verify_token`](Self::verify_token)
    /// adds the deny-list check.
    ///
    /// # Errors
    /// The [`JwtError`] of the first failed check.
    pub fn decode(&self, token: &str) -> Result<VerifiedToken, JwtError> {
        let max = self.config.max_token_bytes;
        if token.len() > max {
            return Err(JwtError::TooLong {
                len: token.len(),
                max,
            });
        }
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let signed = token
            .get(..header.len() + 1 + payload.len())
            .ok_or(JwtError::Malformed)?;

        let header_json = decode_object(header)?;
        let header: IncomingHeader<'_> =
            serde_json::from_slice(&header_json).map_err(|_| JwtError::Malformed)?;
        if header.crit.is_some() {
            // RFC 7515 §4.1.11: extensions we do not understand must be refused.
            return Err(JwtError::Malformed);
        }
        let algorithm = match &header.alg {
            Some(Scalar::Str(name)) => {
                JwtAlgorithm::from_name(name).ok_or(JwtError::UnsupportedAlgorithm)?
            }
            _ => return Err(JwtError::UnsupportedAlgorithm),
        };
        let Some(Scalar::Str(kid)) = &header.kid else {
            return Err(JwtError::UnknownKeyId);
        };
        let ring = self.ring();
        let key = ring.find(kid).ok_or(JwtError::UnknownKeyId)?;
        // The pin: the key decides the algorithm; the header may only agree with it.
        if key.algorithm() != algorithm {
            return Err(JwtError::AlgorithmMismatch);
        }
        if decode_part(signature)?.len() != key.signature_len() {
            return Err(JwtError::Malformed);
        }
        let verified = jsonwebtoken::crypto::verify(
            signature,
            signed.as_bytes(),
            key.decoding(),
            algorithm.jwt(),
        );
        if !matches!(verified, Ok(true)) {
            return Err(JwtError::BadSignature);
        }
        drop(ring);

        let payload_json = decode_object(payload)?;
        let claims: IncomingClaims<'_> =
            serde_json::from_slice(&payload_json).map_err(|_| JwtError::Malformed)?;
        self.check_claims(&claims)
    }

    fn check_claims(&self, claims: &IncomingClaims<'_>) -> Result<VerifiedToken, JwtError> {
        use JwtError::{InvalidClaim, MissingClaim};

        let kind = TokenKind::from_claim(required_string(&claims.kind, "kind")?)
            .ok_or(InvalidClaim("kind"))?;
        let jti = required_string(&claims.jti, "jti")?;
        let jti = KeyId::new(jti).map_err(|_| InvalidClaim("jti"))?;

        // Times, against the injected clock, in whole seconds with the leeway.
        let now = self.now_secs();
        let expires_at = date_claim(&claims.exp, "exp")?;
        match expires_at {
            Some(exp) if now >= exp.saturating_add(self.leeway_secs) => {
                return Err(JwtError::Expired);
            }
            None if kind != TokenKind::Key => return Err(MissingClaim("exp")),
            _ => {}
        }
        if let Some(nbf) = date_claim(&claims.nbf, "nbf")?
            && now.saturating_add(self.leeway_secs) < nbf
        {
            return Err(JwtError::NotYetValid);
        }
        date_claim(&claims.iat, "iat")?;

        if let Some(expected) = &self.config.issuer {
            match string_claim(&claims.iss, "iss")? {
                None => return Err(MissingClaim("iss")),
                Some(iss) if iss != expected => return Err(JwtError::WrongIssuer),
                Some(_) => {}
            }
        }
        match (&self.config.audience, &claims.aud) {
            (_, Some(Audience(Claim::Invalid))) => return Err(InvalidClaim("aud")),
            (Some(_), None) => return Err(MissingClaim("aud")),
            (Some(expected), Some(Audience(Claim::Valid(names)))) => {
                if !names.iter().any(|name| name == expected) {
                    return Err(JwtError::WrongAudience);
                }
            }
            // RFC 7519 §4.1.3: a token for an audience we are not is refused.
            (None, Some(_)) => return Err(JwtError::WrongAudience),
            (None, None) => {}
        }

        let environment = Environment::new(required_string(&claims.env, "env")?)
            .map_err(|_| InvalidClaim("env"))?;
        if !self.config.environments.contains(&environment) {
            return Err(InvalidClaim("env"));
        }
        let user_id = typed_claim(&claims.sub, "sub", |s| UserId::new(s))?;
        if kind == TokenKind::Session && user_id.is_none() {
            return Err(MissingClaim("sub"));
        }
        let key_type = typed_claim(&claims.key_type, "key_type", KeyType::new)?;
        let tenant = typed_claim(&claims.tenant, "tenant", Tenant::new)?;
        let mut key_id = typed_claim(&claims.key_id, "key_id", |s| KeyId::new(s))?;
        if kind == TokenKind::Key && key_id.is_none() {
            // A JWT issued as a key stands for the key record whose id is its jti.
            key_id = Some(jti.clone());
        }
        let scopes = match &claims.scopes {
            None => Scopes::none(),
            Some(scopes) => scopes.to_scopes().ok_or(InvalidClaim("scopes"))?,
        };

        let principal = Principal::from_claims(kind.method(), environment)
            .with_key_id(key_id)
            .with_key_type(key_type)
            .with_user_id(user_id)
            .with_tenant(tenant)
            .with_scopes(scopes);
        Ok(VerifiedToken {
            principal,
            kind,
            jti: jti.as_str().to_owned(),
            expires_at: expires_at.and_then(|at| DateTime::from_timestamp(at, 0)),
        })
    }

    /// Verifies a token completely: [`decode`](Self::decode), then the deny-list
    /// (when `check_deny_list` is on) for the token's `jti` and its `key_id`.
    ///
    /// # Errors
    /// [`AuthError::Jwt`] naming the failed check ([`JwtError::Revoked`] for a denied
    /// token or key); [`AuthError::Store`] when the deny-list cannot be read.
    pub async fn verify_token(&self, token: &str) -> Result<VerifiedToken, AuthError> {
        let verified = self.decode(token)?;
        if self.config.check_deny_list {
            let key_id = verified
                .principal
                .key_id()
                .map(KeyId::as_str)
                .filter(|id| *id != verified.jti);
            let jti = verified.jti.as_str();
            let ids: &[&str] = match key_id {
                Some(key_id) => &[jti, key_id],
                None => &[jti],
            };
            if self.deny.is_denied(ids, self.clock.now()).await? {
                return Err(JwtError::Revoked.into());
            }
        }
        Ok(verified)
    }
}

#[async_trait]
impl TokenVerifier for JwtService {
    async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        self.verify_token(token).await.map(|v| v.principal)
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
