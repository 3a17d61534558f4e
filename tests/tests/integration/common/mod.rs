//! Helpers shared by the `integration` binary's modules (`adversarial`, `front_door`,
//! `isolation_at_scale`, `pgbouncer`, `router_config`), used as `crate::common::...`.
//! There is no `dead_code` allow: an item no module uses any more is a warning.
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
