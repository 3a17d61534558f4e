//! Keys: [`SigningKey`] and [`VerificationKey`], each named by a `kid` and pinned to
//! one [`JwtAlgorithm`].
//!
//! Pinning is what stops algorithm-switch attacks. A token's header names its key
//! (`kid`) and an algorithm (`alg`); the verifier finds the key by `kid` and accepts the
//! token only if `alg` is that key's own algorithm. A token that says `HS256` while
//! naming an RSA key is refused before any cryptography runs, so an RSA public key can
//! never be used as an HMAC secret, and `alg: none` names no algorithm at all.
//!
//! Keys are checked when they are loaded (PEM parsed, a probe signed and verified,
//! HMAC secrets at least as long as their hash, RSA moduli of 2048 bits or more), so a
//! bad key fails at start-up, not on the first request. Key material lives in
//! `jsonwebtoken`'s key types, which zero it on drop; `Debug` prints the `kid` and the
//! algorithm only.
//!
//! This file loads and checks single keys; the set of keys a service holds (which
//! signs, which verify, rotation) is `KeyRing`, in `key/ring.rs`.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use rand::TryRng as _;

use crate::error::JwtServiceError;

mod ring;
pub(crate) use ring::KeyRing;

/// The algorithms keyroute signs and verifies with. Each key is pinned to one.
///
/// The default is HS256 ([`SigningKey::generate_hs256`] makes such a key from OS
/// entropy). A service never makes a key by itself: a key generated silently at
/// start-up would differ between instances and vanish on restart, so every token
/// would fail somewhere.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JwtAlgorithm {
    /// HMAC with SHA-256: a shared secret of at least 32 bytes. The default.
    #[default]
    Hs256,
    /// HMAC with SHA-384: a shared secret of at least 48 bytes.
    Hs384,
    /// HMAC with SHA-512: a shared secret of at least 64 bytes.
    Hs512,
    /// RSASSA-PKCS1-v1_5 with SHA-256: an RSA key of at least 2048 bits.
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl JwtAlgorithm {
    /// Every supported algorithm.
    pub const ALL: [JwtAlgorithm; 6] = [
        JwtAlgorithm::Hs256,
        JwtAlgorithm::Hs384,
        JwtAlgorithm::Hs512,
        JwtAlgorithm::Rs256,
        JwtAlgorithm::Es256,
        JwtAlgorithm::EdDsa,
    ];

    /// The name used in a token's `alg` header (`HS256`, `EdDSA`, ...).
    pub fn name(self) -> &'static str {
        match self {
            JwtAlgorithm::Hs256 => "HS256",
            JwtAlgorithm::Hs384 => "HS384",
            JwtAlgorithm::Hs512 => "HS512",
            JwtAlgorithm::Rs256 => "RS256",
            JwtAlgorithm::Es256 => "ES256",
            JwtAlgorithm::EdDsa => "EdDSA",
        }
    }

    /// The algorithm an `alg` header names, if it is one keyroute supports. `none` and
    /// every other name give `None`. Names are case-sensitive, as RFC 7515 requires.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// Whether this is an HMAC (shared-secret) algorithm.
    pub fn is_hmac(self) -> bool {
        matches!(
            self,
            JwtAlgorithm::Hs256 | JwtAlgorithm::Hs384 | JwtAlgorithm::Hs512
        )
    }

    pub(crate) fn jwt(self) -> Algorithm {
        match self {
            JwtAlgorithm::Hs256 => Algorithm::HS256,
            JwtAlgorithm::Hs384 => Algorithm::HS384,
            JwtAlgorithm::Hs512 => Algorithm::HS512,
            JwtAlgorithm::Rs256 => Algorithm::RS256,
            JwtAlgorithm::Es256 => Algorithm::ES256,
            JwtAlgorithm::EdDsa => Algorithm::EdDSA,
        }
    }

    /// The signature length in bytes, for all but RSA (where it is the modulus length).
    /// HMAC secrets must be at least this long too (RFC 7518 §3.2).
    fn fixed_len(self) -> Option<usize> {
        match self {
            JwtAlgorithm::Hs256 => Some(32),
            JwtAlgorithm::Hs384 => Some(48),
            JwtAlgorithm::Hs512 | JwtAlgorithm::Es256 | JwtAlgorithm::EdDsa => Some(64),
            JwtAlgorithm::Rs256 => None,
        }
    }
}

