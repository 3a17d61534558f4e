//! Unit tests of the Valkey engine's pure parts: microsecond rounding, reply
//! parsing, password masking.

use super::*;

/// Intervals round up to whole microseconds and keep the burst; nothing passes
/// 2^52.
#[test]
fn microseconds_round_up_and_keep_the_burst() {
    // 1 s / 3 = 333 333 334 ns: 333 334 µs, burst 3.
    let third = Gcra::new(3, Duration::from_secs(1), 3);
    assert_eq!(micros(third), (333_334, 1_000_002));
    // Below a microsecond: one.
    let fast = Gcra::new(1_000_000, Duration::from_millis(1), 2);
    assert_eq!(micros(fast), (1, 2));
    // A month per unit with a burst of a billion saturates.
    let huge = Gcra::new(1, Duration::from_secs(31 * 24 * 3600), 1_000_000_000);
    assert_eq!(micros(huge), (2_678_400_000_000, MAX_MICROS));
}

#[test]
fn replies_become_verdicts() {
    assert_eq!(
        verdict(&[0, 0, 4, 1_500], 1).ok(),
        Some(Verdict::Admitted(smallvec::smallvec![LimitStatus {
            remaining: 4,
            reset_after: Duration::from_micros(1_500),
        }]))
    );
    let refused = verdict(&[2, 700, 3, 10, 0, 20], 2).ok();
    assert!(matches!(
        refused,
        Some(Verdict::Refused { index: 1, retry_after, .. }) if retry_after == Duration::from_micros(700)
    ));
    assert!(verdict(&[3, 1, 0, 0, 0, 0], 2).is_err());
    assert!(verdict(&[0, 0, 1], 1).is_err());
    assert!(verdict(&[], 1).is_err());
}

#[test]
fn passwords_are_found_for_masking() {
    assert_eq!(password("redis://:s3cret@host:6379"), Some("s3cret"));
    assert_eq!(password("rediss://user:pa:ss@host"), Some("pa:ss"));
    assert_eq!(password("redis://token@host"), Some("token"));
    assert_eq!(password("redis://host:6379/0"), None);
}
