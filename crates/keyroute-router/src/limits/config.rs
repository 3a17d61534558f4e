//! `[limits]` ([`LimitsConfig`]): the engine, its URL, the fallbacks, and the default
//! limits (`[[limits.default]]`, [`DefaultLimit`]).

use std::fmt;
use std::time::Duration;

use keyroute_core::limits::{LimitScope, RateLimit};
use keyroute_core::{ConfigError, Environment, KeyType, Principal};
use serde::{Deserialize, Serialize};

/// Which engine keeps the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum EngineKind {
    /// This process's memory: exact per instance, not shared.
    #[default]
    Memory,
    /// Valkey or Redis at `url`: exact across instances (the `valkey` feature).
    Valkey,
}

/// What a limit does while the shared engine cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum FailMode {
    /// Count on this instance alone until the engine is back (each instance admits up
    /// to the limit: lenient).
    #[default]
    Local,
    /// Refuse the request (503 `unavailable`).
    Refuse,
}

/// A limit every key of a type and environment gets, unless it has its own of the same
/// name: one `[[limits.default]]` table (`name`, `limit`, `window`, `burst`, `per`,
/// `key_type`, `environment`, `on_unavailable`; any other option is refused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "DefaultLimitFields", into = "DefaultLimitFields")]
#[non_exhaustive]
pub struct DefaultLimit {
    /// The limit (`name`, `limit`, `window`, `burst`, `per`).
    pub limit: RateLimit,
    /// Only keys of this type; every type when absent.
    pub key_type: Option<KeyType>,
    /// Only keys of this environment; every environment when absent.
    pub environment: Option<Environment>,
    /// What the limit does while the shared engine is unreachable; the section's
    /// `on_unavailable` when absent.
    pub on_unavailable: Option<FailMode>,
}

/// One `[[limits.default]]` table as written: every option by name, so a misspelt one
/// is refused (serde cannot refuse unknown options of a flattened struct).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DefaultLimitFields {
    name: String,
    limit: u64,
    #[serde(with = "keyroute_core::config::duration")]
    window: Duration,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    burst: Option<u64>,
    #[serde(default = "per_key")]
    per: LimitScope,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_type: Option<KeyType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    environment: Option<Environment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    on_unavailable: Option<FailMode>,
}

fn per_key() -> LimitScope {
    LimitScope::Key
}

impl TryFrom<DefaultLimitFields> for DefaultLimit {
    type Error = keyroute_core::limits::LimitError;

    fn try_from(f: DefaultLimitFields) -> Result<Self, Self::Error> {
        let mut limit = RateLimit::new(f.name, f.limit, f.window)?.per(f.per);
        if let Some(burst) = f.burst {
            limit = limit.with_burst(burst)?;
        }
        Ok(Self {
            limit,
            key_type: f.key_type,
            environment: f.environment,
            on_unavailable: f.on_unavailable,
        })
    }
}

impl From<DefaultLimit> for DefaultLimitFields {
    fn from(d: DefaultLimit) -> Self {
        Self {
            name: d.limit.name().to_owned(),
            limit: d.limit.limit(),
            window: d.limit.window(),
            burst: Some(d.limit.burst()),
            per: d.limit.scope(),
            key_type: d.key_type,
            environment: d.environment,
            on_unavailable: d.on_unavailable,
        }
    }
}

impl DefaultLimit {
    /// `limit` for every key.
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            key_type: None,
            environment: None,
            on_unavailable: None,
        }
    }

    pub(super) fn applies_to(&self, principal: &Principal) -> bool {
        self.environment
            .as_ref()
            .is_none_or(|env| env == principal.environment())
            && self
                .key_type
                .as_ref()
                .is_none_or(|t| Some(t) == principal.key_type())
    }
}

/// A Valkey/Redis URL (`redis://`, or `rediss://` for TLS). Its password never
/// appears in Debug output or serialized configuration.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct ValkeyUrl(String);

impl ValkeyUrl {
    /// The URL, password included: for connecting only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password masked.
    pub fn redacted(&self) -> String {
        match (self.0.split_once("://"), self.0.rfind('@')) {
            (Some((scheme, _)), Some(at)) => format!("{scheme}://***{}", &self.0[at..]),
            _ => self.0.clone(),
        }
    }
}

impl From<&str> for ValkeyUrl {
    fn from(url: &str) -> Self {
        Self(url.to_owned())
    }
}

impl fmt::Debug for ValkeyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for ValkeyUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

