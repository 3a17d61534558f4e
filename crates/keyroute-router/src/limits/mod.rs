//! Usage limits in the request pipeline: `[limits]` ([`LimitsConfig`]), the
//! [`Limiter`] the resolver runs after a caller is resolved, and its engines: the
//! in-process [`LocalLimiter`] (the default) and, with the `valkey` feature, a shared
//! one on Valkey/Redis.
//!
//! For each request the limiter takes the limits that apply to the caller (the
//! configured defaults for its key type and environment, replaced by name by the key's
//! own), checks the request's cost against all of them at once (admitted only if all
//! admit; a refusal spends nothing), then spends the key's credits in the store. A
//! request refused for its credits gets its cost back from the rate limits.
//!
//! A shared engine that fails, or does not answer within `timeout`, opens a breaker:
//! for `retry_after` every check goes straight to each limit's fallback (`local`:
//! this instance's own limiter; `refuse`: 503 `unavailable`), then one check tries the
//! engine again. Transitions are logged.

mod breaker;
mod config;
mod local;
#[cfg(feature = "valkey")]
mod valkey;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use keyroute_core::limits::{CreditSpend, Gcra, LimitRefusal, LimitScope, LimitUsage, RateLimit};
use keyroute_core::{ApiKeyStore, AuthError, ConfigError, Principal};

use breaker::Breaker;
pub use config::{DefaultLimit, EngineKind, FailMode, LimitsConfig, ValkeyUrl};
pub use local::LocalLimiter;
#[cfg(feature = "valkey")]
pub use valkey::ValkeyLimiter;

/// One limit to check: the counter's name (unique per limit and subject) and the
/// limit's parameters.
#[derive(Debug, Clone, Copy)]
pub struct Check<'a> {
    /// The counter: `<scope>:<environment>:<owner>:<limit name>`.
    pub subject: &'a str,
    /// The limit's parameters.
    pub gcra: Gcra,
}

/// One limit after a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitStatus {
    /// Units that could still be admitted at once.
    pub remaining: u64,
    /// How long until the limit is full again.
    pub reset_after: Duration,
}

/// Every limit's status after a check, in the order of the checks (inline up to four:
/// a check allocates nothing for them).
pub type Statuses = smallvec::SmallVec<[LimitStatus; 4]>;

/// What an engine decided for a set of limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every limit admitted the cost, and it was spent from each.
    Admitted(Statuses),
    /// The limit at `index` refused; nothing was spent.
    Refused {
        /// Which check refused (the first one that did).
        index: usize,
        /// How long until the cost would be admitted.
        retry_after: Duration,
        /// Every limit as it stands.
        statuses: Statuses,
    },
}

impl Verdict {
    /// Whether the request was admitted.
    pub fn admitted(&self) -> bool {
        matches!(self, Verdict::Admitted(_))
    }
}

/// A shared engine could not answer.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
#[error("the shared limiter failed: {0}")]
pub struct EngineError(pub String);

/// The shared engine behind a [`Limiter`].
#[async_trait::async_trait]
pub trait SharedEngine: Send + Sync + fmt::Debug {
    /// As [`LocalLimiter::check`], on state every instance shares: one round trip.
    async fn check(&self, checks: &[Check<'_>], cost: u64) -> Result<Verdict, EngineError>;
    /// As [`LocalLimiter::refund`].
    async fn refund(&self, checks: &[Check<'_>], cost: u64) -> Result<(), EngineError>;
}

/// A limit that applies to a request, borrowed from the configured defaults or the
/// caller's key.
struct Applicable<'a> {
    limit: &'a RateLimit,
    fail: FailMode,
    subject: String,
}

/// A request's limits, inline up to four (a request's step allocates only their
/// counters' names).
type Applicables<'a> = smallvec::SmallVec<[Applicable<'a>; 4]>;

/// The limits step of the request pipeline: rate limits (in process or shared) and
/// credits (in the key store). Cheap to clone.
#[derive(Clone)]
pub struct Limiter {
    inner: Arc<LimiterInner>,
}

struct LimiterInner {
    local: LocalLimiter,
    shared: Option<(Arc<dyn SharedEngine>, Breaker, Duration)>,
    defaults: Vec<DefaultLimit>,
    on_unavailable: FailMode,
}

impl fmt::Debug for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limiter")
            .field("shared", &self.inner.shared.as_ref().map(|(e, _, _)| e))
            .field("defaults", &self.inner.defaults)
            .finish_non_exhaustive()
    }
}

impl Limiter {
    /// An in-process limiter with `config`'s defaults (its engine setting aside).
    pub fn in_process(config: &LimitsConfig) -> Self {
        Self::with_engine(config, None)
    }

    /// A limiter on `shared` (or in process, with `None`), with `config`'s defaults,
    /// fallbacks and breaker.
    pub fn with_engine(config: &LimitsConfig, shared: Option<Arc<dyn SharedEngine>>) -> Self {
        Self {
            inner: Arc::new(LimiterInner {
                local: LocalLimiter::new(config.max_tracked),
                shared: shared.map(|e| (e, Breaker::new(config.retry_after), config.timeout)),
                defaults: config.default.clone(),
                on_unavailable: config.on_unavailable,
            }),
        }
    }

