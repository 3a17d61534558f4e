//! The store's queries, written once and compiled inside each backend module: this
//! file implements the sealed `KeyQueries`, `UserQueries` and `DenyQueries` (the
//! contract in `backend.rs`) for its backend's `Marker`. The including module
//! supplies `Marker` (the [`StoreBackend`](crate::StoreBackend) these are for),
//! `schema`, `Ts` (its timestamp type), the `insert_rows!` macro (a multi-row
//! `INSERT`, or a loop where the backend has none) and `read_one!` (its cheapest
//! one-row read); the change each write publishes goes through `Marker`'s `FeedQueries`.
//!
//! Past 500 lines on purpose (about 750): keys, credits, users and the deny list share the helpers
//! above their impls and form one include per backend; splitting the file would add
//! an include (and its `duplicate_mod` allowance) to every backend module.
//!
//! Lookups by a unique column (key hash, key id, user id, user name) use
//! `get_result`, never `.first()`: `.first()` adds a bound `LIMIT ?`, and SQLite
//! treats a bound `LIMIT` as part of the query plan, so it silently re-prepares the
//! statement on every call (5-7x the cost of the lookup itself).
//!
//! Every write transaction begins with a write, never a read: SQLite takes its write
//! lock at the first write and cannot upgrade a reading transaction while another
//! connection writes, so read-then-write would fail under concurrency there.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use keyroute_core::limits::{CreditSpend, Credits};
use keyroute_core::{
    ApiKey, AuditRecord, ChangeKind, Denial, KeyHash, KeyId, KeyQuery, Regeneration, ResolvedKey,
    StoreResult, User, UserId,
};

use super::audit::insert_audit;
use super::rows::{CreditColumns, KeyChanges, KeyRow, UserRow};
use super::schema::{
    keyroute_api_keys as keys, keyroute_denylist as denied, keyroute_users as users,
};
use super::{Marker, Ts};
use crate::UserFilter;
use crate::sql::backend::sealed::{DenyQueries, FeedQueries as _, KeyQueries, UserQueries};
use crate::sql::{INSERT_CHUNK, SqlStore, Timestamp, decode, done, map_error};

type Conn = <Marker as keyroute_pool::Backend>::Connection;

/// Inserts key rows in chunks, inside the caller's transaction.
async fn insert_keys(conn: &mut Conn, rows: &[KeyRow]) -> QueryResult<()> {
    for chunk in rows.chunks(INSERT_CHUNK) {
        insert_rows!(conn, keys::table, chunk);
    }
    Ok(())
}

/// The key `id` as it now stands, read inside the caller's transaction (after a write
/// to it: what the write returns).
async fn key_row(conn: &mut Conn, id: &str) -> QueryResult<KeyRow> {
    keys::table
        .find(id)
        .select(KeyRow::as_select())
        .get_result(conn)
        .await
}

/// After a write to key `id` that changed `changed` rows, inside its transaction: its
/// audit records, its `key_updated` event, and the key as now stored; nothing (and
/// nothing written) when the write changed nothing.
async fn key_changed(
    conn: &mut Conn,
    id: &str,
    changed: usize,
    audit: &[AuditRecord],
) -> QueryResult<Option<KeyRow>> {
    if changed == 0 {
        return Ok(None);
    }
    insert_audit(conn, audit).await?;
    Marker::publish(conn, ChangeKind::KeyUpdated, &[id]).await?;
    key_row(conn, id).await.map(Some)
}

fn into_keys(rows: Vec<KeyRow>) -> StoreResult<Vec<ApiKey>> {
    rows.into_iter().map(KeyRow::into_key).collect()
}

/// Keys that still work at `at` as far as cancellation goes.
#[diesel::dsl::auto_type]
fn not_cancelled_by(at: Ts) -> _ {
    keys::cancelled_at.is_null().or(keys::cancelled_at.gt(at))
}

