//! [`ConfigError`], and the one reader behind every keyroute option.
//!
//! keyroute is configured from code, from one TOML file and from
//! `KEYROUTE_<SECTION>_<OPTION>` environment variables. Each section is a serde struct
//! owned by the crate whose options they are (`[apikey]` is [`KeyOptions`](crate::KeyOptions)),
//! with `#[serde(deny_unknown_fields, default)]`: its fields are the only list of its
//! options. A [`Document`] holds the file's tables with the variables laid over them
//! and reads them in one deserialization, so a value from the file, a variable or code
//! ([`set_option`]) goes through the same code and a bad one is the same
//! [`ConfigError`] naming the section and option.
//!
//! How a variable's text is read: an option that takes text (a URL, a path, a secret)
//! takes it as it is, commas and all; any other option reads it as a TOML value when it
//! is one (`4`, `true`, `["secret", "publishable"]`, `"quoted"`), else as text. Lists
//! and maps also take comma-separated text ([`list`], [`map`]); durations are humantime
//! text ([`duration`], [`optional_duration`]). Errors never quote a value: one given to
//! the wrong option may be a password.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

mod de;
mod document;
mod fields;
mod syntax;

pub use document::{Document, option_names, set_option};
pub use fields::{duration, list, map, optional_duration, optional_list};

/// What kind of mistake a [`ConfigError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// An option has a value it cannot take, or options contradict each other.
    Invalid,
    /// An option or section that does not exist (a typo, usually).
    Unknown,
    /// Something required is missing.
    Missing,
    /// The file could not be read.
    Io,
    /// The file is not valid TOML.
    Syntax,
}

/// Why a configuration was refused: the section and option at fault, and what to change.
///
/// `section` is the TOML table (`apikey`, `store`, `connections`, `routing`, `pools`,
/// `resolver`, `jwt`), empty for the file as a whole; `option` is the key within it,
/// empty when the whole section is at fault. The same error comes from code, a file or
/// an environment variable.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
#[error("{}", Rendered(self))]
pub struct ConfigError {
    /// What kind of mistake it is.
    pub kind: ConfigErrorKind,
    /// The section (TOML table) at fault; empty for the file as a whole.
    pub section: String,
    /// The option at fault; empty when the whole section is.
    pub option: String,
    /// What is wrong and what is expected.
    pub reason: String,
    #[source]
    source: Option<Arc<std::io::Error>>,
    /// Where a syntax error is: never the text there.
    at: Option<Arc<SyntaxAt>>,
}

/// The place of a syntax error: a file (when read from one), a line and a column, and
/// the parser's description of the mistake (a fixed phrase such as "invalid basic
/// string"), but none of the document's text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SyntaxAt {
    file: Option<std::path::PathBuf>,
    line: usize,
    column: usize,
    description: String,
}

impl SyntaxAt {
    fn reason(&self) -> String {
        let file = self
            .file
            .as_ref()
            .map(|f| format!(" in {}", f.display()))
            .unwrap_or_default();
        format!(
            "not valid TOML{file} at line {}, column {}: {}; the line is not shown, as it may hold a secret",
            self.line, self.column, self.description
        )
    }
}

struct Rendered<'a>(&'a ConfigError);

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.0;
        match (e.section.is_empty(), e.option.is_empty()) {
            (true, _) => write!(f, "configuration: {}", e.reason),
            (false, true) => write!(f, "configuration [{}]: {}", e.section, e.reason),
            (false, false) => write!(
                f,
                "configuration [{}] option `{}`: {}",
                e.section, e.option, e.reason
            ),
        }
    }
}

impl ConfigError {
    fn new(kind: ConfigErrorKind, section: &str, option: &str, reason: impl fmt::Display) -> Self {
        Self {
            kind,
            section: section.to_owned(),
            option: option.to_owned(),
            reason: reason.to_string(),
            source: None,
            at: None,
        }
    }

    /// `option` of `section` has a value it cannot take; `reason` says what to set.
    pub fn invalid(section: &str, option: &str, reason: impl fmt::Display) -> Self {
        Self::new(ConfigErrorKind::Invalid, section, option, reason)
    }

    /// `option` does not exist in `section` (or `section` does not exist, with an
    /// empty `option`); `expected` lists what does.
    pub fn unknown(section: &str, option: &str, expected: &[&str]) -> Self {
        let what = if option.is_empty() {
            format!("unknown section [{section}]")
        } else {
            format!("unknown option `{option}`")
        };
        Self::new(
            ConfigErrorKind::Unknown,
            section,
            option,
            format_args!("{what}; expected one of: {}", expected.join(", ")),
        )
    }

    /// `option` of `section` is required and missing.
    pub fn missing(section: &str, option: &str, reason: impl fmt::Display) -> Self {
        Self::new(ConfigErrorKind::Missing, section, option, reason)
    }

    /// The file at `path` could not be read.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        let mut error = Self::new(
            ConfigErrorKind::Io,
            "",
            "",
            format_args!("cannot read {}: {source}", path.display()),
        );
        error.source = Some(Arc::new(source));
        error
    }

    /// `document` is not valid TOML, as `error` says: the error names the line and
    /// column (and the section and option whose line it is, when that can be told
    /// safely) and the parser's description of the mistake, but never the document's
    /// text. toml's own `Display` quotes the offending line, which may hold a database
    /// password or a signing secret, and may be any length.
    pub fn syntax(document: &str, error: &toml::de::Error) -> Self {
        let offset = error.span().map_or(document.len(), |span| span.start);
        let place = syntax::locate(document, offset);
        let at = SyntaxAt {
            file: None,
            line: place.line,
            column: place.column,
            description: syntax::description(error.message()),
        };
        let mut e = Self::new(
            ConfigErrorKind::Syntax,
            place.section.as_deref().unwrap_or_default(),
            place.option.as_deref().unwrap_or_default(),
            at.reason(),
        );
        e.at = Some(Arc::new(at));
        e
    }

    /// The same error, said of the file at `path` (a syntax error names it).
    pub fn in_file(mut self, path: &Path) -> Self {
        if let Some(at) = self.at.as_mut() {
            let at = Arc::make_mut(at);
            at.file = Some(path.to_owned());
            self.reason = at.reason();
        }
        self
    }

    /// The line (from 1) of a syntax error.
    pub fn line(&self) -> Option<usize> {
        self.at.as_ref().map(|at| at.line)
    }

    /// The column (from 1, in characters) of a syntax error.
    pub fn column(&self) -> Option<usize> {
        self.at.as_ref().map(|at| at.column)
    }
}

/// The bound on every duration option: 100 years (36 525 days). Caches panic on far
/// longer ones (moka beyond 1 000 years), and no key, token or cache needs more.
pub const MAX_DURATION: Duration = Duration::from_secs(36_525 * 24 * 60 * 60);

/// Checks a duration option: over zero and under [`MAX_DURATION`]. Options where
/// zero means "off" call this only for a non-zero value.
///
/// # Errors
/// [`ConfigError`] naming `section` and `option`.
pub fn check_duration(section: &str, option: &str, value: Duration) -> Result<(), ConfigError> {
    if value.is_zero() || value >= MAX_DURATION {
        return Err(ConfigError::invalid(
            section,
            option,
            format_args!(
                "{} is out of range: use a duration over zero and under 100 years (e.g. 10m, 12h, 90days)",
                humantime::format_duration(value)
            ),
        ));
    }
    Ok(())
}
