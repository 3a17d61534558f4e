//! The `keyroute-limited` and `keyroute-valkey` modes: `keyroute` (the front door's
//! defaults, cache included) plus one default rate limit every key hits and none ever
//! exhausts ([`LIMIT`] per second, per key), so the only difference from `keyroute` is
//! the limiter's step in the request pipeline.
//!
//! - `keyroute-limited`: the limit in process ([`Limiter::in_process`]).
//! - `keyroute-valkey`: the limit on a Valkey/Redis server ([`Limiter::from_config`]
//!   with `engine = "valkey"`): keyroute-testing's server of this process, the limit's
//!   keys under a namespace of their own. Without a server (no Docker engine, no
//!   image) or without keyroute's `valkey` feature, the mode is skipped and says why.
//!
//! Both resolvers are built as `keyroute-cached`'s is, over the same store, with the
//! front door's own `session_cache_duration`; when that caches, they follow the
//! store's change feed as the front door's resolver does.
//!
//! For `keyroute-valkey` a [`ValkeyProbe`] reads the server's `INFO commandstats` and
//! counts the requests the mode's handler served, so a run can say how many commands
//! each request cost (at most one `EVALSHA`: checks made at the same time share one).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRef, Path, State};
use axum::response::Response;
use axum::routing::get;
use keyroute::Config;
use keyroute::auth::KeyResolver;
use keyroute::axum::{AuthState, Connected};
use keyroute::limits::{DefaultLimit, EngineKind, Limiter, LimitsConfig, RateLimit, ValkeyUrl};
use keyroute::routing::ConnectionRouter;
use keyroute::store::KeyStore;

use super::{BenchDb, KeyrouteState, reply};
use crate::report::ValkeyCommands;
use crate::{BenchError, Mode};

/// The default limit's rate: units per second for each key, [`keyroute::limits::MAX_LIMIT`].
/// A run makes a few thousand requests per second spread over thousands of keys, so
/// every request is checked and admitted, and none is ever refused.
pub const LIMIT: u64 = 1_000_000_000;

/// Builds a resolver over the front door's store with the given cache and limiter,
/// as `keyroute-cached`'s is built.
pub(super) type BuildResolver<'a> = dyn Fn(Option<Duration>, Option<Limiter>) -> Result<(AuthState, KeyResolver<KeyStore>), BenchError>
    + 'a;

/// The two modes' states, what they mean, and the resolvers that must follow the feed.
pub(super) struct LimitedModes {
    limited: AuthState,
    /// `keyroute-valkey`'s state and its probe, or why the mode is skipped.
    valkey: Result<(AuthState, ValkeyProbe), String>,
    /// Resolvers that cache: the caller makes them follow the store's change feed.
    pub(super) feed: Vec<KeyResolver<KeyStore>>,
    /// One line per mode for the run's settings.
    pub(super) settings: String,
}

impl LimitedModes {
    /// Sets both modes up: the in-process limiter, then the Valkey server, its limiter
    /// and its probe (a failure there skips `keyroute-valkey` only).
    ///
    /// # Errors
    /// [`BenchError::Setup`] when `keyroute-limited` cannot be built.
    pub(super) async fn set_up(
        config: &Config,
        build: &BuildResolver<'_>,
        fail: &dyn Fn(String) -> BenchError,
    ) -> Result<Self, BenchError> {
        let cache = config.apikey.session_cache_duration;
        let limit = RateLimit::new("requests", LIMIT, Duration::from_secs(1))
            .map_err(|e| fail(e.to_string()))?;
        let mut limits = LimitsConfig::default();
        limits.default = vec![DefaultLimit::new(limit.clone())];
        limits.validate().map_err(|e| fail(e.to_string()))?;
        let (limited, limited_resolver) = build(cache, Some(Limiter::in_process(&limits)))?;
        let mut feed = Vec::new();
        if cache.is_some() {
            feed.push(limited_resolver);
        }
        let mut settings = format!(
            "keyroute-limited: keyroute's settings (session_cache_duration {}{}) + the default limit `{limit}` in process",
            cache.map_or_else(|| "none".to_owned(), |ttl| format!("{ttl:?}")),
            if cache.is_some() {
                ", following the change feed"
            } else {
                ""
            }
        );
        let valkey = match valkey_limiter(&limits).await {
            Ok((limiter, probe, server)) => {
                let (state, resolver) = build(cache, Some(limiter))?;
                if cache.is_some() {
                    feed.push(resolver);
                }
                let _ = write!(
                    settings,
                    "\nkeyroute-valkey: the same limit on Valkey at {server}, key prefix {}",
                    probe.namespace
                );
                Ok((state, probe))
            }
            Err(reason) => {
                let _ = write!(settings, "\nkeyroute-valkey: skipped: {reason}");
                Err(reason)
            }
        };
        Ok(Self {
            limited,
            valkey,
            feed,
            settings,
        })
    }