/// Spends `cost` credits of key `id` on `conn` (see `spend_credits`).
async fn spend(
    conn: &mut Conn,
    id: &str,
    cost: i64,
    now: DateTime<Utc>,
) -> StoreResult<CreditSpend> {
    let now_ts = Ts::from_instant(now);
    // A refill lost to another writer is applied by that writer; the spend is then
    // tried again. Two rounds cover every race but a clock far behind the others'.
    for _ in 0..4 {
        // The common case, one statement: the balance covers the cost and no refill
        // is due. The condition and the decrement are one atomic UPDATE.
        let spent = diesel::update(
            keys::table
                .find(id)
                .filter(keys::credits_remaining.ge(cost))
                .filter(
                    keys::credits_next_refill_at
                        .is_null()
                        .or(keys::credits_next_refill_at.gt(now_ts)),
                ),
        )
        .set(keys::credits_remaining.eq(keys::credits_remaining - cost))
        .execute(&mut *conn)
        .await
        .map_err(map_error)?;
        if spent == 1 {
            return Ok(CreditSpend::Spent { remaining: None });
        }
        let row: Option<(Option<i64>, Option<String>, Option<Ts>)> = keys::table
            .find(id)
            .select((
                keys::credits_remaining,
                keys::credits_refill,
                keys::credits_next_refill_at,
            ))
            .get_result(&mut *conn)
            .await
            .optional()
            .map_err(map_error)?;
        let Some((remaining, refill, next)) = row else {
            return Ok(CreditSpend::Unmetered);
        };
        let due_at = next;
        let columns = CreditColumns {
            credits_remaining: remaining,
            credits_refill: refill,
            credits_next_refill_at: next,
        };
        let Some(credits) = columns.into_credits()? else {
            return Ok(CreditSpend::Unmetered);
        };
        let Some((amount, next_at)) = credits.due_refill(now) else {
            return Ok(CreditSpend::Exhausted {
                remaining: credits.remaining,
                next_refill_at: credits.next_refill_at,
            });
        };
        // The refill, by whoever still sees the instant it was due at: once.
        diesel::update(
            keys::table
                .find(id)
                .filter(keys::credits_next_refill_at.eq(due_at)),
        )
        .set((
            keys::credits_remaining.eq(i64::try_from(amount).unwrap_or(i64::MAX)),
            keys::credits_next_refill_at.eq(Ts::from_instant(next_at)),
        ))
        .execute(&mut *conn)
        .await
        .map_err(map_error)?;
    }
    Err(keyroute_core::StoreError::Conflict(
        "credits: the refill kept moving under this spend; check the instances' clocks".to_owned(),
    ))
}

impl KeyQueries for Marker {
    async fn api_key_exists(store: &SqlStore<Self>, hash: &KeyHash) -> StoreResult<bool> {
        let mut conn = store.conn().await?;
        let exists = diesel::select(diesel::dsl::exists(
            keys::table.filter(keys::hash.eq(hash.as_bytes().as_slice())),
        ))
        .get_result(&mut *conn)
        .await
        .map_err(map_error)?;
        done(conn).await?;
        Ok(exists)
    }

    async fn get_api_key_by_hash(
        store: &SqlStore<Self>,
        hash: &KeyHash,
    ) -> StoreResult<Option<ResolvedKey>> {
        let mut conn = store.conn().await?;
        // The hot path: `read_one!` is the backend's cheapest one-row read (see sqlite.rs).
        let hash = hash.as_bytes().to_vec();
        let row: Option<(KeyRow, Option<UserRow>)> = read_one!(
            &mut *conn,
            keys::table
                .left_join(users::table)
                .filter(keys::hash.eq(hash))
                .select((KeyRow::as_select(), Option::<UserRow>::as_select()))
        )
        .map_err(map_error)?;
        done(conn).await?;
        row.map(|(key, user)| {
            Ok(ResolvedKey {
                key: key.into_key()?,
                user: user.map(UserRow::into_user).transpose()?,
            })
        })
        .transpose()
    }

    async fn get_api_key(store: &SqlStore<Self>, id: &KeyId) -> StoreResult<Option<ApiKey>> {
        let mut conn = store.conn().await?;
        let row = keys::table
            .find(id.as_str())
            .select(KeyRow::as_select())
            .get_result(&mut *conn)
            .await
            .optional()
            .map_err(map_error)?;
        done(conn).await?;
        row.map(KeyRow::into_key).transpose()
    }

    async fn get_user_api_keys(
        store: &SqlStore<Self>,
        user_id: &UserId,
        query: &KeyQuery,
    ) -> StoreResult<Vec<ApiKey>> {
        let mut q = keys::table
            .filter(keys::user_id.eq(user_id.as_str()))
            .select(KeyRow::as_select())
            .order((keys::created_at.desc(), keys::id.desc()))
            .into_boxed();
        if let Some(environment) = &query.environment {
            q = q.filter(keys::environment.eq(environment.as_str().to_owned()));
        }
        if let Some(now) = query.active_at {
            let now = Ts::from_instant(now);
            q = q
                .filter(not_cancelled_by(now))
                .filter(keys::expires_at.is_null().or(keys::expires_at.gt(now)));
        }
        let mut conn = store.conn().await?;
        let rows = q.load(&mut *conn).await.map_err(map_error)?;
        done(conn).await?;
        into_keys(rows)
    }

