//! The audit trail: who changed which key, how, when and from where.
//!
//! Every change the [`KeyService`](crate::KeyService) makes to keys and users hands the
//! store an [`AuditRecord`] with the write, and the store keeps it in the same
//! transaction as the change: a change is recorded exactly when it committed. Records
//! are appended, never changed, and removed only by the retention purge
//! ([`AuditLog::purge_audit`]). They name ids, scopes, times and addresses, never a
//! secret or a hash.
//!
//! Who acted is [`Actor::audit_name`](crate::Actor::audit_name): `key:<id>` for a
//! key or a JWT exchanged from one, `user:<id>` for a person's session,
//! `operator:<name>` for a person at a tool (the `keyroute` command), `application`
//! for the application's own code. Where from and which request come from the
//! transport ([`AuditContext`]).

use std::net::IpAddr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::StoreResult;
use crate::ids::{KeyId, UserId};
use crate::name::Environment;

/// The most records one [`AuditLog::audit_records`] page holds.
pub const MAX_AUDIT_PAGE: usize = 1000;

/// What was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditAction {
    /// A user was registered with their first keys.
    UserRegistered,
    /// A key was issued.
    KeyIssued,
    /// A key was revoked.
    KeyRevoked,
    /// A key was rolled: replaced by a new one.
    KeyRolled,
    /// A user's keys in one environment were regenerated.
    KeysRegenerated,
    /// A key's settings were changed.
    KeyUpdated,
    /// Keys were made for users who had none.
    KeysBackfilled,
    /// A key handed out under an earlier scheme was imported.
    KeyImported,
    /// A key was reported as exposed (and revoked, or only reported).
    KeyLeaked,
}

impl AuditAction {
    /// Every action.
    pub const ALL: [AuditAction; 9] = [
        AuditAction::UserRegistered,
        AuditAction::KeyIssued,
        AuditAction::KeyRevoked,
        AuditAction::KeyRolled,
        AuditAction::KeysRegenerated,
        AuditAction::KeyUpdated,
        AuditAction::KeysBackfilled,
        AuditAction::KeyImported,
        AuditAction::KeyLeaked,
    ];

    /// The action's stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::UserRegistered => "user_registered",
            AuditAction::KeyIssued => "key_issued",
            AuditAction::KeyRevoked => "key_revoked",
            AuditAction::KeyRolled => "key_rolled",
            AuditAction::KeysRegenerated => "keys_regenerated",
            AuditAction::KeyUpdated => "key_updated",
            AuditAction::KeysBackfilled => "keys_backfilled",
            AuditAction::KeyImported => "key_imported",
            AuditAction::KeyLeaked => "key_leaked",
        }
    }

    /// The action named `name`, as [`as_str`](Self::as_str) writes it.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

/// One entry of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditRecord {
    /// Its place in the trail, given by the store (0 before it is stored); later
    /// records have larger ids.
    pub id: u64,
    /// When the change was made.
    pub at: DateTime<Utc>,
    /// Who made it ([`Actor::audit_name`](crate::Actor::audit_name)).
    pub actor: String,
    /// What was done.
    pub action: AuditAction,
    /// The key changed, if one.
    pub key_id: Option<KeyId>,
    /// The environment of the keys changed, when they are of one.
    pub environment: Option<Environment>,
    /// The user whose keys changed, if known.
    pub user_id: Option<UserId>,
    /// What changed: a JSON object of ids, names, scopes, times (never a secret or a
    /// hash).
    pub details: serde_json::Value,
    /// The address the request came from, when a transport knows it.
    pub source: Option<IpAddr>,
    /// The request's id, when a transport gave one.
    pub request_id: Option<String>,
}

impl AuditRecord {
    /// A record of `action` by `actor` at `at`; the rest empty.
    pub fn new(at: DateTime<Utc>, actor: impl Into<String>, action: AuditAction) -> Self {
        Self {
            id: 0,
            at,
            actor: actor.into(),
            action,
            key_id: None,
            environment: None,
            user_id: None,
            details: serde_json::Value::Object(serde_json::Map::new()),
            source: None,
            request_id: None,
        }
    }
}

/// Where a change came from, as the transport knows it: the client's address and the
/// request's id. The key routes fill it in from the request; the CLI leaves it empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditContext {
    /// The client's address.
    pub source: Option<IpAddr>,
    /// The request's id (`X-Request-Id`), if it is 1 to 128 printable ASCII
    /// characters.
    pub request_id: Option<String>,
}

