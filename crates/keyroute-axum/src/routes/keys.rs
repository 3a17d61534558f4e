//! The handlers of the key routes, and the rule of who may manage whose keys.

use axum::extract::{Path, State};
use axum_core::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use http::{HeaderValue, StatusCode, Uri, header};
use keyroute_core::{
    ADMIN_SCOPE, ApiKey, Environment, Error, KeyId, KeyRequest, KeyType, PlaintextKey, Principal,
    Scopes, UserId,
};
use serde::Serialize;

use super::body::{GraceBody, IssueBody, JsonBody, duration, invalid};
use crate::extract::Caller;
use crate::problem::Problem;
use crate::state::AuthState;

/// Names, notes: at most this many bytes.
const MAX_TEXT: usize = 1024;

/// A key as the routes show it: a hint, never the hash or the plaintext.
#[derive(Debug, Serialize)]
struct KeyView<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    key_type: &'a str,
    environment: &'a str,
    hint: &'a str,
    user_id: Option<&'a str>,
    name: Option<&'a str>,
    scopes: Vec<&'a str>,
    notes: Option<&'a str>,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    cancelled_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
}

impl<'a> KeyView<'a> {
    fn of(key: &'a ApiKey) -> Self {
        Self {
            id: key.id.as_str(),
            key_type: key.key_type.as_str(),
            environment: key.environment.as_str(),
            hint: &key.hint,
            user_id: key.user_id.as_ref().map(UserId::as_str),
            name: key.name.as_deref(),
            scopes: key.scopes.iter().map(|s| s.as_str()).collect(),
            notes: key.notes.as_deref(),
            created_at: key.created_at,
            expires_at: key.expires_at,
            cancelled_at: key.cancelled_at,
            last_used_at: key.last_used_at,
        }
    }
}

/// A key just made: its record and, once, its plaintext.
#[derive(Serialize)]
struct IssuedView<'a> {
    #[serde(flatten)]
    key: KeyView<'a>,
    key_secret: &'a str,
}

fn issued<'a>(key: &'a ApiKey, plaintext: &'a PlaintextKey) -> IssuedView<'a> {
    IssuedView {
        key: KeyView::of(key),
        key_secret: plaintext.expose_secret(),
    }
}

/// JSON with `status`; `no-store` when it carries a secret.
fn json(status: StatusCode, value: &impl Serialize, secret: bool) -> Response {
    let body = match serde_json::to_vec(value) {
        Ok(body) => body,
        Err(e) => return Problem::internal(&e).into_response(),
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if secret {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// What the caller may manage.
enum Authority {
    /// Any user's keys.
    Admin(Option<UserId>),
    /// This user's keys.
    Own(UserId),
}

impl Authority {
    fn of(caller: &Principal) -> Result<Self, Problem> {
        if caller.key_type() == Some(&KeyType::PUBLISHABLE) {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "publishable_key",
                "a publishable key cannot manage keys; use a secret key",
            ));
        }
        if caller.method().is_key() && caller.has_scope(ADMIN_SCOPE) {
            return Ok(Self::Admin(caller.user_id().cloned()));
        }
        match caller.user_id() {
            Some(id) => Ok(Self::Own(id.clone())),
            None => Err(Problem::new(
                StatusCode::FORBIDDEN,
                "no_user",
                "this key belongs to no user, so it has no keys to manage",
            )),
        }
    }

    /// The user a request acts on: the caller, or for an admin the one named.
    fn user(&self, named: Option<&str>) -> Result<UserId, Problem> {
        let named = named
            .map(|n| {
                UserId::new(n).map_err(|_| invalid("invalid_user_id", "`user_id` is not a user id"))
            })
            .transpose()?;
        match (self, named) {
            (Self::Admin(_), Some(named)) => Ok(named),
            (Self::Admin(Some(own)), None) | (Self::Own(own), None) => Ok(own.clone()),
            (Self::Own(own), Some(named)) if named == *own => Ok(named),
            (Self::Own(_), Some(_)) => Err(Problem::new(
                StatusCode::FORBIDDEN,
                "not_your_keys",
                "only a key with the admin scope manages another user's keys",
            )),
            (Self::Admin(None), None) => Err(invalid(
                "user_id_required",
                "this admin key belongs to no user: name one with `user_id`",
            )),
        }
    }

    /// Whether the caller may manage `key`.
    fn may_manage(&self, key: &ApiKey) -> bool {
        match self {
            Self::Admin(_) => true,
            Self::Own(own) => key.user_id.as_ref() == Some(own),
        }
    }
}

/// The `user_id` query parameter, if any.
fn user_param(uri: &Uri) -> Option<&str> {
    uri.query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("user_id="))
}

