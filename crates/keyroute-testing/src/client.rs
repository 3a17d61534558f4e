//! [`TestServer`]: the app's axum `Router` served on 127.0.0.1 for one test, and
//! [`TestClient`], a real HTTP client (reqwest) that presents a key or a token.

use std::fmt;
use std::net::SocketAddr;

use keyroute::PlaintextKey;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Method, RequestBuilder};
use tokio::task::JoinHandle;

use crate::{TestApp, TestAppError, TestBackend};

impl<B: TestBackend> TestApp<B> {
    /// Serves `router` (the app's routes, its state already given) on a fresh port of
    /// 127.0.0.1, with the peer address keyroute checks forwarded headers against.
    /// The server stops when the [`TestServer`] drops.
    ///
    /// # Errors
    /// [`TestAppError::Serve`] when no port can be bound.
    pub async fn serve(&self, router: axum::Router) -> Result<TestServer, TestAppError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let service = router.into_make_service_with_connect_info::<SocketAddr>();
            // Ends only when aborted (the TestServer drops) or the listener fails.
            let _ = axum::serve(listener, service).await;
        });
        Ok(TestServer {
            addr,
            http: reqwest::Client::new(),
            task,
        })
    }
}

/// The app served on 127.0.0.1 for one test. Requests without a credential go through
/// [`client`](Self::client); [`with_key`](Self::with_key) and
/// [`with_token`](Self::with_token) give clients that present one.
pub struct TestServer {
    addr: SocketAddr,
    http: reqwest::Client,
    task: JoinHandle<()>,
}

impl fmt::Debug for TestServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    /// The address the app listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A client that presents no credential.
    pub fn client(&self) -> TestClient {
        TestClient {
            base: self.url(""),
            http: self.http.clone(),
            authorization: None,
        }
    }

    /// A client that presents `key` as `Authorization: Bearer <key>` on every request.
    pub fn with_key(&self, key: &PlaintextKey) -> TestClient {
        self.with_token(key.expose_secret())
    }

    /// A client that presents `token` (a JWT, or any credential text) as
    /// `Authorization: Bearer <token>` on every request. A token that is not a valid
    /// header value is sent as no credential at all, which the app refuses.
    pub fn with_token(&self, token: &str) -> TestClient {
        let mut value = HeaderValue::from_str(&format!("Bearer {token}")).ok();
        if let Some(value) = value.as_mut() {
            value.set_sensitive(true);
        }
        TestClient {
            authorization: value,
            ..self.client()
        }
    }

    /// `GET path` with no credential.
    pub fn get(&self, path: &str) -> RequestBuilder {
        self.client().get(path)
    }

    /// `POST path` with no credential.
    pub fn post(&self, path: &str) -> RequestBuilder {
        self.client().post(path)
    }
}

/// A client for a [`TestServer`], presenting one credential (or none) on every
/// request. Its methods return reqwest's `RequestBuilder`: add a body, JSON, headers,
/// then `.send().await`.
#[derive(Clone)]
pub struct TestClient {
    base: String,
    http: reqwest::Client,
    authorization: Option<HeaderValue>,
}

impl fmt::Debug for TestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestClient")
            .field("base", &self.base)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "Bearer [redacted]"),
            )
            .finish()
    }
}

impl TestClient {
    /// A request of `method` to `path` (`/orders?limit=5`).
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.authorization {
            Some(value) => request.header(AUTHORIZATION, value.clone()),
            None => request,
        }
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    /// `POST path`.
    pub fn post(&self, path: &str) -> RequestBuilder {
        self.request(Method::POST, path)
    }

    /// `PUT path`.
    pub fn put(&self, path: &str) -> RequestBuilder {
        self.request(Method::PUT, path)
    }

    /// `PATCH path`.
    pub fn patch(&self, path: &str) -> RequestBuilder {
        self.request(Method::PATCH, path)
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str) -> RequestBuilder {
        self.request(Method::DELETE, path)
    }
}
