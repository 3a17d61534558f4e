//! [`ValkeyLimiter`]: the shared engine, on Valkey or Redis (the `valkey` feature).
//! Every instance pointed at the same server shares every counter, so a limit holds
//! across all of them exactly as the in-process [`LocalLimiter`](super::LocalLimiter)
//! holds it within one.
//!
//! # What lives where
//!
//! - **On the server**: one string per active limiter, its theoretical arrival time
//!   (TAT) in microseconds on the *server's* clock, under the key
//!   `<key_prefix><subject>`, e.g. `keyroute:limits:key:live:<key id>:requests`
//!   (`[limits] key_prefix`, then the [`Check`]'s subject:
//!   `<scope>:<environment>:<owner>:<limit name>`). Nothing else is written.
//! - **Here**: the client, the two scripts' source and SHA-1, and one multiplexed
//!   connection ([`ConnectionManager`], which reconnects by itself), started in the
//!   background by [`ValkeyLimiter::connect`] (or by the first check, outside a tokio
//!   runtime) and never waited for there: an unreachable server is not an error at
//!   start-up; the [`Limiter`](super::Limiter)'s breaker and fallbacks deal with it at
//!   check time, and a later check connects. A connection that stops answering
//!   without breaking (a partition) is dropped after a few failed checks in a row,
//!   and the next check makes a new one.
//!
//! # One round trip per check, shared under load
//!
//! A check is one `EVALSHA` of a Lua script that takes all of the request's limits at
//! once and answers every limit's remaining units and reset time, which limit refused,
//! and its retry time. Checks made at the same time share a call (module `batch`):
//! while up to two calls are out, the checks that arrive queue and go in the next
//! one, up to 64 per call, so under load the server runs one script and the network
//! carries one command for many requests; a lone check goes at once. The script takes
//! `ARGV`: the number of checks, then per check its number of limits, its cost, and
//! each limit's interval and tolerance in microseconds; `KEYS`: every check's
//! prefixed subjects in order. Only when the server has forgotten the script (after a
//! restart or `SCRIPT FLUSH`) does the same call go again as `EVAL` with the script's
//! text, which the server then keeps: `NOSCRIPT` runs nothing, so the retry cannot
//! count a request twice. A script runs atomically, so concurrent checks from any
//! number of instances are exact.
//!
//! The script mirrors [`Gcra::check`] line for line: it reads the server's clock
//! (`redis.call('TIME')`, so the instances' clocks do not matter) and decides the
//! call's checks one after another at that one instant: each check's limits all at
//! once, writing each new TAT only if all admit (so a later check of the same call
//! sees them); a refusal writes nothing. Its numbers stay exact: Lua's are doubles,
//! exact below 2^53, and every value the script computes saturates at 2^52 µs (about 142 years, as [`Gcra`]
//! saturates at `u64::MAX` ns), where division is exact too. Intervals are rounded
//! *up* from nanoseconds to microseconds (the burst is kept), so the shared engine
//! never admits more than the in-process one.
//!
//! # Expiry
//!
//! Each TAT is written with `SET <key> <tat> PX <ms until the limiter is full again,
//! at least 1>`. A limiter whose TAT has passed is full, exactly as one never seen, so
//! the key expires when it no longer matters: idle limiters cost the server no memory,
//! and nothing needs cleaning up. A refund that leaves a limiter full deletes its key.
//!
//! The server must be a single Valkey or Redis (≥ 5; a primary with replicas is
//! fine), not a Cluster: one request's limiters are different keys in one script.
//!
//! Past 500 lines on purpose (about 540): a third of it is the two Lua scripts and the
//! contract they keep, which belong beside the code that calls them; the batching of
//! checks is in `valkey_batch.rs`.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use keyroute_core::limits::Gcra;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, FromRedisValue, RedisError, Script, ServerErrorKind};

use super::{Check, EngineError, LimitStatus, SharedEngine, ValkeyUrl, Verdict};
use batch::Batches;

#[path = "valkey_batch.rs"]
mod batch;

/// The largest time or duration the scripts compute with, in microseconds: 2^52, where
/// Lua's doubles still add, subtract and divide whole numbers exactly.
const MAX_MICROS: u64 = 1 << 52;

