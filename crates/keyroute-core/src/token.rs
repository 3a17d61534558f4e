//! The key format: `{type-prefix}_{environment}_{secret}{checksum}`.
//!
//! ```text
//! sk_live_Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV43kXq9T
//! └┬┘└─┬─┘└──────────────┬───────────────┘└──┬─┘
//! type env   24 random bytes, base64url       CRC32 of everything before it, base62
//! ```
//!
//! The readable prefix tells people and secret scanners what a string is and where it
//! routes. The checksum (GitHub's token design) lets [`TokenFormat::parse`] reject typos,
//! truncations and forged garbage without any I/O: a single changed character always
//! changes the CRC32. Parsing ends with the SHA-256 [`KeyHash`] the store is indexed by.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRng as _;

use crate::name::{Environment, KeyType};
use crate::secret::{KeyHash, PlaintextKey};

/// The longest token [`TokenFormat::parse`] reads; longer input is refused before any work.
pub const MAX_TOKEN_LEN: usize = 256;
/// The fewest random bytes a key may carry.
pub const MIN_KEY_BYTES: usize = 16;
/// The most random bytes a key may carry (keeps every token under [`MAX_TOKEN_LEN`]).
pub const MAX_KEY_BYTES: usize = 128;
const CHECKSUM_LEN: usize = 6;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Why a presented key was rejected before any lookup.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Nothing was presented.
    #[error("the API key is empty")]
    Empty,
    /// Longer than any key this service issues.
    #[error("the API key is {len} bytes long; keys are at most {max} bytes")]
    TooLong {
        /// The presented length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// A byte outside the token alphabet (whitespace, punctuation, non-ASCII).
    #[error(
        "the API key has a character outside A-Z, a-z, 0-9, '-' and '_' at byte {position}; was it copied whole?"
    )]
    InvalidCharacter {
        /// Byte offset of the first bad character.
        position: usize,
    },
    /// Not of the form `{type}_{environment}_{secret}`.
    #[error("the API key is not of the form <type>_<environment>_<secret>, e.g. sk_live_...")]
    Malformed,
    /// The type prefix names no key type this service issues.
    #[error("the API key's type prefix is not one this service issues")]
    UnknownPrefix,
    /// The prefix names a known key type that is not enabled here.
    #[error("keys of type '{0}' are not accepted by this service")]
    KeyTypeNotEnabled(KeyType),
    /// The environment part names no environment this service knows.
    #[error("the API key's environment is not one this service knows")]
    UnknownEnvironment,
    /// The secret part is shorter than any key has, so the key was cut off.
    #[error("the API key is too short: it looks truncated")]
    Truncated,
    /// The checksum does not match: a typo, a truncation or a forgery.
    #[error("the API key's checksum does not match: it was mistyped, cut short or forged")]
    BadChecksum,
}

/// A key that passed every offline check: its type, environment and hash, ready for the
/// one indexed store lookup. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedKey {
    /// The type named by the prefix.
    pub key_type: KeyType,
    /// The environment named in the key.
    pub environment: Environment,
    /// SHA-256 of the whole key: the store's lookup index.
    pub hash: KeyHash,
}

/// Generates and parses keys for one service's configuration.
///
/// Built from [`KeyOptions`](crate::KeyOptions) by
/// [`KeyOptions::token_format`](crate::KeyOptions::token_format).
#[derive(Debug, Clone)]
pub struct TokenFormat {
    /// (prefix, key type, enabled). A handful of entries: a linear scan beats hashing.
    prefixes: Vec<(String, KeyType, bool)>,
    environments: Vec<Environment>,
    key_size_bytes: usize,
}

impl TokenFormat {
    /// A format from already validated parts (see [`KeyOptions::validate`](crate::KeyOptions::validate)).
    pub(crate) fn new(
        prefixes: Vec<(String, KeyType, bool)>,
        environments: Vec<Environment>,
        key_size_bytes: usize,
    ) -> Self {
        Self {
            prefixes,
            environments,
            key_size_bytes,
        }
    }

