//! `GET {prefix}/audit`: a page of the audit trail. Whose records a caller may read is
//! core's answer (`Acting::audit_records`); this only reads the query and writes JSON.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum_core::response::Response;
use chrono::{DateTime, Utc};
use http::StatusCode;
use keyroute_core::{AuditQuery, AuditRecord, Environment, KeyId, MAX_AUDIT_PAGE, UserId};
use serde::{Deserialize, Serialize};

use super::body::{page_limit, read_query};
use super::keys::{json, key_id, service_problem, user_id};
use crate::extract::Caller;
use crate::problem::Problem;
use crate::state::AuthState;

/// The query of `GET {prefix}/audit`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditParams {
    key_id: Option<String>,
    user_id: Option<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    after: Option<u64>,
    limit: Option<usize>,
}

/// A page of the audit trail and the `after` of the next page (`null` after the last).
#[derive(Debug, Serialize)]
struct AuditPage {
    records: Vec<serde_json::Value>,
    next_after: Option<u64>,
}

/// One record as the route shows it.
fn audit_view(record: &AuditRecord) -> serde_json::Value {
    serde_json::json!({
        "id": record.id,
        "at": record.at,
        "actor": record.actor,
        "action": record.action.as_str(),
        "key_id": record.key_id.as_ref().map(KeyId::as_str),
        "environment": record.environment.as_ref().map(Environment::as_str),
        "user_id": record.user_id.as_ref().map(UserId::as_str),
        "details": record.details,
        "source": record.source.map(|s| s.to_string()),
        "request_id": record.request_id,
    })
}

/// `GET {prefix}/audit?key_id=&user_id=&since=&until=&after=&limit=`: a page of the
/// audit trail; core decides whose records the caller may read.
pub(super) async fn audit(
    State(auth): State<AuthState>,
    Caller(caller): Caller,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Response, Problem> {
    let params = read_query(
        params,
        "key_id, user_id, since and until (RFC 3339), after (a record id), limit (1 to 1000)",
    )?;
    let limit = page_limit(params.limit, MAX_AUDIT_PAGE)?;
    let mut query = AuditQuery::new().limit(limit);
    query.key_id = params.key_id.as_deref().map(key_id).transpose()?;
    query.user_id = user_id(params.user_id.as_deref())?;
    query.since = params.since;
    query.until = params.until;
    query.after = params.after;
    let records = auth
        .keys()
        .acting_as(&caller)
        .audit_records(&query)
        .await
        .map_err(|e| service_problem(&e))?;
    let page = AuditPage {
        next_after: (records.len() == limit)
            .then(|| records.last().map(|r| r.id))
            .flatten(),
        records: records.iter().map(audit_view).collect(),
    };
    Ok(json(StatusCode::OK, &page, false))
}
