//! Usage limits and credits as data: what a key, its user or its tenant may spend per
//! unit of time ([`RateLimit`]) and in total ([`Credits`]), and the pure logic behind
//! them (the [`Gcra`] rate algorithm every engine runs, and [`Credits::spend`]). The
//! engines that keep the counters (in process, or shared on Valkey/Redis) live in
//! keyroute-router; the balance of credits lives in the key store.
//!
//! A rate limit admits `limit` units per `window` on average, and up to `burst` units at
//! once. Its exact guarantee: over any stretch of time `d`, the units it admits are at
//! most `burst + d × limit / window` (rounded towards fewer). A request costs one unit
//! unless the handler says otherwise; cost 0 checks without spending.

mod credits;
mod gcra;

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use credits::{CreditSpend, Credits, Refill, RefillPeriod};
pub use gcra::{Gcra, GcraDecision};

/// The longest window a rate limit may have: 31 days.
pub const MAX_WINDOW: Duration = Duration::from_secs(31 * 24 * 60 * 60);

/// The most units a rate limit may admit per window, or at once.
pub const MAX_LIMIT: u64 = 1_000_000_000;

/// Whose traffic one limit counts: the key's own, all keys of its user, or all keys
/// of its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum LimitScope {
    /// Each key has its own counter.
    Key,
    /// The keys of one user share a counter (a key with no user counts alone).
    User,
    /// The keys of one tenant share a counter (a key with no tenant counts alone).
    Tenant,
}

impl LimitScope {
    /// `key`, `user` or `tenant`.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitScope::Key => "key",
            LimitScope::User => "user",
            LimitScope::Tenant => "tenant",
        }
    }
}

impl fmt::Display for LimitScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a limit or credit setting was refused. Never quotes more than a name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// A limit's name is empty, too long, or has characters other than lower-case
    /// letters, digits, `-` and `_`.
    #[error(
        "a limit's name must be 1 to 64 lower-case letters, digits, '-' or '_' (`name` of the limit)"
    )]
    BadName,
    /// `limit` or `burst` is zero or over [`MAX_LIMIT`].
    #[error("limit '{0}': `limit` and `burst` must be between 1 and 1000000000")]
    BadCount(String),
    /// The window is zero, shorter than a millisecond, or longer than [`MAX_WINDOW`].
    #[error("limit '{0}': `window` must be between 1ms and 31 days")]
    BadWindow(String),
    /// Text after a limit's rate that is neither `burst=N` nor `per=key|user|tenant`.
    #[error(
        "limit '{0}': after COUNT/WINDOW only `,burst=N` and `,per=key|user|tenant` may follow"
    )]
    BadOption(String),
    /// Two limits of one key have the same name.
    #[error("two limits are named '{0}'; give each limit of a key its own name")]
    DuplicateName(String),
    /// A refill of zero units, or an interval outside 1 s to 366 days.
    #[error("credits: a refill's `amount` must be over 0 and its interval between 1s and 366 days")]
    BadRefill,
}

/// A named rate limit: `limit` units per `window`, up to `burst` at once, counted for
/// the key, its user or its tenant (`per`).
///
/// ```
/// use std::time::Duration;
/// use keyroute_core::limits::{LimitScope, RateLimit};
/// let limit = RateLimit::new("requests", 100, Duration::from_secs(60))?
///     .with_burst(20)?
///     .per(LimitScope::User);
/// assert_eq!(limit.to_string(), "requests: 100 per 1m (burst 20) per user");
/// # Ok::<(), keyroute_core::limits::LimitError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RateLimitFields", into = "RateLimitFields")]
#[non_exhaustive]
pub struct RateLimit {
    name: std::sync::Arc<str>,
    limit: u64,
    window: Duration,
    burst: u64,
    per: LimitScope,
}

impl RateLimit {
    /// `limit` units per `window`, a burst of `limit`, counted per key.
    ///
    /// # Errors
    /// [`LimitError`] for a bad name, count or window.
    pub fn new(name: impl Into<String>, limit: u64, window: Duration) -> Result<Self, LimitError> {
        let name = name.into();
        check_name(&name)?;
        let limit = Self {
            burst: limit,
            name: name.into(),
            limit,
            window,
            per: LimitScope::Key,
        };
        limit.check()?;
        Ok(limit)
    }

    /// Sets how many units may be admitted at once.
    ///
    /// # Errors
    /// [`LimitError::BadCount`] for 0 or over [`MAX_LIMIT`].
    pub fn with_burst(mut self, burst: u64) -> Result<Self, LimitError> {
        self.burst = burst;
        self.check()?;
        Ok(self)
    }

    /// Sets whose traffic the limit counts.
    pub fn per(mut self, per: LimitScope) -> Self {
        self.per = per;
        self
    }

