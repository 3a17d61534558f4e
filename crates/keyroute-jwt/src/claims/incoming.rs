//! Reading claims leniently: a claim of the wrong JSON type is kept as invalid rather
//! than failing the parse, so the verifier can name it. Strings borrow from the payload.

use std::borrow::Cow;
use std::fmt;

use keyroute_core::{Scope, Scopes};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::Claim;

/// The header fields the verifier reads. Others are ignored, except `crit`: keyroute
/// understands no extension, so a token that makes one critical is refused.
#[derive(Debug, Deserialize)]
pub(crate) struct IncomingHeader<'a> {
    #[serde(borrow, default)]
    pub(crate) alg: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    pub(crate) kid: Option<Scalar<'a>>,
    #[serde(default)]
    pub(crate) crit: Option<IgnoredAny>,
}

/// The claims the verifier reads. Unknown claims are ignored. JSON `null` counts as
/// absent.
#[derive(Debug, Deserialize)]
pub(crate) struct IncomingClaims<'a> {
    #[serde(borrow, default)]
    pub(crate) iss: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    pub(crate) sub: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    pub(crate) aud: Option<Audience<'a>>,
    #[serde(borrow, default)]
    pub(crate) exp: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    pub(crate) nbf: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    pub(crate) iat: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    pub(crate) jti: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    pub(crate) kind: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    pub(crate) env: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    pub(crate) key_type: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    pub(crate) key_id: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    pub(crate) tenant: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    pub(crate) key_exp: Option<Scalar<'a>>,
    #[serde(borrow, default)]
    pub(crate) scopes: Option<IncomingScopes<'a>>,
}

/// Any JSON value, kept only if it is a string or a number.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    Float(f64),
    Other,
}

impl Scalar<'_> {
    /// The value as a string claim.
    pub(crate) fn as_str(&self) -> Claim<&str> {
        match self {
            Scalar::Str(s) => Claim::Valid(s),
            _ => Claim::Invalid,
        }
    }

    /// The value as a NumericDate: seconds since the epoch, fractions dropped
    /// (RFC 7519 allows them).
    pub(crate) fn as_seconds(&self) -> Claim<i64> {
        // Beyond ±2^53 a float no longer holds whole seconds exactly; no real date is there.
        const LIMIT: f64 = 9_007_199_254_740_992.0;
        match self {
            Scalar::Int(n) => Claim::Valid(*n),
            Scalar::Float(f) if f.is_finite() && f.abs() < LIMIT => Claim::Valid(f.floor() as i64),
            _ => Claim::Invalid,
        }
    }
}

/// Consumes the rest of a sequence, so an unwanted array still parses.
fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// Consumes the rest of a map, so an unwanted object still parses.
fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// The visitor methods for JSON types a visitor does not want: each gives `$invalid`.
macro_rules! refuse {
    (scalars => $invalid:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($invalid)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($invalid)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($invalid)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($invalid)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($invalid)
        }
    };
    (strings => $invalid:expr) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($invalid)
        }
    };
    (seqs => $invalid:expr) => {
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            drain_seq(seq)?;
            Ok($invalid)
        }
    };
    (maps => $invalid:expr) => {
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            drain_map(map)?;
            Ok($invalid)
        }
    };
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(i64::try_from(v).map_or(Scalar::Other, Scalar::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Float(v))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Other)
    }
    refuse!(seqs => Scalar::Other);
    refuse!(maps => Scalar::Other);
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// Reads an array whose elements must all be strings.
fn string_list<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<Claim<Vec<Cow<'de, str>>>, A::Error> {
    let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
    let mut valid = true;
    while let Some(item) = seq.next_element::<Scalar<'de>>()? {
        match item {
            Scalar::Str(s) if valid => items.push(s),
            _ => valid = false,
        }
    }
    Ok(if valid {
        Claim::Valid(items)
    } else {
        Claim::Invalid
    })
}

/// The `aud` claim: one string or an array of strings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Audience<'a>(pub(crate) Claim<Vec<Cow<'a, str>>>);

struct AudienceVisitor;

impl<'de> Visitor<'de> for AudienceVisitor {
    type Value = Audience<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Audience(Claim::Valid(vec![Cow::Borrowed(v)])))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Audience(Claim::Valid(vec![Cow::Owned(v.to_owned())])))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        string_list(seq).map(Audience)
    }
    refuse!(scalars => Audience(Claim::Invalid));
    refuse!(maps => Audience(Claim::Invalid));
}

impl<'de: 'a, 'a> Deserialize<'de> for Audience<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AudienceVisitor)
    }
}

/// The `scopes` claim as read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum IncomingScopes<'a> {
    /// `["users:read"]`
    Flat(Vec<Cow<'a, str>>),
    /// `{"users": {"actions": ["read"]}}`, as (resource, actions) pairs.
    Structured(Vec<(Cow<'a, str>, Vec<Cow<'a, str>>)>),
    /// Anything else.
    Invalid,
}

impl IncomingScopes<'_> {
    /// The scopes in keyroute's syntax; `None` when any is invalid.
    pub(crate) fn to_scopes(&self) -> Option<Scopes> {
        match self {
            IncomingScopes::Flat(list) => Scopes::parse(list).ok(),
            IncomingScopes::Structured(groups) => {
                let mut scopes = Vec::new();
                for (resource, actions) in groups {
                    for action in actions {
                        scopes.push(Scope::new(&format!("{resource}:{action}")).ok()?);
                    }
                }
                Some(Scopes::from(scopes))
            }
            IncomingScopes::Invalid => None,
        }
    }
}

struct ScopesVisitor;

