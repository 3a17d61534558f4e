//! Reading the presented key out of an HTTP request, framework-agnostic.
//!
//! Accepted, as HTTP clients send them:
//!
//! | where | what | sent by |
//! |---|---|---|
//! | `Authorization: Bearer <key>` | the key or a JWT | most clients |
//! | `Authorization: Basic base64(<key>:)` | the key as user name, empty password | `curl -u key:` |
//! | `X-Api-Key: <key>` (name configurable) | the key | API gateways |
//! | `?api_key=<key>` (only when enabled) | the key | webhooks that cannot set headers |
//!
//! Scheme names are case-insensitive and surrounding whitespace is tolerated; anything
//! else is a typed [`CredentialError`]. Two credentials in one request are refused
//! rather than guessed between.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use http::header::{AUTHORIZATION, HeaderMap, HeaderName};

use crate::secret::PlaintextKey;

/// Header values longer than this are refused unread (the longest JWT we accept is 8 KiB).
pub const MAX_CREDENTIAL_LEN: usize = 8 * 1024;

/// Standard base64 that accepts `Basic` values with or without their `=` padding.
const BASIC: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Where a credential was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CredentialSource {
    /// `Authorization: Bearer`.
    Bearer,
    /// `Authorization: Basic`, the key as user name.
    Basic,
    /// The API key header (`X-Api-Key` by default).
    ApiKeyHeader,
    /// The query string (only when enabled).
    Query,
}

/// A token read from a request: an API key or a JWT, not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The presented token.
    pub token: PlaintextKey,
    /// Where it was found.
    pub source: CredentialSource,
}

/// Why no usable credential could be read from a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The request carries no credential at all.
    #[error(
        "no API key was presented: send `Authorization: Bearer <key>`, HTTP Basic with the key as user name, or the API key header"
    )]
    Missing,
    /// More than one credential (two headers, or a header and the query string).
    #[error("more than one credential was presented; send exactly one")]
    Ambiguous,
    /// The header value is not valid UTF-8.
    #[error("the credential header is not valid UTF-8")]
    NotUtf8,
    /// The header value is longer than [`MAX_CREDENTIAL_LEN`].
    #[error("the credential is {len} bytes long; at most {max} are read")]
    TooLong {
        /// The presented length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// An `Authorization` scheme other than Bearer or Basic, or no scheme.
    #[error("unsupported Authorization scheme: use `Bearer <key>` or `Basic base64(<key>:)`")]
    UnsupportedScheme,
    /// The scheme was given but no token followed it, or the value was blank.
    #[error("the credential is empty")]
    EmptyToken,
    /// The token has whitespace inside it.
    #[error("the credential has whitespace inside it; send the key alone")]
    EmbeddedWhitespace,
    /// `Basic` credentials that are not valid base64.
    #[error("the Basic credentials are not valid base64")]
    BasicNotBase64,
    /// `Basic` credentials that decode to something other than UTF-8.
    #[error("the Basic credentials do not decode to UTF-8 text")]
    BasicNotUtf8,
    /// `Basic` credentials without the `user:password` colon.
    #[error("the Basic credentials have no ':'; send the key as user name: `curl -u <key>:`")]
    BasicMissingColon,
    /// `Basic` credentials with a password: keys go in the user name, the password stays empty.
    #[error(
        "the Basic credentials carry a password; send the key as user name with an empty password"
    )]
    BasicPasswordNotEmpty,
}

/// Reads credentials from headers (and optionally the query string).
///
/// ```
/// use keyroute_core::{CredentialExtractor, CredentialSource};
///
/// let extractor = CredentialExtractor::default();
/// let credential = extractor.from_authorization(b"Bearer sk_test_abc").unwrap();
/// assert_eq!(credential.source, CredentialSource::Bearer);
/// assert_eq!(credential.token.expose_secret(), "sk_test_abc");
/// ```
#[derive(Debug, Clone)]
pub struct CredentialExtractor {
    api_key_header: HeaderName,
    query_param: Option<String>,
}

impl Default for CredentialExtractor {
    fn default() -> Self {
        Self {
            api_key_header: HeaderName::from_static("x-api-key"),
            query_param: None,
        }
    }
}

impl CredentialExtractor {
    /// Reads the API key from `header` instead of `X-Api-Key`.
    pub fn with_api_key_header(mut self, header: HeaderName) -> Self {
        self.api_key_header = header;
        self
    }

    /// Also accepts the key in the query parameter `name`. Off by default: query strings
    /// end up in access logs and browser history.
    pub fn with_query_param(mut self, name: impl Into<String>) -> Self {
        self.query_param = Some(name.into());
        self
    }

