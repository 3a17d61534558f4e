//! [`Config`]: keyroute's one configuration, from `keyroute.toml`, `KEYROUTE_*`
//! variables, or code.
//!
//! Each section belongs to one part of keyroute, which parses its own options through
//! the shared parsers of [`keyroute_core::config`], so a bad value is one
//! [`ConfigError`] naming the section and option wherever it came from:
//!
//! | section | owner | variables |
//! |---|---|---|
//! | `[apikey]` | [`KeyOptions`] | `KEYROUTE_APIKEY_<OPTION>` |
//! | `[store]` | where keys and users live | `KEYROUTE_STORE_<OPTION>` |
//! | `[connections]` | the router's named databases | `KEYROUTE_DB_<NAME>` (`_` in a name becomes `-`) |
//! | `[routing]`, `[pools]` | [`RouterConfig`] | `KEYROUTE_ROUTING_<OPTION>`, `KEYROUTE_POOLS_<OPTION>` |
//! | `[resolver]` | [`ResolverConfig`] | `KEYROUTE_RESOLVER_<OPTION>` |
//! | `[jwt]` | [`JwtSection`] | `KEYROUTE_JWT_<OPTION>` |
//!
//! Unknown sections and options are refused (a `[pool]` typo is an error, not a
//! silently ignored table). Variables of other sections (`KEYROUTE_POSTGRES_IMAGE`,
//! used by the test harness) are left alone.

use std::path::{Path, PathBuf};

#[cfg(not(feature = "jwt"))]
use keyroute_core::config::parse_bool;
use keyroute_core::config::toml_text;
use keyroute_core::{ConfigError, KeyOptions};
use keyroute_pool::DatabaseUrl;
use keyroute_router::{ResolverConfig, RouterConfig};

#[cfg(feature = "jwt")]
use crate::jwt_config::JwtSection;

/// The sections of the file, in the order the README lists them.
pub const SECTIONS: &[&str] = &[
    "apikey",
    "store",
    "connections",
    "routing",
    "pools",
    "resolver",
    "jwt",
];

/// The options of `[store]`.
pub(crate) const STORE_OPTIONS: &[&str] = &["connection", "url"];

/// Where keys and users live: `[store]`.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct StoreConfig {
    /// The configured connection whose database holds keyroute's tables. Default:
    /// `live`, when no `url` is given.
    pub connection: Option<String>,
    /// A database of its own for keys, instead of a connection's.
    pub url: Option<DatabaseUrl>,
}

impl StoreConfig {
    fn set(&mut self, option: &str, value: &str) -> Result<(), ConfigError> {
        let value = value.trim();
        match option {
            "connection" => self.connection = Some(value.to_owned()),
            "url" => {
                let url = DatabaseUrl::new(value);
                url.backend()
                    .map_err(|e| ConfigError::invalid("store", option, e))?;
                self.url = Some(url);
            }
            other => return Err(ConfigError::unknown("store", other, STORE_OPTIONS)),
        }
        Ok(())
    }
}

/// keyroute's whole configuration. `Default` is keyroute's defaults; load a file and
/// variables over it with [`Config::load`], or set fields in code.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Config {
    /// `[apikey]`: how keys are made and checked.
    pub apikey: KeyOptions,
    /// `[store]`: where keys and users live.
    pub store: StoreConfig,
    /// `[connections]`, `[routing]`, `[pools]`: the named databases and how requests
    /// are routed to them.
    pub router: RouterConfig,
    /// `[resolver]`: caches, last-used stamps, accepted credentials, proxies.
    pub resolver: ResolverConfig,
    /// `[jwt]`: JWTs, off unless enabled.
    #[cfg(feature = "jwt")]
    pub jwt: JwtSection,
}

