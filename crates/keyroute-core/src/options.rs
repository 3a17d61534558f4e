//! [`KeyOptions`]: how keys are made and checked, with ServiceStack's names and defaults.
//! The table of options is in `KeyOptions`' own docs, where the published docs show it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, check_duration};
use crate::model::ApiKey;
use crate::name::{Environment, KeyType};
use crate::secret::PlaintextKey;
use crate::token::{GenerateError, MAX_KEY_BYTES, MIN_KEY_BYTES, TokenFormat};

/// The configuration section these options are read from: `[apikey]`, and
/// `KEYROUTE_APIKEY_<OPTION>` variables.
pub(crate) const SECTION: &str = "apikey";

fn invalid(option: &str, reason: impl fmt::Display) -> ConfigError {
    ConfigError::invalid(SECTION, option, reason)
}

/// Makes the plaintext of a new key. Replaces keyroute's generator, e.g. to draw
/// entropy from an HSM. The result must still parse under the [`TokenFormat`] (it is
/// checked), so offline rejection keeps working; [`TokenFormat::encode`] does the
/// formatting.
pub trait KeyGenerator: Send + Sync {
    /// A new key of `key_type` for `environment`.
    ///
    /// # Errors
    /// Whatever stopped the key from being made.
    fn generate(
        &self,
        format: &TokenFormat,
        key_type: &KeyType,
        environment: &Environment,
    ) -> Result<PlaintextKey, GenerateError>;
}

impl<F> KeyGenerator for F
where
    F: Fn(&TokenFormat, &KeyType, &Environment) -> Result<PlaintextKey, GenerateError>
        + Send
        + Sync,
{
    fn generate(
        &self,
        format: &TokenFormat,
        key_type: &KeyType,
        environment: &Environment,
    ) -> Result<PlaintextKey, GenerateError> {
        self(format, key_type, environment)
    }
}

/// A filter run on every new key before it is stored: set a name, scopes, notes or
/// metadata. It may not change the key's id, hash, type or environment.
pub type CreateKeyHook = Arc<dyn Fn(&mut ApiKey) + Send + Sync>;

/// How keys are made and checked: the `[apikey]` section.
///
/// | option | default | meaning |
/// |---|---|---|
/// | `environments` | `live,test` | environments keys are issued for |
/// | `key_types` | `secret` | types of key each user gets |
/// | `type_prefixes` | `secret=sk,publishable=pk,restricted=rk` | token prefix per type |
/// | `key_size_bytes` | `24` | random bytes per key (at least 16) |
/// | `expire_keys_after` | none | lifetime of new keys (`90days`, `12h`) |
/// | `dangerous_accept_plain_http` | `false` | accept keys that arrive over plain HTTP (localhost only; ServiceStack's `RequireSecureConnection = false`) |
/// | `init_schema` | `true` | run the store's migrations at start-up |
/// | `session_cache_duration` | `5m` | how long a resolved key is cached at most (`none`: off) |
/// | `max_keys_per_user` | `100` | working keys a user may hold at once |
/// | `audit_retention` | `365days` | how long audit records are kept (`none`: for ever) |
/// | `legacy_keys` | `false` | accept imported keys that are not in keyroute's format (looked up by hash, no offline check) |
///
/// Options are set in code, or by keyroute's one configuration (the facade's `Config`)
/// from the `[apikey]` table of `keyroute.toml` and `KEYROUTE_APIKEY_<OPTION>`
/// environment variables. `KeyOptions` is that section's serde struct: its fields are
/// the options, and every source reads them through the same deserializer (see
/// [`config`](crate::config)), so an invalid value is the same [`ConfigError`] naming
/// the option wherever it came from. Lists are arrays in TOML and arrays or
/// comma-separated text in variables (`KEYROUTE_APIKEY_KEY_TYPES=secret,publishable`).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct KeyOptions {
    /// Environments keys are issued for. Default `live`, `test`.
    #[serde(with = "crate::config::list")]
    pub environments: Vec<Environment>,
    /// Types of key each user gets on registration. Default `secret`.
    #[serde(with = "crate::config::list")]
    pub key_types: Vec<KeyType>,
    /// The token prefix of each type. Default `secret=sk`, `publishable=pk`, `restricted=rk`.
    #[serde(with = "crate::config::map")]
    pub type_prefixes: BTreeMap<KeyType, String>,
    /// Random bytes per key. Default 24 (32 characters), at least 16.
    pub key_size_bytes: usize,
    /// Lifetime of new keys. Default none: keys do not expire.
    #[serde(with = "crate::config::optional_duration")]
    pub expire_keys_after: Option<Duration>,
    /// Accept keys presented over plain HTTP, where anyone on the path reads them.
    /// Default false: a key must arrive over TLS (or through a proxy listed in
    /// `[resolver] trusted_proxies` that says it did). For localhost only; the name
    /// says so, as rustls's `dangerous()` does (ServiceStack calls the opposite
    /// `RequireSecureConnection`).
    pub dangerous_accept_plain_http: bool,
    /// Run the store's migrations at start-up. Default true.
    pub init_schema: bool,
    /// How long a resolved key is cached at most. Default 5 minutes; `None` (`none`
    /// in configuration) turns the cache off, as in ServiceStack, and every request
    /// looks its key up.
    ///
    /// The cache is used only while the store's change feed is live (the resolver
    /// serves uncached otherwise), and every revocation, on any instance, evicts
    /// through the feed within its bound. So this duration is not how long a revoked
    /// key may linger; it is a backstop that bounds how long an entry lives if an
    /// event were ever lost in a way the feed could not detect, and it lets an
    /// expired or edited row be re-read now and then. Five minutes keeps the
    /// backstop short while a busy key still costs one lookup per five minutes.
    #[serde(with = "crate::config::optional_duration")]
    pub session_cache_duration: Option<Duration>,
    /// The most working keys one user may hold at once (issued, or kept working by a
    /// roll's grace period), so one caller cannot fill the store. Default 100.
    pub max_keys_per_user: usize,
    /// How long the audit trail keeps a record; older ones are purged by the handle's
    /// background task. Default 365 days; `None` (`none`) keeps them for ever.
    #[serde(with = "crate::config::optional_duration")]
    pub audit_retention: Option<Duration>,
    /// Accept keys imported from an earlier scheme (`keyroute keys import`) that are
    /// not in keyroute's format: a token that fails keyroute's offline checks is then
    /// looked up by its SHA-256 instead of being refused at once. The cost: mistyped
    /// and forged tokens each cost a lookup (the negative cache absorbs repeats), for
    /// every request, not only legacy ones. Default false.
    pub legacy_keys: bool,
    /// Replaces keyroute's key generator. Code only, not configuration.
    #[serde(skip)]
    pub generate_key: Option<Arc<dyn KeyGenerator>>,
    /// Run on every new key before it is stored. Code only, not configuration.
    #[serde(skip)]
    pub on_create_key: Option<CreateKeyHook>,
}

