//! `CredentialExtractor` on raw header bytes: whatever `http::HeaderValue::from_bytes`
//! accepts goes through `Authorization`, `X-Api-Key` and the whole-request `extract`,
//! and the bytes as a query string through the query parameter. Never a panic.
#![no_main]

use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName, HeaderValue};
use keyroute_core::CredentialExtractor;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let plain = CredentialExtractor::default();
    let with_query = CredentialExtractor::default().with_query_param("api_key");
    let _ = plain.from_authorization(data);
    let _ = plain.from_api_key_header(data);
    if let Ok(value) = HeaderValue::from_bytes(data) {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, value.clone());
        let _ = plain.extract(&headers, None);
        headers.insert(HeaderName::from_static("x-api-key"), value);
        // Two credentials: always refused as ambiguous, never a panic.
        let _ = plain.extract(&headers, None);
    }
    if let Ok(query) = std::str::from_utf8(data) {
        let _ = with_query.extract(&HeaderMap::new(), Some(query));
    }
});