fn environment(auth: &AuthState, name: &str) -> Result<Environment, Problem> {
    let unknown = || {
        invalid(
            "unknown_environment",
            "no keys are issued for this environment (see `[apikey] environments`)",
        )
    };
    let environment = Environment::new(name).map_err(|_| unknown())?;
    if auth.keys().options().environments.contains(&environment) {
        Ok(environment)
    } else {
        Err(unknown())
    }
}

/// A key service error as a problem: the caller's mistakes are 422, outages 503.
fn service_problem(error: &Error) -> Problem {
    match error {
        Error::Store(e) => Problem::store(e),
        Error::EnvironmentNotEnabled(_) => invalid("unknown_environment", error.to_string()),
        Error::KeyTypeNotEnabled(_) => invalid("unknown_key_type", error.to_string()),
        Error::Name(_) | Error::InvalidRequest(_) => invalid("invalid_request", error.to_string()),
        Error::UnknownUser(_) => {
            Problem::new(StatusCode::NOT_FOUND, "unknown_user", "no such user")
        }
        _ => Problem::internal(error),
    }
}

fn not_found() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "key_not_found",
        "no such key of yours",
    )
}

/// `GET {prefix}/{env}`.
pub(super) async fn list(
    State(auth): State<AuthState>,
    Caller(caller): Caller,
    Path(env): Path<String>,
    uri: Uri,
) -> Result<Response, Problem> {
    let user = Authority::of(&caller)?.user(user_param(&uri))?;
    let environment = environment(&auth, &env)?;
    let keys = auth
        .keys()
        .active_keys(&user, environment)
        .await
        .map_err(|e| service_problem(&e))?;
    let views: Vec<KeyView<'_>> = keys.iter().map(KeyView::of).collect();
    Ok(json(StatusCode::OK, &views, false))
}

/// `POST {prefix}/regenerate/{env}`.
pub(super) async fn regenerate(
    State(auth): State<AuthState>,
    Caller(caller): Caller,
    Path(env): Path<String>,
    uri: Uri,
    JsonBody(body): JsonBody<GraceBody>,
) -> Result<Response, Problem> {
    let user = Authority::of(&caller)?.user(user_param(&uri))?;
    let environment = environment(&auth, &env)?;
    let grace = body
        .grace
        .as_deref()
        .map(|g| duration("grace", g))
        .transpose()?;
    let done = auth
        .keys()
        .regenerate(&user, &environment, grace)
        .await
        .map_err(|e| service_problem(&e))?;
    let views: Vec<IssuedView<'_>> = done
        .issued
        .iter()
        .map(|k| issued(&k.key, &k.plaintext))
        .collect();
    Ok(json(StatusCode::OK, &views, true))
}

/// `POST {prefix}`.
pub(super) async fn issue(
    State(auth): State<AuthState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<IssueBody>,
) -> Result<Response, Problem> {
    let authority = Authority::of(&caller)?;
    let user = authority.user(body.user_id.as_deref())?;
    let options = auth.keys().options();
    let key_type = match body.key_type.as_deref() {
        None => KeyType::SECRET,
        Some(name) => KeyType::new(name)
            .ok()
            .filter(|t| options.key_types.contains(t))
            .ok_or_else(|| {
                invalid(
                    "unknown_key_type",
                    "keys of this type are not issued (see `[apikey] key_types`)",
                )
            })?,
    };
    let env = body
        .environment
        .as_deref()
        .ok_or_else(|| invalid("missing_environment", "name the key's `environment`"))?;
    let mut request = KeyRequest::new(key_type, environment(&auth, env)?).for_user(user);
    let scopes = Scopes::parse(body.scopes.iter().flatten().map(String::as_str)).map_err(|_| {
        invalid(
            "invalid_scope",
            "scopes are ':'-separated segments of A-Z, a-z, 0-9, '_', '.', '-', with '*' only last",
        )
    })?;
    if let Some(excess) = scopes.iter().find(|s| !may_grant(&caller, s.as_str())) {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "scope_exceeds_caller",
            format!("the new key cannot have the scope '{excess}', which the caller lacks"),
        ));
    }
    request = request.with_scopes(scopes);
    for (field, text) in [("name", &body.name), ("notes", &body.notes)] {
        if text.as_ref().is_some_and(|t| t.len() > MAX_TEXT) {
            return Err(invalid(
                "too_long",
                format!("`{field}` is over {MAX_TEXT} bytes"),
            ));
        }
    }
    request.name = body.name;
    request.notes = body.notes;
    request.expires_in =
        match (body.expires_at, body.expires_in.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "ambiguous_expiry",
                    "give `expires_at` or `expires_in`, not both",
                ));
            }
            (Some(at), None) => {
                let now = auth.keys().clock().now();
                let lifetime = (at - now).to_std().ok().filter(|d| !d.is_zero());
                Some(lifetime.ok_or_else(|| {
                    invalid("expiry_in_past", "`expires_at` is not in the future")
                })?)
            }
            (None, Some(text)) => Some(duration("expires_in", text)?),
            (None, None) => None,
        };
    let issued_key = auth
        .keys()
        .issue_key(request)
        .await
        .map_err(|e| service_problem(&e))?;
    let view = issued(&issued_key.key, &issued_key.plaintext);
    Ok(json(StatusCode::CREATED, &view, true))
}

