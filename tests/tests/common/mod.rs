//! Helpers shared by test binaries that do not include `axum_support`: each
//! includer (`adversarial`, `front_door`, `isolation_at_scale`, `pgbouncer`,
//! `router_config`) uses every item here, so no `dead_code` allow is needed; add
//! to this module only what all of them use, or give the new item its own
//! `#[allow(dead_code)]` saying which binaries leave it unused.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

/// Headers carrying `token` as a bearer token.
pub(crate) fn bearer(token: &str) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    headers
}
