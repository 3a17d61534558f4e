//! Usage limits over HTTP: what a request costs ([`RequestCost`]), and the IETF
//! httpapi draft's `RateLimit-Policy` / `RateLimit` headers, on every 429 and, through
//! [`AuthLayer`](crate::AuthLayer), on every admitted response.
//!
//! The headers follow draft-ietf-httpapi-ratelimit-headers (structured fields): one
//! entry per limit that applies, `RateLimit-Policy: "requests";q=100;w=60` (quota per
//! window of `w` seconds) and `RateLimit: "requests";r=42;t=12` (`r` units left now,
//! `t` seconds until the limit is full again).

use std::fmt::Write as _;

use http::{HeaderMap, HeaderName, HeaderValue};
use keyroute_core::limits::LimitUsage;

/// `RateLimit-Policy`.
pub static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
/// `RateLimit`.
pub static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// What a request costs against the caller's rate limits and credits: 1 unless a
/// route says otherwise, by putting this in the request's extensions before the
/// extractor runs (axum's `Extension` layer does it); 0 checks without spending.
///
/// ```
/// use axum::{Extension, Router, routing::post};
/// use keyroute_axum::RequestCost;
/// # async fn export() {}
/// // An export costs ten requests' worth.
/// let routes: Router = Router::new().route("/export", post(export).layer(Extension(RequestCost(10))));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestCost(pub u64);

/// Whole seconds, rounded up (a header never says "now" for "in 300 ms").
fn secs(d: std::time::Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Adds the `RateLimit-Policy` and `RateLimit` headers for `usage` (nothing when it is
/// empty). Limit names are keyroute's (`[a-z0-9_-]`), so they always quote cleanly.
pub(crate) fn add_headers(headers: &mut HeaderMap, usage: &[LimitUsage]) {
    if usage.is_empty() {
        return;
    }
    // Written straight into one string per header: this runs on every admitted
    // request of a limited key.
    let mut policy = String::with_capacity(48 * usage.len());
    let mut state = String::with_capacity(48 * usage.len());
    for (i, u) in usage.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        let window = secs(u.window).max(1);
        let _ = write!(policy, "{sep}\"{}\";q={};w={window}", u.name, u.limit);
        let _ = write!(
            state,
            "{sep}\"{}\";r={};t={}",
            u.name,
            u.remaining,
            secs(u.reset_after)
        );
    }
    for (name, value) in [(&RATELIMIT_POLICY, policy), (&RATELIMIT, state)] {
        if let Ok(value) = HeaderValue::try_from(value) {
            headers.insert(name.clone(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use keyroute_core::limits::{LimitScope, RateLimit};

    use super::*;

    /// The draft's syntax, one entry per limit, seconds rounded up.
    #[test]
    fn headers_follow_the_draft() {
        let a = RateLimit::new("requests", 100, Duration::from_secs(60)).unwrap();
        let b = RateLimit::new("writes", 5, Duration::from_millis(500))
            .unwrap()
            .per(LimitScope::User);
        let usage = [
            LimitUsage::new(&a, 42, Duration::from_millis(11_200)),
            LimitUsage::new(&b, 0, Duration::from_millis(100)),
        ];
        let mut headers = HeaderMap::new();
        add_headers(&mut headers, &usage);
        assert_eq!(
            headers[&RATELIMIT_POLICY],
            "\"requests\";q=100;w=60, \"writes\";q=5;w=1"
        );
        assert_eq!(
            headers[&RATELIMIT],
            "\"requests\";r=42;t=12, \"writes\";r=0;t=1"
        );
    }
}
