//! Arguments that may be secrets, never repeated back.
//!
//! A key or token typed where an id, a name or nothing is expected must not end up in
//! an error message (terminal scrollback, CI logs): it is recognised by its shape and
//! named for what it is ("that is an API key") instead. With the configuration loaded,
//! the configured key format decides ([`presented`]); before it (clap's own usage
//! errors), a key is anything of the key alphabet with two `_` and 20 characters or
//! more, and a JWT anything with exactly two dots ([`looks_secret`]).

use clap::error::ErrorKind;
use keyroute::auth::looks_like_jwt;
use keyroute::keys::{TokenError, TokenFormat};

use crate::output::{CliError, escaped};

/// What a presented argument is, by its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// An API key: it parses, or fails only where a mistyped or cut-short key would.
    ApiKey,
    /// A JWT: three dot-separated parts.
    Jwt,
    /// Anything else: an id, a name.
    Other,
}

/// What `value` is, judged by the configured key format.
pub(crate) fn presented(format: &TokenFormat, value: &str) -> Shape {
    if looks_like_jwt(value) {
        return Shape::Jwt;
    }
    match format.parse(value) {
        Ok(_)
        | Err(
            TokenError::BadChecksum
            | TokenError::Truncated
            | TokenError::UnknownEnvironment
            | TokenError::KeyTypeNotEnabled(_),
        ) => Shape::ApiKey,
        Err(_) if looks_secret(value) => Shape::ApiKey,
        Err(_) => Shape::Other,
    }
}

/// Whether `value` could be a key or a token, with no configuration to ask.
pub(crate) fn looks_secret(value: &str) -> bool {
    looks_like_jwt(value)
        || (value.len() >= 20
            && value.bytes().filter(|b| *b == b'_').count() >= 2
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-')))
}

/// `value` quoted for a message, or a note that it is not shown when it could be a
/// key or a token.
pub(crate) fn quoted(value: &str) -> String {
    if looks_secret(value) {
        "(not shown: it looks like a key or a token)".to_owned()
    } else {
        format!("'{}'", escaped(value))
    }
}

/// The refusal of `value` given to `--flag`: quoted, with the parser's `reason` and a
/// `hint`, unless it could be a key or a token; then neither is shown (the reason may
/// quote the value too).
pub(crate) fn bad_value(
    flag: &str,
    value: &str,
    reason: impl std::fmt::Display,
    hint: &str,
) -> CliError {
    let hint = if hint.is_empty() {
        String::new()
    } else {
        format!("; {hint}")
    };
    if looks_secret(value) {
        CliError::failed(format!(
            "--{flag}: the value {} is not valid here{hint}",
            quoted(value)
        ))
    } else {
        CliError::failed(format!("--{flag} {}: {reason}{hint}", quoted(value)))
    }
}

/// The refusal of a key or token given where `expected` (e.g. "a key id") was, naming
/// what it is and the command that takes it; `None` for anything else.
pub(crate) fn refuse_secret(format: &TokenFormat, value: &str, expected: &str) -> Option<CliError> {
    let what = match presented(format, value) {
        Shape::ApiKey => "an API key",
        Shape::Jwt => "a JWT",
        Shape::Other => return None,
    };
    Some(CliError::failed(format!(
        "that is {what}, not {expected}; keys and tokens are secrets and are never taken as \
         arguments (it is not repeated here): to look one up by its secret, use \
         `keyroute verify < key.txt`"
    )))
}

/// `keyroute verify KEY`: refused without repeating it; the key goes on stdin.
pub(crate) fn verify_argument() -> CliError {
    CliError::Usage(
        "`keyroute verify` reads the key or token from standard input, never from arguments \
         (they stay in shell history and process lists; it is not repeated here): run \
         `keyroute verify < key.txt`"
            .to_owned(),
    )
}

/// Prints clap's error for a bad command line and exits, with every argument that
/// could be a key or a token (whole, or as the value of `--flag=value`) hidden.
pub(crate) fn exit_on_usage_error(error: &clap::Error) -> ! {
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        error.exit();
    }
    let mut text = error.render().to_string();
    let mut hidden = false;
    for arg in std::env::args_os().skip(1) {
        let arg = arg.to_string_lossy().into_owned();
        let value = arg.split_once('=').map_or(arg.as_str(), |(_, v)| v);
        for secret in [arg.as_str(), value] {
            if looks_secret(secret) && text.contains(secret) {
                text = text.replace(secret, "<not shown: it looks like a key or a token>");
                hidden = true;
            }
        }
    }
    if !hidden {
        error.exit();
    }
    use std::io::Write;
    let _ = write!(std::io::stderr(), "{text}");
    std::process::exit(error.exit_code());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys and JWTs are told from ids and names by shape.
    #[test]
    fn shapes() {
        assert!(looks_secret("sk_live_Zm9vYmFyYmF6cXV4Zm9vYmFy"));
        assert!(looks_secret("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln"));
        assert!(
            !looks_secret("0f3a9c2e4b5d6e7f8a9b0c1d2e3f4a5b"),
            "a key id"
        );
        assert!(!looks_secret("ada"));
        assert!(!looks_secret("imported_user_1"), "short");
        assert_eq!(quoted("ada\u{1b}"), r"'ada\u{1b}'");
        assert!(!quoted("sk_test_Zm9vYmFyYmF6cXV4Zm9v").contains("Zm9v"));
    }
}