    /// The routes of the modes set up, on `router`.
    pub(super) fn routes<B: BenchDb>(&self, router: &ConnectionRouter<B>) -> Router {
        let limited = KeyrouteState {
            auth: self.limited.clone(),
            router: router.clone(),
        };
        let mut app = Router::new()
            .route("/keyroute-limited/orders/{id}", get(super::routed::<B>))
            .with_state(limited);
        if let Ok((auth, probe)) = &self.valkey {
            let counted = CountedState {
                routed: KeyrouteState {
                    auth: auth.clone(),
                    router: router.clone(),
                },
                served: Arc::clone(&probe.served),
            };
            app = app.merge(
                Router::new()
                    .route("/keyroute-valkey/orders/{id}", get(counted_routed::<B>))
                    .with_state(counted),
            );
        }
        app
    }

    /// The modes skipped, with why.
    pub(super) fn skipped(&self) -> Vec<(Mode, String)> {
        match &self.valkey {
            Ok(_) => Vec::new(),
            Err(reason) => vec![(Mode::KeyrouteValkey, reason.clone())],
        }
    }

    /// `keyroute-valkey`'s probe, when the mode runs.
    pub(super) fn probe(&self) -> Option<ValkeyProbe> {
        self.valkey.as_ref().ok().map(|(_, probe)| probe.clone())
    }
}

/// The Valkey limiter on keyroute-testing's server, a probe of that server, and its URL.
async fn valkey_limiter(limits: &LimitsConfig) -> Result<(Limiter, ValkeyProbe, String), String> {
    let server = keyroute_testing::valkey()
        .await
        .map_err(|e| format!("no Valkey server: {e}"))?;
    let mut shared = limits.clone();
    shared.engine = EngineKind::Valkey;
    shared.url = Some(ValkeyUrl::from(server.url()));
    shared.key_prefix = server.namespace().to_owned();
    let limiter = Limiter::from_config(&shared)
        .await
        .map_err(|e| format!("the Valkey limiter: {e}"))?;
    let client = redis::Client::open(server.url()).map_err(|e| format!("the Valkey URL: {e}"))?;
    let connection = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| format!("connecting to Valkey to read its command counts: {e}"))?;
    let probe = ValkeyProbe {
        connection,
        served: Arc::new(AtomicU64::new(0)),
        namespace: server.namespace().to_owned(),
    };
    // One read now, so a server that cannot say skips the mode rather than the report.
    probe.count().await?;
    Ok((limiter, probe, server.url().to_owned()))
}

/// Reads `keyroute-valkey`'s command counts: the server's `INFO commandstats` and the
/// requests the mode's handler served.
#[derive(Clone)]
pub struct ValkeyProbe {
    connection: redis::aio::MultiplexedConnection,
    served: Arc<AtomicU64>,
    namespace: String,
}

impl std::fmt::Debug for ValkeyProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValkeyProbe")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl ValkeyProbe {
    /// The server's command counts (its `INFO` calls, this probe's own, left out) and
    /// the requests served so far.
    ///
    /// # Errors
    /// The client's error, as text.
    pub async fn count(&self) -> Result<CommandCount, String> {
        let mut connection = self.connection.clone();
        let served = self.served.load(Ordering::Acquire);
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut connection)
            .await
            .map_err(|e| format!("INFO commandstats: {e}"))?;
        Ok(CommandCount {
            served,
            calls: parse_commandstats(&info),
        })
    }
}

/// Calls per command (`INFO commandstats`), and requests served, at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommandCount {
    /// Requests `keyroute-valkey`'s handler served.
    pub served: u64,
    /// Calls per command name (lower case; `client|setinfo` for a subcommand), `info`
    /// left out.
    pub calls: BTreeMap<String, u64>,
}

impl CommandCount {
    /// What happened between `earlier` and this count: the requests served and each
    /// command's calls (those called at all); `None` when no request was served.
    pub fn since(&self, earlier: &CommandCount) -> Option<CommandDelta> {
        let served = self.served.checked_sub(earlier.served).filter(|&n| n > 0)?;
        let calls = self
            .calls
            .iter()
            .filter_map(|(name, &now)| {
                let delta = now.saturating_sub(earlier.calls.get(name).copied().unwrap_or(0));
                (delta > 0).then(|| (name.clone(), delta))
            })
            .collect();
        Some(CommandDelta { served, calls })
    }
}

/// The commands that run a script: what the limiter sends (one per check). A script's
/// own calls (`TIME`, `GET`, `SET`) are counted by `INFO commandstats` as well, under
/// their own names.
const SCRIPT_RUNS: [&str; 6] = [
    "eval",
    "evalsha",
    "eval_ro",
    "evalsha_ro",
    "fcall",
    "fcall_ro",
];