    fn check(&self) -> Result<(), LimitError> {
        for count in [self.limit, self.burst] {
            if count == 0 || count > MAX_LIMIT {
                return Err(LimitError::BadCount(self.name.to_string()));
            }
        }
        if self.window < Duration::from_millis(1) || self.window > MAX_WINDOW {
            return Err(LimitError::BadWindow(self.name.to_string()));
        }
        Ok(())
    }

    /// The limit's name, unique among a key's limits (`requests`, `writes`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Units admitted per window on average.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The window `limit` counts over.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Units that may be admitted at once.
    pub fn burst(&self) -> u64 {
        self.burst
    }

    /// Whose traffic the limit counts.
    pub fn scope(&self) -> LimitScope {
        self.per
    }

    /// The algorithm's parameters for this limit, in nanoseconds.
    pub fn gcra(&self) -> Gcra {
        Gcra::new(self.limit, self.window, self.burst)
    }

    /// Whether this limit admits no more than `other` (same name and scope, a rate and
    /// a burst no higher): what a key's limit must be to stay within its maker's.
    pub fn is_within(&self, other: &RateLimit) -> bool {
        // limit/window <= other.limit/other.window, compared without division.
        let rate = u128::from(self.limit) * other.window.as_nanos();
        let other_rate = u128::from(other.limit) * self.window.as_nanos();
        self.name == other.name
            && self.per == other.per
            && rate <= other_rate
            && self.burst <= other.burst
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} per {} (burst {}) per {}",
            self.name,
            self.limit,
            humantime::format_duration(self.window),
            self.burst,
            self.per
        )
    }
}

impl std::str::FromStr for RateLimit {
    type Err = LimitError;

    /// The command line's form: `NAME=COUNT/WINDOW`, then optionally `,burst=N` and
    /// `,per=key|user|tenant` (`requests=100/1m,burst=20,per=user`).
    fn from_str(text: &str) -> Result<Self, LimitError> {
        let mut parts = text.split(',');
        let head = parts.next().unwrap_or_default();
        let (name, rate) = head.split_once('=').ok_or(LimitError::BadName)?;
        let name = name.trim();
        let bad_count = || LimitError::BadCount(name.to_owned());
        let (count, window) = rate.split_once('/').ok_or_else(bad_count)?;
        let count = count.trim().parse().map_err(|_| bad_count())?;
        let window = humantime::parse_duration(window.trim())
            .map_err(|_| LimitError::BadWindow(name.to_owned()))?;
        let mut limit = RateLimit::new(name, count, window)?;
        for part in parts {
            match part.trim().split_once('=') {
                Some(("burst", n)) => {
                    limit = limit.with_burst(n.trim().parse().map_err(|_| bad_count())?)?;
                }
                Some(("per", "key")) => limit = limit.per(LimitScope::Key),
                Some(("per", "user")) => limit = limit.per(LimitScope::User),
                Some(("per", "tenant")) => limit = limit.per(LimitScope::Tenant),
                _ => return Err(LimitError::BadOption(name.to_owned())),
            }
        }
        Ok(limit)
    }
}

/// Checks a set of limits for one key: each valid (they are, once made), names unique.
///
/// # Errors
/// [`LimitError::DuplicateName`].
pub fn check_limits(limits: &[RateLimit]) -> Result<(), LimitError> {
    for (i, limit) in limits.iter().enumerate() {
        if limits[..i].iter().any(|l| l.name == limit.name) {
            return Err(LimitError::DuplicateName(limit.name.to_string()));
        }
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), LimitError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if ok { Ok(()) } else { Err(LimitError::BadName) }
}

/// Where one limit stood after a request was checked: what the `RateLimit` and
/// `RateLimit-Policy` headers say.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LimitUsage {
    /// The limit's name.
    pub name: std::sync::Arc<str>,
    /// Units per window.
    pub limit: u64,
    /// The window.
    pub window: Duration,
    /// Units that could still be admitted at once.
    pub remaining: u64,
    /// How long until the limit is full again.
    pub reset_after: Duration,
}

impl LimitUsage {
    /// The usage of `limit` as a decision left it.
    pub fn new(limit: &RateLimit, remaining: u64, reset_after: Duration) -> Self {
        Self {
            name: limit.name.clone(),
            limit: limit.limit,
            window: limit.window,
            remaining,
            reset_after,
        }
    }
}

/// Why a request was refused by a rate limit: the limit, when to retry, and every
/// applicable limit's usage (for the response's headers). Nothing was spent.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LimitRefusal {
    /// The name of the (first) limit that refused.
    pub name: String,
    /// How long until the request's cost would be admitted.
    pub retry_after: Duration,
    /// Every applicable limit as it stands (nothing spent).
    pub usage: Vec<LimitUsage>,
}

impl LimitRefusal {
    /// A refusal by the limit `name`, to be retried after `retry_after`.
    pub fn new(name: impl Into<String>, retry_after: Duration) -> Self {
        Self {
            name: name.into(),
            retry_after,
            usage: Vec::new(),
        }
    }

