//! [`Problem`]: every rejection as an RFC 9457 `application/problem+json` response,
//! with a stable machine-readable `code`, and the RFC 6750 §3 `WWW-Authenticate`
//! challenge where the credential was the problem.
//!
//! Statuses come from [`AuthError::http_status`] and [`RouteError::http_status`], with
//! one refinement RFC 6750 asks for: a credential that cannot even be read (two
//! credentials, a header that is not text, too long, broken Basic encoding) is a
//! malformed request, 400 `invalid_request`, not 401. No response carries the
//! presented key or token: details are the errors' own messages, which never hold a
//! secret, and faults are logged and answered with a generic detail.

use std::fmt;

use axum_core::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use keyroute_core::{AuthError, CredentialError, ErrorKind, StoreError};
use keyroute_router::RouteError;
use serde::Serialize;

/// Seconds a client is told to wait when a database is unavailable.
const RETRY_AFTER_SECS: u32 = 5;

/// An error response: status, code, detail, and the headers it needs.
#[derive(Clone)]
pub struct Problem {
    status: StatusCode,
    code: &'static str,
    detail: String,
    challenge: Option<String>,
    retry_after: bool,
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

    /// A 503 (with `Retry-After`) for an unavailable database, a 409 for a conflict,
    /// a 500 for anything else.
    pub fn store(error: &StoreError) -> Self {
        match error.kind() {
            ErrorKind::Unavailable => {
                tracing::warn!(%error, "keyroute: a database is unavailable");
                let mut p = Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "a database is unavailable; try again later",
                );
                p.retry_after = true;
                p
            }
            ErrorKind::Conflict => Self::new(
                StatusCode::CONFLICT,
                "conflict",
                "the change conflicts with another one; try again",
            ),
            _ => Self::internal(error),
        }
    }

    /// The rejection of a credential, with its challenge. The code is the error's own
    /// ([`AuthError::code`]); this maps it to a status and an RFC 6750 error.
    pub fn auth(error: &AuthError, realm: &str) -> Self {
        use CredentialError as C;
        let (status, rfc_error) = match error {
            AuthError::Store(e) => return Self::store(e),
            AuthError::Credentials(C::Missing) => (StatusCode::UNAUTHORIZED, None),
            AuthError::Credentials(C::Ambiguous) => {
                (StatusCode::BAD_REQUEST, Some("invalid_request"))
            }
            AuthError::Credentials(C::UnsupportedScheme | C::EmptyToken) => {
                (StatusCode::UNAUTHORIZED, Some("invalid_token"))
            }
            AuthError::Credentials(_) => (StatusCode::BAD_REQUEST, Some("invalid_request")),
            AuthError::Token(_)
            | AuthError::UnknownKey
            | AuthError::Revoked
            | AuthError::Expired
            | AuthError::Jwt(_)
            | AuthError::JwtNotAccepted => (StatusCode::UNAUTHORIZED, Some("invalid_token")),
            AuthError::InsufficientScope { .. } => {
                (error.http_status(), Some("insufficient_scope"))
            }
            _ => (error.http_status(), None),
        };
        let code = error.code();
        let mut problem = Self::new(status, code, error.to_string());
        problem.challenge = match (status, rfc_error, error) {
            (_, _, AuthError::InsufficientScope { required }) => Some(format!(
                "Bearer realm=\"{realm}\", error=\"insufficient_scope\", scope=\"{}\"",
                required.replace(['"', '\\'], "")
            )),
            (StatusCode::UNAUTHORIZED | StatusCode::BAD_REQUEST, Some(rfc), _) => Some(format!(
                "Bearer realm=\"{realm}\", error=\"{rfc}\", Basic realm=\"{realm}\""
            )),
            (StatusCode::UNAUTHORIZED, None, _) => {
                Some(format!("Bearer realm=\"{realm}\", Basic realm=\"{realm}\""))
            }
            _ => None,
        };
        problem
    }

    /// A key-service error: its stable code, with the status its kind calls for
    /// (refusals of the authority rules 403, the caller's mistakes 422, an unknown
    /// user 404, a key that cannot be rolled 409, outages 503, faults 500).
    pub fn service(error: &keyroute_core::KeyServiceError) -> Self {
        use keyroute_core::KeyServiceError as E;
        let status = match error {
            E::Store(e) => return Self::store(e),
            E::Denied(_) => StatusCode::FORBIDDEN,
            E::UnknownUser(_) => StatusCode::NOT_FOUND,
            E::NotRollable => StatusCode::CONFLICT,
            E::EnvironmentNotEnabled(_)
            | E::KeyTypeNotEnabled(_)
            | E::Name(_)
            | E::Text(_)
            | E::InvalidRequest(_)
            | E::UserRequired => StatusCode::UNPROCESSABLE_ENTITY,
            _ => return Self::internal(error),
        };
        Self::new(status, error.code(), error.to_string())
    }

    /// The rejection of a request that got no connection.
    pub fn route(error: &RouteError, realm: &str) -> Self {
        match error {
            RouteError::Auth(e) => Self::auth(e, realm),
            RouteError::NoRoute { .. } => {
                Self::new(StatusCode::FORBIDDEN, error.code(), error.to_string())
            }
            RouteError::Anonymous => {
                Self::auth(&AuthError::Credentials(CredentialError::Missing), realm)
            }
            RouteError::Unavailable { source, .. } => Self::store(source),
            _ => Self::internal(error),
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
            headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        response
    }
}
