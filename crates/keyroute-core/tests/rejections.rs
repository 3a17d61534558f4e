//! Malformed credentials and keys are each rejected with their own typed error, offline.
//!
//! Every row goes through the same path a request does: read the credential from the
//! headers, then parse the key. No row may panic, and each names the exact error.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, HeaderName, HeaderValue};
use keyroute_core::{
    AuthError, CredentialError as C, CredentialExtractor, Environment, KeyOptions, KeyType,
    PresentedKey, TokenError as T, TokenFormat,
};

/// What a row expects.
#[derive(Debug)]
enum Expect {
    Credential(C),
    Token(T),
}

fn format() -> TokenFormat {
    KeyOptions::default().token_format().unwrap()
}

fn valid_key() -> String {
    format()
        .generate(&KeyType::SECRET, &Environment::LIVE)
        .unwrap()
        .expose_secret()
        .to_owned()
}

/// The offline half of authentication: extract, then parse.
fn authenticate(headers: &HeaderMap, query: Option<&str>) -> Result<PresentedKey, AuthError> {
    let credential = CredentialExtractor::default().extract(headers, query)?;
    Ok(format().parse(credential.token.expose_secret())?)
}

fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value).unwrap(),
        );
    }
    map
}

fn bearer(token: &str) -> HeaderMap {
    headers(&[("authorization", format!("Bearer {token}").as_bytes())])
}

fn basic(decoded: &[u8]) -> HeaderMap {
    headers(&[(
        "authorization",
        format!("Basic {}", STANDARD.encode(decoded)).as_bytes(),
    )])
}

