//! Scopes: what a key may do.
//!
//! A scope is a `:`-separated path such as `orders:read`. A granted scope ending in `:*`
//! covers everything below it (`orders:*` grants `orders:read` and `orders:items:write`,
//! not `orders` itself); `*` and [`ADMIN_SCOPE`] grant everything. Required scopes are
//! always literal: a handler asks for `orders:read`, never for a pattern.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::name::NameError;

/// The scope that grants every other scope.
pub const ADMIN_SCOPE: &str = "admin";

/// One granted or required scope, validated.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope(Arc<str>);

impl Scope {
    /// Validates a scope: 1 to 128 bytes of `:`-separated segments of `A-Z a-z 0-9 _ . -`,
    /// where only the last segment may be `*`.
    ///
    /// # Errors
    /// [`NameError`] saying what a scope must look like.
    pub fn new(value: &str) -> Result<Self, NameError> {
        let segments_ok = || {
            let mut segments = value.split(':').peekable();
            while let Some(segment) = segments.next() {
                let is_last = segments.peek().is_none();
                let ok = (segment == "*" && is_last)
                    || (!segment.is_empty()
                        && segment
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)));
                if !ok {
                    return false;
                }
            }
            true
        };
        if value.is_empty() || value.len() > 128 || !segments_ok() {
            return Err(NameError::new(
                "scope",
                value,
                "use ':'-separated segments of A-Z, a-z, 0-9, '_', '.', '-', with '*' only as the last segment",
            ));
        }
        Ok(Self(Arc::from(value)))
    }

    /// The scope as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether holding this scope allows `required`.
    pub fn grants(&self, required: &str) -> bool {
        let granted = self.as_str();
        if granted == "*" || granted == ADMIN_SCOPE || granted == required {
            return true;
        }
        granted.strip_suffix('*').is_some_and(|stem| {
            // `stem` ends in ':'; the required scope must go on past it.
            required.len() > stem.len() && required.starts_with(stem)
        })
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({:?})", self.as_str())
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Scope {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

/// A set of granted scopes: sorted, without duplicates, cheap to clone.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Scopes(Arc<[Scope]>);

impl Scopes {
    /// No scopes.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses every scope in `values`.
    ///
    /// # Errors
    /// The [`NameError`] of the first invalid scope.
    pub fn parse<I, S>(values: I) -> Result<Self, NameError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        values
            .into_iter()
            .map(|s| Scope::new(s.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map(Self::from)
    }

    /// Whether any scope in the set allows `required`.
    pub fn grants(&self, required: &str) -> bool {
        self.0.iter().any(|s| s.grants(required))
    }

    /// The scopes, sorted.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Scope> {
        self.0.iter()
    }

    /// How many scopes the set holds.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<Scope>> for Scopes {
    fn from(mut scopes: Vec<Scope>) -> Self {
        scopes.sort();
        scopes.dedup();
        Self(scopes.into())
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<T: IntoIterator<Item = Scope>>(iter: T) -> Self {
        Self::from(iter.into_iter().collect::<Vec<_>>())
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.0.iter().map(Scope::as_str))
            .finish()
    }
}

impl Serialize for Scopes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter())
    }
}

impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Vec::<Scope>::deserialize(deserializer)?.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(v: &[&str]) -> Scopes {
        Scopes::parse(v).unwrap()
    }

    /// Exact scopes, trailing wildcards and the admin scope grant what they should, and no more.
    #[test]
    fn grants() {
        let s = scopes(&["orders:*", "users:read"]);
        assert!(s.grants("orders:read"));
        assert!(s.grants("orders:items:write"));
        assert!(
            !s.grants("orders"),
            "a wildcard covers children, not the parent"
        );
        assert!(!s.grants("ordersx:read"));
        assert!(s.grants("users:read"));
        assert!(!s.grants("users:write"));
        assert!(scopes(&[ADMIN_SCOPE]).grants("anything:at:all"));
        assert!(scopes(&["*"]).grants("x"));
        assert!(!Scopes::none().grants("x"));
    }

    /// Patterns in the middle, empty segments and odd characters are refused.
    #[test]
    fn invalid_scopes() {
        for bad in ["", "a::b", "*:read", "a:b*", "a b", "a:", &"a".repeat(129)] {
            assert!(Scope::new(bad).is_err(), "{bad:?}");
        }
    }

    /// Sets are sorted and de-duplicated.
    #[test]
    fn sets_are_normalised() {
        assert_eq!(scopes(&["b", "a", "b"]), scopes(&["a", "b"]));
    }
}