/// Whether the caller may give a new key `scope`: a key only scopes it holds itself;
/// a person's session any scope but the admin ones.
fn may_grant(caller: &Principal, scope: &str) -> bool {
    if caller.method().is_key() {
        caller.has_scope(scope)
    } else {
        scope != ADMIN_SCOPE && scope != "*"
    }
}

/// The key `id` if the caller may manage it; 404 otherwise (another user's key is not
/// shown to exist).
async fn manageable(auth: &AuthState, caller: &Principal, id: &str) -> Result<ApiKey, Problem> {
    let authority = Authority::of(caller)?;
    let id = KeyId::new(id).map_err(|_| not_found())?;
    let key = auth
        .keys()
        .store()
        .get_api_key(&id)
        .await
        .map_err(|e| Problem::store(&e))?
        .ok_or_else(not_found)?;
    if authority.may_manage(&key) {
        Ok(key)
    } else {
        Err(not_found())
    }
}

/// `DELETE {prefix}/{id}`.
pub(super) async fn revoke(
    State(auth): State<AuthState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let key = manageable(&auth, &caller, &id).await?;
    let revoked = auth
        .keys()
        .revoke(&key.id)
        .await
        .map_err(|e| service_problem(&e))?
        .ok_or_else(not_found)?;
    Ok(json(StatusCode::OK, &KeyView::of(&revoked), false))
}

/// `POST {prefix}/{id}/roll`.
pub(super) async fn roll(
    State(auth): State<AuthState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<GraceBody>,
) -> Result<Response, Problem> {
    let key = manageable(&auth, &caller, &id).await?;
    let grace = body
        .grace
        .as_deref()
        .map(|g| duration("grace", g))
        .transpose()?;
    let rolled = auth
        .keys()
        .roll(&key.id, grace)
        .await
        .map_err(|e| match e {
            Error::InvalidRequest(_) => {
                Problem::new(StatusCode::CONFLICT, "not_rollable", e.to_string())
            }
            e => service_problem(&e),
        })?
        .ok_or_else(not_found)?;
    #[derive(Serialize)]
    struct Rolled<'a> {
        issued: IssuedView<'a>,
        retired: KeyView<'a>,
    }
    let view = Rolled {
        issued: issued(&rolled.issued.key, &rolled.issued.plaintext),
        retired: KeyView::of(&rolled.retired),
    };
    Ok(json(StatusCode::OK, &view, true))
}

/// `POST /token`.
#[cfg(feature = "jwt")]
pub(super) async fn token(
    State(auth): State<AuthState>,
    Caller(caller): Caller,
) -> Result<Response, Problem> {
    use keyroute_jwt::JwtServiceError as E;
    let jwt = auth.jwt().ok_or_else(|| {
        Problem::new(
            StatusCode::NOT_FOUND,
            "jwt_disabled",
            "JWTs are not enabled here (see `[jwt] enabled`)",
        )
    })?;
    let token = jwt.exchange(&caller).map_err(|e| match &e {
        E::InvalidRequest(_) => invalid("invalid_request", e.to_string()),
        E::Store(s) => Problem::store(s),
        E::Service(s) => service_problem(s),
        _ => Problem::internal(&e),
    })?;
    let now = jwt.clock().now();
    let view = super::body::TokenResponse {
        access_token: token.token.expose_secret().to_owned(),
        token_type: "Bearer",
        expires_in: (token.expires_at - now).num_seconds().max(0),
        expires_at: token.expires_at,
    };
    Ok(json(StatusCode::OK, &view, true))
}
