//! Leak response: a token reported as exposed (GitHub's secret scanning posts the
//! tokens it finds in public code) is looked up by hash and, by the app's choice,
//! revoked or only reported. Either way the report is recorded in the audit trail and
//! told to listeners (an app's hooks notify the owner). Only the application and
//! operators report leaks (the transport that verified the scanner's signature acts
//! as a named operator); a caller is refused.

use super::{Acting, LEGACY_FORMAT, META_FORMAT};
use crate::audit::AuditAction;
use crate::audit::AuditLog;
use crate::authority::Denied;
use crate::error::KeyServiceError;
use crate::model::ApiKey;
use crate::secret::{KeyHash, PlaintextKey};
use crate::store::{ApiKeyStore, UserStore};

/// What to do with a leaked key that still works.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LeakResponse {
    /// Revoke it at once (the default: a key in public code is anyone's).
    #[default]
    Revoke,
    /// Record and announce it, and leave it working (the owner decides).
    ReportOnly,
}

/// A token a scanner reports as exposed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LeakReport {
    /// The token as found.
    pub token: PlaintextKey,
    /// Where it was found (a URL), if the scanner says.
    pub url: Option<String>,
    /// Who found it (`github`, ...), for the record.
    pub reporter: String,
}

impl LeakReport {
    /// A report of `token` by `reporter`, found at `url`.
    pub fn new(token: PlaintextKey, reporter: impl Into<String>, url: Option<String>) -> Self {
        Self {
            token,
            url,
            reporter: reporter.into(),
        }
    }
}

/// What a leak report came to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeakVerdict {
    /// One of our keys, working until now: revoked.
    Revoked(Box<ApiKey>),
    /// One of our keys, working, left working ([`LeakResponse::ReportOnly`]).
    Reported(Box<ApiKey>),
    /// One of our keys, already revoked, rolled or expired: nothing to do.
    AlreadyEnded(Box<ApiKey>),
    /// Not a key of this service (a false positive).
    NotOurs,
}

impl LeakVerdict {
    /// Whether the token is one of this service's keys.
    pub fn is_ours(&self) -> bool {
        !matches!(self, LeakVerdict::NotOurs)
    }
}

impl<S: ApiKeyStore + UserStore + AuditLog> Acting<'_, S> {
    /// Handles one leak report (see the module docs): finds the key by hash (a token
    /// in keyroute's format, or with `legacy_keys` an imported legacy key), revokes it
    /// or only reports it as `response` says, records the report in the audit trail
    /// (`key_leaked`) and tells listeners ([`KeyListener::keys_leaked`](crate::KeyListener::keys_leaked)).
    ///
    /// # Errors
    /// [`KeyServiceError::Denied`] (`operators_only`) for a caller; store errors.
    pub async fn report_leak(
        &self,
        report: &LeakReport,
        response: LeakResponse,
    ) -> Result<LeakVerdict, KeyServiceError> {
        if self.bounds()?.is_caller() {
            return Err(Denied::OperatorsOnly.into());
        }
        let service = self.service;
        let token = report.token.expose_secret();
        let (hash, legacy) = match service.format.parse(token) {
            Ok(presented) => (presented.hash, false),
            Err(_) if service.options.legacy_keys => (KeyHash::of(token), true),
            Err(_) => return Ok(LeakVerdict::NotOurs),
        };
        let Some(found) = service.store.get_api_key_by_hash(&hash).await? else {
            return Ok(LeakVerdict::NotOurs);
        };
        let key = found.key;
        if legacy != (key.meta.get(META_FORMAT).map(String::as_str) == Some(LEGACY_FORMAT)) {
            return Ok(LeakVerdict::NotOurs);
        }
        let now = service.now();
        let working = key.is_active(now);
        let revoke = working && response == LeakResponse::Revoke;
        let record = self.record(
            AuditAction::KeyLeaked,
            Some(&key),
            None,
            serde_json::json!({
                "reporter": report.reporter,
                "url": report.url,
                "revoked": revoke,
                "was_working": working,
            }),
        );
        let verdict = if revoke {
            let mut revoking = key.clone();
            revoking.cancelled_at = Some(now);
            service
                .announce_revoking(std::slice::from_ref(&revoking))
                .await;
            let stored = service
                .store
                .cancel_key(&key.id, now, std::slice::from_ref(&record))
                .await?
                .unwrap_or(revoking);
            service.announce(std::slice::from_ref(&stored)).await;
            LeakVerdict::Revoked(Box::new(stored))
        } else {
            service
                .store
                .append_audit(std::slice::from_ref(&record))
                .await?;
            if working {
                LeakVerdict::Reported(Box::new(key))
            } else {
                LeakVerdict::AlreadyEnded(Box::new(key))
            }
        };
        if let LeakVerdict::Revoked(key) | LeakVerdict::Reported(key) = &verdict {
            service
                .announce_leaked(std::slice::from_ref(key.as_ref()))
                .await;
        }
        Ok(verdict)
    }
}
