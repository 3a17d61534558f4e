//! The benchmark's axum service: one server, every [`Mode`] under its own
//! path prefix (`/open/orders/{id}`, `/naive/orders/{id}`, ...): the keyroute-pool
//! modes on the same live and test pools of one keyroute handle, the `-plain` modes
//! on plain bb8 pools of their own (see [`plain`]).
//!
//! The handler's own query is the same in every mode: one order by its primary key,
//! on the connection the mode picks. What differs is how the connection is picked:
//! - `open`: none; the live pool.
//! - `naive`: what a team would write by hand. The `X-Api-Key` value is looked up as
//!   plaintext in `plain_keys` (primary key `key`) in the live database, then the
//!   connection named by the row's environment is taken from keyroute's router. The
//!   lookup runs on a pool of its own with the same settings keyroute's key store
//!   gets (`[pools]`), so both sides have the same connections: keyroute's store pool
//!   and the naive lookup pool are each one pool of `pool_size` on the live database.
//! - `keyroute*`: the `Connected<B>` extractor of `keyroute::axum`, as a service writes
//!   it; `keyroute` uses the front door's own resolver (its defaults), the other two a
//!   resolver built over the same store with `session_cache_duration` set explicitly.
//! - `keyroute-limited`, `keyroute-valkey`: `keyroute` plus one default rate limit
//!   every key hits and none exhausts, in process and on Valkey (see `service/limited.rs`).
//! - `keyroute-rls`, `keyroute-schema`: `keyroute` with the request's tenant bound in
//!   PostgreSQL, each a front door of its own (see `service/tenancy.rs`); their round
//!   trips, and `keyroute`'s, are counted on a second server (`service/counted.rs`).
//! - `open-plain`, `naive-plain`: `open`'s and `naive`'s handlers on plain pools.

use std::any::Any;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRef, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use diesel::prelude::*;
use diesel_async::SimpleAsyncConnection;
use http::{HeaderMap, HeaderValue, StatusCode};
use keyroute::auth::KeyResolver;
use keyroute::axum::{AuthState, Connected};
use keyroute::feed::{ChangeFeed, FeedSettings};
use keyroute::keys::KeyService;
use keyroute::limits::Limiter;
use keyroute::routing::ConnectionRouter;
use keyroute::store::KeyStore;
use keyroute::store::{Backend, DatabaseUrl, DbPool, RecyclingCheck};
use keyroute::{Config, Keyroute};

use crate::{BenchError, Mode, Options};

mod counted;
mod db;
mod limited;
pub mod plain;
mod setup;
mod tenancy;
mod wire;

pub use counted::RoundTripProbe;
pub use db::{BenchDb, SQLITE_PRAGMAS};
pub use limited::{CommandCount, CommandDelta, LIMIT, ValkeyProbe};
use plain::PlainPools;
use setup::{describe, register_users};
pub use tenancy::{TENANTS, TenancyDatabases, tenant_of};
pub use wire::Tally;

/// How long `keyroute-cached` keeps a resolved key: longer than any run.
pub const CACHED_FOR: Duration = Duration::from_secs(300);

/// A running benchmark server and what the load generator needs to drive it.
pub struct Served {
    /// Where the server listens (`127.0.0.1`, a free port).
    pub addr: SocketAddr,
    /// Every key made, as the `X-Api-Key` header value (marked sensitive).
    pub keys: Arc<Vec<HeaderValue>>,
    /// What `keyroute` on its defaults means in this build, and the pools' settings.
    pub settings: String,
    /// Modes this server does not serve, and why (`keyroute-valkey` without a server).
    pub skipped: Vec<(Mode, String)>,
    /// `keyroute-valkey`'s command counts, when it is served.
    pub valkey: Option<ValkeyProbe>,
    /// Round trips per request of `keyroute` and the tenancy modes, when those are
    /// served (PostgreSQL).
    pub round_trips: Option<RoundTripProbe>,
    server: tokio::task::JoinHandle<()>,
    _databases: Box<dyn Any + Send>,
}

