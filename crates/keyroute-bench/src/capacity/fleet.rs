//! The instances under test: `N` `Keyroute<Postgres>` handles built from one
//! [`Config`] each, as `N` services would be; the keys they serve; the fixed-rate
//! load; and the time a revocation takes to reach every other instance.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use keyroute::store::{DatabaseUrl, Pooler, Postgres};
use keyroute::{AuthError, Config, KeyId, Keyroute, NewUser};
use tokio::task::{JoinHandle, JoinSet};

use super::{Context, Failure, Outcome};

/// How every instance is configured.
#[derive(Debug, Clone)]
pub(crate) struct FleetSettings {
    /// Instances built.
    pub(crate) instances: usize,
    /// `[pools] max_size` of every pool.
    pub(crate) pool_size: u32,
    /// `[pools] pooler`.
    pub(crate) pooler: Pooler,
    /// `[resolver] last_used_interval`.
    pub(crate) last_used_interval: Duration,
}

/// A key the run issued: its id and its plaintext.
#[derive(Debug, Clone)]
pub(crate) struct Issued {
    /// The key's id (for `revoke`).
    pub(crate) id: KeyId,
    /// The plaintext, as a client presents it.
    pub(crate) secret: String,
}

/// The instances, each running its background work.
pub(crate) struct Fleet {
    apps: Vec<Keyroute<Postgres>>,
    background: Vec<JoinHandle<()>>,
    /// The configuration every instance was built from.
    pub(crate) config: Config,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("instances", &self.apps.len())
            .finish_non_exhaustive()
    }
}

/// The configuration of one instance: connections `live` and `test` on `url` (one
/// database), the store on `live`, its feed and migrations on `direct` when given.
pub(crate) fn config(
    url: &DatabaseUrl,
    direct: Option<&DatabaseUrl>,
    settings: &FleetSettings,
) -> Config {
    let mut config = Config::default();
    config.apikey.dangerous_accept_plain_http = true;
    for name in ["live", "test"] {
        config
            .router
            .connections
            .insert(name.to_owned(), url.clone());
    }
    config.router.pools.settings.max_size = settings.pool_size;
    config.router.pools.settings.pooler = settings.pooler;
    config.store.direct_url = direct.cloned();
    config.resolver.last_used_interval = settings.last_used_interval;
    config
}

impl Fleet {
    /// Builds `settings.instances` instances from `config`, one after the other, and
    /// spawns each one's background work.
    pub(crate) async fn build(config: Config, settings: &FleetSettings) -> Outcome<Self> {
        let mut apps = Vec::with_capacity(settings.instances);
        let mut background = Vec::with_capacity(settings.instances);
        for i in 0..settings.instances {
            let app = Keyroute::<Postgres>::builder()
                .config(config.clone())
                .build()
                .await
                .context(&format!("building instance {i}"))?;
            background.push(
                app.spawn_background()
                    .context(&format!("starting instance {i}'s background work"))?,
            );
            apps.push(app);
        }
        Ok(Self {
            apps,
            background,
            config,
        })
    }

