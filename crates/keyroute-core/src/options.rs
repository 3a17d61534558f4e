//! [`KeyOptions`]: how keys are made and checked, with ServiceStack's names and defaults.
//!
//! | option | default | meaning |
//! |---|---|---|
//! | `environments` | `live,test` | environments keys are issued for |
//! | `key_types` | `secret` | types of key each user gets |
//! | `type_prefixes` | `secret=sk,publishable=pk,restricted=rk` | token prefix per type |
//! | `key_size_bytes` | `24` | random bytes per key (at least 16) |
//! | `expire_keys_after` | none | lifetime of new keys (`90days`, `12h`) |
//! | `require_secure_connection` | `true` | refuse keys that arrive over plain HTTP |
//! | `init_schema` | `true` | run the store's migrations at start-up |
//! | `session_cache_duration` | none | how long a resolved key is cached (`10m`) |
//!
//! Options load from code, from the `[apikey]` table of a TOML file, and from
//! `KEYROUTE_APIKEY_<OPTION>` environment variables. Every source goes through one
//! parser per option, so an invalid value is the same [`ConfigError`] naming the option
//! wherever it came from. Lists are comma-separated in variables
//! (`KEYROUTE_APIKEY_KEY_TYPES=secret,publishable`) and arrays in TOML.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::model::ApiKey;
use crate::name::{Environment, KeyType, NameError};
use crate::secret::PlaintextKey;
use crate::token::{GenerateError, MAX_KEY_BYTES, MIN_KEY_BYTES, TokenFormat};

/// The prefix of the environment variables [`KeyOptions::from_env`] reads.
pub const ENV_PREFIX: &str = "KEYROUTE_APIKEY_";

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// An option has a value it cannot take.
    #[error("invalid value for option `{option}`: {reason}")]
    InvalidOption {
        /// The option's name.
        option: String,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// An option name that does not exist (a typo, usually).
    #[error("unknown option `{0}`")]
    UnknownOption(String),
    /// The configuration file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML.
    #[error("configuration file is not valid TOML: {0}")]
    Toml(String),
}

/// The longest duration any option takes: 100 years (36 525 days). Caches refuse
/// longer ones (moka panics beyond 1 000 years) and no key or token needs more.
pub const MAX_DURATION: Duration = Duration::from_secs(36_525 * 24 * 60 * 60);

/// Checks a duration option: over zero and under 100 years ([`MAX_DURATION`]).
/// Options where zero means "off" call this only for a non-zero value.
///
/// # Errors
/// [`ConfigError::InvalidOption`] naming `option`.
pub fn check_duration(option: &str, value: Duration) -> Result<(), ConfigError> {
    if value.is_zero() || value >= MAX_DURATION {
        return Err(ConfigError::invalid(
            option,
            format_args!(
                "{} is out of range: use a duration over zero and under 100 years (e.g. 10m, 12h, 90days)",
                humantime::format_duration(value)
            ),
        ));
    }
    Ok(())
}

impl ConfigError {
    pub(crate) fn invalid(option: &str, reason: impl fmt::Display) -> Self {
        Self::InvalidOption {
            option: option.to_owned(),
            reason: reason.to_string(),
        }
    }
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

/// How keys are made and checked. See the [module docs](self) for the table of options.
#[derive(Clone)]
#[non_exhaustive]
pub struct KeyOptions {
    /// Environments keys are issued for. Default `live`, `test`.
    pub environments: Vec<Environment>,
    /// Types of key each user gets on registration. Default `secret`.
    pub key_types: Vec<KeyType>,
    /// The token prefix of each type. Default `secret=sk`, `publishable=pk`, `restricted=rk`.
    pub type_prefixes: BTreeMap<KeyType, String>,
    /// Random bytes per key. Default 24 (32 characters), at least 16.
    pub key_size_bytes: usize,
    /// Lifetime of new keys. Default none: keys do not expire.
    pub expire_keys_after: Option<Duration>,
    /// Refuse keys presented over plain HTTP. Default true.
    pub require_secure_connection: bool,
    /// Run the store's migrations at start-up. Default true.
    pub init_schema: bool,
    /// How long a resolved key is cached. Default none, as in ServiceStack: every
    /// request looks the key up. Revocation through keyroute evicts at once on the
    /// revoking instance; other instances see it within this duration.
    pub session_cache_duration: Option<Duration>,
    /// Replaces keyroute's key generator.
    pub generate_key: Option<Arc<dyn KeyGenerator>>,
    /// Run on every new key before it is stored.
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
            require_secure_connection: true,
            init_schema: true,
            session_cache_duration: None,
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
            .field("require_secure_connection", &self.require_secure_connection)
            .field("init_schema", &self.init_schema)
            .field("session_cache_duration", &self.session_cache_duration)
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
    /// The defaults overridden by the `[apikey]` table of a TOML document.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first unknown or invalid option.
    pub fn from_toml_str(toml: &str) -> Result<Self, ConfigError> {
        Self::default().apply_toml_str(toml)
    }

