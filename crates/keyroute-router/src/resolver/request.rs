//! What the resolver needs to know of the request a credential arrived in, and the
//! secure-connection rule applied to it.

use http::HeaderMap;
use keyroute_core::AuthError;

/// What the resolver needs to know about the request a credential arrived in.
#[derive(Debug, Clone, Copy)]
pub struct IncomingRequest<'a> {
    headers: &'a HeaderMap,
    query: Option<&'a str>,
    tls: bool,
}

impl<'a> IncomingRequest<'a> {
    /// A request with these headers, no query string, not over TLS.
    pub fn new(headers: &'a HeaderMap) -> Self {
        Self {
            headers,
            query: None,
            tls: false,
        }
    }

    /// Sets the raw query string (read only if the extractor enables a query parameter).
    pub fn with_query(mut self, query: Option<&'a str>) -> Self {
        self.query = query;
        self
    }

    /// Says whether the request arrived over TLS.
    pub fn over_tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }
}

impl IncomingRequest<'_> {
    /// The headers.
    pub(crate) fn headers(&self) -> &HeaderMap {
        self.headers
    }

    /// The raw query string, if one was given.
    pub(crate) fn query(&self) -> Option<&str> {
        self.query
    }

    /// `require_secure_connection`: the request must have come over TLS, or (with
    /// `trust_forwarded_proto`) through a proxy that says it did.
    pub(crate) fn check_transport(
        &self,
        require_secure: bool,
        trust_forwarded_proto: bool,
    ) -> Result<(), AuthError> {
        let forwarded_https = || {
            self.headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
        };
        if !require_secure || self.tls || (trust_forwarded_proto && forwarded_https()) {
            Ok(())
        } else {
            Err(AuthError::InsecureConnection)
        }
    }
}
