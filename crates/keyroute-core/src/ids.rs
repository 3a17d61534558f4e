//! Identifiers of users and keys.
//!
//! Teams bring their own user ids (an integer, a UUID, an email), so ids are opaque
//! strings: 1 to 128 characters, no control characters. Key ids are made by keyroute
//! (32 random hex digits) but parsed with the same rule, so ids from an older scheme or
//! another system load unchanged.
//!
//! An id is shared, not copied: cloning one (every resolved request clones its key's
//! and owner's ids into the principal) is a reference-count increment.

use std::fmt;
use std::sync::Arc;

use rand::RngExt;
use serde::{Deserialize, Deserializer, Serialize};

use crate::name::NameError;

fn check_id(kind: &'static str, value: &str) -> Result<(), NameError> {
    if value.is_empty() || value.len() > 128 || value.chars().any(char::is_control) {
        return Err(NameError::new(
            kind,
            value,
            "use 1 to 128 bytes without control characters",
        ));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates `value` and makes an id of it.
            ///
            /// # Errors
            /// [`NameError`] when the value is empty, over 128 bytes or has a control character.
            pub fn new(value: impl Into<String>) -> Result<Self, NameError> {
                let value = value.into();
                check_id($kind, &value)?;
                Ok(Self(Arc::from(value)))
            }

            /// A new random id: 32 lower-case hex digits (128 bits).
            pub fn random() -> Self {
                let bytes: [u8; 16] = rand::rng().random();
                Self(Arc::from(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()))
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = NameError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let s = String::deserialize(deserializer)?;
                Self::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type! {
    /// The id of a [`User`](crate::User): opaque, chosen by the team or generated.
    UserId, "user id"
}

id_type! {
    /// The id of an [`ApiKey`](crate::ApiKey) record. Not secret: it names the key in
    /// lists, logs and revocation calls without revealing it.
    KeyId, "key id"
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random ids are 32 hex digits and differ.
    #[test]
    fn random_ids() {
        let a = KeyId::random();
        assert_eq!(a.as_str().len(), 32);
        assert!(a.as_str().bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, KeyId::random());
    }

    /// Empty, control characters and over-long ids are refused.
    #[test]
    fn bad_ids() {
        assert!(UserId::new("").is_err());
        assert!(UserId::new("a\nb").is_err());
        assert!(UserId::new("x".repeat(129)).is_err());
        assert!(UserId::new("user@example.com").is_ok());
    }
}
