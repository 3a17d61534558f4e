//! The handlers of the key routes: HTTP in, HTTP out. Who may do what is decided by
//! core's authority rules, through `KeyService::acting_as(&caller)`; a refusal is
//! answered with its stable code by [`Problem::service`].

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum_core::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use http::{HeaderValue, StatusCode, header};
use keyroute_core::limits::{Credits, RateLimit};
use keyroute_core::{
    Acting, ApiKey, AuditContext, Environment, KeyId, KeyRequest, KeyServiceError, KeyStore,
    KeyType, KeyUpdate, PlaintextKey, Principal, UserId,
};
use serde::{Deserialize, Serialize};

use super::body::{
    CreditsBody, GraceBody, IssueBody, JsonBody, UpdateBody, duration, invalid, networks,
    read_query, scopes,
};
use super::context::Context;
use crate::extract::Caller;
use crate::problem::Problem;
use crate::state::AuthState;

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
    enabled: bool,
    allowed_networks: Vec<String>,
    limits: &'a [RateLimit],
    credits: Option<Credits>,
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
            enabled: key.enabled,
            allowed_networks: key
                .allowed_networks
                .iter()
                .map(ToString::to_string)
                .collect(),
            limits: &key.limits,
            credits: key.credits,
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
pub(super) fn json(status: StatusCode, value: &impl Serialize, secret: bool) -> Response {
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

/// The `user_id` query parameter: whose keys, for a caller that may name another
/// user (core decides whether it may).
#[derive(Debug, Default, Deserialize)]
pub(super) struct UserQuery {
    user_id: Option<String>,
}

/// A named user id, or a 422 for text that is no user id.
pub(super) fn user_id(named: Option<&str>) -> Result<Option<UserId>, Problem> {
    named
        .map(|n| {
            UserId::new(n).map_err(|_| invalid("invalid_user_id", "`user_id` is not a user id"))
        })
        .transpose()
}

/// The query string, or a 400 problem when it cannot be read.
fn query(query: Result<Query<UserQuery>, QueryRejection>) -> Result<UserQuery, Problem> {
    read_query(query, "at most `user_id=<id>`")
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

fn not_found() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "key_not_found",
        "no such key of yours",
    )
}

pub(super) fn service_problem(error: &KeyServiceError) -> Problem {
    Problem::service(error)
}

/// The key service acting for `caller` (its changes recorded with `context`), and the user the request acts on: the one
/// `named` (a 422 for text that is no user id), or the caller's own. Whether the
/// caller may act on that user is core's answer, given as its problem.
fn acting_on<'a>(
    auth: &'a AuthState,
    caller: &Principal,
    context: AuditContext,
    named: Option<&str>,
) -> Result<(Acting<'a, KeyStore>, UserId), Problem> {
    let named = user_id(named)?;
    let acting = auth.keys().acting_as(caller).with_context(context);
    let user = acting
        .user_for(named.as_ref())
        .map_err(|e| service_problem(&e))?;
    Ok((acting, user))
}

/// `GET {prefix}/{env}`.
pub(super) async fn list(
    State(auth): State<AuthState>,
    Caller(caller): Caller,
    Context(context): Context,
    Path(env): Path<String>,
    named: Result<Query<UserQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let (acting, user) = acting_on(&auth, &caller, context, query(named)?.user_id.as_deref())?;
    let environment = environment(&auth, &env)?;
    let keys = acting
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
    Context(context): Context,
    Path(env): Path<String>,
    named: Result<Query<UserQuery>, QueryRejection>,
    JsonBody(body): JsonBody<GraceBody>,
) -> Result<Response, Problem> {
    let (acting, user) = acting_on(&auth, &caller, context, query(named)?.user_id.as_deref())?;
    let environment = environment(&auth, &env)?;
    let grace = body
        .grace
        .as_deref()
        .map(|g| duration("grace", g))
        .transpose()?;
    let done = acting
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
    Context(context): Context,
    JsonBody(body): JsonBody<IssueBody>,
) -> Result<Response, Problem> {
    let (acting, user) = acting_on(&auth, &caller, context, body.user_id.as_deref())?;
    let keys = auth.keys();
    let options = keys.options();
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
    request = request.with_scopes(scopes(body.scopes.as_deref())?);
    request.allowed_networks = networks(body.allowed_networks.as_deref())?.unwrap_or_default();
    request.limits = body.limits.unwrap_or_default();
    request.credits = body.credits.map(CreditsBody::credits);
    request.name = body.name;
    request.notes = body.notes;
    request.expires_in = match (body.expires_at, body.expires_in.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "ambiguous_expiry",
                "give `expires_at` or `expires_in`, not both",
            ));
        }
        (Some(at), None) => Some(lifetime_until(keys.clock().now(), at)?),
        (None, Some(text)) => Some(duration("expires_in", text)?),
        (None, None) => None,
    };
    let issued_key = acting
        .issue_key(request)
        .await
        .map_err(|e| service_problem(&e))?;
    let view = issued(&issued_key.key, &issued_key.plaintext);
    Ok(json(StatusCode::CREATED, &view, true))
}

