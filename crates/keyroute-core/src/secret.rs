//! Secret material and its hash.
//!
//! A [`PlaintextKey`] holds a key (or a presented token) in memory for as long as it is
//! needed and no longer: its `Debug` prints nothing of it, it has no `Display`, and its
//! buffer is zeroed when dropped. Keys are stored only as their [`KeyHash`], a SHA-256
//! digest, compared in constant time.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// A plaintext API key or presented token. Shown once at creation, never logged.
///
/// Deliberately has no `Display` and a redacted `Debug`; read it with
/// [`expose_secret`](Self::expose_secret) where it must leave the process (the response
/// that shows a new key to its owner, an HTTP client's header).
#[derive(Clone, PartialEq, Eq)]
pub struct PlaintextKey(Zeroizing<String>);

impl PlaintextKey {
    /// Wraps a secret string.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(Zeroizing::new(secret.into()))
    }

    /// The secret itself. Call it only where the secret must be sent or shown.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// The SHA-256 hash under which this key is stored.
    pub fn hash(&self) -> KeyHash {
        KeyHash::of(&self.0)
    }
}

impl fmt::Debug for PlaintextKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlaintextKey(<redacted>)")
    }
}

/// The SHA-256 digest of a key: what the store keeps and looks keys up by.
///
/// Equality is constant-time. `Debug` shows the first 4 bytes in hex, enough to tell
/// hashes apart in a log, not enough to matter (the preimage is 24+ random bytes).
#[derive(Clone, Copy, Eq)]
pub struct KeyHash([u8; 32]);

impl KeyHash {
    /// Hashes a token.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Wraps a digest read from storage.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Wraps a digest read from storage as a slice.
    ///
    /// # Errors
    /// The length when the slice is not 32 bytes long.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, usize> {
        <[u8; 32]>::try_from(bytes)
            .map(Self)
            .map_err(|_| bytes.len())
    }

    /// The 32 digest bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for KeyHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

// Hashed by the same bytes `eq` compares, so the two agree.
impl std::hash::Hash for KeyHash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyHash(")?;
        for b in &self.0[..4] {
            write!(f, "{b:02x}")?;
        }
        f.write_str("…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Debug output never contains the secret.
    #[test]
    fn debug_is_redacted() {
        let key = PlaintextKey::new("sk_live_supersecretvalue");
        let shown = format!("{key:?} {:?}", key.hash());
        assert!(!shown.contains("supersecret"), "{shown}");
    }

    /// The hash is SHA-256 of the token bytes and compares by value.
    #[test]
    fn hash_is_sha256() {
        let h = KeyHash::of("abc");
        assert_eq!(
            h.as_bytes()[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "SHA-256(\"abc\") starts ba7816bf"
        );
        assert_eq!(h, KeyHash::from_slice(h.as_bytes()).unwrap());
        assert_eq!(KeyHash::from_slice(&[0; 31]), Err(31));
    }
}
