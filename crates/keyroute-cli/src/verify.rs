//! `keyroute verify`: a key or JWT read from standard input, checked as a request
//! would be, and described: whose it is, what kind, where it routes. A rejection is a
//! failure (exit 1) with the error's stable code, in JSON too. The token itself is
//! never printed.

use std::io::Read;

use keyroute::auth::{AuthMethod, looks_like_jwt};
use keyroute::store::StoreBackend;
use keyroute::{AuthError, Config, Keyroute, Principal, User};
use serde_json::json;

use crate::app::handle;
use crate::output::{CliError, Out, when};

/// The most bytes read from standard input: far more than any key or token.
const MAX_INPUT: u64 = 16 * 1024;

/// Why a token was refused: its stable code, and the line to print.
struct Rejection {
    code: &'static str,
    message: String,
    line: String,
}

impl Rejection {
    fn auth(error: &AuthError, what: &str) -> Self {
        Self {
            code: error.code(),
            message: error.to_string(),
            line: format!("{what}: {error}"),
        }
    }
}

/// `keyroute verify [--json]`.
pub(crate) async fn verify<B: StoreBackend>(config: Config, out: Out) -> Result<(), CliError> {
    let mut input = String::new();
    std::io::stdin()
        .take(MAX_INPUT)
        .read_to_string(&mut input)
        .map_err(|e| CliError::failed(format!("cannot read the key from standard input: {e}")))?;
    let token = input.trim();
    if token.is_empty() {
        let missing = AuthError::Credentials(keyroute::auth::CredentialError::Missing);
        return reject(
            out,
            Rejection {
                line: "no key on standard input; pipe it in, e.g. `keyroute verify < key.txt`"
                    .to_owned(),
                ..Rejection::auth(&missing, "")
            },
        );
    }
    let keyroute = handle::<B>(config, None).await?;
    match check(&keyroute, token).await {
        Ok(principal) => describe(&keyroute, &principal, out).await,
        Err(rejection) => reject(out, rejection),
    }
}

/// Checks `token` as a request would: offline first for an API key (format, prefix,
/// environment, checksum: no I/O), then the resolver, then the route.
async fn check<B: StoreBackend>(
    keyroute: &Keyroute<B>,
    token: &str,
) -> Result<Principal, Rejection> {
    // With `legacy_keys`, a token of another format may be an imported key: the
    // resolver looks it up by hash instead.
    if !looks_like_jwt(token)
        && !keyroute.keys().options().legacy_keys
        && let Err(e) = keyroute.keys().format().parse(token)
    {
        return Err(Rejection::auth(&AuthError::Token(e), "not a valid key"));
    }
    keyroute
        .resolver()
        .resolve(token)
        .await
        .map_err(|e| Rejection::auth(&e, "rejected"))
}

/// Prints the rejection as JSON when asked, and fails with its line.
fn reject(out: Out, rejection: Rejection) -> Result<(), CliError> {
    if out.json {
        out.json(&json!({
            "valid": false,
            "code": rejection.code,
            "message": rejection.message,
        }))?;
    }
    Err(CliError::failed(rejection.line))
}

/// What kind of JWT a principal came from, for people and for JSON.
fn jwt_kind(method: AuthMethod) -> Option<(&'static str, &'static str)> {
    match method {
        AuthMethod::KeyJwt => Some(("exchanged", "exchanged for an API key")),
        AuthMethod::ScopedJwt => Some(("jwt_key", "a JWT issued as a key")),
        AuthMethod::UserSession => Some(("session", "a person's session")),
        _ => None,
    }
}

/// Prints who the principal is and where it routes.
async fn describe<B: StoreBackend>(
    keyroute: &Keyroute<B>,
    principal: &Principal,
    out: Out,
) -> Result<(), CliError> {
    let connection = match keyroute.router().route_name(principal) {
        Ok(connection) => connection,
        Err(e) => {
            return reject(
                out,
                Rejection {
                    code: e.code(),
                    message: e.to_string(),
                    line: format!("no route: {e}"),
                },
            );
        }
    };
    // A JWT carries its user's id only: the name is the store's to tell.
    let stored: Option<User> = match (principal.user(), principal.user_id()) {
        (None, Some(id)) => keyroute.store().get_user(id).await?,
        _ => None,
    };
    let user = principal.user().or(stored.as_ref());
    let user_name = user.map(|u| u.user_name.clone());
    let scopes: Vec<&str> = principal.scopes().iter().map(|s| s.as_str()).collect();
    let kind = jwt_kind(principal.method());
    let value = json!({
        "valid": true,
        "token": if kind.is_some() { "jwt" } else { "api_key" },
        "jwt_kind": kind.map(|(code, _)| code),
        "user": user_name,
        "user_id": principal.user_id().map(|u| u.as_str()),
        "key_id": principal.key_id().map(|k| k.as_str()),
        "environment": principal.environment().as_str(),
        "type": principal.key_type().map(|t| t.as_str()),
        "scopes": scopes,
        "expires_at": principal.expires_at().map(|t| t.to_rfc3339()),
        "connection": connection,
    });
    let dash = || "-".to_owned();
    let mut rows = Vec::new();
    if let Some((_, kind)) = kind {
        rows.push(vec!["kind".to_owned(), kind.to_owned()]);
        rows.push(vec![
            "key".to_owned(),
            principal
                .key_id()
                .map_or_else(dash, |k| k.as_str().to_owned()),
        ]);
        rows.push(vec![
            "user id".to_owned(),
            principal
                .user_id()
                .map_or_else(dash, |u| u.as_str().to_owned()),
        ]);
    }
    rows.extend([
        vec!["user".to_owned(), user_name.unwrap_or_else(dash)],
        vec![
            "environment".to_owned(),
            principal.environment().as_str().to_owned(),
        ],
        vec![
            "type".to_owned(),
            principal.key_type().map_or("-", |t| t.as_str()).to_owned(),
        ],
        vec!["scopes".to_owned(), scopes.join(" ")],
        vec!["expires".to_owned(), when(principal.expires_at())],
        vec!["connection".to_owned(), connection],
    ]);
    out.line(match kind {
        Some(_) => "valid JWT",
        None => "valid key",
    })?;
    out.table(&["principal", ""], rows, value)
}