impl Default for KeyOptions {
    fn default() -> Self {
        Self {
            environments: vec![Environment::LIVE, Environment::TEST],
            key_types: vec![KeyType::SECRET],
            type_prefixes: BTreeMap::from([
                (KeyType::SECRET, "sk".to_owned()),
                (KeyType::PUBLISHABLE, "pk".to_owned()),
                (KeyType::RESTRICTED, "rk".to_owned()),
            ]),
            key_size_bytes: 24,
            expire_keys_after: None,
            dangerous_accept_plain_http: false,
            init_schema: true,
            session_cache_duration: Some(Duration::from_secs(300)),
            max_keys_per_user: 100,
            audit_retention: Some(Duration::from_secs(365 * 24 * 3600)),
            legacy_keys: false,
            generate_key: None,
            on_create_key: None,
        }
    }
}

impl fmt::Debug for KeyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyOptions")
            .field("environments", &self.environments)
            .field("key_types", &self.key_types)
            .field("type_prefixes", &self.type_prefixes)
            .field("key_size_bytes", &self.key_size_bytes)
            .field("expire_keys_after", &self.expire_keys_after)
            .field(
                "dangerous_accept_plain_http",
                &self.dangerous_accept_plain_http,
            )
            .field("init_schema", &self.init_schema)
            .field("session_cache_duration", &self.session_cache_duration)
            .field("max_keys_per_user", &self.max_keys_per_user)
            .field("audit_retention", &self.audit_retention)
            .field("legacy_keys", &self.legacy_keys)
            .field(
                "generate_key",
                &self.generate_key.as_ref().map(|_| "custom"),
            )
            .field(
                "on_create_key",
                &self.on_create_key.as_ref().map(|_| "custom"),
            )
            .finish()
    }
}

impl KeyOptions {
    /// Sets one option of the `[apikey]` section from text, as the variable
    /// `KEYROUTE_APIKEY_<OPTION>` would: a thin wrapper over the deserializer every
    /// source goes through ([`set_option`](crate::config::set_option)). The hooks are
    /// kept.
    ///
    /// Checks the value alone; options that depend on each other (a key type and its
    /// prefix) are checked by [`validate`](Self::validate), which every loader runs once
    /// all options are set, so the order of variables does not matter.
    ///
    /// # Errors
    /// [`ConfigError`] naming the option: unknown, or an invalid value.
    pub fn set(&mut self, option: &str, value: &str) -> Result<(), ConfigError> {
        let mut updated = crate::config::set_option(SECTION, self, option, value)?;
        updated.generate_key = self.generate_key.take();
        updated.on_create_key = self.on_create_key.take();
        *self = updated;
        Ok(())
    }

