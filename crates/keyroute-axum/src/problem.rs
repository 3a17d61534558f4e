//! [`Problem`]: every rejection as an RFC 9457 `application/problem+json` response,
//! with a stable machine-readable `code`, and the RFC 6750 §3 `WWW-Authenticate`
//! challenge where the credential was the problem.
//!
//! Core and the router say what went wrong without a transport: an error's
//! [`ErrorClass`] and its stable code. [`http_status`] is the one map from classes to
//! statuses, and every constructor here ([`Problem::auth`], [`Problem::route`],
//! [`Problem::service`], [`Problem::store`]) answers through it.
//!
//! No response carries the presented key or token: details are the errors' own
//! messages, which never hold a secret, and faults (and outages) are logged and
//! answered with a generic detail. The crate README's table of codes is tested against
//! this map.

use std::fmt;

use axum_core::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use keyroute_core::{AuthError, CredentialError, ErrorClass, KeyServiceError, StoreError};
use keyroute_router::RouteError;
use serde::Serialize;

/// Seconds a client is told to wait when a database is unavailable.
const RETRY_AFTER_SECS: u32 = 5;

/// The HTTP status for an error of `class`: the one map from keyroute's
/// transport-neutral error classes to HTTP, used by every [`Problem`] constructor
/// (with the challenge each class carries):
///
/// | class | status | challenge |
/// |---|---|---|
/// | `Unauthenticated` | 401 | `Bearer realm=..., Basic realm=...` |
/// | `InvalidCredential` | 401 | `Bearer realm=..., error="invalid_token", Basic realm=...` |
/// | `Malformed` | 400 | `Bearer realm=..., error="invalid_request", Basic realm=...` |
/// | `Forbidden` | 403 | `Bearer realm=..., error="insufficient_scope", scope=...` for a missing scope |
/// | `NotFound` | 404 | |
/// | `Conflict` | 409 | |
/// | `InvalidInput` | 422 | |
/// | `LimitReached` | 429, with `Retry-After` (and `RateLimit` headers for a rate limit) | |
/// | `Unavailable` | 503, with `Retry-After` | |
/// | `Internal` | 500 | |
///
/// A class added later is a 500 until it is given a status here.
pub fn http_status(class: ErrorClass) -> StatusCode {
    match class {
        ErrorClass::Unauthenticated | ErrorClass::InvalidCredential => StatusCode::UNAUTHORIZED,
        ErrorClass::Malformed => StatusCode::BAD_REQUEST,
        ErrorClass::Forbidden => StatusCode::FORBIDDEN,
        ErrorClass::NotFound => StatusCode::NOT_FOUND,
        ErrorClass::Conflict => StatusCode::CONFLICT,
        ErrorClass::InvalidInput => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorClass::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorClass::LimitReached => StatusCode::TOO_MANY_REQUESTS,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error response: status, code, detail, and the headers it needs.
#[derive(Clone)]
pub struct Problem {
    status: StatusCode,
    code: &'static str,
    detail: String,
    challenge: Option<String>,
    retry_after: bool,
    /// Seconds to wait, when the error says (a rate limit); else `RETRY_AFTER_SECS`.
    retry_secs: Option<u64>,
    usage: Vec<keyroute_core::limits::LimitUsage>,
}

impl fmt::Debug for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Problem")
            .field("status", &self.status)
            .field("code", &self.code)
            .field("detail", &self.detail)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    code: &'a str,
    detail: &'a str,
}

impl Problem {
    /// A problem with `status`, a stable `code` and a human `detail`.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            challenge: None,
            retry_after: false,
            retry_secs: None,
            usage: Vec::new(),
        }
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine-readable code (`unknown_key`, `insufficient_scope`, ...).
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The human-readable detail.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// A 500 for a fault: the cause is logged, the client gets a generic detail.
    pub fn internal(cause: &dyn fmt::Display) -> Self {
        tracing::error!(error = %cause, "keyroute: request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the request could not be served; the cause is in the service's log",
        )
    }

    /// A problem for an error of `class` with its `code` and message, the status
    /// from [`http_status`]. An outage is answered `unavailable` with `Retry-After`
    /// and a fault `internal`, each logged and with a generic detail: their messages
    /// may name hosts or stored data.
    fn classified(class: ErrorClass, code: &'static str, error: &dyn fmt::Display) -> Self {
        let status = http_status(class);
        if class == ErrorClass::Unavailable {
            tracing::warn!(%error, "keyroute: a database is unavailable");
            let mut p = Self::new(
                status,
                "unavailable",
                "a database is unavailable; try again later",
            );
            p.retry_after = true;
            return p;
        }
        if status.is_server_error() {
            return Self::internal(error);
        }
        Self::new(status, code, error.to_string())
    }

    /// A store failure: 503 `unavailable` (with `Retry-After`) for an unavailable
    /// database, 409 `conflict` for a conflict, 500 `internal` for anything else;
    /// never the database's own message.
    pub fn store(error: &StoreError) -> Self {
        match error.class() {
            ErrorClass::Conflict => Self::new(
                http_status(ErrorClass::Conflict),
                "conflict",
                "the change conflicts with another one; try again",
            ),
            class => Self::classified(class, "internal", error),
        }
    }

    /// The rejection of a credential, with its challenge: the error's own code
    /// ([`AuthError::code`]) and the status of its class ([`AuthError::class`]).
    pub fn auth(error: &AuthError, realm: &str) -> Self {
        if let AuthError::Store(e) = error {
            return Self::store(e);
        }
        if let AuthError::LimitsUnavailable = error {
            // Not a database: say what is down (the message names no host).
            tracing::warn!(
                "keyroute: usage limits cannot be checked; refusing (`on_unavailable = \"refuse\"`)"
            );
            let mut p = Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                error.to_string(),
            );
            p.retry_after = true;
            return p;
        }
        let class = error.class();
        let mut problem = Self::classified(class, error.code(), error);
        let challenge = |rfc_error: &str| {
            format!("Bearer realm=\"{realm}\", error=\"{rfc_error}\", Basic realm=\"{realm}\"")
        };
        problem.challenge = match (class, error) {
            (_, AuthError::InsufficientScope { required }) => Some(format!(
                "Bearer realm=\"{realm}\", error=\"insufficient_scope\", scope=\"{}\"",
                required.replace(['"', '\\'], "")
            )),
            (ErrorClass::Unauthenticated, _) => {
                Some(format!("Bearer realm=\"{realm}\", Basic realm=\"{realm}\""))
            }
            (ErrorClass::InvalidCredential, _) => Some(challenge("invalid_token")),
            (ErrorClass::Malformed, _) => Some(challenge("invalid_request")),
            _ => None,
        };
        match error {
            AuthError::RateLimited(refusal) => {
                problem.retry_after = true;
                problem.retry_secs = Some(refusal.retry_after_secs());
                problem.usage.clone_from(&refusal.usage);
            }
            AuthError::CreditsExhausted {
                next_refill_at: Some(at),
            } => {
                let wait = (*at - chrono::Utc::now()).num_seconds().max(1);
                problem.retry_after = true;
                problem.retry_secs = u64::try_from(wait).ok();
            }
            _ => {}
        }
        problem
    }

    /// A key-service error: its stable code ([`KeyServiceError::code`]) with the
    /// status of its class ([`KeyServiceError::class`]): refusals of the authority
    /// rules 403, the caller's mistakes 422, an unknown user 404, a key that cannot be
    /// rolled 409, outages 503, faults 500.
    pub fn service(error: &KeyServiceError) -> Self {
        match error {
            KeyServiceError::Store(e) => Self::store(e),
            _ => Self::classified(error.class(), error.code(), error),
        }
    }

    /// The rejection of a request that got no connection: a credential's as
    /// [`auth`](Self::auth), an anonymous request's as a missing credential's, a
    /// pool's failure as [`store`](Self::store), anything else by its class.
    pub fn route(error: &RouteError, realm: &str) -> Self {
        match error {
            RouteError::Auth(e) => Self::auth(e, realm),
            RouteError::Anonymous => {
                Self::auth(&AuthError::Credentials(CredentialError::Missing), realm)
            }
            RouteError::Unavailable { source, .. } => Self::store(source),
            _ => Self::classified(error.class(), error.code(), error),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = Body {
            kind: format!("urn:keyroute:problem:{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            code: self.code,
            detail: &self.detail,
        };
        let json = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (self.status, json).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(challenge) = self.challenge.and_then(|c| HeaderValue::try_from(c).ok()) {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        if self.retry_after {
            let secs = self.retry_secs.unwrap_or(u64::from(RETRY_AFTER_SECS));
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        crate::limits::add_headers(headers, &self.usage);
        response
    }
}
