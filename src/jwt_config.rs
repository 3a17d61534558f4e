//! The `[jwt]` section: whether JWTs are on, how they are issued and checked
//! ([`JwtConfig`]), and the key that signs them.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use keyroute_core::config::{parse_bool, parse_number, parse_required_duration};
use keyroute_core::{ConfigError, PlaintextKey};
use keyroute_jwt::{JwtAlgorithm, JwtConfig, SigningKey};

const SECTION: &str = "jwt";

/// The options of `[jwt]`.
pub(crate) const JWT_OPTIONS: &[&str] = &[
    "enabled",
    "issuer",
    "audience",
    "exchange_lifetime",
    "session_lifetime",
    "leeway",
    "max_token_bytes",
    "check_deny_list",
    "deny_cache_ttl",
    "deny_cache_capacity",
    "kid",
    "algorithm",
    "secret",
    "private_key_file",
];

/// `[jwt]`: JWTs are off unless `enabled`. The signing key is an HMAC `secret`
/// (best given as `KEYROUTE_JWT_SECRET`, never committed), or a PEM
/// `private_key_file` for RS256, ES256 and EdDSA; with neither, each process generates
/// its own HS256 key, which suits one instance only: another instance could not verify
/// its tokens.
#[derive(Clone)]
#[non_exhaustive]
pub struct JwtSection {
    /// Whether the handle issues and accepts JWTs. Default false.
    pub enabled: bool,
    /// Lifetimes, issuer, audience, leeway, deny-list check. The environments are
    /// always those of `[apikey]`.
    pub config: JwtConfig,
    /// The signing key's `kid`. Default `keyroute-1`.
    pub kid: String,
    /// The signing algorithm. Default HS256.
    pub algorithm: JwtAlgorithm,
    /// The HMAC secret (at least as long as the algorithm's hash).
    pub secret: Option<PlaintextKey>,
    /// A PKCS#8 PEM private key, for the asymmetric algorithms.
    pub private_key_file: Option<PathBuf>,
}

impl Default for JwtSection {
    fn default() -> Self {
        Self {
            enabled: false,
            config: JwtConfig::default(),
            kid: "keyroute-1".to_owned(),
            algorithm: JwtAlgorithm::Hs256,
            secret: None,
            private_key_file: None,
        }
    }
}

impl fmt::Debug for JwtSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtSection")
            .field("enabled", &self.enabled)
            .field("config", &self.config)
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("private_key_file", &self.private_key_file)
            .finish()
    }
}

/// A duration that may be zero (`leeway`, `deny_cache_ttl`).
fn duration_or_zero(option: &str, value: &str) -> Result<Duration, ConfigError> {
    match value.trim() {
        "0" | "0s" => Ok(Duration::ZERO),
        other => parse_required_duration(SECTION, option, other),
    }
}

impl JwtSection {
    /// Sets one option of `[jwt]` from its text form.
    ///
    /// # Errors
    /// [`ConfigError`] naming the option: unknown, or an invalid value.
    pub fn set(&mut self, option: &str, value: &str) -> Result<(), ConfigError> {
        let text = value.trim();
        let c = &mut self.config;
        let optional = |v: &str| (!v.is_empty() && v != "none").then(|| v.to_owned());
        match option {
            "enabled" => self.enabled = parse_bool(SECTION, option, text)?,
            "issuer" => c.issuer = optional(text),
            "audience" => c.audience = optional(text),
            "exchange_lifetime" => {
                c.exchange_lifetime = parse_required_duration(SECTION, option, text)?
            }
            "session_lifetime" => {
                c.session_lifetime = parse_required_duration(SECTION, option, text)?
            }
            "leeway" => c.leeway = duration_or_zero(option, text)?,
            "max_token_bytes" => c.max_token_bytes = parse_number(SECTION, option, text)?,
            "check_deny_list" => c.check_deny_list = parse_bool(SECTION, option, text)?,
            "deny_cache_ttl" => c.deny_cache_ttl = duration_or_zero(option, text)?,
            "deny_cache_capacity" => c.deny_cache_capacity = parse_number(SECTION, option, text)?,
            "kid" => text.clone_into(&mut self.kid),
            "algorithm" => {
                self.algorithm = JwtAlgorithm::from_name(text).ok_or_else(|| {
                    ConfigError::invalid(
                        SECTION,
                        option,
                        "expected HS256, HS384, HS512, RS256, ES256 or EdDSA",
                    )
                })?
            }
            // Not trimmed: a secret is taken byte for byte.
            "secret" => self.secret = (!value.is_empty()).then(|| PlaintextKey::new(value)),
            "private_key_file" => self.private_key_file = optional(text).map(PathBuf::from),
            other => return Err(ConfigError::unknown(SECTION, other, JWT_OPTIONS)),
        }
        Ok(())
    }

    /// Checks the section alone.
    ///
    /// # Errors
    /// [`ConfigError`] naming the option.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Err(e) = self.config.validate() {
            let message = e.to_string();
            let detail = message
                .strip_prefix("invalid JWT configuration: ")
                .unwrap_or(&message);
            let (option, reason) = detail.split_once(": ").unwrap_or(("", detail));
            return Err(ConfigError::invalid(SECTION, option, reason));
        }
        if self.secret.is_some() && self.private_key_file.is_some() {
            return Err(ConfigError::invalid(
                SECTION,
                "secret",
                "set either `secret` (HMAC) or `private_key_file`, not both",
            ));
        }
        Ok(())
    }

    /// The configured signing key, or `None` when neither a secret nor a key file is
    /// given.
    ///
    /// # Errors
    /// [`ConfigError`] naming `secret` or `private_key_file` when the key is refused or
    /// the file cannot be read; never with key material in it.
    pub fn signing_key(&self) -> Result<Option<SigningKey>, ConfigError> {
        let refused = |option: &str, e: keyroute_jwt::JwtServiceError| {
            ConfigError::invalid(SECTION, option, e)
        };
        if let Some(secret) = &self.secret {
            return SigningKey::from_hmac_secret(
                &self.kid,
                self.algorithm,
                secret.expose_secret().as_bytes(),
            )
            .map(Some)
            .map_err(|e| refused("secret", e));
        }
        if let Some(path) = &self.private_key_file {
            let pem = std::fs::read(path).map_err(|e| {
                ConfigError::invalid(
                    SECTION,
                    "private_key_file",
                    format_args!("cannot read {}: {e}", path.display()),
                )
            })?;
            return SigningKey::from_pem(&self.kid, self.algorithm, &pem)
                .map(Some)
                .map_err(|e| refused("private_key_file", e));
        }
        Ok(None)
    }
}
