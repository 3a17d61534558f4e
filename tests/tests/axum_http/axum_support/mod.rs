//! Shared by the `axum_*` tests: the example service itself (compiled in as a
//! module, so the tests exercise exactly what the README runs), served on
//! `127.0.0.1:0`, and a real HTTP client (hyper-util's) to drive it.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

#[path = "../../../../examples/service.rs"]
pub mod service;

use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as Hyper;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use keyroute::Keyroute;
use keyroute::store::Sqlite;

pub use service::DemoKeys;

/// The example service, running on a port of its own, and a client for it.
pub struct Running {
    pub addr: SocketAddr,
    pub keyroute: Keyroute<Sqlite>,
    pub keys: DemoKeys,
    pub client: Client,
    pub dir: tempfile::TempDir,
}

/// Starts the example service in a fresh directory, with `extra` appended to its
/// configuration, accepting plain HTTP unless `secure`.
pub async fn start_with(secure: bool, extra: &str) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut config = service::config(dir.path());
    if secure {
        config = config.replace(
            "dangerous_accept_plain_http = true",
            "dangerous_accept_plain_http = false",
        );
    }
    config.push_str(extra);
    let (router, keyroute, keys) = service::app_from(&config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(service::serve(listener, router));
    Running {
        addr,
        keyroute,
        keys,
        client: Client::new(addr),
        dir,
    }
}

/// The example service as the README runs it.
pub async fn start() -> Running {
    start_with(false, "").await
}

impl Running {
    /// Issues a key with `body` (`POST /apikeys`) as `parent`: its id and secret.
    pub async fn issue(&self, parent: &str, body: &str) -> (String, String) {
        let reply = self
            .client
            .json(Method::POST, "/apikeys", parent, body)
            .await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
        let json = reply.json();
        (
            json["id"].as_str().unwrap().to_owned(),
            json["key_secret"].as_str().unwrap().to_owned(),
        )
    }

    /// The stored record of key `id`, read past HTTP.
    pub async fn stored(&self, id: &str) -> keyroute::ApiKey {
        use keyroute::store::ApiKeyStore as _;
        let id = keyroute::KeyId::new(id).unwrap();
        self.keyroute
            .keys()
            .store()
            .get_api_key(&id)
            .await
            .unwrap()
            .unwrap()
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    /// The problem's `code`, or "" for a body that is not a problem.
    pub fn code(&self) -> String {
        serde_json::from_str::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v.get("code")?.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// A header as text, or "".
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    /// The JSON body.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// Whether `secret` appears anywhere in the status line, headers or body.
    pub fn mentions(&self, secret: &str) -> bool {
        self.body.contains(secret)
            || self
                .headers
                .iter()
                .any(|(_, v)| String::from_utf8_lossy(v.as_bytes()).contains(secret))
    }
}

/// hyper-util's HTTP/1 client, pointed at one server.
#[derive(Clone)]
pub struct Client {
    hyper: Hyper<HttpConnector, Full<Bytes>>,
    base: String,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            hyper: Hyper::builder(TokioExecutor::new()).build_http(),
            base: format!("http://{addr}"),
        }
    }

    /// Sends one request; `headers` values are raw bytes (non-UTF-8 allowed).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &[u8])],
        body: &str,
    ) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .body(Full::new(Bytes::from(body.to_owned())))
            .unwrap();
        for (name, value) in headers {
            request.headers_mut().append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        let response = self.hyper.request(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.unwrap().to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// `GET path` with `Authorization: Bearer key`.
    pub async fn get(&self, path: &str, key: &str) -> Reply {
        let auth = format!("Bearer {key}");
        self.send(Method::GET, path, &[("authorization", auth.as_bytes())], "")
            .await
    }

    /// `PATCH /apikeys/{id}` with `body`, as `key`.
    pub async fn patch_key(&self, id: &str, key: &str, body: &str) -> Reply {
        self.json(Method::PATCH, &format!("/apikeys/{id}"), key, body)
            .await
    }

    /// `method path` with `Authorization: Bearer key` and a JSON body.
    pub async fn json(&self, method: Method, path: &str, key: &str, body: &str) -> Reply {
        let auth = format!("Bearer {key}");
        self.send(
            method,
            path,
            &[
                ("authorization", auth.as_bytes()),
                ("content-type", b"application/json"),
            ],
            body,
        )
        .await
    }
}

diesel::table! {
    orders (id) {
        id -> Text,
        item -> Text,
    }
}

/// The items of the orders in the database named `name`, queried directly.
pub async fn items_in(keyroute: &Keyroute<Sqlite>, name: &str) -> Vec<String> {
    let mut db = keyroute.router().connection_named(name).await.unwrap();
    orders::table
        .select(orders::item)
        .load(&mut *db)
        .await
        .unwrap()
}

/// The directory path as text, for messages.
pub fn shown(dir: &Path) -> String {
    dir.display().to_string()
}

/// The `sh` blocks of the README section under `heading` (up to the next `## `), each
/// as its non-empty lines.
pub fn readme_sh_blocks(heading: &str) -> Vec<Vec<&'static str>> {
    let readme: &'static str = include_str!("../../../../README.md");
    let section = readme
        .split(&format!("\n{heading}\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("the README has a section '{heading}'"))
        .split("\n## ")
        .next()
        .unwrap();
    section
        .split("```sh\n")
        .skip(1)
        .map(|block| {
            block
                .split("```")
                .next()
                .unwrap()
                .lines()
                .filter(|l| !l.trim().is_empty())
                .collect()
        })
        .collect()
}

/// Runs one README line as written (its ` # ` comment cut) with bash, `set -euo
/// pipefail`, in `dir` with `envs`: its standard output. A line that fails fails the
/// test, with its standard error.
pub async fn run_readme_line(line: &str, dir: &Path, envs: &[(&str, String)]) -> String {
    let line = line.split(" # ").next().unwrap();
    let output = tokio::process::Command::new("bash")
        .args(["-c", &format!("set -euo pipefail; {line}")])
        .current_dir(dir)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "README line failed: {line}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
