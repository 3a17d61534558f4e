//! Who may do what with keys: the one set of rules every transport applies.
//!
//! Every management operation of the [`KeyService`](crate::KeyService) runs on behalf
//! of an [`Actor`]: the application's own code, a named operator (the `keyroute`
//! command), or a caller who authenticated with a key, a JWT or a session. HTTP routes
//! and the CLI only say who is asking; the rules are here, so no transport can forget
//! one. The rules, in one sentence each:
//!
//! - **Type.** A publishable key manages nothing.
//! - **Environment.** A caller acts only on keys of its own environment; an admin key's
//!   authority is bounded by its environment too.
//! - **Owner.** A caller manages its own user's keys; a key holding the admin scope
//!   manages any user's keys (of its environment). A credential of no user manages
//!   nothing unless it is such an admin key.
//! - **Tenant.** A caller with a tenant acts only on users and keys of that tenant.
//! - **Scopes.** A new, rolled or regenerated key never holds a scope the caller lacks,
//!   and a key may not revoke, roll or regenerate a key holding scopes beyond its own.
//!   A person's session may grant any scope but the all-granting ones (`admin`, `*`),
//!   so a session never obtains `admin`, by any route.
//! - **Expiry.** Nothing a key makes outlives it: a key caller's new keys expire no
//!   later than the caller (and get the caller's expiry when none is asked); a rolled
//!   or regenerated key keeps its old expiry, capped the same way.
//! - **Networks.** A key bound to allowed networks makes and changes keys only
//!   within them: its new keys inherit its networks when none are asked, and a
//!   range outside them is refused.
//! - **Updates.** An update is held to the rules a new key is: a key caller may
//!   change only keys holding no scope beyond its own, grants only scopes it holds,
//!   sets no expiry later than its own (nor none, if it has one) and no network
//!   outside its own.
//! - **Volume.** At most `[apikey] max_keys_per_user` working keys per user.
//!
//! A JWT carries the authority of the key it came from: its environment, scopes and
//! the key's own expiry ([`Principal::authority_expires_at`]), never more.

mod bounds;

use std::fmt;

use chrono::{DateTime, Utc};

use crate::model::ApiKey;
use crate::name::Environment;
use crate::principal::Principal;
use crate::scope::Scope;

pub(crate) use bounds::Bounds;

/// Who asks the key service to act.
#[derive(Clone)]
#[non_exhaustive]
pub enum Actor {
    /// The application's own code (a sign-up flow, a job, a test): any key of any
    /// user. Never use it for something a caller asked for; act as the caller.
    Application,
    /// A person operating keyroute directly (the `keyroute` command, an admin tool),
    /// named so the record can say who. Any key of any user.
    Operator(Operator),
    /// A caller who authenticated with a key, a JWT or a session: bounded by its
    /// environment, scopes, expiry, user and tenant.
    Caller(Principal),
}

impl fmt::Debug for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Application => f.write_str("Application"),
            Actor::Operator(operator) => f.debug_tuple("Operator").field(operator).finish(),
            Actor::Caller(principal) => f
                .debug_struct("Caller")
                .field("method", &principal.method())
                .field("key_id", &principal.key_id())
                .field("user_id", &principal.user_id())
                .field("environment", principal.environment())
                .finish_non_exhaustive(),
        }
    }
}

impl From<Principal> for Actor {
    fn from(principal: Principal) -> Self {
        Actor::Caller(principal)
    }
}

impl From<&Principal> for Actor {
    fn from(principal: &Principal) -> Self {
        Actor::Caller(principal.clone())
    }
}

impl From<Operator> for Actor {
    fn from(operator: Operator) -> Self {
        Actor::Operator(operator)
    }
}

impl Actor {
    /// Who this is in the audit trail: `key:<id>` for a key or a JWT exchanged from one,
    /// `user:<id>` for a person's session, `operator:<name>`, or `application`.
    pub fn audit_name(&self) -> String {
        match self {
            Actor::Application => "application".to_owned(),
            Actor::Operator(operator) => format!("operator:{}", operator.name()),
            Actor::Caller(principal) => match (principal.key_id(), principal.user_id()) {
                (Some(key), _) => format!("key:{key}"),
                (None, Some(user)) => format!("user:{user}"),
                (None, None) => "caller".to_owned(),
            },
        }
    }
}

/// The name of a person or tool operating keyroute directly, for the record
/// (`cli:alice`, `admin-console`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator(String);

impl Operator {
    /// An operator named `name`: 1 to 128 bytes without control characters.
    ///
    /// # Errors
    /// [`TextError`] when the name is empty, too long or has control characters.
    pub fn new(name: impl Into<String>) -> Result<Self, TextError> {
        let name = name.into();
        if name.is_empty() {
            return Err(TextError::Empty("operator name"));
        }
        check_text("operator name", &name, 128)?;
        Ok(Self(name))
    }

    /// An operator named `name` if that is a valid name, else `operator`: for tools
    /// that derive the name from their environment and must always have one.
    pub fn named_default(name: &str) -> Self {
        Self::new(name).unwrap_or_else(|_| Self("operator".to_owned()))
    }

    /// The operator's name.
    pub fn name(&self) -> &str {
        &self.0
    }
}

