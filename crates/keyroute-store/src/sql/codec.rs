//! How values are stored: timestamps per backend, validated types, scopes and metadata.

use std::fmt;

use chrono::{DateTime, Utc};
use keyroute_core::{StoreError, StoreResult};

/// Timestamps as each backend stores them: `TIMESTAMPTZ` (PostgreSQL), `DATETIME(6)`
/// in UTC (MySQL), microseconds since the epoch (SQLite, where text timestamps would
/// compare as strings).
pub(crate) trait Timestamp: Sized {
    /// The stored form of `at`.
    fn from_instant(at: DateTime<Utc>) -> Self;
    /// The instant back, or `InvalidData` when the stored value is out of range.
    fn into_instant(self) -> StoreResult<DateTime<Utc>>;
}

impl Timestamp for DateTime<Utc> {
    fn from_instant(at: DateTime<Utc>) -> Self {
        at
    }
    fn into_instant(self) -> StoreResult<DateTime<Utc>> {
        Ok(self)
    }
}

impl Timestamp for chrono::NaiveDateTime {
    fn from_instant(at: DateTime<Utc>) -> Self {
        at.naive_utc()
    }
    fn into_instant(self) -> StoreResult<DateTime<Utc>> {
        Ok(self.and_utc())
    }
}

impl Timestamp for i64 {
    fn from_instant(at: DateTime<Utc>) -> Self {
        at.timestamp_micros()
    }
    fn into_instant(self) -> StoreResult<DateTime<Utc>> {
        DateTime::from_timestamp_micros(self)
            .ok_or_else(|| StoreError::InvalidData(format!("timestamp {self} is out of range")))
    }
}

/// Reads a stored value of a validated type back, or says which column is wrong.
pub(crate) fn decode<'a, T, E: fmt::Display>(
    column: &str,
    value: &'a str,
    parse: impl FnOnce(&'a str) -> Result<T, E>,
) -> StoreResult<T> {
    parse(value).map_err(|e| StoreError::InvalidData(format!("{column}: {e}")))
}

/// Metadata as a JSON object.
pub(crate) fn encode_meta(meta: &keyroute_core::Meta) -> String {
    // A map of strings always serialises.
    serde_json::to_string(meta).unwrap_or_else(|_| "{}".to_owned())
}

/// Metadata back from its JSON object, or which column is wrong.
pub(crate) fn decode_meta(column: &str, json: &str) -> StoreResult<keyroute_core::Meta> {
    // Most rows carry no metadata, and a key lookup decodes two of these: the empty
    // object (what `encode_meta` writes for no metadata) skips the JSON parser.
    if json == "{}" {
        return Ok(keyroute_core::Meta::new());
    }
    decode(column, json, serde_json::from_str)
}

/// Scopes as one space-separated string.
pub(crate) fn encode_scopes(scopes: &keyroute_core::Scopes) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Scopes back from their space-separated string.
pub(crate) fn decode_scopes(text: &str) -> StoreResult<keyroute_core::Scopes> {
    decode("scopes", text, |t| {
        keyroute_core::Scopes::parse(t.split_whitespace())
    })
}

/// Allowed networks as stored: space-separated CIDR text, `None` for anywhere.
pub(crate) fn encode_networks(networks: &[keyroute_core::IpNet]) -> Option<String> {
    (!networks.is_empty()).then(|| {
        networks
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// A key's own rate limits as stored: a JSON list, or NULL for none.
pub(crate) fn encode_limits(limits: &[keyroute_core::limits::RateLimit]) -> Option<String> {
    (!limits.is_empty()).then(|| serde_json::to_string(limits).unwrap_or_default())
}

/// A key's rate limits back from their stored JSON.
pub(crate) fn decode_limits(
    text: Option<&str>,
) -> StoreResult<Vec<keyroute_core::limits::RateLimit>> {
    text.map_or(Ok(Vec::new()), |text| {
        serde_json::from_str(text)
            .map_err(|e| StoreError::InvalidData(format!("api_keys.limits: {e}")))
    })
}

/// Allowed networks back from their stored text.
pub(crate) fn decode_networks(text: Option<&str>) -> StoreResult<Vec<keyroute_core::IpNet>> {
    text.map_or(Ok(Vec::new()), |text| {
        text.split_whitespace()
            .map(|net| decode("api_keys.allowed_networks", net, str::parse))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Metadata round-trips, the empty object included, and a malformed one names
    /// its column.
    #[test]
    fn meta_round_trips() {
        let empty = keyroute_core::Meta::new();
        assert_eq!(encode_meta(&empty), "{}");
        assert_eq!(decode_meta("m", "{}").unwrap(), empty);
        assert_eq!(decode_meta("m", " { } ").unwrap(), empty);
        let mut meta = keyroute_core::Meta::new();
        meta.insert("team".to_owned(), "billing".to_owned());
        assert_eq!(decode_meta("m", &encode_meta(&meta)).unwrap(), meta);
        let err = decode_meta("api_keys.meta", "{").unwrap_err();
        assert!(err.to_string().contains("api_keys.meta"), "{err}");
    }

    /// SQLite's microsecond timestamps round-trip.
    #[test]
    fn micros_round_trip() {
        let at = DateTime::from_timestamp_micros(1_767_323_045_678_901).unwrap();
        assert_eq!(
            <i64 as Timestamp>::from_instant(at).into_instant().unwrap(),
            at
        );
        assert!(i64::MAX.into_instant().is_err());
    }
}