fn flip(s: &str, index: usize) -> String {
    let mut bytes = s.as_bytes().to_vec();
    bytes[index] = if bytes[index] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

/// Each malformed input gets the specific typed error, never a panic.
#[test]
fn malformed_inputs_are_rejected_with_specific_errors() {
    let key = valid_key();
    let len = key.len();
    let secret_part = &key["sk_live_".len()..];
    let query_key = format!("api_key={key}");
    let rows: Vec<(&str, HeaderMap, Option<&str>, Expect)> = vec![
        (
            "no credential at all",
            HeaderMap::new(),
            None,
            Expect::Credential(C::Missing),
        ),
        (
            "empty Authorization",
            headers(&[("authorization", b"")]),
            None,
            Expect::Credential(C::EmptyToken),
        ),
        (
            "whitespace only",
            headers(&[("authorization", b"   \t ")]),
            None,
            Expect::Credential(C::EmptyToken),
        ),
        (
            "Bearer with no token",
            headers(&[("authorization", b"Bearer")]),
            None,
            Expect::Credential(C::EmptyToken),
        ),
        (
            "Bearer and spaces",
            headers(&[("authorization", b"Bearer    ")]),
            None,
            Expect::Credential(C::EmptyToken),
        ),
        (
            "Digest scheme",
            headers(&[("authorization", b"Digest username=\"x\"")]),
            None,
            Expect::Credential(C::UnsupportedScheme),
        ),
        (
            "Token scheme",
            headers(&[("authorization", format!("Token {key}").as_bytes())]),
            None,
            Expect::Credential(C::UnsupportedScheme),
        ),
        (
            "key with no scheme",
            headers(&[("authorization", key.as_bytes())]),
            None,
            Expect::Credential(C::UnsupportedScheme),
        ),
        (
            "Basic with bad base64",
            headers(&[("authorization", b"Basic !!!not-base64!!!")]),
            None,
            Expect::Credential(C::BasicNotBase64),
        ),
        (
            "Basic with a password",
            basic(format!("{key}:hunter2").as_bytes()),
            None,
            Expect::Credential(C::BasicPasswordNotEmpty),
        ),
        (
            "Basic with no colon",
            basic(key.as_bytes()),
            None,
            Expect::Credential(C::BasicMissingColon),
        ),
        (
            "Basic decoding to non-UTF-8",
            basic(b"\xff\xfe:"),
            None,
            Expect::Credential(C::BasicNotUtf8),
        ),
        (
            "Basic with an empty user",
            basic(b":"),
            None,
            Expect::Credential(C::EmptyToken),
        ),
        (
            "non-UTF-8 header bytes",
            headers(&[("authorization", b"Bearer \xff\xfe\xfd")]),
            None,
            Expect::Credential(C::NotUtf8),
        ),
        (
            "a 10 kB header",
            bearer(&"a".repeat(10 * 1024)),
            None,
            Expect::Credential(C::TooLong {
                len: 10 * 1024 + 7,
                max: 8 * 1024,
            }),
        ),
        (
            "whitespace inside the token",
            bearer(&format!("{} {}", &key[..10], &key[10..])),
            None,
            Expect::Credential(C::EmbeddedWhitespace),
        ),
        (
            "two Authorization headers",
            headers(&[
                ("authorization", format!("Bearer {key}").as_bytes()),
                ("authorization", format!("Bearer {key}").as_bytes()),
            ]),
            None,
            Expect::Credential(C::Ambiguous),
        ),
        (
            "Authorization and X-Api-Key",
            headers(&[
                ("authorization", format!("Bearer {key}").as_bytes()),
                ("x-api-key", key.as_bytes()),
            ]),
            None,
            Expect::Credential(C::Ambiguous),
        ),
        (
            "empty X-Api-Key",
            headers(&[("x-api-key", b"")]),
            None,
            Expect::Credential(C::EmptyToken),
        ),
        (
            "query key while the query is not enabled",
            HeaderMap::new(),
            Some(&query_key),
            Expect::Credential(C::Missing),
        ),
        (
            "key cut in half",
            bearer(&key[..len / 2]),
            None,
            Expect::Token(T::Truncated),
        ),
        (
            "key missing its last character",
            bearer(&key[..len - 1]),
            None,
            Expect::Token(T::BadChecksum),
        ),
        (
            "one flipped checksum character",
            bearer(&flip(&key, len - 1)),
            None,
            Expect::Token(T::BadChecksum),
        ),
        (
            "one flipped secret character",
            bearer(&flip(&key, 12)),
            None,
            Expect::Token(T::BadChecksum),
        ),
        (
            "one extra character",
            bearer(&format!("{key}A")),
            None,
            Expect::Token(T::BadChecksum),
        ),
        (
            "unknown environment",
            bearer(&format!("sk_prod_{secret_part}")),
            None,
            Expect::Token(T::UnknownEnvironment),
        ),
        (
            "environment in upper case",
            bearer(&format!("sk_LIVE_{secret_part}")),
            None,
            Expect::Token(T::UnknownEnvironment),
        ),
        (
            "unknown type prefix",
            bearer(&format!("xk_live_{secret_part}")),
            None,
            Expect::Token(T::UnknownPrefix),
        ),
        (
            "known but disabled type",
            bearer(&format!("pk_live_{secret_part}")),
            None,
            Expect::Token(T::KeyTypeNotEnabled(KeyType::PUBLISHABLE)),
        ),
        (
            "a 300-byte key",
            bearer(&format!("sk_live_{}", "a".repeat(292))),
            None,
            Expect::Token(T::TooLong { len: 300, max: 256 }),
        ),
        (
            "a dot in the key",
            bearer("sk_live_abc.def"),
            None,
            Expect::Token(T::InvalidCharacter { position: 11 }),
        ),
        (
            "a JWT where a key is expected",
            bearer("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"),
            None,
            Expect::Token(T::InvalidCharacter { position: 20 }),
        ),
        (
            "no secret part",
            bearer("sk_live"),
            None,
            Expect::Token(T::Malformed),
        ),
        (
            "empty prefix",
            bearer(&format!("_live_{secret_part}")),
            None,
            Expect::Token(T::Malformed),
        ),
        (
            "empty environment",
            bearer(&format!("sk__{secret_part}")),
            None,
            Expect::Token(T::Malformed),
        ),
        (
            "a plain word",
            bearer("hello"),
            None,
            Expect::Token(T::Malformed),
        ),
        (
            "forged garbage of the right shape",
            bearer(&format!("sk_live_{}", "A".repeat(38))),
            None,
            Expect::Token(T::BadChecksum),
        ),
    ];
    assert!(rows.len() >= 30, "the table covers at least 30 inputs");
    for (what, headers, query, expect) in rows {
        let outcome = authenticate(&headers, query);
        let ok = match (&outcome, &expect) {
            (Err(AuthError::Credentials(got)), Expect::Credential(want)) => got == want,
            (Err(AuthError::Token(got)), Expect::Token(want)) => got == want,
            _ => false,
        };
        assert!(ok, "{what}: expected {expect:?}, got {outcome:?}");
    }
}

/// Every accepted way of sending a key yields the same presented key.
#[test]
fn accepted_forms_agree() {
    let key = valid_key();
    let expected = format().parse(&key).unwrap();
    let unpadded = STANDARD.encode(format!("{key}:"));
    let unpadded = unpadded.trim_end_matches('=');
    let forms = [
        bearer(&key),
        headers(&[("authorization", format!("bearer {key}").as_bytes())]),
        headers(&[("authorization", format!("  BEARER \t {key}  ").as_bytes())]),
        basic(format!("{key}:").as_bytes()),
        headers(&[("authorization", format!("basic {unpadded}").as_bytes())]),
        headers(&[("x-api-key", format!(" {key} ").as_bytes())]),
    ];
    for headers in forms {
        assert_eq!(
            authenticate(&headers, None).unwrap(),
            expected,
            "{headers:?}"
        );
    }
    let query = CredentialExtractor::default().with_query_param("api_key");
    let from_query = query
        .extract(&HeaderMap::new(), Some(&format!("a=1&api_key={key}&b=2")))
        .unwrap();
    assert_eq!(from_query.token.expose_secret(), key);
    assert!(matches!(
        query.extract(&bearer(&key), Some(&format!("api_key={key}"))),
        Err(C::Ambiguous)
    ));
    let custom =
        CredentialExtractor::default().with_api_key_header(HeaderName::from_static("x-key"));
    let found = custom
        .extract(&headers(&[("x-key", key.as_bytes())]), None)
        .unwrap();
    assert_eq!(found.token.expose_secret(), key);
}

/// No error message or Debug output of a rejection contains the presented secret.
#[test]
fn rejections_never_echo_the_secret() {
    let key = valid_key();
    let secret_part = &key["sk_live_".len()..];
    let attempts = [
        bearer(&flip(&key, 12)),
        bearer(&format!("xk_live_{secret_part}")),
        basic(format!("{key}:pw").as_bytes()),
        headers(&[("authorization", format!("Token {key}").as_bytes())]),
    ];
    for headers in attempts {
        let err = authenticate(&headers, None).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(&secret_part[2..20]), "{shown}");
    }
}
