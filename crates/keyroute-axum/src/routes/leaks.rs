//! Leak response for GitHub's secret scanning partner program: GitHub posts the
//! tokens matching an app's registered key format that it finds in public code, and
//! this route checks the alert is GitHub's, hands each token to the key service's
//! [`report_leak`](keyroute_core::Acting::report_leak) (core decides: revoke, or only
//! report; record; tell the hooks) and answers in the format GitHub reads.
//!
//! The alert is accepted only when the ECDSA P-256 / SHA-256 signature in
//! `Github-Public-Key-Signature` (base64 of DER) verifies over the raw body with the
//! public key named by `Github-Public-Key-Identifier`, among the keys the app
//! configured ([`SecretScanning::from_github_keys`], in the JSON GitHub publishes).
//! An alert seen before (the same body and signature, within a day, on this instance)
//! is refused as a replay; a replay reaching another instance finds its keys already
//! revoked, so it changes nothing there either.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum_core::extract::FromRef;
use axum_core::response::Response;
use base64::Engine as _;
use http::{HeaderMap, StatusCode};
use keyroute_core::{LeakReport, LeakResponse, LeakVerdict, Operator, PlaintextKey};
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey as _;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::keys::json;
use crate::problem::Problem;
use crate::state::AuthState;

/// The largest alert read (GitHub batches matches into one request).
pub const MAX_ALERT_BYTES: usize = 1024 * 1024;

/// The operator leak reports are recorded as.
const REPORTER: &str = "github-secret-scanning";

/// Why a set of scanner public keys could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanningKeysError {
    /// Not the JSON GitHub publishes (`{"public_keys": [{"key_identifier", "key"}]}`).
    #[error("the secret scanning keys are not GitHub's public_keys JSON: {0}")]
    Json(String),
    /// A key is not a PEM P-256 public key.
    #[error("secret scanning key '{0}' is not a PEM-encoded P-256 public key")]
    Key(String),
    /// No key at all.
    #[error("no secret scanning public key is configured; give GitHub's public_keys JSON")]
    Empty,
    /// The file could not be read.
    #[error("cannot read the secret scanning keys file: {0}")]
    File(#[from] std::io::Error),
}

#[derive(Deserialize)]
struct PublishedKeys {
    public_keys: Vec<PublishedKey>,
}

#[derive(Deserialize)]
struct PublishedKey {
    key_identifier: String,
    key: String,
}

/// The leak-report route's settings: the scanner's public keys and what to do with a
/// working key that leaked. Cheap to clone.
#[derive(Clone)]
pub struct SecretScanning {
    keys: Arc<Vec<(String, VerifyingKey)>>,
    response: LeakResponse,
    seen: moka::sync::Cache<[u8; 32], ()>,
}

impl fmt::Debug for SecretScanning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretScanning")
            .field(
                "key_identifiers",
                &self.keys.iter().map(|(id, _)| id).collect::<Vec<_>>(),
            )
            .field("response", &self.response)
            .finish_non_exhaustive()
    }
}

impl SecretScanning {
    /// Settings from the JSON GitHub publishes for its secret scanning keys
    /// (`{"public_keys": [{"key_identifier": "...", "key": "-----BEGIN PUBLIC KEY-----..."}]}`):
    /// every key listed is accepted, by its identifier. Leaked keys are revoked.
    ///
    /// # Errors
    /// [`ScanningKeysError`] for JSON of another shape, a key that is not a P-256
    /// public key in PEM, or no key.
    pub fn from_github_keys(json: &str) -> Result<Self, ScanningKeysError> {
        let published: PublishedKeys =
            serde_json::from_str(json).map_err(|e| ScanningKeysError::Json(e.to_string()))?;
        let keys = published
            .public_keys
            .into_iter()
            .map(|k| {
                VerifyingKey::from_public_key_pem(k.key.trim())
                    .map(|key| (k.key_identifier.clone(), key))
                    .map_err(|_| ScanningKeysError::Key(k.key_identifier))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err(ScanningKeysError::Empty);
        }
        Ok(Self {
            keys: Arc::new(keys),
            response: LeakResponse::Revoke,
            seen: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(24 * 3600))
                .build(),
        })
    }