/// Commands counted between two [`CommandCount`]s, and the requests served meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommandDelta {
    /// Requests served (more than zero).
    pub served: u64,
    /// Calls per command, by name.
    pub calls: Vec<(String, u64)>,
}

impl CommandDelta {
    /// Every command counted, and the script runs among them, per request served.
    pub fn per_request(&self) -> ValkeyCommands {
        let sum = |script_runs_only: bool| {
            let calls: u64 = self
                .calls
                .iter()
                .filter(|(name, _)| !script_runs_only || SCRIPT_RUNS.contains(&name.as_str()))
                .map(|(_, n)| n)
                .sum();
            calls as f64 / self.served as f64
        };
        ValkeyCommands::new(sum(false), sum(true))
    }

    /// The counts: `52000 requests: evalsha 51999, eval 1, get 52000, ...`.
    pub fn describe(&self) -> String {
        let calls: Vec<String> = self.calls.iter().map(|(c, n)| format!("{c} {n}")).collect();
        format!("{} requests: {}", self.served, calls.join(", "))
    }
}

/// `cmdstat_<name>:calls=N,usec=...` lines, `info` left out.
fn parse_commandstats(info: &str) -> BTreeMap<String, u64> {
    info.lines()
        .filter_map(|line| {
            let (name, fields) = line.trim().strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = fields
                .split(',')
                .find_map(|field| field.strip_prefix("calls="))?
                .parse()
                .ok()?;
            (name != "info").then(|| (name.to_owned(), calls))
        })
        .collect()
}

/// `keyroute-valkey`'s state (and the counted run's, `service/counted.rs`):
/// `keyroute`'s, and the count of requests served.
pub(super) struct CountedState<B: keyroute::store::Backend> {
    pub(super) routed: KeyrouteState<B>,
    pub(super) served: Arc<AtomicU64>,
}

impl<B: keyroute::store::Backend> Clone for CountedState<B> {
    fn clone(&self) -> Self {
        Self {
            routed: self.routed.clone(),
            served: Arc::clone(&self.served),
        }
    }
}

impl<B: keyroute::store::Backend> FromRef<CountedState<B>> for AuthState {
    fn from_ref(state: &CountedState<B>) -> Self {
        state.routed.auth.clone()
    }
}

impl<B: keyroute::store::Backend> FromRef<CountedState<B>> for ConnectionRouter<B> {
    fn from_ref(state: &CountedState<B>) -> Self {
        state.routed.router.clone()
    }
}

impl<B: keyroute::store::Backend> FromRef<CountedState<B>> for Arc<AtomicU64> {
    fn from_ref(state: &CountedState<B>) -> Self {
        Arc::clone(&state.served)
    }
}

/// `keyroute-valkey`: `keyroute*`'s handler, counting the requests it served (one
/// relaxed atomic add) so the probe can divide the server's commands by them.
pub(super) async fn counted_routed<B: BenchDb>(
    State(served): State<Arc<AtomicU64>>,
    Connected { mut db, .. }: Connected<B>,
    Path(id): Path<i64>,
) -> Response {
    served.fetch_add(1, Ordering::Relaxed);
    reply(B::order(&mut db, id).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Calls are read per command, `info` is left out, and per-request figures divide
    /// the deltas by the requests served in between; script runs are counted apart.
    #[test]
    fn commandstats_per_request() {
        let before = CommandCount {
            served: 10,
            calls: parse_commandstats(
                "# Commandstats\r\ncmdstat_ping:calls=1,usec=2,usec_per_call=2.00,rejected_calls=0,failed_calls=0\r\ncmdstat_info:calls=3,usec=9\r\n",
            ),
        };
        assert_eq!(before.calls.len(), 1);
        let after = CommandCount {
            served: 110,
            calls: parse_commandstats(
                "cmdstat_ping:calls=1,usec=2\r\ncmdstat_evalsha:calls=99,usec=900\r\ncmdstat_eval:calls=1,usec=9\r\ncmdstat_get:calls=100,usec=1\r\ncmdstat_client|setinfo:calls=2,usec=1\r\ncmdstat_info:calls=4,usec=12\r\n",
            ),
        };
        let delta = after.since(&before).unwrap();
        assert_eq!(
            delta.describe(),
            "100 requests: client|setinfo 2, eval 1, evalsha 99, get 100"
        );
        let per = delta.per_request();
        assert!((per.total - 2.02).abs() < 1e-9, "{per:?}");
        assert!((per.scripts - 1.0).abs() < 1e-9, "{per:?}");
        assert_eq!(after.since(&after), None);
    }
}
