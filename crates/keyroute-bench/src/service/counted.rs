//! Round trips per request on the routed connection, counted (PostgreSQL): a second,
//! small server whose `keyroute`, `keyroute-rls` and `keyroute-schema` routes are the
//! measured modes' own (the same front door state, handler and configuration) on
//! routers of their own whose connections go through a [`WireRelay`], which reads
//! PostgreSQL's wire protocol as it passes it on. The measured modes never go through
//! the relay; this runs once per mode after the rounds.
//!
//! Per mode: one short unmeasured run (the pools open their connections and prepare
//! their statements), a pause for the last commits, the relay's counts and the
//! requests served, a counted run, a pause, the counts again; the difference divided
//! by the requests served in between. Only the routed connections are counted: the
//! key store's lookups and last-used batches go to the store directly, the same
//! resolver work in every keyroute mode.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use http::HeaderValue;
use keyroute::Config;
use keyroute::axum::AuthState;

use super::limited::{CountedState, counted_routed};
use super::tenancy::{host_of, rewrite};
use super::wire::WireRelay;
use super::{BenchDb, KeyrouteState};
use crate::load::{LoadPlan, LoadResult, drive};
use crate::report::RoundTrips;
use crate::{BenchError, Mode, Options};

/// The unmeasured run before each count.
const PRIME: Duration = Duration::from_secs(1);
/// The counted run.
const COUNTED: Duration = Duration::from_secs(2);
/// The pause after a run, for the commits of the last requests' connections (on
/// tasks of their own) to reach the server.
const SETTLE: Duration = Duration::from_millis(300);

/// The counting server of one backend: where it listens, its relay and each mode's
/// count of requests served.
pub struct RoundTripProbe {
    addr: SocketAddr,
    relay: WireRelay,
    served: Vec<(Mode, Arc<AtomicU64>)>,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for RoundTripProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoundTripProbe")
            .field("addr", &self.addr)
            .field("relay", &self.relay.addr())
            .finish_non_exhaustive()
    }
}

impl Drop for RoundTripProbe {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// One mode to count: its name, its front door's state, and the configuration its
/// router was built from (connections included).
pub(super) type Twin = (Mode, AuthState, Config);

impl RoundTripProbe {
    /// Starts the relay and the counting server for `twins`, every connection of
    /// their configurations redirected through the relay (to the server of the
    /// first one).
    ///
    /// # Errors
    /// As text: a URL that cannot be read, a router that cannot be built, a
    /// listener that cannot bind.
    pub(super) async fn start<B: BenchDb>(twins: Vec<Twin>) -> Result<Self, String> {
        let upstream = twins
            .iter()
            .flat_map(|(_, _, config)| config.router.connections.values())
            .next()
            .ok_or_else(|| "no connection to count".to_owned())
            .and_then(host_of)?;
        let relay = WireRelay::start(upstream).await?;
        let through = relay.addr().to_string();
        let mut app = Router::new();
        let mut served = Vec::new();
        for (mode, auth, mut config) in twins {
            for url in config.router.connections.values_mut() {
                *url = rewrite(url, None, Some(&through))?;
            }
            let router = config
                .router
                .builder::<B>()
                .and_then(|builder| builder.build())
                .map_err(|e| format!("the counted {} router: {e}", mode.name()))?;
            let count = Arc::new(AtomicU64::new(0));
            served.push((mode, Arc::clone(&count)));
            app = app.merge(
                Router::new()
                    .route(
                        &format!("/{}/orders/{{id}}", mode.name()),
                        get(counted_routed::<B>),
                    )
                    .with_state(CountedState {
                        routed: KeyrouteState { auth, router },
                        served: count,
                    }),
            );
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("binding the counting server: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("reading the counting server's address: {e}"))?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            relay,
            served,
            server,
        })
    }

    /// Whether `mode` is counted here.
    pub fn counts(&self, mode: Mode) -> bool {
        self.served.iter().any(|(m, _)| *m == mode)
    }

    /// Counts `mode`'s round trips per request: a primed run, then a counted one with
    /// `keys`, `options`' connections and orders.
    ///
    /// # Errors
    /// [`BenchError::Non2xx`] when a request was not served; [`BenchError::Load`]
    /// when the mode is not counted here or the load generator fails.
    pub async fn measure(
        &self,
        backend: &'static str,
        mode: Mode,
        keys: Arc<Vec<HeaderValue>>,
        options: &Options,
    ) -> Result<RoundTrips, BenchError> {
        let served = self
            .served
            .iter()
            .find(|(m, _)| *m == mode)
            .map(|(_, count)| Arc::clone(count))
            .ok_or_else(|| BenchError::Load(format!("{} is not counted", mode.name())))?;
        let mut plan = LoadPlan::new(self.addr, mode, keys, options);
        plan.warmup = Duration::ZERO;
        plan.duration = PRIME;
        all_served(backend, mode, drive(plan.clone()).await?)?;
        tokio::time::sleep(SETTLE).await;
        let (before, from) = (self.relay.tally(), served.load(Ordering::Acquire));
        plan.duration = COUNTED;
        all_served(backend, mode, drive(plan).await?)?;
        tokio::time::sleep(SETTLE).await;
        let tally = self.relay.tally().since(&before);
        let requests = served.load(Ordering::Acquire).saturating_sub(from);
        Ok(RoundTrips::new(requests, tally))
    }
}

/// The run's result, unless a request was not served.
fn all_served(backend: &'static str, mode: Mode, result: LoadResult) -> Result<(), BenchError> {
    if result.non_2xx > 0 {
        return Err(BenchError::Non2xx {
            backend,
            mode: mode.name(),
            count: result.non_2xx,
            first: result.first_failure.unwrap_or_default(),
        });
    }
    Ok(())
}
