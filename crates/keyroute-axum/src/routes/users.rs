//! `GET {prefix}/users`: a page of users, for callers core lets list them.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum_core::response::Response;
use chrono::{DateTime, Utc};
use http::StatusCode;
use keyroute_core::MAX_USERS_PAGE;
use serde::{Deserialize, Serialize};

use super::body::{page_limit, read_query};
use super::context::Context;
use super::keys::{json, service_problem, user_id};
use crate::extract::Caller;
use crate::problem::Problem;
use crate::state::AuthState;

/// The query of `GET {prefix}/users`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct UsersQuery {
    after: Option<String>,
    limit: Option<usize>,
}

/// A user as `GET {prefix}/users` shows it.
#[derive(Debug, Serialize)]
struct UserView<'a> {
    id: &'a str,
    user_name: &'a str,
    email: Option<&'a str>,
    tenant: Option<&'a str>,
    created_at: DateTime<Utc>,
}

/// A page of users and the `after` of the next page (`null` after the last).
#[derive(Debug, Serialize)]
struct UsersPage<'a> {
    users: Vec<UserView<'a>>,
    next_after: Option<&'a str>,
}

/// `GET {prefix}/users?after=<id>&limit=<n>`: a page of users in id order, for
/// callers core lets list them (admin keys; a tenant's admin sees its tenant's).
pub(super) async fn users(
    State(auth): State<AuthState>,
    Caller(caller): Caller,
    Context(context): Context,
    query: Result<Query<UsersQuery>, QueryRejection>,
) -> Result<Response, Problem> {
    let query = read_query(query, "`after=<user id>` and `limit=<1 to 1000>`")?;
    let limit = page_limit(query.limit, MAX_USERS_PAGE)?;
    let after = user_id(query.after.as_deref())?;
    let users = auth
        .keys()
        .acting_as(&caller)
        .with_context(context)
        .list_users(after.as_ref(), limit)
        .await
        .map_err(|e| service_problem(&e))?;
    let page = UsersPage {
        users: users
            .iter()
            .map(|u| UserView {
                id: u.id.as_str(),
                user_name: &u.user_name,
                email: u.email.as_deref(),
                tenant: u.tenant.as_ref().map(|t| t.as_str()),
                created_at: u.created_at,
            })
            .collect(),
        next_after: (users.len() == limit)
            .then(|| users.last().map(|u| u.id.as_str()))
            .flatten(),
    };
    Ok(json(StatusCode::OK, &page, false))
}
