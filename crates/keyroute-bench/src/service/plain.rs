//! The `open-plain` and `naive-plain` modes: the same handlers as `open` and `naive`
//! on plain pools, `bb8::Pool<AsyncDieselConnectionManager<C>>` with diesel-async's
//! own connection types, what a team has before adopting keyroute.
//!
//! Each plain pool gets keyroute's pool settings (`max_size`, `min_idle`, the
//! timeouts) and SQLite's connections the pragmas keyroute sets. Its checkout check is
//! the one keyroute's pools resolved to where a plain pool has it (`Fast` on SQLite),
//! and otherwise diesel-async's default, `Verified`: keyroute's PostgreSQL default,
//! `Idle`, is keyroute's own, and skipping the check on a connection that answered a
//! moment ago is part of what keyroute's pools do differently.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use keyroute::store::{DatabaseUrl, PoolSettings, RecyclingCheck};

use super::{BenchDb, reply, unavailable};

/// A plain bb8 pool of `B`'s diesel-async connections.
pub(crate) type PlainPool<B> = bb8::Pool<<B as BenchDb>::PlainManager>;

/// The plain pools: live and test for the handler's query, and the naive lookup's own
/// pool on the live database (as `naive` has one next to keyroute's router).
pub(crate) struct PlainPools<B: BenchDb> {
    live: PlainPool<B>,
    test: PlainPool<B>,
    lookup: PlainPool<B>,
}

impl<B: BenchDb> Clone for PlainPools<B> {
    fn clone(&self) -> Self {
        Self {
            live: self.live.clone(),
            test: self.test.clone(),
            lookup: self.lookup.clone(),
        }
    }
}

impl<B: BenchDb> PlainPools<B> {
    /// Opens the three pools, each answering one connection before it is used.
    pub(crate) async fn open(
        live: &DatabaseUrl,
        test: &DatabaseUrl,
        settings: &PoolSettings,
        check: RecyclingCheck,
    ) -> Result<Self, String> {
        Ok(Self {
            live: pool::<B>(live, settings, check, "live").await?,
            test: pool::<B>(test, settings, check, "test").await?,
            lookup: pool::<B>(live, settings, check, "naive-plain lookup").await?,
        })
    }
}

/// One plain pool on `url`, with keyroute's pool `settings`.
async fn pool<B: BenchDb>(
    url: &DatabaseUrl,
    settings: &PoolSettings,
    check: RecyclingCheck,
    name: &str,
) -> Result<PlainPool<B>, String> {
    let manager = B::plain_manager(url.expose_secret(), check);
    let pool = bb8::Pool::builder()
        .max_size(settings.max_size.max(1))
        .min_idle(settings.min_idle)
        .connection_timeout(settings.connection_timeout)
        .idle_timeout(settings.idle_timeout)
        .max_lifetime(settings.max_lifetime)
        .build_unchecked(manager);
    // One checkout now, so a database that cannot be reached fails the set-up, not
    // the first requests; the error names no URL (it may carry a password).
    pool.get()
        .await
        .map_err(|e| format!("opening the plain {name} pool: {e}"))?;
    Ok(pool)
}

/// `open-plain`: no authentication, the plain live pool.
pub(crate) async fn open_plain<B: BenchDb>(
    State(pools): State<PlainPools<B>>,
    Path(id): Path<i64>,
) -> Response {
    match pools.live.get().await {
        Ok(mut db) => reply(B::plain_order(&mut db, id).await),
        Err(e) => unavailable(e),
    }
}

/// `naive-plain`: the plaintext key looked up on the plain lookup pool, then the
/// handler's query on the plain pool of the key's environment.
pub(crate) async fn naive_plain<B: BenchDb>(
    State(pools): State<PlainPools<B>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let found = match pools.lookup.get().await {
        Ok(mut conn) => B::plain_lookup(&mut conn, key).await,
        Err(e) => return unavailable(e),
    };
    let pool = match found {
        Ok(Some((_user, environment))) => match environment.as_str() {
            "live" => &pools.live,
            "test" => &pools.test,
            _ => return (StatusCode::INTERNAL_SERVER_ERROR, "unknown environment").into_response(),
        },
        Ok(None) => return StatusCode::UNAUTHORIZED.into_response(),
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    match pool.get().await {
        Ok(mut db) => reply(B::plain_order(&mut db, id).await),
        Err(e) => unavailable(e),
    }
}
