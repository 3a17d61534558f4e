//! `keyroute audit`: a page of the audit trail, filtered by key, user and time, read as
//! the operator (who reads everything).

use chrono::{DateTime, Utc};
use keyroute::Keyroute;
use keyroute::keys::{AuditQuery, AuditRecord, MAX_AUDIT_PAGE};
use keyroute::store::Backend;
use serde_json::json;

use crate::args;
use crate::keys::{as_operator, find_user, key_id};
use crate::output::{CliError, Out, when};

/// `keyroute audit`'s options.
#[derive(Debug, clap::Args)]
pub(crate) struct AuditArgs {
    /// Only records about this key (its id).
    #[arg(long = "key")]
    key: Option<String>,
    /// Only records about this user's keys (user name or id).
    #[arg(long)]
    user: Option<String>,
    /// Only records at or after this time (RFC 3339, e.g. 2026-12-01T00:00:00Z).
    #[arg(long)]
    since: Option<String>,
    /// Only records before this time (RFC 3339).
    #[arg(long)]
    until: Option<String>,
    /// Start after the record with this id (the next page, as the last page says).
    #[arg(long)]
    after: Option<u64>,
    /// The most records to show (1 to 1000).
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

fn instant(flag: &str, value: &str) -> Result<DateTime<Utc>, CliError> {
    DateTime::parse_from_rfc3339(value.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| args::bad_value(flag, value, e, "write e.g. 2026-12-01T00:00:00Z"))
}

fn record_json(record: &AuditRecord) -> serde_json::Value {
    json!({
        "id": record.id,
        "at": record.at.to_rfc3339(),
        "actor": record.actor,
        "action": record.action.as_str(),
        "key_id": record.key_id.as_ref().map(|k| k.as_str()),
        "environment": record.environment.as_ref().map(|e| e.as_str()),
        "user_id": record.user_id.as_ref().map(|u| u.as_str()),
        "details": record.details,
        "source": record.source.map(|s| s.to_string()),
        "request_id": record.request_id,
    })
}

const HEADER: &[&str] = &["id", "at", "actor", "action", "key", "user", "from"];

fn record_row(record: &AuditRecord) -> Vec<String> {
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
    vec![
        record.id.to_string(),
        when(Some(record.at)),
        record.actor.clone(),
        record.action.as_str().to_owned(),
        or_dash(record.key_id.as_ref().map(ToString::to_string)),
        or_dash(record.user_id.as_ref().map(ToString::to_string)),
        or_dash(record.source.map(|s| s.to_string())),
    ]
}

/// `keyroute audit [--key ID] [--user NAME] [--since T] [--until T] [--after N] [--limit N]`.
pub(crate) async fn audit<B: Backend>(
    keyroute: &Keyroute<B>,
    options: AuditArgs,
    out: Out,
) -> Result<(), CliError> {
    if !(1..=MAX_AUDIT_PAGE).contains(&options.limit) {
        return Err(CliError::failed(format!(
            "--limit {}: give 1 to {MAX_AUDIT_PAGE}",
            options.limit
        )));
    }
    let mut query = AuditQuery::new().limit(options.limit);
    if let Some(key) = &options.key {
        query.key_id = Some(key_id(keyroute, key)?);
    }
    if let Some(user) = &options.user {
        query.user_id = Some(find_user(keyroute, user).await?.id);
    }
    query.since = options
        .since
        .as_deref()
        .map(|t| instant("since", t))
        .transpose()?;
    query.until = options
        .until
        .as_deref()
        .map(|t| instant("until", t))
        .transpose()?;
    query.after = options.after;
    let records = as_operator(keyroute).audit_records(&query).await?;
    let next_after = (records.len() == options.limit)
        .then(|| records.last().map(|r| r.id))
        .flatten();
    let value = json!({
        "records": records.iter().map(record_json).collect::<Vec<_>>(),
        "next_after": next_after,
    });
    out.table(HEADER, records.iter().map(record_row).collect(), value)?;
    if let Some(next) = next_after {
        out.line(&format!(
            "more: keyroute audit --after {next} (with the same filters)"
        ))?;
    }
    Ok(())
}