impl Config {
    /// The defaults, overridden by the TOML file at `path` when given, then by the
    /// process's `KEYROUTE_*` variables: how a service usually starts.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file, section or option at fault.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let config = match path {
            Some(path) => Self::from_toml_file(path)?,
            None => Self::default(),
        };
        config.apply_env_vars(std::env::vars())
    }

    /// The defaults overridden by a TOML document.
    ///
    /// # Errors
    /// [`ConfigError`] naming the section and option at fault.
    pub fn from_toml_str(toml: &str) -> Result<Self, ConfigError> {
        Self::default().apply_toml_str(toml)
    }

    /// The defaults overridden by the TOML file at `path`.
    ///
    /// # Errors
    /// [`ConfigError`] for a file that cannot be read, or as [`Self::from_toml_str`].
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path: PathBuf = path.as_ref().to_owned();
        let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::io(&path, e))?;
        Self::from_toml_str(&text).map_err(|e| e.in_file(&path))
    }

    /// The defaults overridden by the process's `KEYROUTE_*` variables.
    ///
    /// # Errors
    /// [`ConfigError`] naming the section and option at fault.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::default().apply_env_vars(std::env::vars())
    }

    /// Overrides options with a TOML document.
    ///
    /// # Errors
    /// [`ConfigError`] naming the section and option at fault: an unknown section or
    /// option, a value of the wrong kind, or options that contradict each other.
    pub fn apply_toml_str(self, toml: &str) -> Result<Self, ConfigError> {
        let doc: toml::Table = toml::from_str(toml).map_err(|e| ConfigError::syntax(toml, &e))?;
        self.apply_table(&doc)
    }

    fn apply_table(mut self, doc: &toml::Table) -> Result<Self, ConfigError> {
        for (section, table) in doc {
            let toml::Value::Table(table) = table else {
                return Err(ConfigError::invalid(
                    section,
                    "",
                    format_args!("expected a table [{section}], found a plain value"),
                ));
            };
            if !SECTIONS.contains(&section.as_str()) {
                return Err(ConfigError::unknown(section, "", SECTIONS));
            }
            for (option, value) in table {
                self.set(section, option, &toml_text(section, option, value)?)?;
            }
        }
        self.validate()?;
        Ok(self)
    }

    /// Overrides options with `KEYROUTE_<SECTION>_<OPTION>` pairs from `vars`
    /// (`KEYROUTE_DB_<NAME>` for connections). Variables of other sections are
    /// ignored.
    ///
    /// # Errors
    /// [`ConfigError`] naming the section and option of the first unknown option or
    /// invalid value.
    pub fn apply_env_vars<I, K, V>(mut self, vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        for (key, value) in vars {
            let Some(rest) = key.as_ref().strip_prefix("KEYROUTE_") else {
                continue;
            };
            let Some((section, option)) = rest.split_once('_') else {
                continue;
            };
            let section = section.to_ascii_lowercase();
            let (section, option) = match section.as_str() {
                "db" | "connections" => {
                    ("connections", option.to_ascii_lowercase().replace('_', "-"))
                }
                s if SECTIONS.contains(&s) => (
                    SECTIONS
                        .iter()
                        .copied()
                        .find(|k| *k == s)
                        .unwrap_or("apikey"),
                    option.to_ascii_lowercase(),
                ),
                _ => continue,
            };
            self.set(section, &option, value.as_ref())
                .map_err(|e| with_variable(e, key.as_ref()))?;
        }
        self.validate()?;
        Ok(self)
    }

    /// Sets one option from its text form, the parser behind every source.
    ///
    /// # Errors
    /// [`ConfigError`] naming the section and option: unknown, or an invalid value.
    pub fn set(&mut self, section: &str, option: &str, value: &str) -> Result<(), ConfigError> {
        match section {
            "apikey" => self.apikey.set(option, value),
            "store" => self.store.set(option, value),
            "connections" | "routing" | "pools" => self.router.set(section, option, value),
            "resolver" => self.resolver.set(option, value),
            #[cfg(feature = "jwt")]
            "jwt" => self.jwt.set(option, value),
            #[cfg(not(feature = "jwt"))]
            "jwt" => {
                if parse_bool("jwt", option, value).is_ok_and(|on| !on) && option == "enabled" {
                    Ok(())
                } else {
                    Err(ConfigError::invalid(
                        "jwt",
                        option,
                        "JWTs need keyroute's `jwt` feature; enable it in Cargo.toml",
                    ))
                }
            }
            other => Err(ConfigError::unknown(other, "", SECTIONS)),
        }
    }

    /// Checks what can be checked of each section alone; cross-references (routes to
    /// connections, environments) are checked when the handle is built.
    ///
    /// # Errors
    /// [`ConfigError`] naming the section and option at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.apikey.validate()?;
        #[cfg(feature = "jwt")]
        self.jwt.validate()?;
        if self.store.connection.is_some() && self.store.url.is_some() {
            return Err(ConfigError::invalid(
                "store",
                "url",
                "set either `connection` or `url`, not both",
            ));
        }
        Ok(())
    }
}

/// Says which variable an error came from.
fn with_variable(mut error: ConfigError, variable: &str) -> ConfigError {
    error.reason = format!("{} (from the variable {variable})", error.reason);
    error
}

impl<'de> serde::Deserialize<'de> for Config {
    /// Reads the same sections and options as a TOML file, from any serde format;
    /// unknown sections and options are refused.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let doc = toml::Table::deserialize(deserializer)?;
        Config::default()
            .apply_table(&doc)
            .map_err(D::Error::custom)
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
