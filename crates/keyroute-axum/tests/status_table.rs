//! The crate README's table of problem codes against the one map from error classes to
//! statuses: every variant of every error a request can meet (credentials, keys,
//! JWTs, routing, the key service, the store) is answered through `Problem`, and its
//! code must be a row of the table with the status the answer has; every row must be
//! some error's answer. The table cannot drift from the code, nor the code from it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;

use http::StatusCode;
use keyroute_axum::{Problem, http_status};
use keyroute_core::{
    AuthError, ConfigError, CredentialError as C, Denied, Environment, ErrorClass, JwtError as J,
    KeyServiceError as K, KeyType, Scope, StoreError, TextError, TokenError as T, UserId,
};
use keyroute_router::RouteError;

/// The table under "## Rejections" in the crate's README (also its crate docs) whose header
/// starts with `| code | status |`:
/// each code and its status.
fn readme_table() -> BTreeMap<String, StatusCode> {
    let readme = include_str!("../README.md");
    let section = readme
        .split("## Rejections")
        .nth(1)
        .expect("the crate's README has a section '## Rejections'");
    let section = section.split("\n## ").next().unwrap();
    let mut lines = section
        .lines()
        .skip_while(|l| !l.starts_with("| code | status |"));
    assert!(
        lines.next().is_some(),
        "the section has a `| code | status |` table"
    );
    let mut table = BTreeMap::new();
    for line in lines.skip(1).take_while(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let code = cells[0].trim_matches('`').to_owned();
        let status = StatusCode::from_u16(cells[1].parse().unwrap()).unwrap();
        assert!(
            table.insert(code.clone(), status).is_none(),
            "`{code}` is listed twice"
        );
    }
    assert!(table.len() > 20, "the table was read: {table:?}");
    table
}

/// One error of every variant of the credential and key rejections.
fn auth_errors() -> Vec<AuthError> {
    let credentials = [
        C::Missing,
        C::Ambiguous,
        C::NotUtf8,
        C::TooLong {
            len: 9000,
            max: 8192,
        },
        C::UnsupportedScheme,
        C::EmptyToken,
        C::EmbeddedWhitespace,
        C::BasicNotBase64,
        C::BasicNotUtf8,
        C::BasicMissingColon,
        C::BasicPasswordNotEmpty,
    ];
    let tokens = [
        T::Empty,
        T::TooLong { len: 300, max: 200 },
        T::InvalidCharacter { position: 3 },
        T::Malformed,
        T::UnknownPrefix,
        T::KeyTypeNotEnabled(KeyType::SECRET),
        T::UnknownEnvironment,
        T::BadChecksum,
        T::Truncated,
    ];
    let jwts = [
        J::Malformed,
        J::TooLong {
            len: 9000,
            max: 8192,
        },
        J::UnsupportedAlgorithm,
        J::AlgorithmMismatch,
        J::UnknownKeyId,
        J::MissingKeyId,
        J::BadSignature,
        J::Expired,
        J::NotYetValid,
        J::WrongIssuer,
        J::WrongAudience,
        J::MissingClaim("sub"),
        J::InvalidClaim("env"),
        J::Revoked,
    ];
    let mut errors: Vec<AuthError> = credentials.into_iter().map(AuthError::from).collect();
    errors.extend(tokens.into_iter().map(AuthError::from));
    errors.extend(jwts.into_iter().map(AuthError::from));
    errors.extend([
        AuthError::UnknownKey,
        AuthError::Revoked,
        AuthError::Expired,
        AuthError::Disabled,
        AuthError::NetworkNotAllowed,
        AuthError::EnvironmentNotAllowed(Environment::TEST),
        AuthError::KeyTypeNotAllowed(KeyType::SECRET),
        AuthError::InsecureConnection,
        AuthError::InsufficientScope {
            required: "orders:read".into(),
        },
        AuthError::NotAssociatedWithUser,
        AuthError::JwtNotAccepted,
        AuthError::RateLimited(Box::new(keyroute_core::limits::LimitRefusal::new(
            "requests",
            std::time::Duration::from_millis(1500),
        ))),
        AuthError::CreditsExhausted {
            next_refill_at: None,
        },
        AuthError::LimitsUnavailable,
    ]);
    errors.extend(store_errors().into_iter().map(AuthError::Store));
    errors
}

