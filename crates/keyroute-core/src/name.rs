//! Open, validated names: [`Environment`], [`KeyType`] and [`Tenant`].
//!
//! Teams add their own environments ("staging") and key types ("restricted"), so these
//! are newtypes over a string rather than closed enums. Each is validated once, when it
//! is made, so the rest of the crate can put them into tokens and connection names
//! without re-checking. The well-known values are constants that cost nothing to clone;
//! custom values share one allocation (`Arc<str>`), because a name is cloned into every
//! resolved [`Principal`](crate::Principal).

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string was refused as a name, id or scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error("invalid {kind} {value:?}: {reason}")]
pub struct NameError {
    /// What was being named ("environment", "key type", "tenant", ...).
    pub kind: &'static str,
    /// The refused value, cut to 64 characters.
    pub value: String,
    /// What the value must look like.
    pub reason: &'static str,
}

impl NameError {
    pub(crate) fn new(kind: &'static str, value: &str, reason: &'static str) -> Self {
        Self {
            kind,
            value: value.chars().take(64).collect(),
            reason,
        }
    }
}

/// Storage shared by the name types: a static literal or one shared allocation.
#[derive(Clone)]
enum Repr {
    Static(&'static str),
    Shared(Arc<str>),
}

impl Repr {
    fn as_str(&self) -> &str {
        match self {
            Repr::Static(s) => s,
            Repr::Shared(s) => s,
        }
    }
}

/// Lower-case ASCII letters, digits and `-`, 1 to `max` bytes, starting with a letter
/// (or a digit when `digit_first` is set). No `_`: it separates the parts of a token.
fn check_slug(
    kind: &'static str,
    value: &str,
    max: usize,
    digit_first: bool,
) -> Result<(), NameError> {
    const REASON: &str = "use 1 to 32 characters of a-z, 0-9 and '-', starting with a letter (tenants: 1 to 64, may start with a digit)";
    let bytes = value.as_bytes();
    let first_ok = bytes
        .first()
        .is_some_and(|b| b.is_ascii_lowercase() || (digit_first && b.is_ascii_digit()));
    let rest_ok = bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    if first_ok && rest_ok && bytes.len() <= max {
        Ok(())
    } else {
        Err(NameError::new(kind, value, REASON))
    }
}

macro_rules! slug_type {
    (
        $(#[$doc:meta])*
        $name:ident, $kind:literal, max = $max:literal, digit_first = $digit_first:literal,
        consts { $($(#[$cdoc:meta])* $konst:ident = $val:literal),* $(,)? }
    ) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(Repr);

        impl $name {
            $(
                $(#[$cdoc])*
                pub const $konst: $name = $name(Repr::Static($val));
            )*

            /// Validates `value` and makes a name of it.
            ///
            /// # Errors
            /// [`NameError`] when the value is empty, too long, or has a character
            /// other than `a-z`, `0-9` and `-`.
            pub fn new(value: &str) -> Result<Self, NameError> {
                $(if value == $val { return Ok(Self::$konst); })*
                check_slug($kind, value, $max, $digit_first)?;
                Ok(Self(Repr::Shared(Arc::from(value))))
            }

            /// The name as a string slice.
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.as_str())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.as_str() == other.as_str()
            }
        }

        impl Eq for $name {}

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.as_str().cmp(other.as_str())
            }
        }

        impl std::hash::Hash for $name {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.as_str().hash(state)
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                self.as_str()
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        impl std::str::FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = NameError;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::new(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

slug_type! {
    /// The environment a key belongs to, and so the database its requests reach.
    ///
    /// The defaults are `live` and `test`; teams may add their own ("staging").
    /// A test key is only ever routed to the test environment's connection.
    Environment, "environment", max = 32, digit_first = false,
    consts {
        /// Production traffic: routed to the LiveDb.
        LIVE = "live",
        /// Test traffic: routed to the TestDb, never to live data.
        TEST = "test",
    }
}

slug_type! {
    /// The type of a key: what kind of client may hold it.
    ///
    /// The default set is just `secret`; `publishable` and `restricted` are known names
    /// with default token prefixes (`pk`, `rk`).
    KeyType, "key type", max = 32, digit_first = false,
    consts {
        /// A server-side key with the owner's full rights (token prefix `sk`).
        SECRET = "secret",
        /// A key safe to embed in a browser or mobile app (token prefix `pk`).
        PUBLISHABLE = "publishable",
        /// A server-side key limited to its scopes (token prefix `rk`).
        RESTRICTED = "restricted",
    }
}

slug_type! {
    /// The tenant a user or key belongs to, for multitenant routing
    /// (a key of tenant `acme` in environment `test` can route to `acme-test`).
    Tenant, "tenant", max = 64, digit_first = true,
    consts {}
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known names come back as the shared constants; custom names validate.
    #[test]
    fn known_and_custom_names() {
        assert_eq!(Environment::new("live").unwrap(), Environment::LIVE);
        assert_eq!(Environment::new("staging").unwrap().as_str(), "staging");
        assert_eq!(Tenant::new("42").unwrap().as_str(), "42");
        assert!(Environment::new("42").is_err());
    }

    /// Separators, upper case, empty and over-long names are refused with a reason.
    #[test]
    fn bad_names_are_refused() {
        for bad in ["", "Live", "live_eu", "li ve", "é", &"a".repeat(33)] {
            let err = Environment::new(bad).unwrap_err();
            assert_eq!(err.kind, "environment", "{bad:?}");
        }
        assert!(KeyType::new("-secret").is_err());
    }

    /// Names round-trip through serde and refuse invalid strings there too.
    #[test]
    fn serde_validates() {
        let env: Environment = serde_json_like("\"test\"").unwrap();
        assert_eq!(env, Environment::TEST);
        assert!(serde_json_like::<Environment>("\"TEST\"").is_err());
    }

    fn serde_json_like<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, toml::de::Error> {
        #[derive(Deserialize)]
        struct W<T> {
            v: T,
        }
        toml::from_str::<W<T>>(&format!("v = {s}")).map(|w| w.v)
    }
}