    /// The defaults overridden by the `[apikey]` table of a TOML file.
    ///
    /// # Errors
    /// [`ConfigError::Io`] when the file cannot be read, or as [`Self::from_toml_str`].
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text)
    }

    /// The defaults overridden by `KEYROUTE_APIKEY_<OPTION>` environment variables.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first unknown or invalid option.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::default().apply_env_vars(std::env::vars())
    }

    /// Overrides options with the `[apikey]` table of a TOML document; other tables
    /// belong to other parts of keyroute and are ignored.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first unknown or invalid option.
    pub fn apply_toml_str(mut self, toml: &str) -> Result<Self, ConfigError> {
        let doc: toml::Table =
            toml::from_str(toml).map_err(|e| ConfigError::Toml(e.to_string()))?;
        let Some(section) = doc.get("apikey") else {
            return Ok(self);
        };
        let toml::Value::Table(section) = section else {
            return Err(ConfigError::invalid(
                "apikey",
                "expected a table `[apikey]`",
            ));
        };
        for (option, value) in section {
            self.set(option, &toml_to_option_text(option, value)?)?;
        }
        self.validate()?;
        Ok(self)
    }

    /// Overrides options with `KEYROUTE_APIKEY_<OPTION>` pairs from `vars`; other
    /// variables are ignored.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first unknown or invalid option.
    pub fn apply_env_vars<I, K, V>(mut self, vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        for (key, value) in vars {
            if let Some(option) = key.as_ref().strip_prefix(ENV_PREFIX) {
                self.set(&option.to_ascii_lowercase(), value.as_ref())?;
            }
        }
        self.validate()?;
        Ok(self)
    }

    /// Sets one option from its text form, the one parser behind every source.
    ///
    /// Checks the value alone; options that depend on each other (a key type and its
    /// prefix) are checked by [`validate`](Self::validate), which every loader runs once
    /// all options are set, so the order of variables does not matter.
    ///
    /// # Errors
    /// [`ConfigError::UnknownOption`] or [`ConfigError::InvalidOption`].
    pub fn set(&mut self, option: &str, value: &str) -> Result<(), ConfigError> {
        let value = value.trim();
        match option {
            "environments" => self.environments = parse_list(option, value, Environment::new)?,
            "key_types" => self.key_types = parse_list(option, value, KeyType::new)?,
            "type_prefixes" => {
                self.type_prefixes = split_list(value)
                    .map(|pair| {
                        let (t, p) = pair.split_once('=').ok_or_else(|| {
                            ConfigError::invalid(
                                option,
                                "expected type=prefix pairs, e.g. secret=sk",
                            )
                        })?;
                        let t =
                            KeyType::new(t.trim()).map_err(|e| ConfigError::invalid(option, e))?;
                        Ok((t, p.trim().to_owned()))
                    })
                    .collect::<Result<_, ConfigError>>()?;
            }
            "key_size_bytes" => {
                self.key_size_bytes = value.parse().map_err(|_| {
                    ConfigError::invalid(option, "expected a whole number of bytes")
                })?;
            }
            "expire_keys_after" => self.expire_keys_after = parse_duration(option, value)?,
            "session_cache_duration" => {
                self.session_cache_duration = parse_duration(option, value)?
            }
            "require_secure_connection" => {
                self.require_secure_connection = parse_bool(option, value)?
            }
            "init_schema" => self.init_schema = parse_bool(option, value)?,
            other => return Err(ConfigError::UnknownOption(other.to_owned())),
        }
        Ok(())
    }

    /// Checks the options hang together.
    ///
    /// # Errors
    /// [`ConfigError::InvalidOption`] naming the option at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(MIN_KEY_BYTES..=MAX_KEY_BYTES).contains(&self.key_size_bytes) {
            return Err(ConfigError::invalid(
                "key_size_bytes",
                format_args!(
                    "{} is outside {MIN_KEY_BYTES}..={MAX_KEY_BYTES}; fewer than 16 random bytes are guessable",
                    self.key_size_bytes
                ),
            ));
        }
        check_unique_nonempty("environments", &self.environments)?;
        check_unique_nonempty("key_types", &self.key_types)?;
        for key_type in &self.key_types {
            if !self.type_prefixes.contains_key(key_type) {
                return Err(ConfigError::invalid(
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
                return Err(ConfigError::invalid(
                    "type_prefixes",
                    format_args!("prefix {prefix:?} must be 1 to 8 characters of a-z and 0-9"),
                ));
            }
            if !seen.insert(prefix) {
                return Err(ConfigError::invalid(
                    "type_prefixes",
                    format_args!("prefix {prefix:?} is used by two key types"),
                ));
            }
        }
        for (option, duration) in [
            ("expire_keys_after", self.expire_keys_after),
            ("session_cache_duration", self.session_cache_duration),
        ] {
            if let Some(duration) = duration {
                check_duration(option, duration)?;
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

fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn parse_list<T>(
    option: &str,
    value: &str,
    parse: impl Fn(&str) -> Result<T, NameError>,
) -> Result<Vec<T>, ConfigError> {
    split_list(value)
        .map(|item| parse(item).map_err(|e| ConfigError::invalid(option, e)))
        .collect()
}

fn check_unique_nonempty<T: Ord + fmt::Display>(
    option: &str,
    items: &[T],
) -> Result<(), ConfigError> {
    if items.is_empty() {
        return Err(ConfigError::invalid(option, "needs at least one entry"));
    }
    let mut seen = std::collections::BTreeSet::new();
    match items.iter().find(|item| !seen.insert(*item)) {
        Some(dup) => Err(ConfigError::invalid(
            option,
            format_args!("'{dup}' is listed twice"),
        )),
        None => Ok(()),
    }
}

fn parse_bool(option: &str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::invalid(option, "expected true or false")),
    }
}

fn parse_duration(option: &str, value: &str) -> Result<Option<Duration>, ConfigError> {
    if value.is_empty() || value.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    humantime::parse_duration(value).map(Some).map_err(|e| {
        ConfigError::invalid(
            option,
            format_args!("{e}; expected e.g. 10m, 12h, 90days or none"),
        )
    })
}

/// Renders a TOML value in the text form [`KeyOptions::set`] parses.
fn toml_to_option_text(option: &str, value: &toml::Value) -> Result<String, ConfigError> {
    use toml::Value;
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Integer(i) => Some(i.to_string()),
        Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    };
    let text = match value {
        Value::Array(items) => items
            .iter()
            .map(scalar)
            .collect::<Option<Vec<_>>>()
            .map(|v| v.join(",")),
        Value::Table(table) => table
            .iter()
            .map(|(k, v)| scalar(v).map(|v| format!("{k}={v}")))
            .collect::<Option<Vec<_>>>()
            .map(|v| v.join(",")),
        other => scalar(other),
    };
    text.ok_or_else(|| {
        ConfigError::invalid(
            option,
            "expected a string, number, boolean, or an array or table of them",
        )
    })
}

#[cfg(test)]
mod tests;
