//! [`JwtConfig`]: lifetimes, issuer and audience, accepted environments, clock leeway,
//! and the deny-list check and its cache.

use std::time::Duration;

use chrono::TimeDelta;
use keyroute_core::Environment;
use keyroute_core::config::check_duration;
use serde::{Deserialize, Serialize};

use crate::error::JwtServiceError;

/// The longest token accepted by default: 8 KiB, far above any token keyroute issues
/// (a few hundred bytes), low enough that oversized input costs nothing to refuse.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;

/// How tokens are issued and checked.
///
/// | option | default | meaning |
/// |---|---|---|
/// | `issuer` | none | written as `iss`; when set, tokens must carry it |
/// | `audience` | none | written as `aud`; when set, tokens must name it, and when unset tokens must not carry `aud` |
/// | `environments` | `live`, `test` | the environments tokens may carry (`env`) |
/// | `exchange_lifetime` | 15 minutes | lifetime of tokens an API key is exchanged for |
/// | `session_lifetime` | 1 hour | lifetime of session tokens |
/// | `leeway` | 5 seconds | slack for clock differences between instances when checking `exp` and `nbf` |
/// | `max_token_bytes` | 8 KiB | longer tokens are refused before any work |
/// | `check_deny_list` | true | consult the deny-list on every verification (cached) |
/// | `deny_cache_ttl` | 10 seconds | how long a deny-list answer is trusted; zero disables the cache |
/// | `deny_cache_capacity` | 100 000 | most ids the deny cache holds |
///
/// Build it with `Default` and the `with_*` methods, or set the public fields. Every
/// option but `environments` (always `[apikey]`'s) is also an option of the `[jwt]`
/// section ([`JwtSection`](crate::JwtSection)), under the field's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct JwtConfig {
    /// The `iss` written into tokens and required of them.
    pub issuer: Option<String>,
    /// The `aud` written into tokens and required of them.
    pub audience: Option<String>,
    /// The environments tokens may carry; any other `env` is an invalid claim. Not
    /// an option of `[jwt]`: the front door sets it to `[apikey] environments`.
    #[serde(skip)]
    pub environments: Vec<Environment>,
    /// How long a token exchanged for an API key lives (capped at the key's own expiry).
    #[serde(with = "keyroute_core::config::duration")]
    pub exchange_lifetime: Duration,
    /// How long a session token lives unless the request says otherwise.
    #[serde(with = "keyroute_core::config::duration")]
    pub session_lifetime: Duration,
    /// Tolerated clock difference when checking `exp` and `nbf`.
    #[serde(with = "keyroute_core::config::duration")]
    pub leeway: Duration,
    /// Tokens longer than this are refused with `TooLong` before any work.
    pub max_token_bytes: usize,
    /// Whether verification consults the deny-list. Off, a revoked key's exchanged
    /// tokens keep working until they expire (at most `exchange_lifetime`), and so do
    /// revoked JWTs issued as keys; see the crate docs for the trade-off.
    pub check_deny_list: bool,
    /// How long a deny-list answer is cached. Other instances see a revocation within
    /// this time; the revoking instance sees it at once. Zero: ask the store every time.
    #[serde(with = "keyroute_core::config::duration")]
    pub deny_cache_ttl: Duration,
    /// The most ids the deny cache holds.
    pub deny_cache_capacity: u64,
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            issuer: None,
            audience: None,
            environments: vec![Environment::LIVE, Environment::TEST],
            exchange_lifetime: Duration::from_secs(15 * 60),
            session_lifetime: Duration::from_secs(60 * 60),
            leeway: Duration::from_secs(5),
            max_token_bytes: DEFAULT_MAX_TOKEN_BYTES,
            check_deny_list: true,
            deny_cache_ttl: Duration::from_secs(10),
            deny_cache_capacity: 100_000,
        }
    }
}

impl JwtConfig {
    /// Sets the issuer.
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Sets the audience.
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Sets the accepted environments.
    pub fn with_environments(mut self, environments: Vec<Environment>) -> Self {
        self.environments = environments;
        self
    }

