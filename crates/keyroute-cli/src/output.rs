//! Output: a table for people, JSON for scripts; and [`CliError`], printed as one line.

use std::io::Write;
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
    Keys(#[from] keyroute::Error),
    /// The store failed.
    #[error("{0}")]
    Store(#[from] keyroute::StoreError),
    /// Reading input or writing output failed.
    #[error("input/output: {0}")]
    Io(#[from] std::io::Error),
    /// Anything else, already phrased as what to do.
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        CliError::Failed(message.into())
    }
}

/// Prints `error` as one line on stderr and returns exit code 1.
pub(crate) fn fail(error: &CliError) -> ExitCode {
    let line = error.to_string().replace(['\n', '\r'], " ");
    let _ = writeln!(std::io::stderr(), "error: {line}");
    ExitCode::from(1)
}

/// Where a command's result goes: a table or JSON on stdout.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Out {
    pub(crate) json: bool,
}

impl Out {
    /// Prints `rows` under `header` as a table, or `value` as JSON.
    pub(crate) fn table(&self, header: &[&str], rows: Vec<Vec<String>>, value: serde_json::Value) {
        if self.json {
            self.json(&value);
        } else {
            let mut table = Table::new();
            table
                .load_preset(UTF8_BORDERS_ONLY)
                .set_header(header.to_vec());
            for row in rows {
                table.add_row(row);
            }
            println!("{table}");
        }
    }

    /// Prints `value` as one line of JSON.
    pub(crate) fn json(&self, value: &serde_json::Value) {
        println!("{value}");
    }

    /// Prints a line for people (nothing in JSON mode).
    pub(crate) fn line(&self, text: &str) {
        if !self.json {
            println!("{text}");
        }
    }
}

/// A timestamp for tables.
pub(crate) fn when(at: Option<chrono::DateTime<chrono::Utc>>) -> String {
    at.map_or_else(
        || "-".to_owned(),
        |at| at.format("%Y-%m-%d %H:%M:%SZ").to_string(),
    )
}