    async fn store_all(
        store: &SqlStore<Self>,
        new_keys: &[ApiKey],
        audit: &[AuditRecord],
    ) -> StoreResult<()> {
        if new_keys.is_empty() && audit.is_empty() {
            return Ok(());
        }
        let rows: Vec<KeyRow> = new_keys.iter().map(KeyRow::from_key).collect();
        let mut conn = store.conn().await?;
        conn.transaction(async |conn| {
            insert_keys(conn, &rows).await?;
            insert_audit(conn, audit).await
        })
        .await
        .map_err(map_error)?;
        done(conn).await
    }

    async fn cancel_key(
        store: &SqlStore<Self>,
        id: &KeyId,
        at: DateTime<Utc>,
        audit: &[AuditRecord],
    ) -> StoreResult<Option<ApiKey>> {
        let at = Ts::from_instant(at);
        let mut conn = store.conn().await?;
        let row = conn
            .transaction(async |conn| {
                // Sets the time only where it brings the cancellation forward.
                let changed =
                    diesel::update(keys::table.find(id.as_str()).filter(not_cancelled_by(at)))
                        .set(keys::cancelled_at.eq(at))
                        .execute(conn)
                        .await?;
                // Other instances learn of it when (and only if) this commits.
                if changed > 0 {
                    insert_audit(conn, audit).await?;
                    Marker::publish(conn, ChangeKind::KeyRevoked, &[id.as_str()]).await?;
                }
                key_row(conn, id.as_str()).await.optional()
            })
            .await
            .map_err(map_error)?;
        done(conn).await?;
        row.map(KeyRow::into_key).transpose()
    }

    async fn roll_key(
        store: &SqlStore<Self>,
        old: &KeyId,
        replacement: &ApiKey,
        cancel_at: DateTime<Utc>,
        audit: &[AuditRecord],
    ) -> StoreResult<Option<ApiKey>> {
        let at = Ts::from_instant(cancel_at);
        let rows = [KeyRow::from_key(replacement)];
        let mut conn = store.conn().await?;
        let retired = conn
            .transaction(async |conn| {
                // Only a key nobody has cancelled: of two rolls racing, the second
                // waits for the first's row lock, then finds nothing to change.
                let changed = diesel::update(
                    keys::table
                        .find(old.as_str())
                        .filter(keys::cancelled_at.is_null()),
                )
                .set(keys::cancelled_at.eq(at))
                .execute(conn)
                .await?;
                if changed == 0 {
                    return Ok(None);
                }
                insert_keys(conn, &rows).await?;
                insert_audit(conn, audit).await?;
                Marker::publish(conn, ChangeKind::KeyRolled, &[old.as_str()]).await?;
                key_row(conn, old.as_str()).await.map(Some)
            })
            .await
            .map_err(map_error)?;
        done(conn).await?;
        retired.map(KeyRow::into_key).transpose()
    }

    async fn update_key(
        store: &SqlStore<Self>,
        key: &ApiKey,
        expected_revision: u64,
        audit: &[AuditRecord],
    ) -> StoreResult<Option<ApiKey>> {
        let Ok(expected) = i64::try_from(expected_revision) else {
            return Ok(None);
        };
        let changes = KeyChanges::of(key);
        let id = key.id.as_str();
        let mut conn = store.conn().await?;
        let row = conn
            .transaction(async |conn| {
                // Only the revision that was read, and only a key nobody cancelled: an
                // update racing another (or a revoke) changes nothing and is re-read.
                let changed = diesel::update(
                    keys::table
                        .find(id)
                        .filter(keys::revision.eq(expected))
                        .filter(keys::cancelled_at.is_null()),
                )
                .set(&changes)
                .execute(conn)
                .await?;
                key_changed(conn, id, changed, audit).await
            })
            .await
            .map_err(map_error)?;
        done(conn).await?;
        row.map(KeyRow::into_key).transpose()
    }