    /// `retry_after` in whole seconds, rounded up (`Retry-After` takes seconds).
    pub fn retry_after_secs(&self) -> u64 {
        let secs = self.retry_after.as_secs();
        if self.retry_after.subsec_nanos() > 0 {
            secs.saturating_add(1)
        } else {
            secs
        }
    }
}

/// A limit as written in `keyroute.toml`, JSON and the store:
/// `{ name, limit, window = "1m", burst, per = "key" }`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimitFields {
    name: String,
    limit: u64,
    #[serde(with = "humantime_text")]
    window: Duration,
    #[serde(default)]
    burst: Option<u64>,
    #[serde(default = "key_scope")]
    per: LimitScope,
}

fn key_scope() -> LimitScope {
    LimitScope::Key
}

impl TryFrom<RateLimitFields> for RateLimit {
    type Error = LimitError;

    fn try_from(f: RateLimitFields) -> Result<Self, LimitError> {
        let limit = RateLimit::new(f.name, f.limit, f.window)?.per(f.per);
        match f.burst {
            Some(burst) => limit.with_burst(burst),
            None => Ok(limit),
        }
    }
}

impl From<RateLimit> for RateLimitFields {
    fn from(l: RateLimit) -> Self {
        Self {
            name: l.name.to_string(),
            limit: l.limit,
            window: l.window,
            burst: Some(l.burst),
            per: l.per,
        }
    }
}

/// Durations as humantime text (`1m`, `250ms`).
pub(crate) mod humantime_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(*d))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(text.trim()).map_err(|_| {
            serde::de::Error::custom("a duration such as 1s, 1m, 1h or 1day is expected")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(name: &str, n: u64, secs: u64) -> RateLimit {
        RateLimit::new(name, n, Duration::from_secs(secs)).unwrap()
    }

    /// Bad settings are refused with the setting named; good ones round-trip as JSON.
    #[test]
    fn settings_are_checked_and_round_trip() {
        assert_eq!(
            RateLimit::new("", 1, Duration::from_secs(1)),
            Err(LimitError::BadName)
        );
        assert_eq!(
            RateLimit::new("Reads", 1, Duration::from_secs(1)),
            Err(LimitError::BadName)
        );
        assert!(matches!(
            RateLimit::new("r", 0, Duration::from_secs(1)),
            Err(LimitError::BadCount(_))
        ));
        assert!(matches!(
            RateLimit::new("r", 1, Duration::ZERO),
            Err(LimitError::BadWindow(_))
        ));
        assert!(matches!(
            limit("r", 5, 1).with_burst(0),
            Err(LimitError::BadCount(_))
        ));
        let l = limit("reads", 100, 60)
            .with_burst(10)
            .unwrap()
            .per(LimitScope::Tenant);
        let json = serde_json::to_string(&l).unwrap();
        assert_eq!(
            json,
            r#"{"name":"reads","limit":100,"window":"1m","burst":10,"per":"tenant"}"#
        );
        assert_eq!(serde_json::from_str::<RateLimit>(&json).unwrap(), l);
        let short: RateLimit =
            serde_json::from_str(r#"{"name":"r","limit":3,"window":"1s"}"#).unwrap();
        assert_eq!((short.burst(), short.scope()), (3, LimitScope::Key));
        assert!(
            serde_json::from_str::<RateLimit>(r#"{"name":"r","limit":0,"window":"1s"}"#).is_err()
        );
        assert!(check_limits(&[limit("a", 1, 1), limit("a", 2, 1)]).is_err());
        let parsed: RateLimit = "requests=100/1m,burst=20,per=user".parse().unwrap();
        assert_eq!(
            parsed,
            limit("requests", 100, 60)
                .with_burst(20)
                .unwrap()
                .per(LimitScope::User)
        );
        for bad in [
            "requests",
            "r=0/1m",
            "r=1/never",
            "r=1/1s,burst=0",
            "r=1/1s,per=planet",
            "R=1/1s",
        ] {
            assert!(bad.parse::<RateLimit>().is_err(), "{bad}");
        }
    }

    /// `is_within` compares rates across windows, bursts, names and scopes.
    #[test]
    fn within_compares_rate_and_burst() {
        let caller = limit("r", 60, 60); // 1/s, burst 60
        assert!(limit("r", 1, 1).with_burst(60).unwrap().is_within(&caller));
        assert!(!limit("r", 2, 1).with_burst(60).unwrap().is_within(&caller));
        assert!(!limit("r", 1, 1).with_burst(61).unwrap().is_within(&caller));
        assert!(!limit("s", 1, 1).is_within(&caller));
        assert!(!limit("r", 1, 1).per(LimitScope::User).is_within(&caller));
    }
}