    /// [`from_github_keys`](Self::from_github_keys) read from a file.
    ///
    /// # Errors
    /// As [`from_github_keys`](Self::from_github_keys), and the file's read error.
    pub fn from_github_keys_file(
        path: impl AsRef<std::path::Path>,
    ) -> Result<Self, ScanningKeysError> {
        Self::from_github_keys(&std::fs::read_to_string(path)?)
    }

    /// What to do with a working key that leaked (default: revoke it).
    pub fn response(mut self, response: LeakResponse) -> Self {
        self.response = response;
        self
    }

    /// The route, at `path` (GitHub is given its URL), to merge into the app's router.
    pub fn router<S>(&self, path: &str) -> Router<S>
    where
        AuthState: FromRef<S>,
        S: Clone + Send + Sync + 'static,
    {
        let settings = self.clone();
        Router::new().route(
            path,
            post(
                move |State(auth): State<AuthState>, headers: HeaderMap, body: Bytes| {
                    let settings = settings.clone();
                    async move { settings.handle(&auth, &headers, &body).await }
                },
            ),
        )
    }

    /// Verifies the alert's signature, refuses replays, then reports each token.
    async fn handle(
        &self,
        auth: &AuthState,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Response, Problem> {
        if body.len() > MAX_ALERT_BYTES {
            return Err(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the alert is over {MAX_ALERT_BYTES} bytes"),
            ));
        }
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let refused = |code: &'static str, detail: &str| {
            Problem::new(StatusCode::UNAUTHORIZED, code, detail.to_owned())
        };
        let (Some(identifier), Some(signature)) = (
            header("github-public-key-identifier"),
            header("github-public-key-signature"),
        ) else {
            return Err(refused(
                "signature_missing",
                "send Github-Public-Key-Identifier and Github-Public-Key-Signature",
            ));
        };
        let Some((_, key)) = self.keys.iter().find(|(id, _)| id == identifier) else {
            return Err(refused(
                "unknown_signing_key",
                "the alert names a signing key that is not configured",
            ));
        };
        let signature = base64::engine::general_purpose::STANDARD
            .decode(signature.trim())
            .ok()
            .and_then(|der| Signature::from_der(&der).ok())
            .ok_or_else(|| refused("bad_signature", "the signature is not base64 DER ECDSA"))?;
        key.verify(body, &signature).map_err(|_| {
            refused(
                "bad_signature",
                "the signature does not verify over the body",
            )
        })?;
        let fingerprint: [u8; 32] = sha2::Sha256::new()
            .chain_update(body)
            .chain_update(signature.to_der().as_bytes())
            .finalize()
            .into();
        if self.seen.contains_key(&fingerprint) {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "replayed_alert",
                "this alert was received before",
            ));
        }
        let matches: Vec<Match> = serde_json::from_slice(body).map_err(|_| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed_alert",
                "the alert is not a JSON array of {token, type, url, source}",
            )
        })?;
        self.seen.insert(fingerprint, ());
        let acting = auth.keys().acting_as(Operator::named_default(REPORTER));
        let mut answer = Vec::with_capacity(matches.len());
        for found in matches {
            let report = LeakReport::new(PlaintextKey::new(found.token), "github", found.url);
            let verdict = acting
                .report_leak(&report, self.response)
                .await
                .map_err(|e| Problem::service(&e))?;
            answer.push(Feedback {
                token_hash: hex(&report.token.hash()),
                token_type: found.token_type,
                label: if verdict.is_ours() {
                    "true_positive"
                } else {
                    "false_positive"
                },
            });
            if let LeakVerdict::Revoked(key) = &verdict {
                tracing::warn!(key_id = %key.id, "keyroute: a key found in public code was revoked");
            }
        }
        Ok(json(StatusCode::OK, &answer, false))
    }
}

/// One match in GitHub's alert.
#[derive(Deserialize)]
struct Match {
    token: String,
    #[serde(rename = "type", default)]
    token_type: String,
    #[serde(default)]
    url: Option<String>,
}

/// GitHub's feedback format: each token by its SHA-256, labelled.
#[derive(Serialize)]
struct Feedback {
    token_hash: String,
    token_type: String,
    label: &'static str,
}

fn hex(hash: &keyroute_core::KeyHash) -> String {
    hash.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
}
