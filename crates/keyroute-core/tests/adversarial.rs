//! Defect tests: each is named after a defect found in review and failed before its fix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use keyroute_core::KeyOptions;
use keyroute_core::config::check_duration;

/// 2 000 years, as `KEYROUTE_APIKEY_SESSION_CACHE_DURATION=2000years` gives.
const TWO_THOUSAND_YEARS: Duration = Duration::from_secs(2_000 * 31_557_600);

/// Durations of 100 years or more passed validation (up to ~292 million years) and then panicked inside moka.
#[test]
fn durations_over_100_years_are_accepted() {
    // What `KEYROUTE_APIKEY_SESSION_CACHE_DURATION=2000years` sets.
    let mut options = KeyOptions::default();
    let error = options
        .set("session_cache_duration", "2000years")
        .and_then(|()| options.validate())
        .unwrap_err();
    assert_eq!(error.option, "session_cache_duration");
    assert!(error.reason.contains("100 years"), "{error}");
    let mut options = KeyOptions::default();
    options.expire_keys_after = Some(TWO_THOUSAND_YEARS);
    assert_eq!(options.validate().unwrap_err().option, "expire_keys_after");
    // The bound itself: under 100 years passes, 100 years does not, nor does zero.
    assert!(check_duration("apikey", "x", Duration::from_secs(99 * 31_557_600)).is_ok());
    assert!(check_duration("apikey", "x", Duration::from_secs(100 * 31_557_600)).is_err());
    assert!(check_duration("apikey", "x", Duration::ZERO).is_err());
}
