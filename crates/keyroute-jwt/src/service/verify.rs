//! Verifying: the shape and header, the pinned algorithm and signature, the claims,
//! and the deny-list.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::DateTime;
use keyroute_core::{
    AuthError, Environment, JwtError, KeyId, KeyType, Principal, Scopes, Tenant, UserId,
};

use super::{JwtService, VerifiedToken};
use crate::claims::{Audience, Claim, IncomingClaims, IncomingHeader, Scalar, TokenKind};
use crate::key::JwtAlgorithm;

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

impl JwtService {
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
        let ring = self.ring();
        let key = match &header.kid {
            Some(Scalar::Str(kid)) => ring.find(kid).ok_or(JwtError::UnknownKeyId)?,
            // No `kid` (RFC 7515 makes it optional): the key is known only when exactly
            // one key of the header's algorithm is configured.
            None => ring.sole_key_for(algorithm).ok_or(JwtError::MissingKeyId)?,
            Some(_) => return Err(JwtError::UnknownKeyId),
        };
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

        // The registered claims first (RFC 7519 §4.1), so any standard JWT gets the
        // standard answer (an expired one is Expired), and then keyroute's own.
        let (expires_at, key_exp) = self.check_registered_claims(claims)?;

        let kind = TokenKind::from_claim(required_string(&claims.kind, "kind")?)
            .ok_or(InvalidClaim("kind"))?;
        let jti = required_string(&claims.jti, "jti")?;
        let jti = KeyId::new(jti).map_err(|_| InvalidClaim("jti"))?;
        if expires_at.is_none() && kind != TokenKind::Key {
            // Only a JWT issued as a key may live without expiry.
            return Err(MissingClaim("exp"));
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
            .with_scopes(scopes)
            .with_expires_at(
                [expires_at, key_exp]
                    .into_iter()
                    .flatten()
                    .min()
                    .and_then(|at| DateTime::from_timestamp(at, 0)),
            );
        // An exchanged token acts with its key's authority: the key's expiry, which
        // it carries as `key_exp` (absent for a key that does not expire), not the
        // token's own short one.
        let principal = if kind == TokenKind::Exchange {
            principal
                .with_authority_expires_at(key_exp.and_then(|at| DateTime::from_timestamp(at, 0)))
        } else {
            principal
        };
        Ok(VerifiedToken {
            principal,
            kind,
            jti: jti.as_str().to_owned(),
            expires_at: expires_at.and_then(|at| DateTime::from_timestamp(at, 0)),
        })
    }

    /// Checks the registered claims (RFC 7519 §4.1): the times, against the injected
    /// clock in whole seconds with the leeway, then the issuer and audience. Gives the
    /// token's `exp` and the `key_exp` it inherited from its key.
    fn check_registered_claims(
        &self,
        claims: &IncomingClaims<'_>,
    ) -> Result<(Option<i64>, Option<i64>), JwtError> {
        use JwtError::{InvalidClaim, MissingClaim};

        let now = self.now_secs();
        let expires_at = date_claim(&claims.exp, "exp")?;
        if let Some(exp) = expires_at
            && now >= exp.saturating_add(self.leeway_secs)
        {
            return Err(JwtError::Expired);
        }
        // The limit an exchanged token inherited from its key; its exp is never later.
        let key_exp = date_claim(&claims.key_exp, "key_exp")?;
        if let Some(limit) = key_exp
            && now >= limit.saturating_add(self.leeway_secs)
        {
            return Err(JwtError::Expired);
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
        Ok((expires_at, key_exp))
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
        if let (Some(known), Some(key_id)) = (&self.key_environments, verified.principal.key_id()) {
            known
                .check(key_id, verified.principal.environment())
                .await?;
        }
        Ok(verified)
    }
}