    async fn set_credits(
        store: &SqlStore<Self>,
        id: &KeyId,
        credits: Option<&Credits>,
        audit: &[AuditRecord],
    ) -> StoreResult<Option<ApiKey>> {
        let columns = CreditColumns::of(credits);
        let id = id.as_str();
        let mut conn = store.conn().await?;
        let row = conn
            .transaction(async |conn| {
                let changed =
                    diesel::update(keys::table.find(id).filter(keys::cancelled_at.is_null()))
                        .set(&columns)
                        .execute(conn)
                        .await?;
                key_changed(conn, id, changed, audit).await
            })
            .await
            .map_err(map_error)?;
        done(conn).await?;
        row.map(KeyRow::into_key).transpose()
    }

    async fn spend_credits(
        store: &SqlStore<Self>,
        id: &KeyId,
        cost: u64,
        now: DateTime<Utc>,
    ) -> StoreResult<CreditSpend> {
        let Ok(cost) = i64::try_from(cost) else {
            return Ok(CreditSpend::Exhausted {
                remaining: 0,
                next_refill_at: None,
            });
        };
        let mut conn = store.conn().await?;
        let spend = spend(&mut conn, id.as_str(), cost, now).await?;
        done(conn).await?;
        Ok(spend)
    }

    async fn regenerate(
        store: &SqlStore<Self>,
        regeneration: &Regeneration,
        audit: &[AuditRecord],
    ) -> StoreResult<Vec<ApiKey>> {
        let cancel_at = Ts::from_instant(regeneration.cancel_at);
        let user = regeneration.user_id.as_str();
        let environment = regeneration.environment.as_str();
        let rows: Vec<KeyRow> = regeneration.new_keys.iter().map(KeyRow::from_key).collect();
        let mut conn = store.conn().await?;
        let retired = conn
            .transaction(async |conn| {
                diesel::update(
                    keys::table
                        .filter(keys::user_id.eq(user))
                        .filter(keys::environment.eq(environment))
                        .filter(not_cancelled_by(cancel_at)),
                )
                .set(keys::cancelled_at.eq(cancel_at))
                .execute(conn)
                .await?;
                insert_keys(conn, &rows).await?;
                let retired: Vec<(String, KeyRow)> = keys::table
                    .filter(keys::user_id.eq(user))
                    .filter(keys::environment.eq(environment))
                    .filter(keys::cancelled_at.eq(cancel_at))
                    .select((keys::id, KeyRow::as_select()))
                    .order((keys::created_at.desc(), keys::id.desc()))
                    .load(conn)
                    .await?;
                let ids: Vec<&str> = retired.iter().map(|(id, _)| id.as_str()).collect();
                insert_audit(conn, audit).await?;
                Marker::publish(conn, ChangeKind::KeyRolled, &ids).await?;
                Ok(retired.into_iter().map(|(_, row)| row).collect())
            })
            .await
            .map_err(map_error)?;
        done(conn).await?;
        into_keys(retired)
    }

    async fn touch_last_used(
        store: &SqlStore<Self>,
        ids: &[KeyId],
        at: DateTime<Utc>,
    ) -> StoreResult<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let at = Ts::from_instant(at);
        let mut ids: Vec<&str> = ids.iter().map(KeyId::as_str).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut conn = store.conn().await?;
        let touched = conn
            .transaction(async |conn| {
                let mut touched = 0u64;
                for chunk in ids.chunks(INSERT_CHUNK) {
                    // Rows locked in one order, skipping those another instance is
                    // stamping: concurrent batches never deadlock (see `unheld!`).
                    let free: Vec<String> = unheld!(conn, chunk);
                    if free.is_empty() {
                        continue;
                    }
                    let n = diesel::update(keys::table.filter(keys::id.eq_any(&free)))
                        .set(keys::last_used_at.eq(at))
                        .execute(conn)
                        .await?;
                    touched += n as u64;
                }
                Ok(touched)
            })
            .await
            .map_err(map_error)?;
        done(conn).await?;
        Ok(touched)
    }
}

/// Up to `limit` users that `filter` keeps, in id order, after `after`: keyset
/// paging, one indexed range read per page. Both paged user queries are this one.
async fn users_page(
    store: &SqlStore<Marker>,
    after: Option<&UserId>,
    limit: usize,
    filter: UserFilter,
) -> StoreResult<Vec<User>> {
    let mut q = users::table
        .select(UserRow::as_select())
        .order(users::id.asc())
        .limit(i64::try_from(limit).unwrap_or(i64::MAX))
        .into_boxed();
    if let Some(after) = after {
        q = q.filter(users::id.gt(after.as_str().to_owned()));
    }
    match filter {
        UserFilter::Any => {}
        UserFilter::WithoutKeys => {
            q = q.filter(diesel::dsl::not(diesel::dsl::exists(
                keys::table.filter(keys::user_id.eq(users::id.nullable())),
            )));
        }
    }
    let mut conn = store.conn().await?;
    let rows: Vec<UserRow> = q.load(&mut *conn).await.map_err(map_error)?;
    done(conn).await?;
    rows.into_iter().map(UserRow::into_user).collect()
}