    /// Checks the options hang together.
    ///
    /// # Errors
    /// [`ConfigError`] naming the option at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&self.key_size_bytes) {
            return Err(invalid(
                "key_size_bytes",
                format_args!(
                    "{} is outside {MIN_KEY_BYTES}..={MAX_KEY_BYTES}; fewer than 16 random bytes are guessable",
                    self.key_size_bytes
                ),
            ));
        }
        if self.max_keys_per_user == 0 {
            return Err(invalid(
                "max_keys_per_user",
                "0 would refuse every key; give at least 1 (default 100)",
            ));
        }
        check_unique_nonempty("environments", &self.environments)?;
        check_unique_nonempty("key_types", &self.key_types)?;
        for key_type in &self.key_types {
            if !self.type_prefixes.contains_key(key_type) {
                return Err(invalid(
                    "type_prefixes",
                    format_args!("key type '{key_type}' has no prefix; add e.g. {key_type}=xk"),
                ));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for prefix in self.type_prefixes.values() {
            let valid = (1..=8).contains(&prefix.len())
                && prefix
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            if !valid {
                return Err(invalid(
                    "type_prefixes",
                    format_args!("prefix {prefix:?} must be 1 to 8 characters of a-z and 0-9"),
                ));
            }
            if !seen.insert(prefix) {
                return Err(invalid(
                    "type_prefixes",
                    format_args!("prefix {prefix:?} is used by two key types"),
                ));
            }
        }
        for (option, duration) in [
            ("expire_keys_after", self.expire_keys_after),
            ("session_cache_duration", self.session_cache_duration),
            ("audit_retention", self.audit_retention),
        ] {
            if let Some(duration) = duration {
                check_duration(SECTION, option, duration)?;
            }
        }
        Ok(())
    }

    /// The token format these options describe.
    ///
    /// # Errors
    /// As [`Self::validate`].
    pub fn token_format(&self) -> Result<TokenFormat, ConfigError> {
        self.validate()?;
        let prefixes = self
            .type_prefixes
            .iter()
            .map(|(t, p)| (p.clone(), t.clone(), self.key_types.contains(t)))
            .collect();
        Ok(TokenFormat::new(
            prefixes,
            self.environments.clone(),
            self.key_size_bytes,
        ))
    }
}

fn check_unique_nonempty<T: Ord + fmt::Display>(
    option: &str,
    items: &[T],
) -> Result<(), ConfigError> {
    if items.is_empty() {
        return Err(invalid(option, "needs at least one entry"));
    }
    let mut seen = std::collections::BTreeSet::new();
    match items.iter().find(|item| !seen.insert(*item)) {
        Some(dup) => Err(invalid(option, format_args!("'{dup}' is listed twice"))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults are ServiceStack's.
    #[test]
    fn defaults() {
        let o = KeyOptions::default();
        assert_eq!(o.environments, [Environment::LIVE, Environment::TEST]);
        assert_eq!(o.key_types, [KeyType::SECRET]);
        assert_eq!(o.key_size_bytes, 24);
        assert!(!o.dangerous_accept_plain_http && o.init_schema);
        assert!(o.expire_keys_after.is_none());
        assert_eq!(o.session_cache_duration, Some(Duration::from_secs(300)));
        o.validate().unwrap();
    }

    /// Invalid values are typed errors naming the option.
    #[test]
    fn invalid_values_name_the_option() {
        let cases = [
            ("KEYROUTE_APIKEY_KEY_SIZE_BYTES", "8", "key_size_bytes"),
            ("KEYROUTE_APIKEY_KEY_SIZE_BYTES", "lots", "key_size_bytes"),
            ("KEYROUTE_APIKEY_ENVIRONMENTS", "live,Live", "environments"),
            ("KEYROUTE_APIKEY_ENVIRONMENTS", "live,live", "environments"),
            ("KEYROUTE_APIKEY_ENVIRONMENTS", "", "environments"),
            ("KEYROUTE_APIKEY_KEY_TYPES", "secret,gold", "type_prefixes"),
            (
                "KEYROUTE_APIKEY_EXPIRE_KEYS_AFTER",
                "soon",
                "expire_keys_after",
            ),
            ("KEYROUTE_APIKEY_INIT_SCHEMA", "maybe", "init_schema"),
            (
                "KEYROUTE_APIKEY_TYPE_PREFIXES",
                "secret=sk,publishable=sk",
                "type_prefixes",
            ),
        ];
        for (var, value, option) in cases {
            let name = var
                .trim_start_matches("KEYROUTE_APIKEY_")
                .to_ascii_lowercase();
            let mut options = KeyOptions::default();
            let error = options
                .set(&name, value)
                .and_then(|()| options.validate())
                .expect_err(var);
            assert_eq!(
                (error.section.as_str(), error.option.as_str()),
                ("apikey", option),
                "{var}={value}"
            );
        }
        let error = KeyOptions::default().set("keysize", "32").unwrap_err();
        assert_eq!(error.kind, crate::config::ConfigErrorKind::Unknown);
        assert_eq!(error.option, "keysize");
    }

    /// Durations beyond 100 years are refused, not handed to a cache that would panic.
    #[test]
    fn durations_are_bounded() {
        let mut options = KeyOptions::default();
        let error = options
            .set("session_cache_duration", "2000years")
            .unwrap_err();
        assert_eq!(error.option, "session_cache_duration");
        options.session_cache_duration = Some(Duration::from_secs(u64::MAX));
        assert_eq!(
            options.validate().unwrap_err().option,
            "session_cache_duration"
        );
    }
}
