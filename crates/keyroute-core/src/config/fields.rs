//! `#[serde(with = ...)]` helpers for the kinds of option every section has:
//! durations, lists of names, and small maps.
//!
//! - [`duration`] and [`optional_duration`]: humantime text (`250ms`, `5m`, `12h`,
//!   `90days`; `none` where the option may be off), bounded at [`MAX_DURATION`].
//!   Zero (`0` or `0s`) is read; the sections whose options must be over zero say so in
//!   their `validate`.
//! - [`list`] and [`optional_list`]: a TOML array, or one text of comma-separated
//!   entries (`KEYROUTE_APIKEY_KEY_TYPES=secret,publishable`). Only lists of names
//!   and address ranges use them, and those cannot contain a comma.
//! - [`map`]: a TOML table, or one text of `key=value` pairs separated by commas
//!   (`KEYROUTE_APIKEY_TYPE_PREFIXES=secret=sk,publishable=pk`).
//!
//! A URL, a path or any other text option is never split.

use std::time::Duration;

use serde::de::{self, IntoDeserializer};

use super::MAX_DURATION;

/// What a duration option is told when its text is not a duration.
const DURATION_HINT: &str =
    "not a duration; write e.g. 250ms, 30s, 10m, 12h or 90days, with a unit";

/// Reads a duration: humantime text, or `0`, under [`MAX_DURATION`].
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let duration = if text == "0" {
        Duration::ZERO
    } else {
        humantime::parse_duration(text).map_err(|_| DURATION_HINT.to_owned())?
    };
    if duration >= MAX_DURATION {
        return Err(format!(
            "{} is out of range: use a duration under 100 years (e.g. 10m, 12h, 90days)",
            humantime::format_duration(duration)
        ));
    }
    Ok(duration)
}

/// Visits a duration, or `none` when `optional`.
struct DurationVisitor {
    optional: bool,
}

impl de::Visitor<'_> for DurationVisitor {
    type Value = Option<Duration>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.optional {
            f.write_str("a duration such as 30s or 10m, or none")
        } else {
            f.write_str("a duration such as 30s or 10m")
        }
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        if self.optional && (text.trim().is_empty() || text.trim().eq_ignore_ascii_case("none")) {
            return Ok(None);
        }
        parse_duration(text).map(Some).map_err(E::custom)
    }

    /// `0` written as a TOML number.
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
        if n == 0 {
            Ok(Some(Duration::ZERO))
        } else {
            Err(E::custom(DURATION_HINT))
        }
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
        if n == 0 {
            Ok(Some(Duration::ZERO))
        } else {
            Err(E::custom(DURATION_HINT))
        }
    }
}

/// A required duration option (`#[serde(with = "keyroute_core::config::duration")]`).
pub mod duration {
    use std::time::Duration;

    use serde::de::Error as _;
    use serde::{Deserializer, Serializer};

    /// Writes the duration as humantime text.
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&humantime::format_duration(*value).to_string())
    }

    /// Reads humantime text (or `0`) under 100 years.
    ///
    /// # Errors
    /// Text that is not a duration, or one of 100 years or more.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        deserializer
            .deserialize_str(super::DurationVisitor { optional: false })?
            .ok_or_else(|| D::Error::custom(super::DURATION_HINT))
    }
}

/// An optional duration option, `none` when off
/// (`#[serde(with = "keyroute_core::config::optional_duration")]`).
pub mod optional_duration {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    /// Writes the duration as humantime text, or `none`.
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(duration) => super::duration::serialize(duration, serializer),
            None => serializer.serialize_str("none"),
        }
    }

    /// Reads `none` (or empty text) as `None`, else as [`duration`](super::duration).
    ///
    /// # Errors
    /// As [`duration`](super::duration).
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        deserializer.deserialize_str(super::DurationVisitor { optional: true })
    }
}