/// The lifetime from `now` until `at`, or a 422 when `at` is not in the future.
fn lifetime_until(now: DateTime<Utc>, at: DateTime<Utc>) -> Result<std::time::Duration, Problem> {
    (at - now)
        .to_std()
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| invalid("expiry_in_past", "`expires_at` is not in the future"))
}

/// `PATCH {prefix}/{id}`: changes the fields given (see [`UpdateBody`]).
pub(super) async fn update(
    State(auth): State<AuthState>,
    Caller(caller): Caller,
    Context(context): Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> Result<Response, Problem> {
    let id = key_id(&id)?;
    let keys = auth.keys();
    let mut update = KeyUpdate::new();
    update.name = body.name;
    update.notes = body.notes;
    update.ref_id = body.ref_id;
    update.meta = body.meta;
    update.enabled = body.enabled;
    if body.scopes.is_some() {
        update.scopes = Some(scopes(body.scopes.as_deref())?);
    }
    update.allowed_networks = networks(body.allowed_networks.as_deref())?;
    update.limits = body.limits;
    update.credits = body.credits.map(|c| c.map(CreditsBody::credits));
    update.expires_at = match (body.expires_at, body.expires_in.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "ambiguous_expiry",
                "give `expires_at` or `expires_in`, not both",
            ));
        }
        (Some(Some(at)), None) => {
            lifetime_until(keys.clock().now(), at)?;
            Some(Some(at))
        }
        (Some(None), None) => Some(None),
        (None, Some(text)) => {
            let lifetime = duration("expires_in", text)?;
            let at = chrono::TimeDelta::from_std(lifetime)
                .ok()
                .and_then(|d| keys.clock().now().checked_add_signed(d))
                .ok_or_else(|| invalid("invalid_duration", "`expires_in` is too long"))?;
            Some(Some(at))
        }
        (None, None) => None,
    };
    if update.is_empty() {
        return Err(invalid(
            "empty_update",
            "name at least one field to change: name, scopes, expires_at or expires_in, notes, ref_id, meta, allowed_networks, enabled, limits, credits",
        ));
    }
    let updated = keys
        .acting_as(&caller)
        .with_context(context)
        .update_key(&id, &update)
        .await
        .map_err(|e| service_problem(&e))?
        .ok_or_else(not_found)?;
    #[derive(Serialize)]
    struct Updated<'a> {
        #[serde(flatten)]
        key: KeyView<'a>,
        changed: &'a [&'static str],
    }
    let view = Updated {
        key: KeyView::of(&updated.key),
        changed: &updated.changed,
    };
    Ok(json(StatusCode::OK, &view, false))
}

/// The key id in a path; text that is no key id is no key.
pub(super) fn key_id(id: &str) -> Result<KeyId, Problem> {
    KeyId::new(id).map_err(|_| not_found())
}

/// `DELETE {prefix}/{id}`.
pub(super) async fn revoke(
    State(auth): State<AuthState>,
    Caller(caller): Caller,
    Context(context): Context,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let id = key_id(&id)?;
    let revoked = auth
        .keys()
        .acting_as(&caller)
        .with_context(context)
        .revoke(&id)
        .await
        .map_err(|e| service_problem(&e))?
        .ok_or_else(not_found)?;
    Ok(json(StatusCode::OK, &KeyView::of(&revoked), false))
}

/// `POST {prefix}/{id}/roll`.
pub(super) async fn roll(
    State(auth): State<AuthState>,
    Caller(caller): Caller,
    Context(context): Context,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<GraceBody>,
) -> Result<Response, Problem> {
    let id = key_id(&id)?;
    let grace = body
        .grace
        .as_deref()
        .map(|g| duration("grace", g))
        .transpose()?;
    let rolled = auth
        .keys()
        .acting_as(&caller)
        .with_context(context)
        .roll(&id, grace)
        .await
        .map_err(|e| service_problem(&e))?
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
