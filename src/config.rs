//! [`Config`]: keyroute's one configuration, from `keyroute.toml`, `KEYROUTE_*`
//! variables, or code.
//!
//! Each section is a serde struct owned by the part of keyroute whose options they
//! are; its fields are the only list of its options:
//!
//! | section | owner | variables |
//! |---|---|---|
//! | `[apikey]` | [`KeyOptions`] (core) | `KEYROUTE_APIKEY_<OPTION>` |
//! | `[store]` | [`StoreConfig`] (here): where keys and users live | `KEYROUTE_STORE_<OPTION>` |
//! | `[connections]` | [`RouterConfig`]: the named databases | `KEYROUTE_DB_<NAME>` (`_` in a name becomes `-`) |
//! | `[routing]`, `[pools]` | [`RouterConfig`] ([`PoolSettings`](crate::store::PoolSettings) for each pool) | `KEYROUTE_ROUTING_<OPTION>`, `KEYROUTE_POOLS_<OPTION>` |
//! | `[resolver]` | [`ResolverConfig`] | `KEYROUTE_RESOLVER_<OPTION>` |
//! | `[limits]` | [`LimitsConfig`]: the limits' engine, fallbacks and `[[limits.default]]` | `KEYROUTE_LIMITS_<OPTION>` |
//! | `[jwt]` | `JwtSection` (keyroute-jwt) | `KEYROUTE_JWT_<OPTION>` |
//!
//! The variables become entries of the file's tables before one deserialization
//! ([`Document`]), so the file, the environment and code share one reader and one
//! error path: a bad value is a [`ConfigError`] naming its section and option, and the
//! variable it came from, never the value. Unknown sections and options are refused
//! (a `[pool]` typo is an error listing the real sections, not an ignored table).
//! Variables whose second word names no section (`KEYROUTE_POSTGRES_IMAGE`, used by
//! the test harness; `KEYROUTE_OPERATOR`; `KEYROUTE_SERVICE_ADDR`) are left alone.

use std::path::Path;

use keyroute_core::config::{Document, option_names};
use keyroute_core::{ConfigError, KeyOptions};
use keyroute_pool::DatabaseUrl;
use keyroute_router::limits::LimitsConfig;
use keyroute_router::{ResolverConfig, RouterConfig};
use serde::{Deserialize, Serialize};

#[cfg(feature = "jwt")]
use keyroute_jwt::JwtSection;

/// Where keys and users live: `[store]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct StoreConfig {
    /// The configured connection whose database holds keyroute's tables. Default:
    /// `live`, when no `url` is given.
    pub connection: Option<String>,
    /// A database of its own for keys, instead of a connection's.
    pub url: Option<DatabaseUrl>,
    /// A direct (session) URL of the same database, for what a pooler in transaction
    /// mode cannot carry: the change feed's `LISTEN` and keyroute's migrations.
    /// Needed when the store's URL goes through one (`[pools] pooler =
    /// "transaction"`) and caches follow the feed or `init_schema` is on (the
    /// defaults); default: the store's URL.
    pub direct_url: Option<DatabaseUrl>,
}

/// Where keys and users live, as `[store]` says ([`Config::store_location`]).
enum StoreLocation<'a> {
    /// `[store] url`: a database of their own.
    Url(&'a DatabaseUrl),
    /// The configured connection `[store] connection` names (default `live`).
    Connection(&'a str),
}

/// keyroute's whole configuration. `Default` is keyroute's defaults; read a file and
/// variables with [`Config::load`] (or the other constructors), or set fields in code.
///
/// It serializes to the same sections (database passwords masked, the JWT secret
/// redacted), and deserializes from any serde format; the constructors here also run
/// [`validate`](Self::validate), which [`Keyroute`](crate::Keyroute)'s builder runs too.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct Config {
    /// `[apikey]`: how keys are made and checked.
    pub apikey: KeyOptions,
    /// `[store]`: where keys and users live.
    pub store: StoreConfig,
    /// `[connections]`, `[routing]`, `[pools]`: the named databases and how requests
    /// are routed to them.
    #[serde(flatten)]
    pub router: RouterConfig,
    /// `[resolver]`: caches, last-used stamps, accepted credentials, proxies.
    pub resolver: ResolverConfig,
    /// `[limits]`: the usage limits' engine and default limits.
    pub limits: LimitsConfig,
    /// `[jwt]`: JWTs, off unless enabled.
    #[cfg(feature = "jwt")]
    pub jwt: JwtSection,
    /// `[jwt]` without the `jwt` feature: only `enabled = false` is accepted.
    #[cfg(not(feature = "jwt"))]
    jwt: without_jwt::NoJwt,
}