/// How long one connection attempt may take (TCP, TLS, `AUTH`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A backstop for an answer that never comes: `[limits] timeout` bounds each check
/// (and is normally far shorter); this only ends requests nobody waits for.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts the connection manager makes when a connection breaks, 50 ms to 500 ms
/// apart; the breaker's `retry_after` paces anything longer.
const RECONNECT_RETRIES: usize = 2;
/// Consecutive checks that failed to reach the server (errors or no answer in time)
/// after which the connection is dropped and the next check makes a new one: a server
/// that stopped answering without closing the connection (a partition, a paused host)
/// never breaks it, so the connection manager would not reconnect by itself.
const STALLS_BEFORE_RECONNECT: u32 = 3;

/// The check of a batch of requests, one after another at the server's one `now`: each
/// request's limits all decided, and their new TATs written only if all admit (so a
/// later request of the batch sees them). Mirrors `Gcra::check`
/// (crates/keyroute-core/src/limits/gcra.rs).
///
/// ARGV[1]: the number of requests; then per request: its number of limits n, its
/// cost, and each limit's interval and tolerance in µs. KEYS: every request's n
/// limiters, in order. Answers, per request: {refused (1-based, 0 if admitted),
/// retry_after, then per limiter: remaining, reset_after}, times in µs.
const CHECK_LUA: &str = r"-- keyroute: GCRA checks of a batch of requests' limits (mirrors Gcra::check)
if redis.replicate_commands then redis.replicate_commands() end
local MAX = 4503599627370496
local function add(a, b) local s = a + b if s > MAX then return MAX end return s end
local function mul(a, b) local p = a * b if p > MAX then return MAX end return p end
local function sub(a, b) if a > b then return a - b end return 0 end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local out = {}
local k = 0
local a = 1
for r = 1, tonumber(ARGV[1]) do
  local n = tonumber(ARGV[a + 1])
  local cost = tonumber(ARGV[a + 2])
  a = a + 2
  local o = #out
  out[o + 1] = 0
  out[o + 2] = 0
  local tats = {}
  for i = 1, n do
    local interval = tonumber(ARGV[a + 2 * i - 1])
    local tolerance = tonumber(ARGV[a + 2 * i])
    local tat = tonumber(redis.call('GET', KEYS[k + i]) or '0') or 0
    local base = math.max(tat, now)
    local full_at = add(now, tolerance)
    local allow_at = sub(add(base, mul(math.max(cost, 1), interval)), tolerance)
    if allow_at <= now then
      local new = add(base, mul(cost, interval))
      tats[i] = new
      out[o + 2 * i + 1] = math.floor(sub(full_at, new) / interval)
      out[o + 2 * i + 2] = new - now
    else
      if out[o + 1] == 0 then
        out[o + 1] = i
        out[o + 2] = allow_at - now
      end
      out[o + 2 * i + 1] = math.floor(sub(full_at, base) / interval)
      out[o + 2 * i + 2] = base - now
    end
  end
  if out[o + 1] == 0 and cost > 0 then
    for i = 1, n do
      local ms = math.max(math.ceil((tats[i] - now) / 1000), 1)
      redis.call('SET', KEYS[k + i], string.format('%.0f', tats[i]), 'PX', string.format('%.0f', ms))
    end
  end
  k = k + n
  a = a + 2 * n
end
return out
";

/// The refund: each existing limiter's TAT moved back by cost × interval, never before
/// the server's `now` (a limiter left full is deleted: the same thing, and no memory).
///
/// KEYS[i]: limiter i. ARGV[1]: cost; ARGV[i + 1]: limiter i's interval, in µs.
const REFUND_LUA: &str = r"-- keyroute: GCRA refund of one request's limits
if redis.replicate_commands then redis.replicate_commands() end
local MAX = 4503599627370496
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local cost = tonumber(ARGV[1])
for i = 1, #KEYS do
  local tat = tonumber(redis.call('GET', KEYS[i]) or '')
  if tat then
    local back = cost * tonumber(ARGV[i + 1])
    if back > MAX then back = MAX end
    local new = tat - back
    if new > now then
      local ms = math.max(math.ceil((new - now) / 1000), 1)
      redis.call('SET', KEYS[i], string.format('%.0f', new), 'PX', string.format('%.0f', ms))
    else
      redis.call('DEL', KEYS[i])
    end
  end