    /// Reads the one credential a request carries.
    ///
    /// `query` is the raw query string (without `?`); it is read only when a query
    /// parameter was enabled with [`with_query_param`](Self::with_query_param).
    ///
    /// # Errors
    /// [`CredentialError::Missing`] when there is none, [`CredentialError::Ambiguous`]
    /// when there are several, and the parsing errors of the one found.
    pub fn extract(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<Credential, CredentialError> {
        let mut found = None;
        let candidates = headers
            .get_all(AUTHORIZATION)
            .iter()
            .map(|v| self.from_authorization(v.as_bytes()))
            .chain(
                headers
                    .get_all(&self.api_key_header)
                    .iter()
                    .map(|v| self.from_api_key_header(v.as_bytes())),
            )
            .chain(self.query_credential(query));
        for candidate in candidates {
            if found.is_some() {
                return Err(CredentialError::Ambiguous);
            }
            found = Some(candidate?);
        }
        found.ok_or(CredentialError::Missing)
    }

    /// Reads an `Authorization` header value: `Bearer <token>` or `Basic base64(<key>:)`.
    ///
    /// # Errors
    /// A [`CredentialError`] naming what is wrong with the value.
    pub fn from_authorization(&self, value: &[u8]) -> Result<Credential, CredentialError> {
        let value = header_str(value)?;
        if value.is_empty() {
            return Err(CredentialError::EmptyToken);
        }
        let (scheme, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
        let rest = rest.trim_matches([' ', '\t']);
        if scheme.eq_ignore_ascii_case("bearer") {
            Ok(Credential {
                token: PlaintextKey::new(single_token(rest)?),
                source: CredentialSource::Bearer,
            })
        } else if scheme.eq_ignore_ascii_case("basic") {
            Ok(Credential {
                token: decode_basic(single_token(rest)?)?,
                source: CredentialSource::Basic,
            })
        } else {
            Err(CredentialError::UnsupportedScheme)
        }
    }

    /// Reads an API key header value: the key alone.
    ///
    /// # Errors
    /// A [`CredentialError`] naming what is wrong with the value.
    pub fn from_api_key_header(&self, value: &[u8]) -> Result<Credential, CredentialError> {
        Ok(Credential {
            token: PlaintextKey::new(single_token(header_str(value)?)?),
            source: CredentialSource::ApiKeyHeader,
        })
    }

    fn query_credential<'a>(
        &'a self,
        query: Option<&'a str>,
    ) -> impl Iterator<Item = Result<Credential, CredentialError>> + 'a {
        let name = self.query_param.as_deref();
        query
            .filter(|_| name.is_some())
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter_map(move |pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (Some(k) == name).then_some(v)
            })
            .map(|v| {
                // Tokens are URL-safe; anything percent-encoded is not one of ours.
                if v.len() > MAX_CREDENTIAL_LEN {
                    return Err(CredentialError::TooLong {
                        len: v.len(),
                        max: MAX_CREDENTIAL_LEN,
                    });
                }
                Ok(Credential {
                    token: PlaintextKey::new(single_token(v)?),
                    source: CredentialSource::Query,
                })
            })
    }
}

/// Length cap first (before UTF-8 validation reads the whole value), then UTF-8, then trim.
fn header_str(value: &[u8]) -> Result<&str, CredentialError> {
    if value.len() > MAX_CREDENTIAL_LEN {
        return Err(CredentialError::TooLong {
            len: value.len(),
            max: MAX_CREDENTIAL_LEN,
        });
    }
    let value = std::str::from_utf8(value).map_err(|_| CredentialError::NotUtf8)?;
    Ok(value.trim_matches([' ', '\t']))
}

fn single_token(value: &str) -> Result<&str, CredentialError> {
    if value.is_empty() {
        Err(CredentialError::EmptyToken)
    } else if value.contains(char::is_whitespace) {
        Err(CredentialError::EmbeddedWhitespace)
    } else {
        Ok(value)
    }
}

fn decode_basic(encoded: &str) -> Result<PlaintextKey, CredentialError> {
    let decoded = zeroize::Zeroizing::new(
        BASIC
            .decode(encoded)
            .map_err(|_| CredentialError::BasicNotBase64)?,
    );
    let text = std::str::from_utf8(&decoded).map_err(|_| CredentialError::BasicNotUtf8)?;
    let (user, password) = text
        .split_once(':')
        .ok_or(CredentialError::BasicMissingColon)?;
    if !password.is_empty() {
        return Err(CredentialError::BasicPasswordNotEmpty);
    }
    Ok(PlaintextKey::new(single_token(user)?))
}