/// One store error of every variant.
fn store_errors() -> Vec<StoreError> {
    vec![
        StoreError::Conflict("duplicate".into()),
        StoreError::unavailable("refused"),
        StoreError::database("refused"),
        StoreError::InvalidData("edited row".into()),
        StoreError::migration("failed"),
        StoreError::Misuse("no runtime".into()),
    ]
}

/// One routing error of every variant.
fn route_errors() -> Vec<RouteError> {
    let mut errors: Vec<RouteError> = auth_errors().into_iter().map(RouteError::Auth).collect();
    errors.extend([
        RouteError::NoRoute {
            environment: Environment::LIVE,
            tenant: None,
            reason: "no connection named 'eu_live' is configured".into(),
        },
        RouteError::Anonymous,
        RouteError::Misuse("no runtime".into()),
        RouteError::Config(ConfigError::invalid("routing", "template", "bad")),
    ]);
    errors.extend(
        store_errors()
            .into_iter()
            .map(|source| RouteError::Unavailable {
                connection: "live".into(),
                source,
            }),
    );
    errors
}

/// One key-service error of every variant the key routes can meet.
fn service_errors() -> Vec<K> {
    let scope = Scope::new("orders:write").unwrap();
    let denials = [
        Denied::PublishableKey,
        Denied::NoUser,
        Denied::NotYourKeys,
        Denied::EnvironmentMismatch {
            caller: Environment::LIVE,
            target: Environment::TEST,
        },
        Denied::TenantMismatch,
        Denied::ScopeExceedsCaller { scope },
        Denied::ExpiryExceedsCaller {
            limit: chrono::DateTime::UNIX_EPOCH,
        },
        Denied::TooManyKeys { limit: 100 },
        Denied::NetworkExceedsCaller,
        Denied::OperatorsOnly,
        Denied::LimitExceedsCaller {
            limit: "requests".into(),
        },
        Denied::CreditsExceedCaller,
    ];
    let mut errors: Vec<K> = denials.into_iter().map(K::Denied).collect();
    errors.extend([
        K::Config(ConfigError::invalid("apikey", "key_types", "bad")),
        K::Generate(T::UnknownPrefix.into()),
        K::Name(Environment::new("").unwrap_err()),
        K::GeneratedKeyInvalid(T::BadChecksum),
        K::HookChangedIdentity("environment"),
        K::UnknownUser(UserId::new("ghost").unwrap()),
        K::EnvironmentNotEnabled(Environment::new("staging").unwrap()),
        K::KeyTypeNotEnabled(KeyType::SECRET),
        K::InvalidRequest("a lifetime too long".into()),
        K::Mint("minter down".into()),
        K::Text(TextError::ControlCharacters("name")),
        K::UserRequired,
        K::NotRollable,
        K::NoMinter("jwt".into()),
        K::NotUpdatable("revoked"),
    ]);
    errors.extend(store_errors().into_iter().map(K::Store));
    errors
}

/// One error's answer over HTTP.
struct Answer {
    /// What the error was (its `Debug`).
    error: String,
    /// How HTTP answers it.
    problem: Problem,
    /// Its class in core.
    class: ErrorClass,
    /// Its stable code in core, the one every other transport shows; a bare store
    /// error has none of its own (it is coded by the error that carries it).
    code: Option<&'static str>,
}

