//! Output: a table for people, JSON for scripts; and [`CliError`], printed as one line.
//!
//! Everything goes through a locked stdout handle, never `println!`: a reader that goes
//! away (`keyroute users list | head`) makes a write fail with `BrokenPipe`, which
//! ends the command quietly with success, as Unix tools do, instead of a panic. Text
//! from the store (names, emails, notes...) is shown with its control characters
//! escaped ([`escaped`]), so a hostile name cannot move the cursor, retitle the
//! terminal or fake a table row. JSON needs no such care: serde escapes them.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};

/// Why a command failed. Each variant prints as one line saying what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum CliError {
    /// The configuration is invalid (its message starts with "configuration").
    #[error("{0}")]
    Config(#[from] keyroute::ConfigError),
    /// The handle could not be built (configuration or an unreachable key store).
    #[error("{0}")]
    Build(#[from] keyroute::BuildError),
    /// A key operation failed.
    #[error("{0}")]
    Keys(#[from] keyroute::KeyServiceError),
    /// The store failed.
    #[error("{0}")]
    Store(#[from] keyroute::store::StoreError),
    /// Reading input or writing output failed.
    #[error("input/output: {0}")]
    Io(#[from] std::io::Error),
    /// The command line is wrong in a way clap cannot tell (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// Anything else, already phrased as what to do.
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        CliError::Failed(message.into())
    }

    /// Whether this is the reader of stdout having gone away.
    fn is_broken_pipe(&self) -> bool {
        matches!(self, CliError::Io(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

/// Prints `error` as one line on stderr and returns its exit code: 1, or 2 for a
/// usage error. A closed stdout is no failure: the reader has all it wanted.
pub(crate) fn fail(error: &CliError) -> ExitCode {
    if error.is_broken_pipe() {
        return ExitCode::SUCCESS;
    }
    let line = error.to_string().replace(['\n', '\r'], " ");
    let _ = writeln!(std::io::stderr(), "error: {}", escaped(&line));
    match error {
        CliError::Usage(_) => ExitCode::from(2),
        _ => ExitCode::from(1),
    }
}

/// Where a command's result goes: a table or JSON on stdout.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Out {
    pub(crate) json: bool,
    /// The `--config` path given, repeated in the commands suggested to run next.
    pub(crate) config: Option<&'static Path>,
}

impl Out {
    /// Prints `rows` under `header` as a table (each cell [`escaped`]), or `value` as JSON.
    pub(crate) fn table(
        &self,
        header: &[&str],
        rows: Vec<Vec<String>>,
        value: serde_json::Value,
    ) -> Result<(), CliError> {
        if self.json {
            return self.json(&value);
        }
        let mut table = Table::new();
        table
            .load_preset(UTF8_BORDERS_ONLY)
            .set_header(header.to_vec());
        for row in rows {
            table.add_row(row.iter().map(|cell| escaped(cell).into_owned()));
        }
        print(&table.to_string())
    }

    /// Prints `value` as one line of JSON.
    pub(crate) fn json(&self, value: &serde_json::Value) -> Result<(), CliError> {
        print(&value.to_string())
    }

    /// Prints a line for people (nothing in JSON mode), [`escaped`].
    pub(crate) fn line(&self, text: &str) -> Result<(), CliError> {
        if self.json {
            return Ok(());
        }
        print(&escaped(text))
    }

    /// `keyroute ARGS` as the user would type it again: with `--config PATH` when
    /// one was given (and `--json` when it is on).
    pub(crate) fn command(&self, args: &str) -> String {
        let mut command = "keyroute".to_owned();
        if let Some(path) = self.config {
            let _ = write!(command, " --config {}", shell_word(&path.to_string_lossy()));
        }
        let _ = write!(command, " {args}");
        if self.json {
            command.push_str(" --json");
        }
        command
    }
}

/// `word` as a POSIX shell reads it back: as it is when it is plain, else in single
/// quotes (escaped, when it holds control characters).
pub(crate) fn shell_word(word: &str) -> Cow<'_, str> {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:,@=".contains(&b));
    if plain {
        Cow::Borrowed(word)
    } else {
        Cow::Owned(format!("'{}'", escaped(word).replace('\'', r"'\''")))
    }
}

/// Writes `text` and a newline to stdout and flushes, so a closed pipe is seen here.
fn print(text: &str) -> Result<(), CliError> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.write_all(b"\n")?;
    stdout.flush()?;
    Ok(())
}

/// Whether `c` changes what a terminal shows beyond itself: control characters
/// (escape sequences, newlines, bells) and the bidirectional overrides that reorder
/// what follows them.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every character that would act on the terminal shown as an escape
/// (`\n`, `\r`, `\t`, `\u{1b}`), so it prints as one inert line.
pub(crate) fn escaped(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().saturating_add(16));
    for c in text.chars() {
        match c {
            '\n' => out.push_str(r"\n"),
            '\r' => out.push_str(r"\r"),
            '\t' => out.push_str(r"\t"),
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A timestamp for tables.
pub(crate) fn when(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map_or_else(
        || "-".to_owned(),
        |at| at.format("%Y-%m-%d %H:%M:%SZ").to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Control characters and bidirectional overrides are escaped; other text,
    /// accents and box-drawing included, is left alone.
    #[test]
    fn escapes() {
        assert!(matches!(escaped("ada │ é"), Cow::Borrowed("ada │ é")));
        assert_eq!(
            escaped("a\u{1b}[2J\nb\r\tc\u{7}"),
            r"a\u{1b}[2J\nb\r\tc\u{7}"
        );
        assert_eq!(escaped("x\u{202e}gpj.exe"), r"x\u{202e}gpj.exe");
    }

    /// The suggested command repeats `--config`, quoted when it must be.
    #[test]
    fn commands() {
        let plain = Out {
            json: false,
            config: None,
        };
        assert_eq!(plain.command("users list"), "keyroute users list");
        let config = Out {
            json: true,
            config: Some(Path::new("/etc/my keys/it's.toml")),
        };
        assert_eq!(
            config.command("users list"),
            r"keyroute --config '/etc/my keys/it'\''s.toml' users list --json"
        );
    }
}