/// The entries of a comma-separated text: trimmed, outer quotes dropped, empty ones
/// left out.
fn entries(text: &str) -> impl Iterator<Item = &str> {
    text.split(',')
        .map(|entry| entry.trim().trim_matches('"').trim())
        .filter(|entry| !entry.is_empty())
}

/// Visits a list: a sequence, or a comma-separated text.
struct ListVisitor<T>(std::marker::PhantomData<T>);

impl<'de, T: de::Deserialize<'de>> de::Visitor<'de> for ListVisitor<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a list, as an array or as comma-separated text")
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(items)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        entries(text)
            .map(|entry| T::deserialize(entry.into_deserializer()))
            .collect()
    }
}

/// A list option (`#[serde(with = "keyroute_core::config::list")]`).
pub mod list {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Writes the list as an array.
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: Serializer, T: Serialize>(
        value: &[T],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(value)
    }

    /// Reads an array, or comma-separated text.
    ///
    /// # Errors
    /// An entry its type refuses, or a value that is neither.
    pub fn deserialize<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        deserializer.deserialize_any(super::ListVisitor(std::marker::PhantomData))
    }
}

/// A list option that may be unset
/// (`#[serde(default, with = "keyroute_core::config::optional_list")]`).
pub mod optional_list {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Writes the list as an array, or nothing.
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: Serializer, T: Serialize>(
        value: &Option<Vec<T>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(items) => serializer.collect_seq(items),
            None => serializer.serialize_none(),
        }
    }

    /// Reads an array, or comma-separated text.
    ///
    /// # Errors
    /// As [`list`](super::list).
    pub fn deserialize<'de, D, T>(deserializer: D) -> Result<Option<Vec<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        super::list::deserialize(deserializer).map(Some)
    }
}

/// Visits a map: a table, or `key=value` pairs separated by commas.
struct MapVisitor<K, V>(std::marker::PhantomData<(K, V)>);

impl<'de, K, V> de::Visitor<'de> for MapVisitor<K, V>
where
    K: de::Deserialize<'de> + Ord,
    V: de::Deserialize<'de>,
{
    type Value = std::collections::BTreeMap<K, V>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a table, or key=value pairs separated by commas")
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = std::collections::BTreeMap::new();
        while let Some((key, value)) = map.next_entry()? {
            entries.insert(key, value);
        }
        Ok(entries)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        entries(text)
            .map(|pair| {
                let (key, value) = pair.split_once('=').ok_or_else(|| {
                    E::custom("expected key=value pairs, e.g. secret=sk,publishable=pk")
                })?;
                Ok((
                    K::deserialize(key.trim().into_deserializer())?,
                    V::deserialize(value.trim().into_deserializer())?,
                ))
            })
            .collect()
    }
}

/// A map option (`#[serde(with = "keyroute_core::config::map")]`).
pub mod map {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Writes the map as a table.
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S, K, V>(value: &BTreeMap<K, V>, serializer: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        K: Serialize,
        V: Serialize,
    {
        serializer.collect_map(value)
    }

    /// Reads a table, or `key=value` pairs separated by commas.
    ///
    /// # Errors
    /// A key or value its type refuses, or a pair without `=`.
    pub fn deserialize<'de, D, K, V>(deserializer: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        D: Deserializer<'de>,
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
    {
        deserializer.deserialize_any(super::MapVisitor(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Durations read humantime text and `0`, refuse 100 years and more, and never
    /// quote text that is not a duration.
    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration(" 0 "), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        let error = parse_duration("2000years").unwrap_err();
        assert!(error.contains("100 years"), "{error}");
        let error = parse_duration("postgres://app:hunter2@db").unwrap_err();
        assert!(!error.contains("hunter2"), "{error}");
    }

    /// Entries are trimmed and unquoted; empty ones are dropped.
    #[test]
    fn comma_separated_entries() {
        assert_eq!(
            entries(" a, \"b\" ,,c ").collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        assert_eq!(entries("").count(), 0);
    }
}