impl UserQueries for Marker {
    async fn create_user(
        store: &SqlStore<Self>,
        user: &User,
        new_keys: &[ApiKey],
        audit: &[AuditRecord],
    ) -> StoreResult<()> {
        let user = UserRow::from_user(user);
        let rows: Vec<KeyRow> = new_keys.iter().map(KeyRow::from_key).collect();
        let mut conn = store.conn().await?;
        conn.transaction(async |conn| {
            diesel::insert_into(users::table)
                .values(&user)
                .execute(conn)
                .await?;
            insert_keys(conn, &rows).await?;
            insert_audit(conn, audit).await
        })
        .await
        .map_err(map_error)?;
        // Committed before returning (behind a transaction pooler the unit is a
        // transaction; dropped, it would commit later, on a task of its own).
        done(conn).await
    }

    async fn import_users(store: &SqlStore<Self>, new_users: &[User]) -> StoreResult<()> {
        if new_users.is_empty() {
            return Ok(());
        }
        let rows: Vec<UserRow> = new_users.iter().map(UserRow::from_user).collect();
        let mut conn = store.conn().await?;
        conn.transaction(async |conn| {
            for chunk in rows.chunks(INSERT_CHUNK) {
                insert_rows!(conn, users::table, chunk);
            }
            Ok(())
        })
        .await
        .map_err(map_error)?;
        done(conn).await
    }

    async fn get_user(store: &SqlStore<Self>, id: &UserId) -> StoreResult<Option<User>> {
        let mut conn = store.conn().await?;
        let row = users::table
            .find(id.as_str())
            .select(UserRow::as_select())
            .get_result(&mut *conn)
            .await
            .optional()
            .map_err(map_error)?;
        done(conn).await?;
        row.map(UserRow::into_user).transpose()
    }

    async fn find_user_by_name(
        store: &SqlStore<Self>,
        user_name: &str,
    ) -> StoreResult<Option<User>> {
        let mut conn = store.conn().await?;
        let row = users::table
            .filter(users::user_name.eq(user_name))
            .select(UserRow::as_select())
            .get_result(&mut *conn)
            .await
            .optional()
            .map_err(map_error)?;
        done(conn).await?;
        row.map(UserRow::into_user).transpose()
    }

    async fn list_users(
        store: &SqlStore<Self>,
        after: Option<&UserId>,
        limit: usize,
    ) -> StoreResult<Vec<User>> {
        users_page(store, after, limit, UserFilter::Any).await
    }

    async fn count_users(store: &SqlStore<Self>) -> StoreResult<u64> {
        let mut conn = store.conn().await?;
        let n: i64 = users::table
            .count()
            .get_result(&mut *conn)
            .await
            .map_err(map_error)?;
        done(conn).await?;
        Ok(u64::try_from(n).unwrap_or_default())
    }

    async fn users_missing_keys(
        store: &SqlStore<Self>,
        after: Option<&UserId>,
        limit: usize,
    ) -> StoreResult<Vec<User>> {
        users_page(store, after, limit, UserFilter::WithoutKeys).await
    }

    async fn store_backfill(
        store: &SqlStore<Self>,
        new_keys: &[ApiKey],
        audit: &[AuditRecord],
    ) -> StoreResult<Vec<UserId>> {
        let mut owners: Vec<&str> = new_keys
            .iter()
            .filter_map(|k| k.user_id.as_ref().map(UserId::as_str))
            .collect();
        owners.sort_unstable();
        owners.dedup();
        if owners.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = store.conn().await?;
        let stored: Vec<String> = conn
            .transaction(async |conn| {
                // Claim the users first, with a write: PostgreSQL and MySQL lock their
                // rows until commit (in id order, so two backfills cannot deadlock),
                // SQLite takes its write lock. A concurrent backfill of the same users
                // waits here, then sees the keys this one stored and skips them.
                for chunk in owners.chunks(INSERT_CHUNK) {
                    diesel::update(users::table.filter(users::id.eq_any(chunk)))
                        .set(users::meta.eq(users::meta))
                        .execute(conn)
                        .await?;
                }
                let mut keyed = std::collections::HashSet::new();
                for chunk in owners.chunks(INSERT_CHUNK) {
                    let have: Vec<Option<String>> = keys::table
                        .filter(keys::user_id.eq_any(chunk))
                        .select(keys::user_id)
                        .distinct()
                        .load(conn)
                        .await?;
                    keyed.extend(have.into_iter().flatten());
                }
                let fresh: Vec<KeyRow> = new_keys
                    .iter()
                    .filter(|k| {
                        k.user_id
                            .as_ref()
                            .is_some_and(|u| !keyed.contains(u.as_str()))
                    })
                    .map(KeyRow::from_key)
                    .collect();
                insert_keys(conn, &fresh).await?;
                if !fresh.is_empty() {
                    insert_audit(conn, audit).await?;
                }
                Ok(owners
                    .iter()
                    .filter(|u| !keyed.contains(**u))
                    .map(|u| (*u).to_owned())
                    .collect())
            })
            .await
            .map_err(map_error)?;
        done(conn).await?;
        stored
            .iter()
            .map(|u| decode("users.id", u, UserId::new))
            .collect()
    }
}