end
return 0
";

/// The shared limit engine on Valkey or Redis (`[limits] engine = "valkey"`): every
/// instance on the same server shares every counter, so a limit holds exactly across
/// all of them.
///
/// - **One round trip per check**, however many limits apply: one `EVALSHA` of a Lua
///   script that decides them all at once, atomically (`EVAL` with the script's text
///   only when the server has forgotten it, after a restart).
/// - **The server's clock** (`TIME`) decides, so the instances' clocks do not matter.
/// - **The same decisions as in process**: the script runs [`Gcra::check`]'s
///   arithmetic in whole microseconds, intervals rounded up (never more admitted);
///   admitted only if every limit admits, and a refusal writes nothing.
/// - **Keys**: one string per active limiter, `<key_prefix><subject>` (e.g.
///   `keyroute:limits:key:live:<key id>:requests`), holding its theoretical arrival
///   time; each expires when its limiter is full again, so idle limiters cost nothing.
/// - **A single server** (Valkey, or Redis ≥ 5; with replicas if you like), not a
///   Cluster.
///
/// One per process is enough (its connection is multiplexed and reconnects by
/// itself); share it behind an `Arc`. Checks made at the same time are sent together:
/// while a script call is on its way, the checks that arrive wait for the next call
/// and go in it, one script run deciding each of them in turn (at most 64 per call,
/// two calls out at a time). A lone check goes at once.
pub struct ValkeyLimiter {
    engine: Arc<Engine>,
    batches: Batches,
}

/// The client side of the server: its connection, scripts and key prefix.
struct Engine {
    client: redis::Client,
    url: ValkeyUrl,
    prefix: String,
    check: Script,
    refund: Script,
    /// The connection and its generation: made by `connect` (in a runtime), else by
    /// the first check, and again by the first check after it was dropped.
    connection: RwLock<Option<(u64, ConnectionManager)>>,
    generations: AtomicU64,
    /// Consecutive checks that did not reach the server.
    stalls: AtomicU32,
}

impl fmt::Debug for ValkeyLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL's Debug masks its password; the client's is not relied on.
        f.debug_struct("ValkeyLimiter")
            .field("url", &self.engine.url)
            .field("key_prefix", &self.engine.prefix)
            .finish_non_exhaustive()
    }
}

impl ValkeyLimiter {
    /// An engine for the server at `url` (`redis://[:password@]host[:port][/db]`, or
    /// `rediss://` for TLS with rustls and the system's root certificates), writing
    /// every key under `key_prefix`.
    ///
    /// Returns at once, and the server need not be up: called inside a tokio runtime,
    /// it starts connecting in the background (so the first check does not wait for
    /// the connection); outside one, the first check connects. A check that cannot
    /// reach the server fails with an [`EngineError`] (which the
    /// [`Limiter`](super::Limiter) turns into each limit's fallback), and a later
    /// check connects again.
    ///
    /// # Errors
    /// The client's error for a URL it refuses (a bad scheme, host or database).
    pub fn connect(url: &ValkeyUrl, key_prefix: &str) -> Result<Self, RedisError> {
        let client = redis::Client::open(url.expose())?;
        let engine = Engine {
            client,
            url: url.clone(),
            prefix: key_prefix.to_owned(),
            check: Script::new(CHECK_LUA),
            refund: Script::new(REFUND_LUA),
            connection: RwLock::new(None),
            generations: AtomicU64::new(0),
            stalls: AtomicU32::new(0),
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            // Only fails without a runtime; the first check then tries again.
            let _ = engine.connection();
        }
        Ok(Self {
            engine: Arc::new(engine),
            batches: Batches::default(),
        })
    }
}

