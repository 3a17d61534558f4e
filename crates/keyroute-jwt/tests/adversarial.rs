//! Defect tests: each is named after a defect found in review and failed before its fix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::hs_key;
use keyroute_jwt::{Error, JwtConfig, JwtService};
use keyroute_store::MemoryStore;

/// A deny-cache TTL of 2 000 years passed validation and then panicked inside moka.
#[test]
fn deny_cache_ttl_over_1000_years_panics_in_moka() {
    let two_thousand_years = Duration::from_secs(2_000 * 31_557_600);
    let built =
        JwtService::builder(JwtConfig::default().with_deny_cache(two_thousand_years, 1_000))
            .signing_key(hs_key())
            .deny_list(Arc::new(MemoryStore::new()))
            .build();
    match built {
        Err(Error::Config(reason)) => assert!(reason.contains("deny_cache_ttl"), "{reason}"),
        other => panic!(
            "expected a Config error naming deny_cache_ttl, got {:?}",
            other.err()
        ),
    }
}