impl DenyQueries for Marker {
    async fn deny(
        store: &SqlStore<Self>,
        id: &str,
        from: Option<DateTime<Utc>>,
        until: DateTime<Utc>,
    ) -> StoreResult<()> {
        let until = Ts::from_instant(until);
        let from = from.map(Ts::from_instant);
        let mut conn = store.conn().await?;
        conn.transaction(async |conn| {
            // Insert; if the id is already denied, keep the later end and the earlier
            // start (NULL, at once, is earliest). Single statements rather than an
            // upsert, whose syntax differs on every backend. The insert runs in a
            // savepoint, so its unique violation leaves the transaction usable
            // (PostgreSQL aborts a transaction at its first error).
            let inserted = conn
                .transaction(async |conn| {
                    diesel::insert_into(denied::table)
                        .values((
                            denied::id.eq(id),
                            denied::expires_at.eq(until),
                            denied::denied_from.eq(from),
                        ))
                        .execute(conn)
                        .await
                })
                .await;
            match inserted {
                Err(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _,
                )) => {
                    diesel::update(denied::table.find(id).filter(denied::expires_at.lt(until)))
                        .set(denied::expires_at.eq(until))
                        .execute(conn)
                        .await?;
                    let earlier = denied::table
                        .find(id)
                        .filter(denied::denied_from.is_not_null());
                    match from {
                        None => {
                            diesel::update(earlier)
                                .set(denied::denied_from.eq(None::<Ts>))
                                .execute(conn)
                                .await?
                        }
                        Some(from) => {
                            diesel::update(earlier.filter(denied::denied_from.gt(from)))
                                .set(denied::denied_from.eq(Some(from)))
                                .execute(conn)
                                .await?
                        }
                    };
                }
                other => {
                    other?;
                }
            }
            // Other instances drop their cached answer for `id` when this commits.
            Marker::publish(conn, ChangeKind::Denied, &[id]).await
        })
        .await
        .map_err(map_error)?;
        done(conn).await
    }

    async fn denial(
        store: &SqlStore<Self>,
        ids: &[&str],
        now: DateTime<Utc>,
    ) -> StoreResult<Denial> {
        if ids.is_empty() {
            return Ok(Denial::ALLOWED);
        }
        let mut conn = store.conn().await?;
        // One read of the asked ids' entries that have not ended (at most one row per
        // id: `id` is the key); which of them deny now or later is decided in Rust,
        // the same way for every backend.
        let entries: Vec<(Option<Ts>, Ts)> = denied::table
            .filter(denied::id.eq_any(ids))
            .filter(denied::expires_at.gt(Ts::from_instant(now)))
            .select((denied::denied_from, denied::expires_at))
            .load(&mut *conn)
            .await
            .map_err(map_error)?;
        done(conn).await?;
        let entries = entries
            .into_iter()
            .map(|(from, until)| {
                Ok((
                    from.map(Ts::into_instant).transpose()?,
                    until.into_instant()?,
                ))
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Denial::of_entries(entries, now))
    }

    async fn purge_denied(store: &SqlStore<Self>, now: DateTime<Utc>) -> StoreResult<u64> {
        let mut conn = store.conn().await?;
        let purged =
            diesel::delete(denied::table.filter(denied::expires_at.le(Ts::from_instant(now))))
                .execute(&mut *conn)
                .await
                .map_err(map_error)?;
        done(conn).await?;
        Ok(purged as u64)
    }
}