impl Engine {
    /// The connection (and its generation), made now if there is none: the manager
    /// connects in a task of its own, so a check that gives up (`[limits] timeout`)
    /// does not abandon the connection half made.
    fn connection(&self) -> Result<(u64, ConnectionManager), EngineError> {
        if let Some(current) = self.read_slot() {
            return Ok(current);
        }
        let mut slot = self
            .connection
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(current) = slot.as_ref() {
            return Ok(current.clone());
        }
        // The manager spawns its tasks on the current tokio runtime: say so rather than
        // panic when there is none.
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            EngineError("the valkey limit engine needs a tokio runtime to connect".to_owned())
        })?;
        if self.url.expose().starts_with("rediss://") {
            install_rustls_provider();
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let manager = ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            .map_err(|e| self.error(&e))?;
        // Connect now, whoever waits: the first request on a lazy manager makes the
        // connection, and this one is never cancelled.
        let mut warm = manager.clone();
        runtime.spawn(async move {
            let _ = redis::cmd("PING")
                .query_async::<redis::Value>(&mut warm)
                .await;
        });
        let generation = self.generations.fetch_add(1, Ordering::Relaxed);
        *slot = Some((generation, manager.clone()));
        Ok((generation, manager))
    }

    fn read_slot(&self) -> Option<(u64, ConnectionManager)> {
        self.connection
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A check of `generation`'s connection did not reach the server: after a few in a
    /// row, drop that connection so the next check makes a new one.
    fn stalled(&self, generation: u64) {
        let stalls = self.stalls.fetch_add(1, Ordering::AcqRel).saturating_add(1);
        if stalls < STALLS_BEFORE_RECONNECT {
            return;
        }
        let mut slot = self
            .connection
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_some_and(|(g, _)| *g == generation) {
            *slot = None;
            tracing::debug!(
                "keyroute: dropping the valkey connection after {stalls} failed checks; the next check reconnects"
            );
        }
        self.stalls.store(0, Ordering::Release);
    }

    /// A caller stopped waiting for its check (`[limits] timeout`): a stall of the
    /// current connection.
    fn gave_up(&self) {
        if let Some((generation, _)) = self.read_slot() {
            self.stalled(generation);
        }
    }

    fn answered(&self) {
        if self.stalls.load(Ordering::Relaxed) != 0 {
            self.stalls.store(0, Ordering::Release);
        }
    }

    /// Runs `script` once: `EVALSHA`, then `EVAL` with its text if the server does
    /// not have it.
    async fn run<T: FromRedisValue>(
        &self,
        script: &Script,
        source: &str,
        keys: &[String],
        args: &[u64],
    ) -> Result<T, EngineError> {
        let (generation, mut conn) = self.connection()?;
        let mut attempt = Attempt {
            engine: self,
            generation,
            settled: false,
        };
        let mut call = redis::cmd("EVALSHA");
        call.arg(script.get_hash())
            .arg(keys.len())
            .arg(keys)
            .arg(args);
        let mut result = call.query_async::<T>(&mut conn).await;
        if matches!(&result, Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript)) {
            let mut call = redis::cmd("EVAL");
            call.arg(source).arg(keys.len()).arg(keys).arg(args);
            result = call.query_async::<T>(&mut conn).await;
        }
        attempt.settled = true;
        match result {
            Ok(value) => {
                self.answered();
                Ok(value)
            }
            Err(e) => {
                if is_connection_problem(&e) {
                    self.stalled(generation);
                }
                Err(self.error(&e))
            }
        }
    }

    /// `subject`'s key on the server.
    fn key(&self, subject: &str) -> String {
        format!("{}{subject}", self.prefix)
    }

    /// `e` as an [`EngineError`] naming the option at fault, with no password in it.
    fn error(&self, e: &RedisError) -> EngineError {
        let mut text = e.to_string();
        if let Some(password) = password(self.url.expose()) {
            text = text.replace(password, "***");
        }
        if is_connection_problem(e) {
            EngineError(format!(
                "cannot reach the server at `[limits] url` ({}): {text}",
                self.url.redacted()
            ))
        } else {
            EngineError(format!("the limits script failed on the server: {text}"))
        }
    }
}

/// A script call in flight: if it is dropped unsettled (a refund whose caller's
/// `[limits] timeout` ran out, or a batched call whose runtime stopped), the server did
/// not answer in time, which counts as a stall. A check's caller that gives up counts
/// through `Engine::gave_up` instead: its batched call goes on without it.
struct Attempt<'a> {
    engine: &'a Engine,
    generation: u64,
    settled: bool,
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.engine.stalled(self.generation);
        }
    }
}