    /// Waits until every instance's feed is live (its resolver caches); how long.
    pub(crate) async fn wait_until_caching(&self, within: Duration) -> Outcome<Duration> {
        let started = Instant::now();
        while !self.apps.iter().all(|app| app.resolver().is_caching()) {
            if started.elapsed() > within {
                let live = self
                    .apps
                    .iter()
                    .filter(|a| a.resolver().is_caching())
                    .count();
                return Err(Failure::new(format!(
                    "only {live} of {} instances had a live change feed after {within:?}",
                    self.apps.len()
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(started.elapsed())
    }

    /// Registers `users` users (each gets a live and a test key), spread over the
    /// instances, which register concurrently; every key issued.
    pub(crate) async fn issue(&self, users: usize) -> Outcome<Vec<Issued>> {
        let mut tasks = JoinSet::new();
        let instances = self.apps.len();
        for (i, app) in self.apps.iter().enumerate() {
            let app = app.clone();
            tasks.spawn(async move {
                let mut issued = Vec::new();
                for user in (i..users).step_by(instances) {
                    let registration = app
                        .keys()
                        .register_user(NewUser::named(format!("capacity-user-{user}")))
                        .await
                        .context(&format!("registering user {user} on instance {i}"))?;
                    issued.extend(registration.keys.into_iter().map(|key| Issued {
                        id: key.key.id.clone(),
                        secret: key.plaintext.expose_secret().to_owned(),
                    }));
                }
                Ok::<_, Failure>(issued)
            });
        }
        let mut all = Vec::with_capacity(users * 2);
        while let Some(joined) = tasks.join_next().await {
            all.extend(joined.context("a registering task")??);
        }
        Ok(all)
    }

    /// Every instance resolves every one of `secrets` once, `concurrency` at a time
    /// per instance, all instances at once: a fleet's cold start.
    pub(crate) async fn prefill(
        &self,
        secrets: &Arc<Vec<String>>,
        concurrency: usize,
    ) -> Outcome<()> {
        let mut tasks = JoinSet::new();
        for (i, app) in self.apps.iter().enumerate() {
            for lane in 0..concurrency.max(1) {
                let (app, secrets) = (app.clone(), Arc::clone(secrets));
                tasks.spawn(async move {
                    for secret in secrets.iter().skip(lane).step_by(concurrency.max(1)) {
                        app.resolver()
                            .resolve(secret)
                            .await
                            .context(&format!("instance {i} resolving an active key"))?;
                    }
                    Ok::<_, Failure>(())
                });
            }
        }
        while let Some(joined) = tasks.join_next().await {
            joined.context("a prefill task")??;
        }
        Ok(())
    }

    /// Starts `rate` requests per second in total, an equal share per instance, each
    /// a `resolve` of one of `secrets` at random.
    pub(crate) fn start_load(&self, secrets: &Arc<Vec<String>>, rate: f64) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(LoadCounts::default());
        let instances = self.apps.len();
        let period = Duration::from_secs_f64(instances as f64 / rate);
        let drivers = self
            .apps
            .iter()
            .enumerate()
            .map(|(i, app)| {
                let (app, secrets) = (app.clone(), Arc::clone(secrets));
                let (stop, counts) = (Arc::clone(&stop), Arc::clone(&counts));
                // Instances tick at evenly spread phases, not all at once.
                let phase = period.mul_f64(i as f64 / instances as f64);
                let mut random = SplitMix(0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1));
                tokio::spawn(async move {
                    tokio::time::sleep(phase).await;
                    let mut ticks = tokio::time::interval(period);
                    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
                    while !stop.load(Ordering::Relaxed) {
                        ticks.tick().await;
                        let pick = random.below(secrets.len());
                        let (app, secrets, counts) =
                            (app.clone(), Arc::clone(&secrets), Arc::clone(&counts));
                        counts.sent.fetch_add(1, Ordering::Relaxed);
                        tokio::spawn(async move {
                            let Some(secret) = secrets.get(pick) else {
                                return;
                            };
                            match app.resolver().resolve(secret).await {
                                Ok(_) => counts.ok.fetch_add(1, Ordering::Relaxed),
                                Err(error) => counts.failed(&error),
                            };
                        });
                    }
                })
            })
            .collect();
        Load {
            stop,
            counts,
            drivers,
        }
    }

    /// Revokes each of `keys` on instance 0, one at a time; for every other instance,
    /// the time from `revoke` returning until it refuses the key (each key is first
    /// resolved, so cached, on every instance). An instance that still accepts a key
    /// after `limit` is a failure of the bound, reported, not waited for.
    pub(crate) async fn propagation(
        &self,
        keys: &[Issued],
        limit: Duration,
    ) -> Outcome<Propagation> {
        let Some(revoker) = self.apps.first() else {
            return Err(Failure::new("no instances"));
        };
        let mut result = Propagation::default();
        for key in keys {
            for (i, app) in self.apps.iter().enumerate() {
                app.resolver()
                    .resolve(&key.secret)
                    .await
                    .context(&format!("instance {i} resolving a key before its revoke"))?;
            }
            revoker.keys().revoke(&key.id).await.context("revoking")?;
            let since = Instant::now();
            let mut others = JoinSet::new();
            for app in self.apps.iter().skip(1) {
                others.spawn(refused_after(app.clone(), key.secret.clone(), since, limit));
            }
            match revoker.resolver().resolve(&key.secret).await {
                Err(AuthError::Revoked) => {}
                Ok(_) => result
                    .failures
                    .push("the revoking instance accepted a key it had revoked".to_owned()),
                Err(other) => result.failures.push(format!(
                    "the revoking instance answered {other} for a key it had revoked"
                )),
            }
            while let Some(joined) = others.join_next().await {
                match joined.context("a propagation task")? {
                    Ok(took) => result.times.push(took),
                    Err(failure) => result.failures.push(failure),
                }
            }
        }
        Ok(result)
    }

    /// Drops every instance and ends its background work.
    pub(crate) fn shut_down(self) {
        for task in &self.background {
            task.abort();
        }
        drop(self.apps);
    }
}

/// How long `app` took, from `since`, to refuse `secret` as revoked.
async fn refused_after(
    app: Keyroute<Postgres>,
    secret: String,
    since: Instant,
    limit: Duration,
) -> Result<Duration, String> {
    loop {
        match app.resolver().resolve(&secret).await {
            Err(AuthError::Revoked) => return Ok(since.elapsed()),
            Ok(_) => {}
            Err(other) => return Err(format!("a revoked key was answered with {other}")),
        }
        if since.elapsed() > limit {
            return Err(format!("a revoked key was still accepted after {limit:?}"));
        }
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
}

/// Propagation times to the other instances, and what went wrong.
#[derive(Debug, Default)]
pub(crate) struct Propagation {
    /// One per (revoked key, other instance).
    pub(crate) times: Vec<Duration>,
    /// Instances that answered something else than `Revoked`, or too late.
    pub(crate) failures: Vec<String>,
}

/// The running load.
#[derive(Debug)]
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    counts: Arc<LoadCounts>,
    drivers: Vec<JoinHandle<()>>,
}

impl Load {
    /// Requests sent, answered `Ok`, and failed so far.
    pub(crate) fn counts(&self) -> (u64, u64, u64) {
        let c = &self.counts;
        (
            c.sent.load(Ordering::Relaxed),
            c.ok.load(Ordering::Relaxed),
            c.failed.load(Ordering::Relaxed),
        )
    }

    /// The first failure, if any.
    pub(crate) fn first_error(&self) -> Option<String> {
        self.counts
            .first_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stops sending, waits for the requests in flight; the final counts (sent, Ok,
    /// failed) and the first failure.
    pub(crate) async fn stop(mut self) -> ((u64, u64, u64), Option<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for driver in std::mem::take(&mut self.drivers) {
            let _ended = driver.await;
        }
        let (sent, ok, failed) = self.counts();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut answered = ok + failed;
        while answered < sent && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
            let (_, ok, failed) = self.counts();
            answered = ok + failed;
        }
        (self.counts(), self.first_error())
    }
}

/// The load's counters.
#[derive(Debug, Default)]
struct LoadCounts {
    sent: AtomicU64,
    ok: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl LoadCounts {
    /// Counts a failed request; keeps the first failure's text.
    fn failed(&self, error: &AuthError) -> u64 {
        let mut first = self
            .first_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if first.is_none() {
            *first = Some(error.to_string());
        }
        self.failed.fetch_add(1, Ordering::Relaxed)
    }
}

/// SplitMix64: enough randomness to pick keys, no dependency.
struct SplitMix(u64);

impl SplitMix {
    /// A number in `0..n` (`0` for `n == 0`).
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z % (n.max(1) as u64)) as usize
    }
}