impl fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The smallest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_MODULUS_BYTES: usize = 256;

/// A `kid`: 1 to 128 visible ASCII characters. It is copied into every token header.
fn check_kid(kid: &str) -> Result<Arc<str>, JwtServiceError> {
    if kid.is_empty() || kid.len() > 128 || !kid.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(JwtServiceError::invalid_key(
            kid,
            "a kid is 1 to 128 visible ASCII characters",
        ));
    }
    Ok(Arc::from(kid))
}

/// A key that verifies tokens: a public key, or the verifying half of an HMAC secret.
#[derive(Clone)]
pub struct VerificationKey {
    kid: Arc<str>,
    algorithm: JwtAlgorithm,
    decoding: DecodingKey,
    /// The exact length of this key's signatures; a shorter one is a truncated token.
    signature_len: usize,
}

impl VerificationKey {
    /// A public key from PEM (`-----BEGIN PUBLIC KEY-----`, or `RSA PUBLIC KEY` for
    /// RS256), to verify tokens signed elsewhere with the matching private key.
    ///
    /// # Errors
    /// [`JwtServiceError::InvalidKey`] for an HMAC algorithm (use
    /// [`SigningKey::from_hmac_secret`]), a PEM that does not parse or holds a key of
    /// another family, or an RSA modulus under 2048 bits.
    pub fn from_pem(
        kid: &str,
        algorithm: JwtAlgorithm,
        pem: &[u8],
    ) -> Result<Self, JwtServiceError> {
        let kid = check_kid(kid)?;
        let refused = |reason| JwtServiceError::invalid_key(&kid, reason);
        let (decoding, signature_len) = match algorithm {
            JwtAlgorithm::Hs256 | JwtAlgorithm::Hs384 | JwtAlgorithm::Hs512 => {
                return Err(refused(
                    "an HMAC key is a shared secret, not a PEM public key",
                ));
            }
            JwtAlgorithm::Rs256 => {
                let der = DecodingKey::from_rsa_pem(pem)
                    .map_err(|_| refused("not an RSA public key in PEM"))?;
                let jwk = Jwk::from_decoding_key(&der, Some(Algorithm::RS256))
                    .map_err(|_| refused("not an RSA public key in PEM"))?;
                rsa_from_jwk(&jwk).ok_or_else(|| refused("not an RSA public key in PEM"))?
            }
            JwtAlgorithm::Es256 => (
                DecodingKey::from_ec_pem(pem)
                    .map_err(|_| refused("not a P-256 public key in PEM"))?,
                64,
            ),
            JwtAlgorithm::EdDsa => (
                DecodingKey::from_ed_pem(pem)
                    .map_err(|_| refused("not an Ed25519 public key in PEM"))?,
                64,
            ),
        };
        let key = Self {
            kid,
            algorithm,
            decoding,
            signature_len,
        };
        key.check_usable()?;
        Ok(key)
    }

    /// The key's id, as tokens name it in their `kid` header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The one algorithm this key verifies.
    pub fn algorithm(&self) -> JwtAlgorithm {
        self.algorithm
    }