impl<'de> Visitor<'de> for ScopesVisitor {
    type Value = IncomingScopes<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Ok(match string_list(seq)? {
            Claim::Valid(list) => IncomingScopes::Flat(list),
            Claim::Invalid => IncomingScopes::Invalid,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut groups = Vec::new();
        let mut valid = true;
        while let Some(resource) = map.next_key::<Scalar<'de>>()? {
            let actions = map.next_value::<ResourceActions<'de>>()?;
            match (resource, actions.0) {
                (Scalar::Str(resource), Claim::Valid(actions)) if valid => {
                    groups.push((resource, actions));
                }
                _ => valid = false,
            }
        }
        Ok(if valid {
            IncomingScopes::Structured(groups)
        } else {
            IncomingScopes::Invalid
        })
    }

    refuse!(scalars => IncomingScopes::Invalid);
    refuse!(strings => IncomingScopes::Invalid);
}

impl<'de: 'a, 'a> Deserialize<'de> for IncomingScopes<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScopesVisitor)
    }
}

/// One resource of the structured format: `{"actions": [...]}`. Other members are
/// ignored (room for later extensions); a missing or repeated `actions` is invalid.
struct ResourceActions<'a>(Claim<Vec<Cow<'a, str>>>);

struct ResourceActionsVisitor;

impl<'de> Visitor<'de> for ResourceActionsVisitor {
    type Value = ResourceActions<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut actions: Option<Claim<Vec<Cow<'de, str>>>> = None;
        let mut valid = true;
        while let Some(key) = map.next_key::<Scalar<'de>>()? {
            if matches!(&key, Scalar::Str(k) if k == "actions") {
                let list = map.next_value::<ActionList<'de>>()?.0;
                valid &= actions.is_none();
                actions = Some(list);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(ResourceActions(match actions {
            Some(list) if valid => list,
            _ => Claim::Invalid,
        }))
    }

    refuse!(scalars => ResourceActions(Claim::Invalid));
    refuse!(strings => ResourceActions(Claim::Invalid));
    refuse!(seqs => ResourceActions(Claim::Invalid));
}

impl<'de: 'a, 'a> Deserialize<'de> for ResourceActions<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ResourceActionsVisitor)
    }
}

/// The `actions` array of one resource.
struct ActionList<'a>(Claim<Vec<Cow<'a, str>>>);

struct ActionListVisitor;

impl<'de> Visitor<'de> for ActionListVisitor {
    type Value = ActionList<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        string_list(seq).map(ActionList)
    }

    refuse!(scalars => ActionList(Claim::Invalid));
    refuse!(strings => ActionList(Claim::Invalid));
    refuse!(maps => ActionList(Claim::Invalid));
}

impl<'de: 'a, 'a> Deserialize<'de> for ActionList<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ActionListVisitor)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use super::*;

    fn claims(json: &str) -> IncomingClaims<'_> {
        serde_json::from_str(json).unwrap()
    }

    /// Claims of the wrong JSON type are kept as invalid, not a parse failure.
    #[test]
    fn wrong_types_are_invalid_claims() {
        let c = claims(r#"{"env": 5, "jti": ["a"], "exp": "soon", "kind": {"a": [1]}, "aud": 3}"#);
        assert_eq!(c.env.unwrap().as_str(), Claim::Invalid);
        assert_eq!(c.jti.unwrap().as_str(), Claim::Invalid);
        assert_eq!(c.exp.unwrap().as_seconds(), Claim::Invalid);
        assert_eq!(c.kind.unwrap().as_str(), Claim::Invalid);
        assert_eq!(c.aud.unwrap().0, Claim::Invalid);
        assert!(c.sub.is_none());
    }

    /// NumericDates may be fractional; strings borrow from the payload when unescaped.
    #[test]
    fn numbers_and_strings() {
        let c = claims(r#"{"exp": 1700000000.9, "iat": 1700000000, "sub": "u1", "iss": "a\"b"}"#);
        assert_eq!(c.exp.unwrap().as_seconds(), Claim::Valid(1_700_000_000));
        assert_eq!(c.iat.unwrap().as_seconds(), Claim::Valid(1_700_000_000));
        assert!(matches!(c.sub, Some(Scalar::Str(Cow::Borrowed("u1")))));
        assert_eq!(c.iss.unwrap().as_str(), Claim::Valid("a\"b"));
    }

    /// Flat and structured scopes read back to the same set; malformed ones are invalid.
    #[test]
    fn scope_formats() {
        let flat = claims(r#"{"scopes": ["users:read", "users:create"]}"#);
        let structured = claims(
            r#"{"scopes": {"users": {"actions": ["read", "create"], "note": 1}, "orders:items": {"actions": []}}}"#,
        );
        let expected = Scopes::parse(["users:create", "users:read"]).unwrap();
        assert_eq!(flat.scopes.unwrap().to_scopes().unwrap(), expected);
        assert_eq!(structured.scopes.unwrap().to_scopes().unwrap(), expected);
        for bad in [
            r#"{"scopes": "users:read"}"#,
            r#"{"scopes": ["users:read", 5]}"#,
            r#"{"scopes": {"users": ["read"]}}"#,
            r#"{"scopes": {"users": {"actions": "read"}}}"#,
            r#"{"scopes": {"users": {"actions": ["read"], "actions": ["x"]}}}"#,
            r#"{"scopes": {"users": {"other": []}}}"#,
            r#"{"scopes": ["bad scope"]}"#,
            r#"{"scopes": {"users": {"actions": ["a:"]}}}"#,
        ] {
            let parsed = claims(bad).scopes.unwrap();
            assert!(parsed.to_scopes().is_none(), "{bad}");
        }
    }
}
