//! Tests of `error.rs`: every error's class and code.

use super::*;

/// Codes are stable snake_case words; a store failure is coded by its kind.
#[test]
fn auth_error_codes() {
    let cases: [(AuthError, &str); 7] = [
        (AuthError::Revoked, "revoked_key"),
        (AuthError::Token(TokenError::BadChecksum), "invalid_key"),
        (AuthError::Jwt(JwtError::Expired), "expired_token"),
        (CredentialError::Missing.into(), "no_credentials"),
        (StoreError::unavailable("down").into(), "unavailable"),
        (StoreError::Conflict("x".into()).into(), "conflict"),
        (StoreError::InvalidData("x".into()).into(), "internal"),
    ];
    for (error, code) in cases {
        assert_eq!(error.code(), code, "{error}");
        assert!(code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
    }
}

/// A missing credential asks the caller to authenticate, an unreadable one is
/// malformed (never "unauthenticated"), a read one that fails is an invalid
/// credential, and a store failure keeps its own class: an outage stays
/// `Unavailable` whichever error carries it.
#[test]
fn classes_say_what_went_wrong() {
    use CredentialError as C;
    let cases: [(AuthError, ErrorClass); 9] = [
        (C::Missing.into(), ErrorClass::Unauthenticated),
        (C::Ambiguous.into(), ErrorClass::Malformed),
        (C::TooLong { len: 9, max: 8 }.into(), ErrorClass::Malformed),
        (C::BasicPasswordNotEmpty.into(), ErrorClass::Malformed),
        (C::UnsupportedScheme.into(), ErrorClass::InvalidCredential),
        (AuthError::Revoked, ErrorClass::InvalidCredential),
        (AuthError::InsecureConnection, ErrorClass::Forbidden),
        (
            StoreError::unavailable("down").into(),
            ErrorClass::Unavailable,
        ),
        (
            StoreError::InvalidData("x".into()).into(),
            ErrorClass::Internal,
        ),
    ];
    for (error, class) in cases {
        assert_eq!(error.class(), class, "{error}");
    }
    let down = KeyServiceError::Store(StoreError::unavailable("down"));
    assert_eq!(down.class(), ErrorClass::Unavailable);
    assert_eq!(KeyServiceError::NotRollable.class(), ErrorClass::Conflict);
    assert_eq!(
        KeyServiceError::NoMinter("jwt".into()).class(),
        ErrorClass::Internal
    );
}

/// An outage has one stable code whichever error carries it: a key-service call
/// and a request's authentication that meet the same unavailable store both say
/// `unavailable`, as the HTTP map and the README's table do.
#[test]
fn an_outage_has_one_code() {
    let down = StoreError::unavailable("down");
    assert_eq!(AuthError::Store(down.clone()).code(), "unavailable");
    assert_eq!(KeyServiceError::Store(down).code(), "unavailable");
}