    /// How many random bytes new keys carry.
    pub fn key_size_bytes(&self) -> usize {
        self.key_size_bytes
    }

    /// A new key of `key_type` for `environment`, with `key_size_bytes` of OS entropy.
    ///
    /// # Errors
    /// [`GenerateError::Token`] for a type or environment this format does not issue;
    /// [`GenerateError::Entropy`] when the operating system's random source fails.
    pub fn generate(
        &self,
        key_type: &KeyType,
        environment: &Environment,
    ) -> Result<PlaintextKey, GenerateError> {
        let mut entropy = zeroize::Zeroizing::new(vec![0u8; self.key_size_bytes]);
        rand::rngs::SysRng
            .try_fill_bytes(&mut entropy)
            .map_err(|e| GenerateError::Entropy(e.to_string()))?;
        Ok(self.encode(key_type, environment, &entropy)?)
    }

    /// Formats `entropy` as a key of `key_type` for `environment`: prefix, base64url
    /// secret, checksum. For custom generators that bring their own randomness.
    ///
    /// # Errors
    /// [`TokenError::UnknownPrefix`] / [`TokenError::KeyTypeNotEnabled`] for a type this
    /// format does not issue, [`TokenError::UnknownEnvironment`], and
    /// [`TokenError::Truncated`] / [`TokenError::TooLong`] when `entropy` has fewer than
    /// [`MIN_KEY_BYTES`] or more than [`MAX_KEY_BYTES`] bytes.
    pub fn encode(
        &self,
        key_type: &KeyType,
        environment: &Environment,
        entropy: &[u8],
    ) -> Result<PlaintextKey, TokenError> {
        let (prefix, _, enabled) = self
            .prefixes
            .iter()
            .find(|(_, t, _)| t == key_type)
            .ok_or(TokenError::UnknownPrefix)?;
        if !enabled {
            return Err(TokenError::KeyTypeNotEnabled(key_type.clone()));
        }
        if !self.environments.contains(environment) {
            return Err(TokenError::UnknownEnvironment);
        }
        if entropy.len() < MIN_KEY_BYTES {
            return Err(TokenError::Truncated);
        }
        if entropy.len() > MAX_KEY_BYTES {
            return Err(TokenError::TooLong {
                len: entropy.len(),
                max: MAX_KEY_BYTES,
            });
        }
        let mut token = String::with_capacity(MAX_TOKEN_LEN);
        token.push_str(prefix);
        token.push('_');
        token.push_str(environment.as_str());
        token.push('_');
        URL_SAFE_NO_PAD.encode_string(entropy, &mut token);
        let crc = crc32fast::hash(token.as_bytes());
        token.extend(base62_u32(crc).iter().map(|&b| char::from(b)));
        Ok(PlaintextKey::new(token))
    }

