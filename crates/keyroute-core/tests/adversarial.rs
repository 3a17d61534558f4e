//! Defect tests: each is named after a defect found in review and failed before its fix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use keyroute_core::{ConfigError, KeyOptions, check_duration};

/// 2 000 years, as `KEYROUTE_APIKEY_SESSION_CACHE_DURATION=2000years` gives.
const TWO_THOUSAND_YEARS: Duration = Duration::from_secs(2_000 * 31_557_600);

/// Durations of 100 years or more passed validation (up to ~292 million years) and then panicked inside moka.
#[test]
fn durations_over_100_years_are_accepted() {
    let options = KeyOptions::default()
        .apply_env_vars([("KEYROUTE_APIKEY_SESSION_CACHE_DURATION", "2000years")])
        .and_then(|o| o.validate().map(|()| o));
    match options {
        Err(ConfigError::InvalidOption { option, reason }) => {
            assert_eq!(option, "session_cache_duration");
            assert!(reason.contains("100 years"), "{reason}");
        }
        other => panic!("expected an invalid session_cache_duration, got {other:?}"),
    }
    let mut options = KeyOptions::default();
    options.expire_keys_after = Some(TWO_THOUSAND_YEARS);
    assert!(matches!(
        options.validate(),
        Err(ConfigError::InvalidOption { option, .. }) if option == "expire_keys_after"
    ));
    // The bound itself: under 100 years passes, 100 years does not, nor does zero.
    assert!(check_duration("x", Duration::from_secs(99 * 31_557_600)).is_ok());
    assert!(check_duration("x", Duration::from_secs(100 * 31_557_600)).is_err());
    assert!(check_duration("x", Duration::ZERO).is_err());
}