/// A caller was refused by the authority rules. Each variant has a stable
/// [`code`](Self::code) that every transport reports as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Denied {
    /// Publishable keys manage nothing.
    #[error("a publishable key cannot manage keys; use a secret key")]
    PublishableKey,
    /// The credential belongs to no user and holds no admin scope.
    #[error("this credential belongs to no user, so it has no keys to manage")]
    NoUser,
    /// A caller without the admin scope named another user.
    #[error("only a key with the admin scope manages another user's keys")]
    NotYourKeys,
    /// The target is of another environment than the caller.
    #[error(
        "a key of environment '{caller}' acts only on keys of environment '{caller}', not '{target}'"
    )]
    EnvironmentMismatch {
        /// The caller's environment.
        caller: Environment,
        /// The environment asked for.
        target: Environment,
    },
    /// The target belongs to another tenant than the caller.
    #[error("this caller acts only on the users and keys of its own tenant")]
    TenantMismatch,
    /// A scope beyond the caller's: asked for a new key, or held by the key to act on.
    #[error("the scope '{scope}' is beyond the caller's own scopes")]
    ScopeExceedsCaller {
        /// The first scope the caller lacks.
        scope: Scope,
    },
    /// The expiry asked for is later than the caller's own.
    #[error(
        "a key made by this caller must expire no later than the caller itself ({limit}); ask for an earlier expiry or none"
    )]
    ExpiryExceedsCaller {
        /// The caller's expiry.
        limit: DateTime<Utc>,
    },
    /// A network the caller's own key is not bound within: a key bound to networks
    /// makes and widens keys only within them.
    #[error(
        "this caller's key may be used only from its own allowed networks, so the keys it makes or changes must be bound within them; ask for ranges inside the caller's"
    )]
    NetworkExceedsCaller,
    /// A caller with a rate limit may make or change keys only with that limit (or a
    /// stricter one of the same name and scope): a key never lifts its own limits by
    /// making another key.
    #[error(
        "this caller's key is limited by '{limit}', so the keys it makes or changes must carry that limit, no higher; ask for a rate and burst no larger than the caller's"
    )]
    LimitExceedsCaller {
        /// The caller's limit that the key would exceed.
        limit: String,
    },
    /// A caller with credits may make or change keys only with credits no larger
    /// than its own balance and refill.
    #[error(
        "this caller's key is metered, so the keys it makes or changes must have credits no larger than its own; set `credits` (and `refill`) within the caller's"
    )]
    CreditsExceedCaller,
    /// Only the application and operators may do this (importing keys).
    #[error("only the application or an operator may import keys; use `keyroute keys import`")]
    OperatorsOnly,
    /// The user already has the most working keys allowed.
    #[error(
        "the user already has {limit} working keys; revoke some, or raise [apikey] max_keys_per_user"
    )]
    TooManyKeys {
        /// `[apikey] max_keys_per_user`.
        limit: usize,
    },
}

impl Denied {
    /// The stable code of this refusal, the same on every transport.
    pub fn code(&self) -> &'static str {
        match self {
            Denied::PublishableKey => "publishable_key",
            Denied::NoUser => "no_user",
            Denied::NotYourKeys => "not_your_keys",
            Denied::EnvironmentMismatch { .. } => "environment_mismatch",
            Denied::TenantMismatch => "tenant_mismatch",
            Denied::ScopeExceedsCaller { .. } => "scope_exceeds_caller",
            Denied::ExpiryExceedsCaller { .. } => "expiry_exceeds_caller",
            Denied::TooManyKeys { .. } => "too_many_keys",
            Denied::NetworkExceedsCaller => "network_exceeds_caller",
            Denied::OperatorsOnly => "operators_only",
            Denied::LimitExceedsCaller { .. } => "limit_exceeds_caller",
            Denied::CreditsExceedCaller => "credits_exceed_caller",
        }
    }
}

/// A name, note or reference that cannot be stored. The value itself is never
/// repeated: it may be what an attacker wants printed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TextError {
    /// The text has a control character (escape sequences, newlines).
    #[error("the {0} has control characters; use printable text")]
    ControlCharacters(&'static str),
    /// The text is too long.
    #[error("the {field} is over {max} bytes")]
    TooLong {
        /// Which text.
        field: &'static str,
        /// The most bytes allowed.
        max: usize,
    },
    /// The text is empty where a value is required.
    #[error("the {0} is empty")]
    Empty(&'static str),
}

/// The most bytes of a key's name, notes or reference.
pub const MAX_KEY_TEXT: usize = 1024;

/// Checks free text a record keeps and tools print: at most `max` bytes, no control
/// characters.
pub(crate) fn check_text(field: &'static str, text: &str, max: usize) -> Result<(), TextError> {
    if text.len() > max {
        return Err(TextError::TooLong { field, max });
    }
    if text.chars().any(char::is_control) {
        return Err(TextError::ControlCharacters(field));
    }
    Ok(())
}

/// Checks the free text of a key record (name, notes, reference id).
pub(crate) fn check_key_texts(key: &ApiKey) -> Result<(), TextError> {
    for (field, text) in [
        ("key name", &key.name),
        ("key notes", &key.notes),
        ("key reference id", &key.ref_id),
    ] {
        if let Some(text) = text {
            check_text(field, text, MAX_KEY_TEXT)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text with control characters or over the limit is refused without echoing it.
    #[test]
    fn texts() {
        assert!(check_text("key name", "ci deploy", MAX_KEY_TEXT).is_ok());
        let evil = "\u{1b}[2J\nfake row";
        let error = check_text("key name", evil, MAX_KEY_TEXT).unwrap_err();
        assert!(!error.to_string().contains("fake row"));
        assert!(check_text("key name", &"x".repeat(1025), MAX_KEY_TEXT).is_err());
        assert!(Operator::new("").is_err());
    }
}
