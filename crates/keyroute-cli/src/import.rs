//! `keyroute keys import FILE`: keys a team already handed out, from JSON lines or CSV,
//! each through the key service's `import_key` (so the rules, the audit trail and the
//! hashing are core's). Idempotent by hash: an interrupted import is resumed by
//! running it again, and keys already stored are counted, not duplicated. A bad line
//! is reported with its number and the import goes on; the plaintexts in the file are
//! never printed.
//!
//! Fields (JSON keys, or CSV header names): `key` (the plaintext) or `hash` (its
//! SHA-256, 64 hex digits), `user` (name or id), `type` (default `secret`),
//! `environment`, `scopes` (a JSON array, or space-separated), `expires_at` (RFC 3339),
//! `name`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::Path;

use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use keyroute::keys::{ImportOutcome, ImportedKey, ImportedSecret, KeyHash};
use keyroute::store::Backend;
use keyroute::{Environment, KeyType, Keyroute, PlaintextKey, Scopes, UserId};
use serde::Deserialize;
use serde_json::json;

use crate::keys::{as_operator, find_user};
use crate::output::{CliError, Out};

/// A file's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// One JSON object per line.
    Jsonl,
    /// Comma-separated values with a header row.
    Csv,
}

/// Scopes as a JSON array or one space-separated string (CSV has no arrays).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ScopeList {
    List(Vec<String>),
    Text(String),
}

/// One line of the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    key: Option<String>,
    hash: Option<String>,
    user: Option<String>,
    #[serde(rename = "type")]
    key_type: Option<String>,
    environment: Option<String>,
    scopes: Option<ScopeList>,
    expires_at: Option<String>,
    name: Option<String>,
}

/// The lines of `text` in `format`, each with its number (1-based; a CSV header is
/// line 1) or why it cannot be read. A reason never quotes the line.
fn lines(text: &str, format: Format) -> Vec<(usize, Result<Line, String>)> {
    match format {
        Format::Jsonl => text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| {
                let parsed = serde_json::from_str::<Line>(l).map_err(|e| match e.classify() {
                    serde_json::error::Category::Data => {
                        format!(
                            "a field is unknown or has the wrong type (column {})",
                            e.column()
                        )
                    }
                    _ => format!("not a JSON object (column {})", e.column()),
                });
                (i + 1, parsed)
            })
            .collect(),
        Format::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .trim(csv::Trim::All)
                .from_reader(text.as_bytes());
            reader
                .deserialize::<Line>()
                .enumerate()
                .map(|(i, row)| {
                    let number = i + 2;
                    let parsed = row.map_err(|e| match e.kind() {
                        csv::ErrorKind::Deserialize { .. } => {
                            "a column is unknown or a value has the wrong type".to_owned()
                        }
                        csv::ErrorKind::UnequalLengths { .. } => {
                            "the row has another number of fields than the header".to_owned()
                        }
                        _ => "the row cannot be read as CSV".to_owned(),
                    });
                    (number, parsed)
                })
                .collect()
        }
    }
}

/// Users already looked up, by what the file calls them.
type Users = HashMap<String, UserId>;

