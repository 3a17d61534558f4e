//! [`DatabaseUrl`]: a connection string that never shows its password, and knows
//! which kind of database it names ([`DatabaseUrl::backend`]).

use std::fmt;

use super::secrets::Secrets;

/// A database connection string: a URL (`postgres://user:password@host/db`,
/// `mysql://...`, `sqlite://keys.db`), a path, or a libpq key-value string
/// (`host=db user=app password='...'`). Its `Debug` hides every password in it (URL
/// user-info, even unencoded; `password=` query parameters; key-value pairs, quoted or
/// not), and errors that quote it are scrubbed with [`redact`](Self::redact).
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL itself, password included. Only for opening connections.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// `text` with every spelling of the connection string's passwords replaced by
    /// `***`: for error messages that may quote the string or a password from it.
    pub fn redact(&self, text: &str) -> String {
        Secrets::find(&self.0).scrub(text)
    }
}

/// The kind of database a [`DatabaseUrl`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackendKind {
    /// A file path, `:memory:`, a `file:` URI or `sqlite://...`.
    Sqlite,
    /// `postgres://` or `postgresql://`, or a libpq key-value string (`host=db user=app`).
    Postgres,
    /// `mysql://` or `mariadb://`.
    Mysql,
}

impl BackendKind {
    /// The backend's name for messages: `SQLite`, `PostgreSQL`, `MySQL`.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Sqlite => "SQLite",
            BackendKind::Postgres => "PostgreSQL",
            BackendKind::Mysql => "MySQL",
        }
    }
}

/// A connection string whose `scheme://` names no database keyroute knows
/// (`postgress://`, `redis://`). The message quotes the scheme alone, never the rest
/// of the string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error("{}", match scheme {
    Some(scheme) => format!("`{scheme}://` is not a database keyroute knows; use {SCHEMES}, or a SQLite file path"),
    None => format!("the text before `://` is not a URL scheme; use {SCHEMES}, or a SQLite file path"),
})]
pub struct UnknownScheme {
    /// The scheme, when it is one (letters, digits, `+`, `-`, `.`; up to 32 of them).
    pub scheme: Option<String>,
}

/// What [`UnknownScheme`] suggests.
const SCHEMES: &str = "postgres://, postgresql://, mysql://, mariadb://, sqlite://";

/// The libpq keywords a key-value connection string may start with.
const LIBPQ_KEYWORDS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "sslmode",
    "sslrootcert",
    "connect_timeout",
    "application_name",
    "options",
    "service",
    "target_session_attrs",
];

impl DatabaseUrl {
    /// The kind of database this connection string names: `postgres://` and
    /// `postgresql://` (and libpq key-value strings) are PostgreSQL, `mysql://` and
    /// `mariadb://` MySQL, `sqlite://`, `file:` URIs and anything without a scheme (a
    /// path) SQLite.
    ///
    /// # Errors
    /// [`UnknownScheme`] for any other `scheme://`: a misspelt scheme is refused, not
    /// opened as a SQLite file of that name.
    pub fn backend(&self) -> Result<BackendKind, UnknownScheme> {
        let url = self.0.trim();
        let Some((scheme, _)) = url.split_once("://") else {
            return Ok(if is_key_value(url) {
                BackendKind::Postgres
            } else {
                BackendKind::Sqlite
            });
        };
        match scheme.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => Ok(BackendKind::Postgres),
            "mysql" | "mariadb" => Ok(BackendKind::Mysql),
            "sqlite" | "file" => Ok(BackendKind::Sqlite),
            _ => {
                let is_scheme = scheme.len() <= 32
                    && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                    && scheme
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
                Err(UnknownScheme {
                    scheme: is_scheme.then(|| scheme.to_owned()),
                })
            }
        }
    }
}

/// Whether `conn` is a libpq key-value string: its first word is `keyword=...`.
fn is_key_value(conn: &str) -> bool {
    conn.split_whitespace()
        .next()
        .and_then(|word| word.split_once('='))
        .is_some_and(|(key, _)| LIBPQ_KEYWORDS.contains(&key))
}

impl DatabaseUrl {
    /// The connection string with its passwords masked: what logs may name.
    pub(crate) fn masked(&self) -> String {
        Secrets::find(&self.0).mask(&self.0)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({:?})", self.masked())
    }
}

/// Written with its passwords masked: a serialized configuration may be shown, and
/// never reads back a password.
impl serde::Serialize for DatabaseUrl {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.masked())
    }
}

/// Read from text, whose scheme must name a database keyroute knows: a misspelt
/// `postgress://` is refused here, quoting the scheme alone, not opened later as a
/// SQLite file of that name.
impl<'de> serde::Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let url = DatabaseUrl(<String as serde::Deserialize>::deserialize(deserializer)?);
        url.backend().map_err(serde::de::Error::custom)?;
        Ok(url)
    }
}

impl From<&str> for DatabaseUrl {
    fn from(url: &str) -> Self {
        Self::new(url)
    }
}

impl From<String> for DatabaseUrl {
    fn from(url: String) -> Self {
        Self::new(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Passwords never survive into Debug output or scrubbed messages.
    #[test]
    fn urls_are_redacted() {
        let url = DatabaseUrl::new("postgres://app:s3cr3t@db:5432/keys");
        assert_eq!(
            format!("{url:?}"),
            "DatabaseUrl(\"postgres://app:***@db:5432/keys\")"
        );
        assert_eq!(
            url.redact("cannot reach postgres://app:s3cr3t@db"),
            "cannot reach postgres://app:***@db"
        );
        let query = DatabaseUrl::new("postgres://db/keys?user=app&password=hunter2");
        assert!(!format!("{query:?}").contains("hunter2"));
        assert_eq!(
            DatabaseUrl::new("sqlite.db").redact("sqlite.db"),
            "sqlite.db"
        );
    }

    /// Each scheme, path and key-value string names its backend; an unknown scheme is
    /// an error quoting the scheme alone.
    #[test]
    fn backends_by_scheme() {
        let kind = |url: &str| DatabaseUrl::new(url).backend();
        for url in [
            "postgres://a@db/k",
            "postgresql://db/k",
            "POSTGRES://db",
            "host=db user=app password=x",
        ] {
            assert_eq!(kind(url), Ok(BackendKind::Postgres), "{url}");
        }
        for url in ["mysql://a:b@db/k", "mariadb://db/k"] {
            assert_eq!(kind(url), Ok(BackendKind::Mysql), "{url}");
        }
        for url in [
            "keys.db",
            "/var/lib/keys.db",
            ":memory:",
            "sqlite://k.db",
            "file:k.db?mode=ro",
            "file:///k.db",
            "hosts=x.db",
            "C:\\keys.db",
        ] {
            assert_eq!(kind(url), Ok(BackendKind::Sqlite), "{url}");
        }
        let err = kind("postgress://app:hunter2@db/live").unwrap_err();
        assert_eq!(err.scheme.as_deref(), Some("postgress"));
        assert!(err.to_string().contains("`postgress://`"), "{err}");
        assert!(!err.to_string().contains("hunter2"));
        let err = kind("app:hunter2@db://x").unwrap_err();
        assert_eq!(err.scheme, None);
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