    pub(crate) fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }

    pub(crate) fn signature_len(&self) -> usize {
        self.signature_len
    }

    /// Refuses keys the backend cannot use, so a bad key fails at load and never on
    /// a request (and never reaches backend code that assumes a well-formed key).
    fn check_usable(&self) -> Result<(), JwtServiceError> {
        let refused = |reason| JwtServiceError::invalid_key(&self.kid, reason);
        if self.algorithm == JwtAlgorithm::Rs256 && self.signature_len < MIN_RSA_MODULUS_BYTES {
            return Err(refused("RSA keys must have at least 2048 bits"));
        }
        if self.algorithm == JwtAlgorithm::EdDsa
            && self.decoding.try_get_as_bytes().map(<[u8]>::len).ok() != Some(32)
        {
            return Err(refused("not an Ed25519 public key"));
        }
        // A probe signature of the right length: a usable key answers "does not
        // verify"; an unusable one makes the backend fail.
        let probe = URL_SAFE_NO_PAD.encode(vec![0u8; self.signature_len]);
        jsonwebtoken::crypto::verify(
            &probe,
            b"keyroute probe",
            &self.decoding,
            self.algorithm.jwt(),
        )
        .map(|_| ())
        .map_err(|_| refused("the key is not usable for its algorithm"))
    }
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// The modulus length and a decoding key from an RSA public JWK.
fn rsa_from_jwk(jwk: &Jwk) -> Option<(DecodingKey, usize)> {
    let AlgorithmParameters::RSA(rsa) = &jwk.algorithm else {
        return None;
    };
    let modulus = URL_SAFE_NO_PAD.decode(&rsa.n).ok()?;
    // Big-endian with no leading zero byte: its length is the signature length.
    let len = modulus.iter().skip_while(|b| **b == 0).count();
    let key = DecodingKey::from_rsa_components(&rsa.n, &rsa.e).ok()?;
    Some((key, len))
}

/// A key that signs tokens, with its verifying half. Secret: `Debug` shows only the
/// `kid` and algorithm, and there is no `Display`.
#[derive(Clone)]
pub struct SigningKey {
    encoding: EncodingKey,
    verification: VerificationKey,
}

impl SigningKey {
    /// A new HS256 key with a 32-byte secret from the operating system's random source.
    ///
    /// # Errors
    /// [`JwtServiceError::InvalidKey`] for a bad `kid`; [`JwtServiceError::Entropy`] when the random source
    /// fails.
    pub fn generate_hs256(kid: &str) -> Result<Self, JwtServiceError> {
        Self::generate_hmac(kid, JwtAlgorithm::Hs256)
    }

    /// A new HMAC key for `algorithm` with a secret as long as its hash (32, 48 or 64
    /// bytes) from the operating system's random source. Share it with other
    /// instances with [`from_hmac_secret`](Self::from_hmac_secret) on each of them; a
    /// generated key cannot be read back.
    ///
    /// # Errors
    /// [`JwtServiceError::InvalidKey`] for a bad `kid` or a non-HMAC algorithm;
    /// [`JwtServiceError::Entropy`] when the random source fails.
    pub fn generate_hmac(kid: &str, algorithm: JwtAlgorithm) -> Result<Self, JwtServiceError> {
        let len = match algorithm.fixed_len() {
            Some(len) if algorithm.is_hmac() => len,
            _ => {
                return Err(JwtServiceError::invalid_key(
                    kid,
                    "only HMAC keys can be generated",
                ));
            }
        };
        let mut secret = vec![0u8; len];
        let filled = rand::rngs::SysRng
            .try_fill_bytes(&mut secret)
            .map_err(|e| JwtServiceError::Entropy(e.to_string()));
        let key = filled.and_then(|()| Self::from_hmac_secret(kid, algorithm, &secret));
        secret.fill(0);
        key
    }

