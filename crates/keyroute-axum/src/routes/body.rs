//! Request bodies of the key routes: read with a size cap, parsed as JSON, validated
//! into typed values, every failure a [`Problem`] (413, 415, 400, 422).

use std::time::Duration;

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum_core::body::Body;
use axum_core::extract::{FromRequest, Request};
use chrono::{DateTime, Utc};
use http::{StatusCode, header};
use keyroute_core::config::MAX_DURATION;
use keyroute_core::limits::{Credits, RateLimit, Refill};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::problem::Problem;

/// The largest request body the key routes read.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// A JSON body of at most [`MAX_BODY_BYTES`]; an empty body is `T::default()`.
#[derive(Debug)]
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                let essence = v.split(';').next().unwrap_or_default().trim();
                essence.eq_ignore_ascii_case("application/json")
            });
        let body: Body = request.into_body();
        let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
            .await
            .map_err(|_| {
                Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    format!("the request body is over {MAX_BODY_BYTES} bytes"),
                )
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        if is_json != Some(true) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as Content-Type: application/json",
            ));
        }
        serde_json::from_slice(&bytes).map(Self).map_err(|e| {
            // The position and class only: serde's message can quote the input.
            let what = match e.classify() {
                serde_json::error::Category::Data => "a field has the wrong type or is unknown",
                _ => "the body is not valid JSON",
            };
            Problem::new(
                StatusCode::BAD_REQUEST,
                "malformed_body",
                format!("{what} (line {}, column {})", e.line(), e.column()),
            )
        })
    }
}

/// `POST /apikeys`: a key to issue.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IssueBody {
    /// The key type; default `secret`.
    #[serde(rename = "type")]
    pub(crate) key_type: Option<String>,
    /// The environment (required).
    pub(crate) environment: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) scopes: Option<Vec<String>>,
    /// An absolute expiry.
    pub(crate) expires_at: Option<DateTime<Utc>>,
    /// A lifetime such as `90days`.
    pub(crate) expires_in: Option<String>,
    pub(crate) notes: Option<String>,
    /// Whose key; only a caller with the admin scope may name another user.
    pub(crate) user_id: Option<String>,
    /// CIDR ranges the key may be used from; none for anywhere.
    pub(crate) allowed_networks: Option<Vec<String>>,
    /// The key's own rate limits.
    pub(crate) limits: Option<Vec<RateLimit>>,
    /// The key's credits; unmetered when absent.
    pub(crate) credits: Option<CreditsBody>,
}

/// `credits`: `{ "remaining": 1000, "refill": "1000/daily" }` (`refill` optional:
/// `AMOUNT/daily`, `AMOUNT/monthly` or `AMOUNT/<duration>`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreditsBody {
    remaining: u64,
    #[serde(default)]
    refill: Option<Refill>,
}

impl CreditsBody {
    /// The credits asked for; the service sets the first refill's instant.
    pub(crate) fn credits(self) -> Credits {
        let mut credits = Credits::new(self.remaining);
        credits.refill = self.refill;
        credits
    }
}

/// CIDR ranges from a body, or a 422 naming the first that is not one.
pub(crate) fn networks(
    ranges: Option<&[String]>,
) -> Result<Option<Vec<keyroute_core::IpNet>>, Problem> {
    ranges
        .map(|ranges| {
            ranges
                .iter()
                .map(|range| {
                    range.trim().parse().map_err(|_| {
                        invalid(
                            "invalid_network",
                            "`allowed_networks` holds something that is not a CIDR range: write e.g. 10.0.0.0/8 or 2001:db8::/32",
                        )
                    })
                })
                .collect()
        })
        .transpose()
}

/// Scopes from a body, or a 422.
pub(crate) fn scopes(names: Option<&[String]>) -> Result<keyroute_core::Scopes, Problem> {
    keyroute_core::Scopes::parse(names.into_iter().flatten().map(String::as_str)).map_err(|_| {
        invalid(
            "invalid_scope",
            "scopes are ':'-separated segments of A-Z, a-z, 0-9, '_', '.', '-', with '*' only last",
        )
    })
}

/// `PATCH /apikeys/{id}`: each field given is changed; `null` removes a name, notes,
/// reference or expiry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateBody {
    #[serde(default, deserialize_with = "present")]
    pub(crate) name: Option<Option<String>>,
    pub(crate) scopes: Option<Vec<String>>,
    /// An absolute expiry, or `null` for none.
    #[serde(default, deserialize_with = "present")]
    pub(crate) expires_at: Option<Option<DateTime<Utc>>>,
    /// A lifetime from now, such as `30days`.
    pub(crate) expires_in: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) notes: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) ref_id: Option<Option<String>>,
    pub(crate) meta: Option<std::collections::BTreeMap<String, String>>,
    /// CIDR ranges (`[]` for anywhere).
    pub(crate) allowed_networks: Option<Vec<String>>,
    pub(crate) enabled: Option<bool>,
    /// The key's rate limits, replacing its old ones (`[]`: none of its own).
    pub(crate) limits: Option<Vec<RateLimit>>,
    /// New credits outright, or `null` for unmetered.
    #[serde(default, deserialize_with = "present")]
    pub(crate) credits: Option<Option<CreditsBody>>,
}

/// A field that is present: `Some(None)` for `null`, so a field left out (`None`,
/// through `default`) and one set to `null` differ.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// `POST /apikeys/regenerate/{env}` and `POST /apikeys/{id}/roll`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GraceBody {
    /// How long the old keys keep working, such as `1h`.
    pub(crate) grace: Option<String>,
}

/// A duration option of a body (`grace`, `expires_in`): humantime text, over zero
/// and under 100 years.
pub(crate) fn duration(field: &'static str, value: &str) -> Result<Duration, Problem> {
    let parsed = humantime::parse_duration(value.trim()).map_err(|_| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_duration",
            format!("`{field}` is not a duration: write e.g. 30m, 12h or 90days"),
        )
    })?;
    if parsed.is_zero() || parsed >= MAX_DURATION {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_duration",
            format!("`{field}` must be over zero and under 100 years"),
        ));
    }
    Ok(parsed)
}

/// A 422 saying which field is wrong and how.
pub(crate) fn invalid(code: &'static str, detail: impl Into<String>) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
}

/// Entries per page when a listing's query names no `limit`.
pub(crate) const PAGE: usize = 100;

/// The query string read as `T`, or a 400 `malformed_query` that says what to `give`.
pub(crate) fn read_query<T>(
    query: Result<Query<T>, QueryRejection>,
    give: &str,
) -> Result<T, Problem> {
    query.map(|Query(q)| q).map_err(|_| {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed_query",
            format!("the query string cannot be read; give {give}"),
        )
    })
}

/// A listing's page size: `asked`, or [`PAGE`]; anything but 1 to `max` is a 422
/// `invalid_limit`.
pub(crate) fn page_limit(asked: Option<usize>, max: usize) -> Result<usize, Problem> {
    let limit = asked.unwrap_or(PAGE);
    if (1..=max).contains(&limit) {
        Ok(limit)
    } else {
        Err(invalid(
            "invalid_limit",
            format!("`limit` must be 1 to {max}"),
        ))
    }
}

/// The answer to `POST /token`.
#[cfg(feature = "jwt")]
#[derive(Debug, serde::Serialize)]
pub(crate) struct TokenResponse {
    pub(crate) access_token: String,
    pub(crate) token_type: &'static str,
    pub(crate) expires_in: i64,
    pub(crate) expires_at: DateTime<Utc>,
}
