//! [`DatabaseUrl`]: a connection string that never shows its password.

use std::fmt;

/// A database connection URL. Its `Debug` hides the password, and errors that quote
/// the URL are scrubbed of it.
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

    /// The password in the URL, if any (`scheme://user:password@host`, or a
    /// `password=` query parameter).
    fn password(&self) -> Option<&str> {
        let after_scheme = self
            .0
            .split_once("://")
            .map_or(self.0.as_str(), |(_, rest)| rest);
        let from_userinfo = after_scheme
            .split_once('@')
            .and_then(|(userinfo, _)| userinfo.split_once(':'))
            .map(|(_, password)| password);
        let from_query = self
            .0
            .split_once('?')
            .into_iter()
            .flat_map(|(_, query)| query.split('&'))
            .find_map(|pair| pair.strip_prefix("password="));
        from_userinfo.or(from_query).filter(|p| !p.is_empty())
    }

    /// `text` with the password replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        match self.password() {
            Some(password) => text.replace(password, "***"),
            None => text.to_owned(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({:?})", self.redact(&self.0))
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