#[async_trait::async_trait]
impl SharedEngine for ValkeyLimiter {
    async fn check(&self, checks: &[Check<'_>], cost: u64) -> Result<Verdict, EngineError> {
        if checks.is_empty() {
            return Ok(Verdict::Admitted(super::Statuses::new()));
        }
        let keys: Vec<String> = checks.iter().map(|c| self.engine.key(c.subject)).collect();
        let mut args = Vec::with_capacity(2 + 2 * checks.len());
        args.extend([checks.len() as u64, cost.min(MAX_MICROS)]);
        for check in checks {
            let (interval, tolerance) = micros(check.gcra);
            args.extend([interval, tolerance]);
        }
        let reply = self.batches.check(&self.engine, keys, args).await?;
        verdict(&reply, checks.len())
    }

    async fn refund(&self, checks: &[Check<'_>], cost: u64) -> Result<(), EngineError> {
        if checks.is_empty() || cost == 0 {
            return Ok(());
        }
        let keys: Vec<String> = checks.iter().map(|c| self.engine.key(c.subject)).collect();
        let mut args = Vec::with_capacity(1 + checks.len());
        args.push(cost.min(MAX_MICROS));
        args.extend(checks.iter().map(|c| micros(c.gcra).0));
        let engine = &self.engine;
        let _: i64 = engine.run(&engine.refund, REFUND_LUA, &keys, &args).await?;
        Ok(())
    }
}

/// A limit's interval and tolerance in microseconds: the interval rounded up (never a
/// faster rate than in process), the burst kept, both at most [`MAX_MICROS`].
fn micros(gcra: Gcra) -> (u64, u64) {
    let interval = gcra.interval().div_ceil(1_000).clamp(1, MAX_MICROS);
    let burst = (gcra.tolerance() / gcra.interval().max(1)).max(1);
    (interval, interval.saturating_mul(burst).min(MAX_MICROS))
}

/// The check script's answer as a [`Verdict`].
fn verdict(reply: &[i64], limits: usize) -> Result<Verdict, EngineError> {
    let unexpected = || {
        EngineError(format!(
            "the limits script answered {} numbers for {limits} limits; is `[limits] url` a Valkey or Redis server?",
            reply.len()
        ))
    };
    let [refused, retry_after, rest @ ..] = reply else {
        return Err(unexpected());
    };
    if rest.len() != 2 * limits {
        return Err(unexpected());
    }
    let micros = |v: i64| Duration::from_micros(u64::try_from(v).unwrap_or(0));
    let statuses = rest
        .chunks_exact(2)
        .map(|pair| LimitStatus {
            remaining: u64::try_from(pair[0]).unwrap_or(0),
            reset_after: micros(pair[1]),
        })
        .collect();
    match usize::try_from(*refused) {
        Ok(0) => Ok(Verdict::Admitted(statuses)),
        Ok(index) if index <= limits => Ok(Verdict::Refused {
            index: index - 1,
            retry_after: micros(*retry_after),
            statuses,
        }),
        _ => Err(unexpected()),
    }
}

/// Whether `e` means the server could not be reached (as opposed to a script or
/// server error).
fn is_connection_problem(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || matches!(
            e.kind(),
            ErrorKind::AuthenticationFailed | ErrorKind::InvalidClientConfig | ErrorKind::Parse
        )
}

/// The password in `url` (`scheme://[user]:password@host…`), if any.
fn password(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let userinfo = &rest[..rest.rfind('@')?];
    let password = userinfo.split_once(':').map_or(userinfo, |(_, p)| p);
    (!password.is_empty()).then_some(password)
}

/// Makes ring the process's rustls provider (the one keyroute compiles) before the
/// first TLS connection; the client builds its TLS configuration on the default.
fn install_rustls_provider() {
    static PROVIDER: std::sync::Once = std::sync::Once::new();
    PROVIDER.call_once(|| {
        let _already_set = rustls::crypto::ring::default_provider().install_default();
    });
}

#[cfg(test)]
#[path = "valkey_tests.rs"]
mod tests;
