//! [`Context`]: where a key-management request came from, for the audit trail: the
//! client's address as the resolver reads proxies, and the request's `X-Request-Id`
//! (kept only when it is 1 to 128 printable ASCII characters).

use axum_core::extract::{FromRef, FromRequestParts};
use http::request::Parts;
use keyroute_core::AuditContext;

use crate::problem::Problem;
use crate::state::{AuthState, incoming};

/// The audit context of a request; never rejects.
#[derive(Debug, Clone)]
pub(crate) struct Context(pub(crate) AuditContext);

impl<S> FromRequestParts<S> for Context
where
    AuthState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let auth = AuthState::from_ref(state);
        let source = auth.resolver().client_address(&incoming(parts));
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok());
        Ok(Self(AuditContext::new(source, request_id)))
    }
}