impl Config {
    /// The defaults, overridden by the TOML file at `path` when given, then by the
    /// process's `KEYROUTE_*` variables: how a service usually starts.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file, section or option at fault.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Self::from_env();
        };
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::io(path, e))?;
        Self::from_sources(&text, std::env::vars()).map_err(|e| e.in_file(path))
    }

    /// The defaults overridden by a TOML document.
    ///
    /// # Errors
    /// [`ConfigError`] naming the section and option at fault.
    pub fn from_toml_str(toml: &str) -> Result<Self, ConfigError> {
        Self::from_sources(toml, std::iter::empty::<(&str, &str)>())
    }

    /// The defaults overridden by the TOML file at `path`.
    ///
    /// # Errors
    /// [`ConfigError`] for a file that cannot be read, or as [`Self::from_toml_str`].
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::io(path, e))?;
        Self::from_toml_str(&text).map_err(|e| e.in_file(path))
    }

    /// The defaults overridden by the process's `KEYROUTE_*` variables.
    ///
    /// # Errors
    /// [`ConfigError`] naming the section, option and variable at fault.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_vars(std::env::vars())
    }

    /// The defaults overridden by the `KEYROUTE_<SECTION>_<OPTION>` pairs among `vars`
    /// (`KEYROUTE_DB_<NAME>` for connections); other pairs are ignored.
    ///
    /// # Errors
    /// [`ConfigError`] naming the section, option and variable at fault.
    pub fn from_env_vars<I, K, V>(vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        Self::from_sources("", vars)
    }

    /// The defaults overridden by a TOML document, then by the
    /// `KEYROUTE_<SECTION>_<OPTION>` pairs among `vars`: one document, read once.
    ///
    /// # Errors
    /// [`ConfigError`] naming the section and option at fault (and the variable, when
    /// a variable set it): not TOML, an unknown section or option, a value of the wrong
    /// kind, or options that contradict each other.
    pub fn from_sources<I, K, V>(toml: &str, vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut document = Document::from_toml_str(toml)?;
        let sections = option_names(&Config::default(), &[]);
        for (name, value) in vars {
            let name = name.as_ref();
            if let Some((section, option)) = variable_option(name, &sections) {
                document.set_variable(name, &section, &option, value.as_ref())?;
            }
        }
        let config: Config = document.read()?;
        config.validate().map_err(|e| document.attribute(e))?;
        Ok(config)
    }

    /// The URL of the database keys and users live in: `[store] url`, or the URL of
    /// the connection `[store] connection` names (default `live`).
    ///
    /// # Errors
    /// [`ConfigError`] for `[store] connection` when that connection is not configured.
    pub fn store_url(&self) -> Result<DatabaseUrl, ConfigError> {
        let name = match self.store_location() {
            StoreLocation::Url(url) => return Ok(url.clone()),
            StoreLocation::Connection(name) => name,
        };
        self.router.connections.get(name).cloned().ok_or_else(|| {
            let reason = format!(
                "keys and users live in the database of connection '{name}', which is not configured; set [store] connection or url"
            );
            ConfigError::missing("store", "connection", reason)
        })
    }

    /// The name of the connection whose database keys and users live in: `[store]
    /// connection` (default `live`), or `None` when `[store] url` gives them a
    /// database of their own. The name is not checked against `[connections]`
    /// ([`store_url`](Self::store_url) does that).
    pub fn store_connection(&self) -> Option<&str> {
        match self.store_location() {
            StoreLocation::Url(_) => None,
            StoreLocation::Connection(name) => Some(name),
        }
    }

    /// Where `[store]` puts keys and users: the one place its rule is written, read by
    /// [`store_url`](Self::store_url) and [`store_connection`](Self::store_connection).
    fn store_location(&self) -> StoreLocation<'_> {
        match &self.store.url {
            Some(url) => StoreLocation::Url(url),
            None => StoreLocation::Connection(self.store.connection.as_deref().unwrap_or("live")),
        }
    }

    /// Checks what can be checked of each section alone; cross-references (routes to
    /// connections, environments) are checked when the handle is built.
    ///
    /// # Errors
    /// [`ConfigError`] naming the section and option at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.apikey.validate()?;
        self.router.validate()?;
        self.resolver.validate()?;
        self.limits.validate()?;
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

/// The (section, option) the variable `name` sets, if it is one of keyroute's:
/// `KEYROUTE_<SECTION>_<OPTION>` for a section in `sections`, or `KEYROUTE_DB_<NAME>`
/// (`KEYROUTE_CONNECTIONS_<NAME>`) for a connection, `_` in the name becoming `-`.
fn variable_option(name: &str, sections: &[String]) -> Option<(String, String)> {
    let (section, option) = name.strip_prefix("KEYROUTE_")?.split_once('_')?;
    let section = section.to_ascii_lowercase();
    let option = option.to_ascii_lowercase();
    match section.as_str() {
        "db" | "connections" => Some(("connections".to_owned(), option.replace('_', "-"))),
        known if sections.iter().any(|s| s == known) => Some((section, option)),
        _ => None,
    }
}

/// `[jwt]` in a build without the `jwt` feature.
#[cfg(not(feature = "jwt"))]
mod without_jwt {
    use keyroute_core::ConfigError;
    use serde::de::{Error as _, MapAccess, Visitor};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// What is refused: anything but `enabled = false`.
    const NEEDS_FEATURE: &str = "JWTs need keyroute's `jwt` feature; enable it in Cargo.toml";

    /// Reads `[jwt]` only to refuse it, unless it is `enabled = false`.
    #[derive(Debug, Clone, Default)]
    pub(super) struct NoJwt;

    impl NoJwt {
        /// Nothing to check: reading refused every other value.
        pub(super) fn validate(&self) -> Result<(), ConfigError> {
            Ok(())
        }
    }

    impl Serialize for NoJwt {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap as _;
            let mut map = serializer.serialize_map(Some(1))?;
            map.serialize_entry("enabled", &false)?;
            map.end()
        }
    }

    impl<'de> Deserialize<'de> for NoJwt {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_map(NoJwtVisitor)
        }
    }

    struct NoJwtVisitor;

    impl<'de> Visitor<'de> for NoJwtVisitor {
        type Value = NoJwt;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a table of options")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NoJwt, A::Error> {
            while let Some(option) = map.next_key::<String>()? {
                if option != "enabled" || map.next_value::<bool>()? {
                    return Err(A::Error::custom(NEEDS_FEATURE));
                }
            }
            Ok(NoJwt)
        }
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
