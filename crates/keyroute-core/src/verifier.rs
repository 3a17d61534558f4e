//! [`TokenVerifier`]: how bearer tokens other than API keys (JWTs) become principals.
//!
//! The resolver (`keyroute-router`) hands every JWT-shaped credential to the verifier
//! it was given, so one guard accepts API keys, JWTs exchanged for them, JWTs issued
//! as scoped keys and people's session tokens alike. `keyroute-jwt` implements it; the
//! trait lives here so neither crate depends on the other.

use async_trait::async_trait;

use crate::error::AuthError;
use crate::principal::Principal;

/// Verifies a JWT and returns the caller it names.
#[async_trait]
pub trait TokenVerifier: Send + Sync + std::fmt::Debug {
    /// Checks the token (signature, claims, revocation) and returns its principal.
    ///
    /// # Errors
    /// [`AuthError::Jwt`] naming the failed check, or [`AuthError::Store`] when the
    /// revocation list cannot be read.
    async fn verify(&self, token: &str) -> Result<Principal, AuthError>;
}

/// Whether a presented token has the shape of a JWT (three dot-separated parts). API
/// keys never contain a dot, so the two cannot be confused.
pub fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|&b| b == b'.').count() == 2
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys and JWTs are told apart by their dots alone.
    #[test]
    fn shapes() {
        assert!(looks_like_jwt("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"));
        assert!(!looks_like_jwt("sk_live_abc"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a.b.c.d"));
    }
}