    /// The limiter `config` describes, connecting to the shared engine if it names
    /// one.
    ///
    /// # Errors
    /// [`ConfigError`] for a URL the client refuses (`[limits] url`). An unreachable
    /// server is not an error here: checks fall back until it answers.
    pub async fn from_config(config: &LimitsConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        #[cfg(feature = "valkey")]
        if config.engine == EngineKind::Valkey
            && let Some(url) = &config.url
        {
            let engine = ValkeyLimiter::connect(url, &config.key_prefix)
                .map_err(|e| ConfigError::invalid(LimitsConfig::SECTION, "url", e))?;
            return Ok(Self::with_engine(config, Some(Arc::new(engine))));
        }
        Ok(Self::in_process(config))
    }

    /// The limits that apply to `principal`: the defaults for its key type and
    /// environment, each replaced by the key's own limit of the same name, then the
    /// key's other limits.
    fn applicable<'a>(&'a self, principal: &'a Principal) -> Applicables<'a> {
        let own = principal.api_key().map_or(&[][..], |k| k.limits.as_slice());
        let defaults = self
            .inner
            .defaults
            .iter()
            .filter(|d| d.applies_to(principal));
        let mut limits: Applicables<'a> = defaults
            .map(|d| {
                let limit = own
                    .iter()
                    .find(|l| l.name() == d.limit.name())
                    .unwrap_or(&d.limit);
                let fail = d.on_unavailable.unwrap_or(self.inner.on_unavailable);
                (limit, fail)
            })
            .chain(
                own.iter()
                    .filter(|l| {
                        !self
                            .inner
                            .defaults
                            .iter()
                            .any(|d| d.applies_to(principal) && d.limit.name() == l.name())
                    })
                    .map(|l| (l, self.inner.on_unavailable)),
            )
            .map(|(limit, fail)| Applicable {
                subject: subject(limit, principal),
                limit,
                fail,
            })
            .collect();
        if limits.len() > 1 {
            limits.sort_by(|a, b| a.subject.cmp(&b.subject));
            limits.dedup_by(|a, b| a.subject == b.subject);
        }
        limits
    }

    /// [`admit`](Self::admit) where it needs no `.await`: with the in-process engine
    /// and no credits to spend (the common case), the decision; otherwise the
    /// principal back, for `admit`. The request pipeline calls this first, so the
    /// common case takes no future of its own.
    pub fn admit_in_process(&self, principal: Principal, cost: u64) -> Admission {
        let metered = principal.api_key().is_some_and(|k| k.credits.is_some());
        if !metered
            && self.inner.defaults.is_empty()
            && principal.api_key().is_none_or(|k| k.limits.is_empty())
        {
            // Nothing applies: the common case costs no allocation.
            return Admission::Decided(Ok(principal));
        }
        if self.inner.shared.is_some() || (metered && cost > 0) {
            return Admission::Ask(principal);
        }
        let limits = self.applicable(&principal);
        if limits.is_empty() {
            drop(limits);
            return Admission::Decided(Ok(principal));
        }
        let checks = checks(&limits);
        let decided = match self.inner.local.check(&checks, cost) {
            Verdict::Admitted(statuses) => Ok(usage::<Arc<[LimitUsage]>>(&limits, &statuses)),
            Verdict::Refused {
                index,
                retry_after,
                statuses,
            } => Err(refused(index, retry_after, &limits, &statuses)),
        };
        drop(checks);
        drop(limits);
        Admission::Decided(decided.map(|usage| principal.with_usage(usage)))
    }

    /// Checks `principal`'s request of `cost` units against its limits and spends its
    /// credits in `store`: the principal with its usage recorded, or the refusal.
    ///
    /// # Errors
    /// [`AuthError::RateLimited`], [`AuthError::CreditsExhausted`],
    /// [`AuthError::LimitsUnavailable`] (a limit set to refuse while the shared engine
    /// is unreachable), or a store error from spending credits.
    pub async fn admit<S: ApiKeyStore + ?Sized>(
        &self,
        store: &S,
        principal: Principal,
        cost: u64,
        now: DateTime<Utc>,
    ) -> Result<Principal, AuthError> {
        let principal = match self.admit_in_process(principal, cost) {
            Admission::Decided(decided) => return decided,
            Admission::Ask(principal) => principal,
        };
        let limits = self.applicable(&principal);
        let checks = checks(&limits);
        let (verdict, shared) = self.decide(&limits, &checks, cost).await?;
        let statuses = match verdict {
            Verdict::Admitted(statuses) => statuses,
            Verdict::Refused {
                index,
                retry_after,
                statuses,
            } => return Err(refused(index, retry_after, &limits, &statuses)),
        };
        let metered = principal.api_key().filter(|k| k.credits.is_some());
        if let Some(key) = metered
            && cost > 0
        {
            let spent = store.spend_credits(&key.id, cost, now).await;
            if let Ok(CreditSpend::Exhausted { next_refill_at, .. }) = spent {
                self.refund(&checks, cost, shared).await;
                return Err(AuthError::CreditsExhausted { next_refill_at });
            }
            if let Err(error) = spent {
                self.refund(&checks, cost, shared).await;
                return Err(AuthError::Store(error));
            }
        }
        let usage = usage::<Arc<[LimitUsage]>>(&limits, &statuses);
        drop(checks);
        drop(limits);
        Ok(principal.with_usage(usage))
    }