impl std::fmt::Debug for Served {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Served")
            .field("addr", &self.addr)
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Sets up the databases at `live` and `test` (keyroute's schema, `orders`,
/// `plain_keys`, users and their keys) and serves every mode on `127.0.0.1:0`, but
/// the tenancy modes (skipped: see [`start_with`]). `databases` is kept alive as long
/// as the server (a temporary directory, a container's databases).
///
/// # Errors
/// [`BenchError::Setup`] naming what failed.
pub async fn start<B: BenchDb>(
    live: DatabaseUrl,
    test: DatabaseUrl,
    databases: Box<dyn Any + Send>,
    options: &Options,
) -> Result<Served, BenchError> {
    start_with::<B>(live, test, databases, None, options).await
}

/// As [`start`], and the tenancy modes on `tenancy` (PostgreSQL), with the round
/// trips of `keyroute` and those modes counted ([`Served::round_trips`]).
///
/// # Errors
/// [`BenchError::Setup`] naming what failed.
pub async fn start_with<B: BenchDb>(
    live: DatabaseUrl,
    test: DatabaseUrl,
    databases: Box<dyn Any + Send>,
    tenancy: Option<&TenancyDatabases>,
    options: &Options,
) -> Result<Served, BenchError> {
    let fail = |reason: String| BenchError::Setup {
        backend: B::NAME,
        reason,
    };
    // Plain HTTP on loopback; everything else is keyroute's default.
    let toml = format!(
        "[apikey]\ndangerous_accept_plain_http = true\n[pools]\nmax_size = {}\n",
        options.pool_size
    );
    let config = Config::from_toml_str(&toml).map_err(|e| fail(e.to_string()))?;
    let keyroute = Keyroute::<B>::builder()
        .config(config.clone())
        .connection("live", live.clone())
        .connection("test", test.clone())
        .build()
        .await
        .map_err(|e| fail(format!("building keyroute: {e}")))?;
    keyroute
        .spawn_background()
        .map_err(|e| fail(e.to_string()))?;

    for name in ["live", "test"] {
        let mut db = keyroute
            .router()
            .connection_named(name)
            .await
            .map_err(|e| fail(e.to_string()))?;
        db.batch_execute(&B::orders_sql(options.orders))
            .await
            .map_err(|e| fail(format!("filling orders in {name}: {e}")))?;
    }
    let rows = register_users(&keyroute, options.keys)
        .await
        .map_err(&fail)?;
    {
        let mut db = keyroute
            .router()
            .connection_named("live")
            .await
            .map_err(|e| fail(e.to_string()))?;
        db.batch_execute(B::plain_keys_sql())
            .await
            .map_err(|e| fail(format!("creating plain_keys: {e}")))?;
        for chunk in rows.chunks(500) {
            B::insert_plain_keys(&mut db, chunk)
                .await
                .map_err(|e| fail(format!("filling plain_keys: {e}")))?;
        }
    }
    let keys = rows
        .iter()
        .filter(|(_, _, environment)| !options.live_only || environment == "live")
        .map(|(key, _, _)| {
            let mut value = HeaderValue::from_str(key)
                .map_err(|_| fail("a generated key is not a header value".into()))?;
            value.set_sensitive(true);
            Ok(value)
        })
        .collect::<Result<Vec<_>, BenchError>>()?;

    let lookup = DbPool::<B>::connect(live.clone(), config.router.pools.settings.clone())
        .await
        .map_err(|e| fail(format!("opening the naive lookup pool: {e}")))?;
    // The plain pools check connections on checkout as keyroute's pools resolved to
    // where diesel-async can (`Fast`), else with diesel-async's default `Verified`
    // (`Idle` is keyroute's own; see service/plain.rs).
    let check = keyroute
        .router()
        .pool_named("live")
        .map(|pool| match pool.settings().recycling_check {
            RecyclingCheck::Fast => RecyclingCheck::Fast,
            _ => RecyclingCheck::Verified,
        })
        .map_err(|e| fail(e.to_string()))?;
    let plain = PlainPools::<B>::open(&live, &test, &config.router.pools.settings, check)
        .await
        .map_err(&fail)?;
    let resolver_with = |cache: Option<Duration>,
                         limiter: Option<Limiter>|
     -> Result<(AuthState, KeyResolver<KeyStore>), BenchError> {
        let mut options = config.apikey.clone();
        options.session_cache_duration = cache;
        let store = Arc::clone(keyroute.store());
        let resolver = config
            .resolver
            .apply(KeyResolver::builder(Arc::clone(&store), options.clone()))
            .map(|builder| match limiter {
                Some(limiter) => builder.limiter(limiter),
                None => builder,
            })
            .and_then(|builder| builder.build())
            .map_err(|e| fail(e.to_string()))?;
        let keys = KeyService::new(store, options).map_err(|e| fail(e.to_string()))?;
        Ok((AuthState::new(resolver.clone(), Arc::new(keys)), resolver))
    };
    let (uncached, _) = resolver_with(None, None)?;
    let (cached, cached_resolver) = resolver_with(Some(CACHED_FOR), None)?;
    let limited = limited::LimitedModes::set_up(&config, &resolver_with, &fail).await?;
    // A resolver trusts its cache only while a change feed keeps it fresh (issue 13):
    // these follow the store's feed (keyroute-cached's, and the limited modes' when
    // they cache), as the front door's own does in background().
    let subscription = keyroute
        .store()
        .subscribe(&FeedSettings::default())
        .await
        .ok_or_else(|| fail("the key store publishes no change feed".to_owned()))?;
    let mut following: Vec<Arc<dyn keyroute::feed::FeedListener>> = vec![Arc::new(cached_resolver)];
    for resolver in &limited.feed {
        following.push(Arc::new(resolver.clone()));
    }
    tokio::spawn(keyroute::feed::follow_feed(subscription, following));
    let tenancy = tenancy::TenancyModes::set_up(tenancy, &keyroute, &toml, options).await?;
    let round_trips = match &tenancy.modes {
        Ok(modes) => {
            let mut baseline = config.clone();
            for (name, url) in [("live", &live), ("test", &test)] {
                baseline.router.connections.insert(name.into(), url.clone());
            }
            let mut twins = vec![(Mode::Keyroute, keyroute.axum_state(), baseline)];
            twins.extend(
                modes
                    .iter()
                    .map(|m| (m.mode, m.auth.clone(), m.config.clone())),
            );
            Some(RoundTripProbe::start::<B>(twins).await.map_err(&fail)?)
        }
        Err(_) => None,
    };
    let router = keyroute.router().clone();
    let kr = |auth: AuthState| KeyrouteState {
        auth,
        router: router.clone(),
    };
    let app = Router::new()
        .route("/open/orders/{id}", get(open::<B>))
        .with_state(OpenState {
            router: router.clone(),
        })
        .merge(
            Router::new()
                .route("/naive/orders/{id}", get(naive::<B>))
                .with_state(NaiveState {
                    lookup: Arc::new(lookup.clone()),
                    router: router.clone(),
                }),
        )
        .merge(
            Router::new()
                .route("/keyroute/orders/{id}", get(routed::<B>))
                .with_state(kr(keyroute.axum_state())),
        )
        .merge(
            Router::new()
                .route("/keyroute-uncached/orders/{id}", get(routed::<B>))
                .with_state(kr(uncached)),
        )
        .merge(
            Router::new()
                .route("/keyroute-cached/orders/{id}", get(routed::<B>))
                .with_state(kr(cached)),
        )
        .merge(limited.routes::<B>(&router))
        .merge(tenancy.routes())
        .merge(
            Router::new()
                .route("/open-plain/orders/{id}", get(plain::open_plain::<B>))
                .route("/naive-plain/orders/{id}", get(plain::naive_plain::<B>))
                .with_state(plain),
        );

    let mut settings = describe(&config, &keyroute, &lookup, check);
    settings.push('\n');
    settings.push_str(&limited.settings);
    settings.push('\n');
    settings.push_str(&tenancy.settings);
    // A resolver serves from its cache only while its change feed is live.
    let mut caching = vec![format!("keyroute {}", keyroute.resolver().is_caching())];
    for mode in tenancy.modes.iter().flatten() {
        let on = mode.auth.resolver().is_caching();
        caching.push(format!("{} {on}", mode.mode.name()));
    }
    settings.push_str(&format!(
        "\nfront doors' resolvers caching (change feed live): {}",
        caching.join(", ")
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| fail(format!("binding 127.0.0.1:0: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| fail(format!("reading the bound address: {e}")))?;
    let server = tokio::spawn(async move {
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(error) = axum::serve(listener, service).await {
            tracing_error(&error);
        }
    });
    Ok(Served {
        addr,
        keys: Arc::new(keys),
        settings,
        skipped: limited
            .skipped()
            .into_iter()
            .chain(tenancy.skipped())
            .collect(),
        valkey: limited.probe(),
        round_trips,
        server,
        _databases: databases,
    })
}

/// A server that stops serving shows up as failed requests in the load run; this only
/// says why, on stderr.
#[allow(clippy::print_stderr)]
fn tracing_error(error: &std::io::Error) {
    eprintln!("keyroute-bench: the server stopped: {error}");
}

struct OpenState<B: Backend> {
    router: ConnectionRouter<B>,
}

impl<B: Backend> Clone for OpenState<B> {
    fn clone(&self) -> Self {
        Self {
            router: self.router.clone(),
        }
    }
}

struct NaiveState<B: Backend> {
    lookup: Arc<DbPool<B>>,
    router: ConnectionRouter<B>,
}

impl<B: Backend> Clone for NaiveState<B> {
    fn clone(&self) -> Self {
        Self {
            lookup: Arc::clone(&self.lookup),
            router: self.router.clone(),
        }
    }
}

struct KeyrouteState<B: Backend> {
    auth: AuthState,
    router: ConnectionRouter<B>,
}

impl<B: Backend> Clone for KeyrouteState<B> {
    fn clone(&self) -> Self {
        Self {
            auth: self.auth.clone(),
            router: self.router.clone(),
        }
    }
}

impl<B: Backend> FromRef<KeyrouteState<B>> for AuthState {
    fn from_ref(state: &KeyrouteState<B>) -> Self {
        state.auth.clone()
    }
}

impl<B: Backend> FromRef<KeyrouteState<B>> for ConnectionRouter<B> {
    fn from_ref(state: &KeyrouteState<B>) -> Self {
        state.router.clone()
    }
}

/// The handler's answer: the order's item, or why not.
fn reply(order: QueryResult<String>) -> Response {
    match order {
        Ok(item) => item.into_response(),
        Err(diesel::result::Error::NotFound) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response()
}

/// `open`: no authentication, the live database.
async fn open<B: BenchDb>(State(state): State<OpenState<B>>, Path(id): Path<i64>) -> Response {
    match state.router.connection_named("live").await {
        Ok(mut db) => reply(B::order(&mut db, id).await),
        Err(e) => unavailable(e),
    }
}

/// `naive`: the plaintext key looked up per request, then the connection its
/// environment names.
async fn naive<B: BenchDb>(
    State(state): State<NaiveState<B>>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let found = match state.lookup.get().await {
        Ok(mut conn) => B::plain_key(&mut conn, key).await,
        Err(e) => return unavailable(e),
    };
    let environment = match found {
        Ok(Some((_user, environment))) => environment,
        Ok(None) => return StatusCode::UNAUTHORIZED.into_response(),
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    match state.router.connection_named(&environment).await {
        Ok(mut db) => reply(B::order(&mut db, id).await),
        Err(e) => unavailable(e),
    }
}

/// `keyroute*`: the caller and their routed connection from keyroute's extractor.
async fn routed<B: BenchDb>(
    Connected { mut db, .. }: Connected<B>,
    Path(id): Path<i64>,
) -> Response {
    reply(B::order(&mut db, id).await)
}
