//! The claims keyroute writes and reads, and the scope formats.
//!
//! | claim | meaning | required |
//! |---|---|---|
//! | `jti` | random token id; for a JWT issued as a key, the key record's id | always |
//! | `kind` | `exchange`, `key` or `session` | always |
//! | `env` | the environment: which database the caller's requests reach | always |
//! | `exp` | expiry (seconds since the epoch) | except for keys issued without expiry |
//! | `iat`, `nbf` | issued at, not before | written always, checked when present |
//! | `iss`, `aud` | issuer and audience | when configured |
//! | `sub` | the user id | for sessions |
//! | `key_type`, `key_id`, `tenant` | the key's type, the key a token came from or stands for, the tenant | no |
//! | `key_exp` | in exchanged tokens: the latest time anything derived from the key may live (its expiry or cancellation, and the exp of a token it was re-exchanged from) | no |
//! | `scopes` | `["users:read"]` or `{"users": {"actions": ["read"]}}` | no |
//!
//! Incoming claims are read leniently: a claim of the wrong JSON type does not fail
//! the whole parse but is kept as invalid, so the verifier can say which
//! claim was wrong ([`JwtError::InvalidClaim`](keyroute_core::JwtError::InvalidClaim))
//! rather than only that something was. Strings borrow from the decoded payload.

mod incoming;

use std::collections::BTreeMap;
use std::fmt;

use keyroute_core::{AuthMethod, Scope, Scopes};
use serde::Serialize;

pub(crate) use incoming::{Audience, IncomingClaims, IncomingHeader, Scalar};

/// What a token is for; its `kind` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenKind {
    /// A short-lived token an API key (or a session) was exchanged for.
    Exchange,
    /// A long-lived scoped token issued as an API key and recorded in the store.
    Key,
    /// A person's session token.
    Session,
}

impl TokenKind {
    /// The `kind` claim's value.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Exchange => "exchange",
            TokenKind::Key => "key",
            TokenKind::Session => "session",
        }
    }

    /// The kind a `kind` claim names.
    pub fn from_claim(value: &str) -> Option<Self> {
        match value {
            "exchange" => Some(TokenKind::Exchange),
            "key" => Some(TokenKind::Key),
            "session" => Some(TokenKind::Session),
            _ => None,
        }
    }

    /// How a caller presenting this kind of token authenticated.
    pub fn method(self) -> AuthMethod {
        match self {
            TokenKind::Exchange => AuthMethod::KeyJwt,
            TokenKind::Key => AuthMethod::ScopedJwt,
            TokenKind::Session => AuthMethod::UserSession,
        }
    }
}

impl fmt::Display for TokenKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How scopes are written into a token. Both are read back the same.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScopeFormat {
    /// A flat array in keyroute's own syntax: `["users:read", "users:create"]`.
    #[default]
    Flat,
    /// Grouped by resource: `{"users": {"actions": ["create", "read"]}}`, which means
    /// `users:create` and `users:read`. Every scope must have a resource and an action.
    Structured,
}

/// The claims of a token being issued.
#[derive(Debug, Serialize)]
pub(crate) struct OutgoingClaims<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) sub: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) aud: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) exp: Option<i64>,
    pub(crate) nbf: i64,
    pub(crate) iat: i64,
    pub(crate) jti: &'a str,
    pub(crate) kind: &'static str,
    pub(crate) env: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) key_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) key_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tenant: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) key_exp: Option<i64>,
    pub(crate) scopes: OutgoingScopes<'a>,
}

/// Scopes as written: flat or grouped by resource.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub(crate) enum OutgoingScopes<'a> {
    Flat(Vec<&'a str>),
    Structured(BTreeMap<&'a str, Actions<'a>>),
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct Actions<'a> {
    actions: Vec<&'a str>,
}

impl<'a> OutgoingScopes<'a> {
    /// Writes `scopes` in `format`.
    ///
    /// # Errors
    /// The first scope that has no resource, which the structured format cannot hold.
    pub(crate) fn new(scopes: &'a Scopes, format: ScopeFormat) -> Result<Self, &'a str> {
        match format {
            ScopeFormat::Flat => Ok(OutgoingScopes::Flat(
                scopes.iter().map(Scope::as_str).collect(),
            )),
            ScopeFormat::Structured => {
                let mut by_resource: BTreeMap<&str, Actions<'_>> = BTreeMap::new();
                for scope in scopes.iter() {
                    let (resource, action) =
                        scope.as_str().rsplit_once(':').ok_or(scope.as_str())?;
                    by_resource
                        .entry(resource)
                        .or_default()
                        .actions
                        .push(action);
                }
                Ok(OutgoingScopes::Structured(by_resource))
            }
        }
    }
}

/// A claim as read: of the expected JSON type, or not.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Claim<T> {
    Valid(T),
    Invalid,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;

    /// Writing structured scopes groups actions by resource and refuses scopes with no resource.
    #[test]
    fn structured_output() {
        let scopes = Scopes::parse(["users:read", "users:create", "orders:items:*"]).unwrap();
        let out = OutgoingScopes::new(&scopes, ScopeFormat::Structured).unwrap();
        assert_eq!(
            serde_json::to_string(&out).unwrap(),
            r#"{"orders:items":{"actions":["*"]},"users":{"actions":["create","read"]}}"#
        );
        let admin = Scopes::parse(["admin"]).unwrap();
        assert_eq!(
            OutgoingScopes::new(&admin, ScopeFormat::Structured).unwrap_err(),
            "admin"
        );
    }
}
