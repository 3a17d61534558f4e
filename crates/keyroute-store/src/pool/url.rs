//! [`DatabaseUrl`]: a connection string that never shows its password.

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
}
