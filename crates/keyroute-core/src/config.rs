//! [`ConfigError`] and the one parser behind every keyroute option.
//!
//! keyroute is configured from code, from one TOML file and from `KEYROUTE_<SECTION>_<OPTION>`
//! environment variables. Whatever the source, an option's value goes through the same
//! text parser here, so a bad value is the same [`ConfigError`] naming the section and
//! the option wherever it came from. TOML values are first rendered to that text form
//! ([`toml_text`]): lists become comma-separated, tables `key=value` pairs.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::name::NameError;

mod syntax;

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

    /// The same error, said of `section` (for parsers shared between sections).
    pub fn in_section(mut self, section: &str) -> Self {
        section.clone_into(&mut self.section);
        self
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

/// Splits a comma-separated list, dropping empty items.
pub fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// Parses a comma-separated list of names.
///
/// # Errors
/// [`ConfigError`] naming the option and the first invalid name.
pub fn parse_list<T>(
    section: &str,
    option: &str,
    value: &str,
    parse: impl Fn(&str) -> Result<T, NameError>,
) -> Result<Vec<T>, ConfigError> {
    split_list(value)
        .map(|item| parse(item).map_err(|e| ConfigError::invalid(section, option, e)))
        .collect()
}

/// Parses `true`/`false` (also `yes`/`no`, `on`/`off`, `1`/`0`).
///
/// # Errors
/// [`ConfigError`] naming the option.
pub fn parse_bool(section: &str, option: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::invalid(
            section,
            option,
            format_args!("{value:?} is not true or false"),
        )),
    }
}

/// Parses a whole number.
///
/// # Errors
/// [`ConfigError`] naming the option.
pub fn parse_number<T: FromStr>(
    section: &str,
    option: &str,
    value: &str,
) -> Result<T, ConfigError> {
    value.trim().parse().map_err(|_| {
        ConfigError::invalid(
            section,
            option,
            format_args!("{value:?} is not a whole number in range"),
        )
    })
}

/// Parses an optional duration (`10m`, `12h`, `90days`; `none` or empty for none),
/// checked with [`check_duration`].
///
/// # Errors
/// [`ConfigError`] naming the option.
pub fn parse_duration(
    section: &str,
    option: &str,
    value: &str,
) -> Result<Option<Duration>, ConfigError> {
    let value = value.trim();
    if value.is_empty() || value.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let duration = humantime::parse_duration(value).map_err(|e| {
        ConfigError::invalid(
            section,
            option,
            format_args!("{e}; expected e.g. 10m, 12h, 90days or none"),
        )
    })?;
    check_duration(section, option, duration)?;
    Ok(Some(duration))
}

/// Parses a required duration (as [`parse_duration`], `none` refused).
///
/// # Errors
/// [`ConfigError`] naming the option.
pub fn parse_required_duration(
    section: &str,
    option: &str,
    value: &str,
) -> Result<Duration, ConfigError> {
    parse_duration(section, option, value)?.ok_or_else(|| {
        ConfigError::invalid(section, option, "a duration is required, e.g. 30s or 5m")
    })
}

/// Renders a TOML value in the text form the parsers read: scalars as they are, arrays
/// comma-separated, tables as `key=value` pairs.
///
/// # Errors
/// [`ConfigError`] for nested arrays and tables, which no option takes.
pub fn toml_text(section: &str, option: &str, value: &toml::Value) -> Result<String, ConfigError> {
    use toml::Value;
    let scalar = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Integer(i) => Some(i.to_string()),
        Value::Boolean(b) => Some(b.to_string()),
        Value::Float(f) => Some(f.to_string()),
        _ => None,
    };
    let text = match value {
        Value::Array(items) => items
            .iter()
            .map(scalar)
            .collect::<Option<Vec<_>>>()
            .map(|v| v.join(",")),
        Value::Table(table) => table
            .iter()
            .map(|(k, v)| scalar(v).map(|v| format!("{k}={v}")))
            .collect::<Option<Vec<_>>>()
            .map(|v| v.join(",")),
        other => scalar(other),
    };
    text.ok_or_else(|| {
        ConfigError::invalid(
            section,
            option,
            "expected a string, number, boolean, or an array or table of them",
        )
    })
}
