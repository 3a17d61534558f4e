//! Shared by the router's tests: a store that counts its lookups, and fixtures.
#![allow(dead_code, unreachable_pub)] // each test binary uses some of these

use chrono::{DateTime, Utc};
use http::HeaderMap;
use keyroute_store::MemoryStore;

/// A real store that counts the calls the resolver's hot path could make.
pub type CountingStore = keyroute_store::CountingStore<MemoryStore>;

/// Headers carrying `key` as a bearer token.
pub fn bearer(key: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::AUTHORIZATION,
        format!("Bearer {key}").parse().unwrap(),
    );
    headers
}

/// A fixed start for manual clocks.
pub fn start() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-05-01T09:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}
