//! [`JwtSection`]: the `[jwt]` section of keyroute's configuration: whether JWTs are
//! on, how they are issued and checked ([`JwtConfig`], whose options sit in the same
//! table), and the key that signs them.

use std::fmt;
use std::path::PathBuf;

use keyroute_core::{ConfigError, PlaintextKey};
use serde::{Deserialize, Serialize};

use crate::config::JwtConfig;
use crate::error::JwtServiceError;
use crate::key::{JwtAlgorithm, SigningKey};

/// The section's name in the configuration.
const SECTION: &str = "jwt";

/// `[jwt]`: JWTs are off unless `enabled`. The signing key is an HMAC `secret`
/// (best given as `KEYROUTE_JWT_SECRET`, never committed), or a PEM
/// `private_key_file` for RS256, ES256 and EdDSA; with neither, each process generates
/// its own HS256 key, which suits one instance only: another instance could not verify
/// its tokens.
///
/// The options are this struct's fields and [`JwtConfig`]'s (but its `environments`,
/// which are always `[apikey]`'s), in one table.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct JwtSection {
    /// Whether the handle issues and accepts JWTs. Default false.
    pub enabled: bool,
    /// Lifetimes, issuer, audience, leeway, deny-list check.
    #[serde(flatten)]
    pub config: JwtConfig,
    /// The signing key's `kid`. Default `keyroute-1`.
    pub kid: String,
    /// The signing algorithm. Default HS256.
    pub algorithm: JwtAlgorithm,
    /// The HMAC secret (at least as long as the algorithm's hash), taken byte for
    /// byte. Serialized as `[redacted]`.
    #[serde(with = "secret")]
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

/// The `secret` option: read as text (empty text is no secret); never written out.
mod secret {
    use keyroute_core::PlaintextKey;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Option<PlaintextKey>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(_) => serializer.serialize_some("[redacted]"),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<PlaintextKey>, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok((!text.is_empty()).then(|| PlaintextKey::new(text)))
    }
}

/// Written as its `alg` name (`HS256`).
impl Serialize for JwtAlgorithm {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// Read from its `alg` name, case-sensitive: `HS256`, `HS384`, `HS512`, `RS256`,
/// `ES256` or `EdDSA` (never `none`).
impl<'de> Deserialize<'de> for JwtAlgorithm {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        JwtAlgorithm::from_name(&name).ok_or_else(|| {
            serde::de::Error::custom("expected HS256, HS384, HS512, RS256, ES256 or EdDSA")
        })
    }
}

impl JwtSection {
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
        let refused = |option: &str, e: JwtServiceError| ConfigError::invalid(SECTION, option, e);
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