/// `[limits]`: the engine, its fallbacks, and the default limits.
///
/// ```toml
/// [limits]
/// engine = "valkey"            # or "memory" (the default)
/// url = "redis://limits:6379"  # rediss:// for TLS
///
/// [[limits.default]]
/// name = "requests"
/// limit = 100
/// window = "1m"
/// burst = 20
/// per = "key"                  # or "user", "tenant"
/// environment = "test"         # only test keys; every key when absent
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct LimitsConfig {
    /// Which engine keeps the counters: `memory` (default) or `valkey`.
    pub engine: EngineKind,
    /// The Valkey/Redis server, for `engine = "valkey"`.
    pub url: Option<ValkeyUrl>,
    /// Prefix of every key keyroute writes on the server. Default `keyroute:limits:`.
    pub key_prefix: String,
    /// What limits do while the server cannot be reached: `local` (default) or
    /// `refuse`. A default limit may say otherwise.
    pub on_unavailable: FailMode,
    /// How long a check waits for the server before it counts as unreachable.
    /// Default 100 ms.
    #[serde(with = "keyroute_core::config::duration")]
    pub timeout: Duration,
    /// How long the server is left alone after it failed, before one check tries it
    /// again. Default 1 s.
    #[serde(with = "keyroute_core::config::duration")]
    pub retry_after: Duration,
    /// The most limiters the in-process engine keeps (each about 100 bytes). Default
    /// 100 000.
    pub max_tracked: usize,
    /// Limits for every key of a type and environment (`[[limits.default]]`).
    pub default: Vec<DefaultLimit>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            engine: EngineKind::Memory,
            url: None,
            key_prefix: "keyroute:limits:".to_owned(),
            on_unavailable: FailMode::Local,
            timeout: Duration::from_millis(100),
            retry_after: Duration::from_secs(1),
            max_tracked: 100_000,
            default: Vec::new(),
        }
    }
}

impl LimitsConfig {
    /// The section these options are read from.
    pub const SECTION: &'static str = "limits";

    /// Checks the options: a URL for the shared engine, the feature it needs, times
    /// over zero, unique default names per key type and environment.
    ///
    /// # Errors
    /// [`ConfigError`] naming the option at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let s = Self::SECTION;
        if self.engine == EngineKind::Valkey {
            if self.url.is_none() {
                return Err(ConfigError::missing(
                    s,
                    "url",
                    "`engine = \"valkey\"` needs the server's URL (redis://host:6379)",
                ));
            }
            if cfg!(not(feature = "valkey")) {
                return Err(ConfigError::invalid(
                    s,
                    "engine",
                    "the valkey engine needs keyroute's `valkey` feature; enable it in Cargo.toml, or use engine = \"memory\"",
                ));
            }
        }
        if let Some(url) = &self.url
            && !(url.0.starts_with("redis://") || url.0.starts_with("rediss://"))
        {
            return Err(ConfigError::invalid(
                s,
                "url",
                "use a redis:// (or rediss:// for TLS) URL",
            ));
        }
        for (option, d) in [("timeout", self.timeout), ("retry_after", self.retry_after)] {
            if d.is_zero() {
                return Err(ConfigError::invalid(s, option, "must be over zero"));
            }
        }
        if self.key_prefix.is_empty() {
            return Err(ConfigError::invalid(
                s,
                "key_prefix",
                "give keyroute's keys a prefix (default `keyroute:limits:`), so they stay apart from others' on a shared server",
            ));
        }
        if self.max_tracked == 0 {
            return Err(ConfigError::invalid(s, "max_tracked", "must be over zero"));
        }
        for (i, d) in self.default.iter().enumerate() {
            let clash = self.default[..i].iter().any(|e| {
                e.limit.name() == d.limit.name()
                    && e.key_type == d.key_type
                    && e.environment == d.environment
            });
            if clash {
                return Err(ConfigError::invalid(
                    s,
                    "default",
                    format!(
                        "two default limits named '{}' apply to the same keys; rename one or set `key_type` / `environment`",
                        d.limit.name()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether any limit can apply: defaults are configured (keys may still carry
    /// their own limits or credits, which the limiter always honours).
    pub fn has_defaults(&self) -> bool {
        !self.default.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(toml_text: &str) -> Result<LimitsConfig, String> {
        let config: LimitsConfig = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }

    /// Defaults read from tables; bad settings are refused naming the option; the
    /// URL's password never shows.
    #[test]
    fn settings_are_read_and_checked() {
        let config = read(
            "[[default]]\nname = \"requests\"\nlimit = 5\nwindow = \"1s\"\nenvironment = \"test\"\non_unavailable = \"refuse\"\n",
        )
        .unwrap();
        assert_eq!(config.default.len(), 1);
        assert_eq!(config.default[0].limit.limit(), 5);
        assert_eq!(config.default[0].on_unavailable, Some(FailMode::Refuse));
        for (text, says) in [
            ("engine = \"valkey\"\n", "url"),
            ("url = \"http://x\"\n", "url"),
            ("key_prefix = \"\"\n", "key_prefix"),
            ("timeout = \"0s\"\n", "timeout"),
            ("max_tracked = 0\n", "max_tracked"),
            (
                "[[default]]\nname = \"r\"\nlimit = 5\nwindow = \"1s\"\nbrust = 3\n",
                "brust",
            ),
            (
                "[[default]]\nname = \"r\"\nlimit = 0\nwindow = \"1s\"\n",
                "limit",
            ),
            (
                "[[default]]\nname = \"r\"\nlimit = 1\nwindow = \"1s\"\n[[default]]\nname = \"r\"\nlimit = 2\nwindow = \"1s\"\n",
                "two default limits",
            ),
        ] {
            let error = read(text).unwrap_err();
            assert!(error.contains(says), "{text}: {error}");
        }
        let url = ValkeyUrl::from("redis://:s3cret@limits:6379/0");
        assert_eq!(format!("{url:?}"), "redis://***@limits:6379/0");
        assert_eq!(
            url.redacted(),
            "redis://***@limits:6379/0",
            "what Serialize writes"
        );
        assert_eq!(url.expose(), "redis://:s3cret@limits:6379/0");
    }
}
