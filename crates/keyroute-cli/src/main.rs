//! `keyroute`: operate API keys and keep the live and test databases in step, from
//! the same `keyroute.toml` and `KEYROUTE_*` variables the library reads.
//!
//! Layout: this file holds the command line (clap) and the exit codes; `app.rs`
//! picks the database backend from the configured URLs and builds the
//! [`keyroute::Keyroute`] handle; `keys.rs` holds `users` and `keys`; `ops.rs` holds
//! `migrate`, `doctor` and `backfill`; `verify.rs` holds `verify`, `listing.rs`
//! `users list`; `args.rs` keeps keys and tokens given as arguments from being
//! repeated; `output.rs` prints tables or JSON (escaped, quiet on a closed pipe) and
//! defines the one error type.
//!
//! Exit codes: 0 success, 1 failure (one line on stderr saying what to do), 2 usage.
//!
//! Depends on the facade (`keyroute`), and on diesel_migrations to read `--app`
//! directories: rules about keys stay in the library; this command parses, calls and
//! prints.

// A command's output is its job: printing to stdout is what this crate is for.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::output::CliError;

mod app;
mod args;
mod audit;
mod import;
mod keys;
mod listing;
mod ops;
mod output;
mod tenants;
mod verify;

/// Operate keyroute's API keys and keep the live and test databases in step.
#[derive(Debug, Parser)]
#[command(name = "keyroute", version, about)]
pub(crate) struct Cli {
    /// The configuration file (default: ./keyroute.toml when present); KEYROUTE_*
    /// variables override it.
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Print JSON for scripts instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Apply keyroute's tables to the key store; with --app, the app's migrations to
    /// every configured connection.
    Migrate {
        /// A diesel migrations directory of the app's own schema.
        #[arg(long, value_name = "DIR")]
        app: Option<PathBuf>,
    },
    /// Check every connection, keyroute's migrations, and schema parity between them.
    Doctor,
    /// Users: add, list, show.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Keys: issue, list, show, revoke, regenerate, roll.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Give keys to existing users who have none; safe to interrupt and run again.
    Backfill {
        /// Users per transaction.
        #[arg(long, default_value_t = 500)]
        batch: usize,
    },
    /// The audit trail: who changed which key, how, when and from where.
    Audit(audit::AuditArgs),
    /// Check a key or JWT read from standard input (never from arguments).
    Verify {
        /// Caught only to be refused without being repeated: a key on the command line
        /// stays in shell history and process lists.
        #[arg(hide = true, num_args = 0.., allow_hyphen_values = true)]
        presented: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum UsersCommand {
    /// Register a user with one key per environment and key type (shown once).
    Add {
        /// The unique user name.
        name: String,
        /// The user's email.
        #[arg(long)]
        email: Option<String>,
        /// The user's tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Every user, in id order, a page at a time; says how to get the next page.
    List {
        /// The most users to list.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
        limit: u32,
        /// Start after the user with this id (the next page, as the last page says).
        #[arg(long, value_name = "ID")]
        after: Option<String>,
        /// Every user, in pages of --limit, instead of one page.
        #[arg(long)]
        all: bool,
        /// Only users who own no key at all (what `backfill` would key).
        #[arg(long)]
        without_keys: bool,
    },
    /// One user and their keys.
    Show {
        /// User name or id.
        user: String,
    },
}

/// Which user and environment a regeneration applies to.
#[derive(Debug, Args)]
pub(crate) struct Target {
    /// User name or id.
    #[arg(long)]
    user: String,
    /// The environment whose keys are replaced.
    #[arg(long = "env")]
    environment: String,
}

/// A key's rate limits and credits, on `keys issue` and `keys update`.
#[derive(Debug, Default, clap::Args)]
pub(crate) struct LimitArgs {
    /// A rate limit of the key's own, NAME=COUNT/WINDOW with optional ,burst=N and
    /// ,per=key|user|tenant, e.g. requests=100/1m,burst=20 (repeatable; on update,
    /// replaces the key's own limits).
    #[arg(long = "limit", value_name = "NAME=COUNT/WINDOW")]
    pub(crate) limits: Vec<String>,
    /// Meter the key with this many credits (on update: the new balance outright).
    #[arg(long)]
    pub(crate) credits: Option<u64>,
    /// Refill the credits to AMOUNT every period: AMOUNT/daily, AMOUNT/monthly or
    /// AMOUNT/<duration> such as 500/1h.
    #[arg(long, requires = "credits", value_name = "AMOUNT/PERIOD")]
    pub(crate) refill: Option<String>,
}

impl LimitArgs {
    /// The limits given, or the first that cannot be read.
    pub(crate) fn parsed_limits(&self) -> Result<Vec<keyroute::limits::RateLimit>, CliError> {
        self.limits
            .iter()
            .map(|text| {
                text.parse().map_err(|e| {
                    args::bad_value(
                        "limit",
                        text,
                        e,
                        "write e.g. --limit requests=100/1m,burst=20",
                    )
                })
            })
            .collect()
    }

    /// The credits given, if any.
    pub(crate) fn parsed_credits(&self) -> Result<Option<keyroute::limits::Credits>, CliError> {
        let Some(remaining) = self.credits else {
            return Ok(None);
        };
        let mut credits = keyroute::limits::Credits::new(remaining);
        if let Some(text) = &self.refill {
            credits.refill = Some(text.parse().map_err(|e| {
                args::bad_value("refill", text, e, "write e.g. --refill 1000/daily")
            })?);
        }
        Ok(Some(credits))
    }
}

/// `keyroute keys update`'s options: each one given is changed.
#[derive(Debug, clap::Args)]
pub(crate) struct UpdateArgs {
    /// The key's id.
    id: String,
    /// A new name.
    #[arg(long, conflicts_with = "clear_name")]
    name: Option<String>,
    /// Remove the name.
    #[arg(long)]
    clear_name: bool,
    /// The key's scopes from now on (repeatable; replaces the old ones).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// Expire this long from now, e.g. 30days.
    #[arg(long, conflicts_with = "no_expiry")]
    expires_in: Option<String>,
    /// Never expire.
    #[arg(long)]
    no_expiry: bool,
    /// New notes.
    #[arg(long)]
    notes: Option<String>,
    /// A new reference into your own systems.
    #[arg(long)]
    ref_id: Option<String>,
    /// Metadata from now on, as KEY=VALUE (repeatable; replaces the old metadata).
    #[arg(long = "meta")]
    meta: Vec<String>,
    /// An address range the key may be used from, e.g. 10.0.0.0/8 (repeatable;
    /// replaces the old ones).
    #[arg(long = "network", conflicts_with = "any_network")]
    networks: Vec<String>,
    /// Usable from any address again.
    #[arg(long)]
    any_network: bool,
    /// Switch the key on again.
    #[arg(long, conflicts_with = "disable")]
    enable: bool,
    /// Switch the key off: refused until enabled, with the same secret.
    #[arg(long)]
    disable: bool,
    #[command(flatten)]
    limits: LimitArgs,
    /// Remove the key's own rate limits (the configured defaults still apply).
    #[arg(long, conflicts_with = "limits")]
    no_limits: bool,
    /// Remove the key's credits: unmetered from now on.
    #[arg(long, conflicts_with = "credits")]
    unmetered: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Issue one key; its plaintext is printed once.
    Issue {
        /// User name or id of the owner.
        #[arg(long)]
        user: String,
        /// Key type, e.g. secret or publishable.
        #[arg(long = "type", default_value = "secret")]
        key_type: String,
        /// Environment, e.g. live or test.
        #[arg(long = "env")]
        environment: String,
        /// A name for the key.
        #[arg(long)]
        name: Option<String>,
        /// A scope the key grants (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Lifetime, e.g. 90days (default: the configured expire_keys_after).
        #[arg(long)]
        expires_in: Option<String>,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// A user's keys (no plaintexts: only hints).
    List {
        /// User name or id.
        #[arg(long)]
        user: String,
        /// Only this environment.
        #[arg(long = "env")]
        environment: Option<String>,
    },
    /// One key by id.
    Show {
        /// The key's id.
        id: String,
    },
    /// Revoke a key now.
    Revoke {
        /// The key's id.
        id: String,
    },
    /// Import keys handed out under an earlier scheme (JSON lines or CSV: `key` or
    /// `hash`, `user`, `type`, `environment`, `scopes`, `expires_at`, `name`). Safe to
    /// run again: keys already stored are skipped.
    Import {
        /// The file.
        file: std::path::PathBuf,
        /// Its format (default: by extension, .jsonl or .csv).
        #[arg(long, value_enum)]
        format: Option<import::Format>,
    },
    /// Change a key: name, scopes, expiry, notes, allowed networks, rate limits,
    /// credits; or disable it
    /// (refused until enabled again, same secret) and enable it.
    Update(UpdateArgs),
    /// Replace a user's keys in one environment; asks first unless --yes.
    Regenerate {
        #[command(flatten)]
        target: Target,
        /// Old keys keep working this long, e.g. 1h.
        #[arg(long)]
        grace: Option<String>,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Roll a user's keys in one environment: new keys now, old ones until the grace ends.
    Roll {
        #[command(flatten)]
        target: Target,
        /// How long the old keys keep working, e.g. 24h.
        #[arg(long, default_value = "24h")]
        grace: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

fn main() -> ExitCode {
    // clap exits 2 on usage errors and 0 for --help / --version; its messages quote
    // the arguments, so any that could be a key is hidden first.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => args::exit_on_usage_error(&e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return output::fail(&output::CliError::Io(e)),
    };
    match runtime.block_on(app::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => output::fail(&e),
    }
}