impl AuditContext {
    /// A context with the client's address and a request id; an id that is not 1 to
    /// 128 printable ASCII characters is left out (it is the client's text).
    pub fn new(source: Option<IpAddr>, request_id: Option<&str>) -> Self {
        let request_id = request_id
            .filter(|id| (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_owned);
        Self { source, request_id }
    }
}

/// Which records to read: all filters must hold; in id order, after `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditQuery {
    /// Only records about this key.
    pub key_id: Option<KeyId>,
    /// Only records about this user's keys.
    pub user_id: Option<UserId>,
    /// Only records about keys of this environment, and those about no one
    /// environment (a user registered with keys in each).
    pub environment: Option<Environment>,
    /// Only records at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Only records before this instant.
    pub until: Option<DateTime<Utc>>,
    /// Only records with a larger id (keyset paging: the last id of the previous page).
    pub after: Option<u64>,
    /// At most this many (capped at [`MAX_AUDIT_PAGE`]).
    pub limit: usize,
}

impl Default for AuditQuery {
    fn default() -> Self {
        Self {
            key_id: None,
            user_id: None,
            environment: None,
            since: None,
            until: None,
            after: None,
            limit: 100,
        }
    }
}

impl AuditQuery {
    /// The first 100 records of the trail.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only records about `key_id`.
    pub fn for_key(mut self, key_id: KeyId) -> Self {
        self.key_id = Some(key_id);
        self
    }

    /// Only records about `user_id`'s keys.
    pub fn for_user(mut self, user_id: UserId) -> Self {
        self.user_id = Some(user_id);
        self
    }

    /// At most `limit` records.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// The records after id `after`.
    pub fn after(mut self, after: u64) -> Self {
        self.after = Some(after);
        self
    }

    /// The page size a store reads: `limit`, at most [`MAX_AUDIT_PAGE`].
    pub fn page_size(&self) -> usize {
        self.limit.min(MAX_AUDIT_PAGE)
    }

    /// Whether `record` matches every filter. Backends that filter in memory use it;
    /// SQL backends express the same rule in their `WHERE` clause.
    pub fn matches(&self, record: &AuditRecord) -> bool {
        self.key_id
            .as_ref()
            .is_none_or(|k| record.key_id.as_ref() == Some(k))
            && self
                .user_id
                .as_ref()
                .is_none_or(|u| record.user_id.as_ref() == Some(u))
            && self
                .environment
                .as_ref()
                .is_none_or(|e| record.environment.as_ref().is_none_or(|own| own == e))
            && self.since.is_none_or(|since| record.at >= since)
            && self.until.is_none_or(|until| record.at < until)
            && self.after.is_none_or(|after| record.id > after)
    }
}

/// Reading and purging the audit trail; the records are written by the store's write
/// methods, each in the transaction of its change.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// The records matching `query`, in id order.
    async fn audit_records(&self, query: &AuditQuery) -> StoreResult<Vec<AuditRecord>>;

    /// Removes the records made before `before` (the retention setting); returns how
    /// many.
    async fn purge_audit(&self, before: DateTime<Utc>) -> StoreResult<u64>;

    /// Appends records of events that change no key (a leak reported and left
    /// working), in one transaction.
    async fn append_audit(&self, records: &[AuditRecord]) -> StoreResult<()>;
}

#[async_trait]
impl<S: AuditLog + ?Sized> AuditLog for std::sync::Arc<S> {
    async fn audit_records(&self, query: &AuditQuery) -> StoreResult<Vec<AuditRecord>> {
        (**self).audit_records(query).await
    }
    async fn purge_audit(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        (**self).purge_audit(before).await
    }
    async fn append_audit(&self, records: &[AuditRecord]) -> StoreResult<()> {
        (**self).append_audit(records).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names round-trip; request ids that are not short printable text are dropped.
    #[test]
    fn names_and_contexts() {
        for action in AuditAction::ALL {
            assert_eq!(AuditAction::parse(action.as_str()), Some(action));
        }
        assert_eq!(AuditAction::parse("key_deleted"), None);
        assert_eq!(
            AuditContext::new(None, Some("req-42"))
                .request_id
                .as_deref(),
            Some("req-42")
        );
        for bad in ["", "two words", "\u{1b}[2J", &"x".repeat(129)] {
            assert_eq!(
                AuditContext::new(None, Some(bad)).request_id,
                None,
                "{bad:?}"
            );
        }
    }
}
