//! [`AuthLayer`]: authentication as a tower layer, for stacks that are not axum
//! handlers. It puts the caller's [`Principal`](keyroute_core::Principal) into the request's extensions, where
//! the extractors (and any service) find it, and answers rejections with the same
//! [`Problem`] responses the extractors give. Admitted responses carry the caller's
//! `RateLimit-Policy` / `RateLimit` headers when usage limits apply to it (the
//! extractors alone can add them only to their 429s).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum_core::response::{IntoResponse, Response};
use http::Request;
use tower_layer::Layer;
use tower_service::Service;

use crate::extract::authenticate;
use crate::state::AuthState;

/// Authenticates every request through the pipeline the extractors run: the caller
/// goes into the request's extensions, a rejection is answered with the same
/// [`Problem`](crate::Problem) an extractor gives.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    auth: AuthState,
}

impl AuthLayer {
    /// A layer authenticating with `auth`.
    pub fn new(auth: AuthState) -> Self {
        Self { auth }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            auth: self.auth.clone(),
        }
    }
}

/// The service [`AuthLayer`] wraps around another.
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    auth: AuthState,
}

impl<S, B> Service<Request<B>> for AuthService<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone that was polled ready serves this request; a fresh clone stays.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            match authenticate(&mut parts, &auth).await {
                // `authenticate` has put the Principal into the extensions.
                Ok(principal) => {
                    let mut response = inner.call(Request::from_parts(parts, body)).await?;
                    crate::limits::add_headers(response.headers_mut(), principal.usage());
                    Ok(response)
                }
                Err(problem) => Ok(problem.into_response()),
            }
        })
    }
}