/// A line as an [`ImportedKey`], or why not.
async fn imported<B: Backend>(
    keyroute: &Keyroute<B>,
    users: &mut Users,
    line: Line,
) -> Result<ImportedKey, String> {
    let secret = match (line.key, line.hash) {
        (Some(key), None) if !key.trim().is_empty() => {
            ImportedSecret::Plaintext(PlaintextKey::new(key.trim()))
        }
        (None, Some(hash)) => {
            let bytes = (0..hash.len())
                .step_by(2)
                .map(|i| {
                    hash.get(i..i + 2)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                })
                .collect::<Option<Vec<u8>>>()
                .filter(|b| b.len() == 32 && hash.len() == 64);
            let bytes = bytes.ok_or("`hash` is not 64 hex digits (a SHA-256)")?;
            ImportedSecret::Hash(KeyHash::from_slice(&bytes).map_err(|_| "`hash` is not 32 bytes")?)
        }
        (Some(_), Some(_)) => return Err("give `key` or `hash`, not both".to_owned()),
        _ => return Err("give the key (`key`) or its SHA-256 (`hash`)".to_owned()),
    };
    let key_type = KeyType::new(line.key_type.as_deref().unwrap_or("secret"))
        .map_err(|e| format!("`type`: {e}"))?;
    let environment = Environment::new(line.environment.as_deref().unwrap_or_default())
        .map_err(|_| "`environment` is missing or not an environment name".to_owned())?;
    let mut key = ImportedKey::new(secret, key_type, environment);
    key.scopes = match line.scopes {
        None => Ok(Scopes::none()),
        Some(ScopeList::List(list)) => Scopes::parse(list.iter()),
        Some(ScopeList::Text(text)) => Scopes::parse(text.split_whitespace()),
    }
    .map_err(|e| format!("`scopes`: {e}"))?;
    key.expires_at = line
        .expires_at
        .filter(|t| !t.trim().is_empty())
        .map(|t| {
            DateTime::parse_from_rfc3339(t.trim())
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    "`expires_at` is not an RFC 3339 time (2027-01-01T00:00:00Z)".to_owned()
                })
        })
        .transpose()?;
    key.name = line.name.filter(|n| !n.is_empty());
    if let Some(user) = line.user.filter(|u| !u.trim().is_empty()) {
        let id = match users.get(&user) {
            Some(id) => id.clone(),
            None => {
                let id = find_user(keyroute, &user)
                    .await
                    .map_err(|e| e.to_string())?
                    .id;
                users.insert(user, id.clone());
                id
            }
        };
        key.user_id = Some(id);
    }
    Ok(key)
}

/// `keyroute keys import FILE [--format jsonl|csv]`.
pub(crate) async fn import<B: Backend>(
    keyroute: &Keyroute<B>,
    file: &Path,
    format: Option<Format>,
    out: Out,
) -> Result<(), CliError> {
    let format = match format {
        Some(format) => format,
        None => match file.extension().and_then(|e| e.to_str()) {
            Some("csv") => Format::Csv,
            Some("jsonl" | "ndjson" | "json") => Format::Jsonl,
            _ => {
                return Err(CliError::Usage(
                    "name the file's format: --format jsonl or --format csv".to_owned(),
                ));
            }
        },
    };
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::failed(format!("cannot read {}: {e}", file.display())))?;
    let lines = lines(&text, format);
    let bar = ProgressBar::with_draw_target(Some(lines.len() as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} lines ({per_sec}, {eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let lines_on_stderr = !std::io::stderr().is_terminal();
    let acting = as_operator(keyroute);
    let mut users = Users::new();
    let (mut imported_n, mut already, mut errors) = (0u64, 0u64, Vec::new());
    let total = lines.len();
    for (done, (number, line)) in lines.into_iter().enumerate() {
        let outcome = match line {
            Err(reason) => Err(reason),
            Ok(line) => match imported(keyroute, &mut users, line).await {
                Err(reason) => Err(reason),
                Ok(key) => acting.import_key(&key).await.map_err(|e| e.to_string()),
            },
        };
        match outcome {
            Ok(ImportOutcome::Imported(_)) => imported_n += 1,
            Ok(_) => already += 1,
            Err(reason) => errors.push((number, reason)),
        }
        bar.inc(1);
        if lines_on_stderr && (done + 1) % 1000 == 0 {
            eprintln_progress(done + 1, total);
        }
    }
    bar.finish_and_clear();
    out.line(&format!(
        "import: {imported_n} imported, {already} already stored, {} failed, of {total} lines",
        errors.len()
    ))?;
    if out.json {
        out.json(&json!({
            "imported": imported_n,
            "already_stored": already,
            "failed": errors.iter().map(|(line, error)| json!({ "line": line, "error": error })).collect::<Vec<_>>(),
            "lines": total,
        }))?;
    }
    if errors.is_empty() {
        return Ok(());
    }
    for (line, reason) in &errors {
        eprintln_line(*line, reason);
    }
    Err(CliError::failed(format!(
        "{} of {total} lines failed (listed above); fix them and run the import again: keys already stored are skipped",
        errors.len()
    )))
}

fn eprintln_progress(done: usize, total: usize) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "import: {done}/{total} lines");
}

fn eprintln_line(line: usize, reason: &str) {
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "line {line}: {}",
        crate::output::escaped(reason)
    );
}