    /// An HMAC key from a shared secret, at least as long as the algorithm's hash
    /// (32 bytes for HS256, 48 for HS384, 64 for HS512; RFC 7518 §3.2).
    ///
    /// # Errors
    /// [`JwtServiceError::InvalidKey`] for a bad `kid`, a non-HMAC algorithm or a short secret.
    pub fn from_hmac_secret(
        kid: &str,
        algorithm: JwtAlgorithm,
        secret: &[u8],
    ) -> Result<Self, JwtServiceError> {
        let kid = check_kid(kid)?;
        let min = match algorithm.fixed_len() {
            Some(len) if algorithm.is_hmac() => len,
            _ => {
                return Err(JwtServiceError::invalid_key(
                    &kid,
                    "use from_pem for RS256, ES256 and EdDSA keys",
                ));
            }
        };
        if secret.len() < min {
            return Err(JwtServiceError::invalid_key(
                &kid,
                "an HMAC secret must be at least as long as its hash (32, 48 or 64 bytes)",
            ));
        }
        let verification = VerificationKey {
            kid,
            algorithm,
            decoding: DecodingKey::from_secret(secret),
            signature_len: min,
        };
        Self::pair(EncodingKey::from_secret(secret), verification)
    }

    /// A private key from PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, or
    /// `RSA PRIVATE KEY` for RS256). The public half is derived from it.
    ///
    /// # Errors
    /// [`JwtServiceError::InvalidKey`] for an HMAC algorithm, a PEM that does not parse or holds
    /// a key of another family, or an RSA modulus under 2048 bits.
    pub fn from_pem(
        kid: &str,
        algorithm: JwtAlgorithm,
        pem: &[u8],
    ) -> Result<Self, JwtServiceError> {
        let kid = check_kid(kid)?;
        let refused = |reason| JwtServiceError::invalid_key(&kid, reason);
        let encoding = match algorithm {
            JwtAlgorithm::Hs256 | JwtAlgorithm::Hs384 | JwtAlgorithm::Hs512 => {
                return Err(refused("use from_hmac_secret for HMAC keys"));
            }
            JwtAlgorithm::Rs256 => EncodingKey::from_rsa_pem(pem),
            JwtAlgorithm::Es256 => EncodingKey::from_ec_pem(pem),
            JwtAlgorithm::EdDsa => EncodingKey::from_ed_pem(pem),
        }
        .map_err(|_| refused("not a private key of this algorithm in PEM"))?;
        let public = Jwk::from_encoding_key(&encoding, algorithm.jwt())
            .map_err(|_| refused("not a private key of this algorithm in PEM"))?;
        let (decoding, signature_len) = match algorithm {
            JwtAlgorithm::Rs256 => rsa_from_jwk(&public),
            _ => DecodingKey::from_jwk(&public)
                .ok()
                .zip(algorithm.fixed_len()),
        }
        .ok_or_else(|| refused("not a private key of this algorithm in PEM"))?;
        let verification = VerificationKey {
            kid,
            algorithm,
            decoding,
            signature_len,
        };
        Self::pair(encoding, verification)
    }

    /// Checks the halves belong together by signing and verifying a probe.
    fn pair(encoding: EncodingKey, verification: VerificationKey) -> Result<Self, JwtServiceError> {
        verification.check_usable()?;
        let probe = b"keyroute key check";
        let refused =
            || JwtServiceError::invalid_key(&verification.kid, "the key cannot sign and verify");
        let signature = jsonwebtoken::crypto::sign(probe, &encoding, verification.algorithm.jwt())
            .map_err(|_| refused())?;
        let verified = jsonwebtoken::crypto::verify(
            &signature,
            probe,
            &verification.decoding,
            verification.algorithm.jwt(),
        );
        if !matches!(verified, Ok(true)) {
            return Err(refused());
        }
        Ok(Self {
            encoding,
            verification,
        })
    }

    /// The key's id, written into the `kid` header of every token it signs.
    pub fn kid(&self) -> &str {
        self.verification.kid()
    }

    /// The one algorithm this key signs and verifies with.
    pub fn algorithm(&self) -> JwtAlgorithm {
        self.verification.algorithm()
    }

    /// The verifying half, to verify this key's tokens (after a rotation, or on an
    /// instance that only verifies).
    pub fn verification_key(&self) -> &VerificationKey {
        &self.verification
    }

    pub(crate) fn encoding(&self) -> &EncodingKey {
        &self.encoding
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid())
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}