    /// Sets the lifetime of exchanged tokens.
    pub fn with_exchange_lifetime(mut self, lifetime: Duration) -> Self {
        self.exchange_lifetime = lifetime;
        self
    }

    /// Sets the default lifetime of session tokens.
    pub fn with_session_lifetime(mut self, lifetime: Duration) -> Self {
        self.session_lifetime = lifetime;
        self
    }

    /// Sets the clock leeway.
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Sets the token length cap.
    pub fn with_max_token_bytes(mut self, max: usize) -> Self {
        self.max_token_bytes = max;
        self
    }

    /// Turns the deny-list check on or off.
    pub fn with_deny_list_check(mut self, on: bool) -> Self {
        self.check_deny_list = on;
        self
    }

    /// Sets the deny cache's time to live and capacity.
    pub fn with_deny_cache(mut self, ttl: Duration, capacity: u64) -> Self {
        self.deny_cache_ttl = ttl;
        self.deny_cache_capacity = capacity;
        self
    }

    /// Checks the options.
    ///
    /// # Errors
    /// [`JwtServiceError::Config`] naming the option: no environments, a lifetime of zero or of
    /// 100 years or more, a non-zero leeway or deny-cache TTL of 100 years or more
    /// (see [`check_duration`]), a leeway over five minutes, a token cap under 512 bytes, an empty
    /// issuer or audience, or a cache with a TTL and no capacity.
    pub fn validate(&self) -> Result<(), JwtServiceError> {
        let fail = |msg: &str| Err(JwtServiceError::Config(msg.to_owned()));
        if self.environments.is_empty() {
            return fail("environments: list at least one environment");
        }
        let check = |name: &str, value: Duration| {
            check_duration("jwt", name, value)
                .map_err(|e| JwtServiceError::Config(format!("{name}: {}", e.reason)))
        };
        check("exchange_lifetime", self.exchange_lifetime)?;
        check("session_lifetime", self.session_lifetime)?;
        // Zero is legal for these two: no leeway, no deny cache.
        for (name, value) in [
            ("leeway", self.leeway),
            ("deny_cache_ttl", self.deny_cache_ttl),
        ] {
            if !value.is_zero() {
                check(name, value)?;
            }
        }
        if self.leeway > Duration::from_secs(300) {
            return fail("leeway: at most five minutes");
        }
        if self.max_token_bytes < 512 {
            return fail("max_token_bytes: at least 512");
        }
        if self.issuer.as_deref() == Some("") || self.audience.as_deref() == Some("") {
            return fail("issuer, audience: set a non-empty value or none");
        }
        if !self.deny_cache_ttl.is_zero() && self.deny_cache_capacity == 0 {
            return fail("deny_cache_capacity: over zero, or set deny_cache_ttl to zero");
        }
        Ok(())
    }

    /// The leeway in whole seconds, as `exp` and `nbf` are compared.
    pub(crate) fn leeway_secs(&self) -> i64 {
        i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX)
    }
}

/// A std duration as a chrono one, if it fits.
pub(crate) fn delta(duration: Duration) -> Option<TimeDelta> {
    TimeDelta::from_std(duration).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults validate; each bad option is named.
    #[test]
    fn validation() {
        assert!(JwtConfig::default().validate().is_ok());
        let bad = [
            JwtConfig::default().with_environments(vec![]),
            JwtConfig::default().with_exchange_lifetime(Duration::ZERO),
            JwtConfig::default().with_session_lifetime(Duration::MAX),
            JwtConfig::default().with_leeway(Duration::from_secs(301)),
            JwtConfig::default().with_max_token_bytes(10),
            JwtConfig::default().with_issuer(""),
            JwtConfig::default().with_deny_cache(Duration::from_secs(1), 0),
            JwtConfig::default().with_deny_cache(Duration::from_secs(3_155_760_000), 10),
        ];
        for config in bad {
            assert!(
                matches!(config.validate(), Err(JwtServiceError::Config(_))),
                "{config:?}"
            );
        }
    }
}