    /// The engines' verdict, and whether the shared engine gave it.
    async fn decide(
        &self,
        limits: &[Applicable<'_>],
        checks: &[Check<'_>],
        cost: u64,
    ) -> Result<(Verdict, bool), AuthError> {
        if checks.is_empty() {
            return Ok((Verdict::Admitted(Statuses::new()), false));
        }
        let Some((engine, breaker, timeout)) = &self.inner.shared else {
            return Ok((self.inner.local.check(checks, cost), false));
        };
        if breaker.allows() {
            let answer = tokio::time::timeout(*timeout, engine.check(checks, cost)).await;
            match answer {
                Ok(Ok(verdict)) => {
                    breaker.succeeded();
                    return Ok((verdict, true));
                }
                Ok(Err(error)) => breaker.failed(&error),
                Err(_) => breaker.failed(&EngineError(format!(
                    "no answer within {} ms (`[limits] timeout`)",
                    timeout.as_millis()
                ))),
            }
        }
        if limits.iter().any(|a| a.fail == FailMode::Refuse) {
            return Err(AuthError::LimitsUnavailable);
        }
        Ok((self.inner.local.check(checks, cost), false))
    }

    async fn refund(&self, checks: &[Check<'_>], cost: u64, shared: bool) {
        match &self.inner.shared {
            Some((engine, _, timeout)) if shared => {
                let refunded = tokio::time::timeout(*timeout, engine.refund(checks, cost)).await;
                if !matches!(refunded, Ok(Ok(()))) {
                    tracing::debug!("keyroute: a refund to the shared limiter was lost");
                }
            }
            _ => self.inner.local.refund(checks, cost),
        }
    }
}

/// The counter of `limit` for `principal`: per key, user or tenant, per environment.
/// A key with no user (or no tenant) counts alone; a caller with no key (a person's
/// session) counts as its user, and one with neither as one shared `unknown` caller.
fn subject(limit: &RateLimit, principal: &Principal) -> String {
    let key = principal.key_id().map(|k| ("key", k.as_str()));
    let user = principal.user_id().map(|u| ("user", u.as_str()));
    let tenant = principal.tenant().map(|t| ("tenant", t.as_str()));
    let own = key.or(user).unwrap_or(("key", "unknown"));
    let (scope, owner) = match limit.scope() {
        LimitScope::User => user.unwrap_or(own),
        LimitScope::Tenant => tenant.unwrap_or(own),
        _ => own,
    };
    // Pieced together at its exact length: this runs for every limit of every limited
    // request, and `format!` would grow its buffer and go through the formatter.
    let parts = [
        scope,
        ":",
        principal.environment().as_str(),
        ":",
        owner,
        ":",
        limit.name(),
    ];
    let mut subject = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    parts.iter().for_each(|p| subject.push_str(p));
    subject
}

/// What the step decided without awaiting anything ([`Limiter::admit_in_process`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum Admission {
    /// The decision: the principal with its usage recorded, or the refusal.
    Decided(Result<Principal, AuthError>),
    /// The shared engine or the key store must be asked: [`Limiter::admit`].
    Ask(Principal),
}

/// The engines' view of `limits`: each counter and its rate, inline up to four.
fn checks<'a>(limits: &'a [Applicable<'_>]) -> smallvec::SmallVec<[Check<'a>; 4]> {
    limits
        .iter()
        .map(|a| Check {
            subject: &a.subject,
            gcra: a.limit.gcra(),
        })
        .collect()
}

/// Where each limit stands after an admitted request, collected straight into what
/// the caller keeps (the principal's `Arc<[LimitUsage]>`: one allocation).
fn usage<C: FromIterator<LimitUsage>>(limits: &[Applicable<'_>], statuses: &[LimitStatus]) -> C {
    limits
        .iter()
        .zip(statuses)
        .map(|(a, s)| LimitUsage::new(a.limit, s.remaining, s.reset_after))
        .collect()
}

/// The refusal of the limit at `index`, with where every limit stands.
fn refused(
    index: usize,
    retry_after: Duration,
    limits: &[Applicable<'_>],
    statuses: &[LimitStatus],
) -> AuthError {
    let name = limits
        .get(index)
        .map(|a| a.limit.name().to_owned())
        .unwrap_or_default();
    let mut refusal = LimitRefusal::new(name, retry_after);
    refusal.usage = usage(limits, statuses);
    AuthError::RateLimited(Box::new(refusal))
}

#[cfg(test)]
mod tests;