/// Every answer a request's error can get.
fn answers() -> Vec<Answer> {
    let answer = |error: String, problem, class, code| Answer {
        error,
        problem,
        class,
        code,
    };
    let mut answers = Vec::new();
    for e in route_errors() {
        let problem = Problem::route(&e, "keyroute");
        answers.push(answer(format!("{e:?}"), problem, e.class(), Some(e.code())));
    }
    for e in auth_errors() {
        let problem = Problem::auth(&e, "keyroute");
        answers.push(answer(format!("{e:?}"), problem, e.class(), Some(e.code())));
    }
    for e in service_errors() {
        let problem = Problem::service(&e);
        answers.push(answer(format!("{e:?}"), problem, e.class(), Some(e.code())));
    }
    for e in store_errors() {
        answers.push(answer(
            format!("{e:?}"),
            Problem::store(&e),
            e.class(),
            None,
        ));
    }
    answers
}

/// Every error's answer is a row of the README's table, with the row's status, and
/// that status is the one map's for the error's class.
#[test]
fn every_error_answers_as_the_readme_table_says() {
    let table = readme_table();
    for Answer {
        error,
        problem,
        class,
        ..
    } in answers()
    {
        assert_eq!(
            problem.status(),
            http_status(class),
            "{error}: answered apart from the map"
        );
        let listed = table.get(problem.code()).unwrap_or_else(|| {
            panic!(
                "{error} answers `{}`, which the README's table does not list",
                problem.code()
            )
        });
        assert_eq!(
            *listed,
            problem.status(),
            "{error}: the README says `{}` is {listed}",
            problem.code()
        );
    }
}

/// Every row of the README's table is the answer to some error: no stale rows.
#[test]
fn every_row_of_the_readme_table_is_some_errors_answer() {
    let answered: Vec<&'static str> = answers().iter().map(|a| a.problem.code()).collect();
    for code in readme_table().keys() {
        assert!(
            answered.contains(&code.as_str()),
            "the README lists `{code}`, which no error answers"
        );
    }
}

/// Every error answered over HTTP with a code of its own (all but faults, which are
/// answered `internal` whatever they were) is answered with the stable code core
/// gives it, the one the CLI's JSON shows: the two transports never name one
/// failure differently.
#[test]
fn http_answers_with_the_code_core_gives() {
    for answer in answers() {
        let (Some(code), problem) = (answer.code, &answer.problem) else {
            continue;
        };
        if problem.status() == StatusCode::INTERNAL_SERVER_ERROR {
            continue;
        }
        assert_eq!(
            problem.code(),
            code,
            "{}: HTTP answers `{}` but core's code is `{code}`",
            answer.error,
            problem.code()
        );
    }
}

/// The map gives every class the status the README's prose promises, and a
/// malformed credential the same 400 whichever path reports it.
#[test]
fn the_map_and_the_malformed_credential() {
    let expected = [
        (ErrorClass::Unauthenticated, StatusCode::UNAUTHORIZED),
        (ErrorClass::InvalidCredential, StatusCode::UNAUTHORIZED),
        (ErrorClass::Malformed, StatusCode::BAD_REQUEST),
        (ErrorClass::Forbidden, StatusCode::FORBIDDEN),
        (ErrorClass::NotFound, StatusCode::NOT_FOUND),
        (ErrorClass::Conflict, StatusCode::CONFLICT),
        (ErrorClass::InvalidInput, StatusCode::UNPROCESSABLE_ENTITY),
        (ErrorClass::Unavailable, StatusCode::SERVICE_UNAVAILABLE),
        (ErrorClass::Internal, StatusCode::INTERNAL_SERVER_ERROR),
    ];
    for (class, status) in expected {
        assert_eq!(http_status(class), status, "{class:?}");
    }
    let too_long = AuthError::from(C::TooLong {
        len: 9000,
        max: 8192,
    });
    let by_auth = Problem::auth(&too_long, "keyroute");
    let by_route = Problem::route(&RouteError::Auth(too_long), "keyroute");
    for problem in [by_auth, by_route] {
        assert_eq!(
            (problem.status(), problem.code()),
            (StatusCode::BAD_REQUEST, "malformed_credentials")
        );
    }
}
