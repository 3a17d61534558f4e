//! The audit trail's table, compiled inside each backend module like `queries.rs` (see
//! `sql/mod.rs`): the row and its conversions, the insert every write makes inside its
//! own transaction ([`insert_audit`]), and the sealed `AuditQueries` (reading pages,
//! the retention purge).

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use keyroute_core::{
    AuditAction, AuditQuery, AuditRecord, Environment, KeyId, StoreError, StoreResult, UserId,
};

use super::schema::keyroute_audit as audit;
use super::{Marker, Ts};
use crate::sql::backend::sealed::AuditQueries;
use crate::sql::{SqlStore, Timestamp, decode, done, map_error};

type Conn = <Marker as keyroute_pool::Backend>::Connection;

/// A record as written: everything but the id, which the database gives.
#[derive(Insertable)]
#[diesel(table_name = audit)]
struct NewAuditRow {
    at: Ts,
    actor: String,
    action: &'static str,
    key_id: Option<String>,
    environment: Option<String>,
    user_id: Option<String>,
    details: String,
    source: Option<String>,
    request_id: Option<String>,
}

/// A record as read.
#[derive(Queryable, Selectable)]
#[diesel(table_name = audit)]
struct AuditRow {
    id: i64,
    at: Ts,
    actor: String,
    action: String,
    key_id: Option<String>,
    environment: Option<String>,
    user_id: Option<String>,
    details: String,
    source: Option<String>,
    request_id: Option<String>,
}

impl AuditRow {
    fn into_record(self) -> StoreResult<AuditRecord> {
        let action = AuditAction::parse(&self.action).ok_or_else(|| {
            StoreError::InvalidData(format!("audit.action: unknown action '{}'", self.action))
        })?;
        let mut record = AuditRecord::new(self.at.into_instant()?, self.actor, action);
        record.id = u64::try_from(self.id)
            .map_err(|_| StoreError::InvalidData("audit.id: negative".to_owned()))?;
        record.key_id = self
            .key_id
            .map(|k| decode("audit.key_id", &k, KeyId::new))
            .transpose()?;
        record.environment = self
            .environment
            .map(|e| decode("audit.environment", &e, Environment::new))
            .transpose()?;
        record.user_id = self
            .user_id
            .map(|u| decode("audit.user_id", &u, UserId::new))
            .transpose()?;
        record.details = decode("audit.details", &self.details, |t| {
            serde_json::from_str::<serde_json::Value>(t)
        })?;
        record.source = self
            .source
            .map(|s| decode("audit.source", &s, str::parse::<IpAddr>))
            .transpose()?;
        record.request_id = self.request_id;
        Ok(record)
    }
}

/// Writes `records` inside the caller's transaction, before its change is published.
pub(super) async fn insert_audit(conn: &mut Conn, records: &[AuditRecord]) -> QueryResult<()> {
    if records.is_empty() {
        return Ok(());
    }
    let rows: Vec<NewAuditRow> = records
        .iter()
        .map(|record| NewAuditRow {
            at: Ts::from_instant(record.at),
            actor: record.actor.clone(),
            action: record.action.as_str(),
            key_id: record.key_id.as_ref().map(|k| k.as_str().to_owned()),
            environment: record.environment.as_ref().map(|e| e.as_str().to_owned()),
            user_id: record.user_id.as_ref().map(|u| u.as_str().to_owned()),
            details: record.details.to_string(),
            source: record.source.map(|s| s.to_string()),
            request_id: record.request_id.clone(),
        })
        .collect();
    insert_rows!(conn, audit::table, &rows);
    Ok(())
}

impl AuditQueries for Marker {
    async fn audit_records(
        store: &SqlStore<Self>,
        query: &AuditQuery,
    ) -> StoreResult<Vec<AuditRecord>> {
        let mut select = audit::table.select(AuditRow::as_select()).into_boxed();
        if let Some(key) = &query.key_id {
            select = select.filter(audit::key_id.eq(key.as_str().to_owned()));
        }
        if let Some(environment) = &query.environment {
            // Records of no one environment (a user registered) are everyone's.
            select = select.filter(
                audit::environment
                    .eq(environment.as_str().to_owned())
                    .or(audit::environment.is_null()),
            );
        }
        if let Some(user) = &query.user_id {
            select = select.filter(audit::user_id.eq(user.as_str().to_owned()));
        }
        if let Some(since) = query.since {
            select = select.filter(audit::at.ge(Ts::from_instant(since)));
        }
        if let Some(until) = query.until {
            select = select.filter(audit::at.lt(Ts::from_instant(until)));
        }
        if let Some(after) = query.after {
            // Past the largest id a row can have: nothing after it.
            let Ok(after) = i64::try_from(after) else {
                return Ok(Vec::new());
            };
            select = select.filter(audit::id.gt(after));
        }
        let limit = i64::try_from(query.page_size()).unwrap_or(i64::MAX);
        let mut conn = store.conn().await?;
        let rows: Vec<AuditRow> = select
            .order(audit::id.asc())
            .limit(limit)
            .load(&mut *conn)
            .await
            .map_err(map_error)?;
        done(conn).await?;
        rows.into_iter().map(AuditRow::into_record).collect()
    }

    async fn purge_audit(store: &SqlStore<Self>, before: DateTime<Utc>) -> StoreResult<u64> {
        let mut conn = store.conn().await?;
        let purged = diesel::delete(audit::table.filter(audit::at.lt(Ts::from_instant(before))))
            .execute(&mut *conn)
            .await
            .map_err(map_error)?;
        done(conn).await?;
        Ok(u64::try_from(purged).unwrap_or(u64::MAX))
    }

    async fn append_audit(store: &SqlStore<Self>, records: &[AuditRecord]) -> StoreResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut conn = store.conn().await?;
        conn.transaction(async |conn| insert_audit(conn, records).await)
            .await
            .map_err(map_error)?;
        done(conn).await
    }
}