    /// Checks a presented key with no I/O and returns its type, environment and hash.
    ///
    /// Checks run cheapest first: length, alphabet, shape, prefix, environment,
    /// checksum; only then is the SHA-256 computed.
    ///
    /// # Errors
    /// The [`TokenError`] naming the first check that failed.
    pub fn parse(&self, token: &str) -> Result<PresentedKey, TokenError> {
        let bytes = token.as_bytes();
        if bytes.is_empty() {
            return Err(TokenError::Empty);
        }
        if bytes.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLong {
                len: bytes.len(),
                max: MAX_TOKEN_LEN,
            });
        }
        if let Some(position) = bytes
            .iter()
            .position(|&b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        {
            return Err(TokenError::InvalidCharacter { position });
        }
        let mut parts = token.splitn(3, '_');
        let (Some(prefix), Some(env), Some(rest)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        if prefix.is_empty() || env.is_empty() {
            return Err(TokenError::Malformed);
        }
        let key_type = match self.prefixes.iter().find(|(p, _, _)| p == prefix) {
            None => return Err(TokenError::UnknownPrefix),
            Some((_, t, false)) => return Err(TokenError::KeyTypeNotEnabled(t.clone())),
            Some((_, t, true)) => t,
        };
        let environment = self
            .environments
            .iter()
            .find(|e| e.as_str() == env)
            .ok_or(TokenError::UnknownEnvironment)?;
        if rest.len() < min_secret_chars() + CHECKSUM_LEN {
            return Err(TokenError::Truncated);
        }
        let split = bytes.len() - CHECKSUM_LEN;
        let (signed, checksum) = bytes.split_at(split);
        if decode_base62_u32(checksum) != Some(crc32fast::hash(signed)) {
            return Err(TokenError::BadChecksum);
        }
        Ok(PresentedKey {
            key_type: key_type.clone(),
            environment: environment.clone(),
            hash: KeyHash::of(token),
        })
    }

    /// What a key is shown as after creation: its prefix and last four characters
    /// (`sk_live_…9T4x`). Recognisable by its owner, useless to anyone else.
    pub fn hint(token: &PlaintextKey) -> String {
        let secret = token.expose_secret();
        let prefix_end = secret.match_indices('_').nth(1).map_or(0, |(i, _)| i + 1);
        let tail_start = secret.len().saturating_sub(4).max(prefix_end);
        format!(
            "{}…{}",
            secret.get(..prefix_end).unwrap_or_default(),
            secret.get(tail_start..).unwrap_or_default()
        )
    }
}

/// Base64url characters for [`MIN_KEY_BYTES`] random bytes.
const fn min_secret_chars() -> usize {
    (MIN_KEY_BYTES * 4).div_ceil(3)
}

/// Why a key could not be generated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError {
    /// The type or environment cannot be issued by this format.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The operating system's random source failed.
    #[error("the operating system's random source failed: {0}")]
    Entropy(String),
}

fn base62_u32(mut n: u32) -> [u8; CHECKSUM_LEN] {
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        // n % 62 < 62, so the index is always in range.
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

fn decode_base62_u32(chars: &[u8]) -> Option<u32> {
    chars.iter().try_fold(0u32, |acc, &c| {
        let digit = match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'Z' => c - b'A' + 10,
            b'a'..=b'z' => c - b'a' + 36,
            _ => return None,
        };
        acc.checked_mul(62)?.checked_add(u32::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyOptions;

    fn format() -> TokenFormat {
        KeyOptions::default().token_format().unwrap()
    }

    /// 24 bytes of entropy give 32 secret characters, as ServiceStack and Stripe do.
    #[test]
    fn default_key_shape() {
        let key = format()
            .generate(&KeyType::SECRET, &Environment::LIVE)
            .unwrap();
        let s = key.expose_secret();
        assert!(s.starts_with("sk_live_"), "{s}");
        assert_eq!(s.len(), "sk_live_".len() + 32 + CHECKSUM_LEN);
        let parsed = format().parse(s).unwrap();
        assert_eq!(parsed.environment, Environment::LIVE);
        assert_eq!(parsed.key_type, KeyType::SECRET);
        assert_eq!(parsed.hash, key.hash());
    }

    /// Base62 checksums round-trip at the extremes and refuse overflow.
    #[test]
    fn base62_round_trip() {
        for n in [0, 1, 61, 62, u32::MAX] {
            assert_eq!(decode_base62_u32(&base62_u32(n)), Some(n));
        }
        assert_eq!(decode_base62_u32(b"zzzzzz"), None, "62^6 > u32::MAX");
        assert_eq!(decode_base62_u32(b"00000-"), None);
    }

    /// The hint shows the prefix and the last four characters only.
    #[test]
    fn hint_hides_the_secret() {
        let key = PlaintextKey::new("sk_test_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef123456");
        assert_eq!(TokenFormat::hint(&key), "sk_test_…3456");
        assert_eq!(TokenFormat::hint(&PlaintextKey::new("ab")), "…ab");
    }
}
