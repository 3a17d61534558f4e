//! Loads the configuration, picks the backend its connection URLs name, and runs the
//! command on a [`Keyroute`] handle of that backend.

use std::path::{Path, PathBuf};

use keyroute::store::{Backend, Mysql, Postgres, SqlStore, Sqlite};
use keyroute::{Config, KeyListener, Keyroute, Store};

use crate::output::{CliError, Out};
use crate::{Cli, Command, keys, ops};

/// The database backend every configured URL must share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sqlite,
    Postgres,
    Mysql,
}

fn kind_of(url: &str) -> Kind {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Kind::Postgres
    } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
        Kind::Mysql
    } else {
        Kind::Sqlite
    }
}

/// `--config PATH`, else `keyroute.toml` in the working directory when present.
fn config_path(explicit: Option<&Path>) -> Result<Option<PathBuf>, CliError> {
    match explicit {
        Some(path) if !path.is_file() => Err(CliError::failed(format!(
            "no configuration file at {}; pass --config PATH to an existing keyroute.toml",
            path.display()
        ))),
        Some(path) => Ok(Some(path.to_owned())),
        None => Ok(Path::new("keyroute.toml")
            .is_file()
            .then(|| PathBuf::from("keyroute.toml"))),
    }
}

/// Which backend the configuration's URLs name; all must agree.
fn backend(config: &Config) -> Result<Kind, CliError> {
    let urls = config
        .router
        .connections
        .values()
        .chain(config.store.url.as_ref());
    let mut kind = None;
    for url in urls {
        let this = kind_of(url.expose_secret());
        match kind {
            None => kind = Some(this),
            Some(k) if k != this => {
                return Err(CliError::failed(
                    "the configured connections use different database kinds; keyroute routes to one kind at a time",
                ));
            }
            Some(_) => {}
        }
    }
    kind.ok_or_else(|| {
        CliError::failed(
            "no connections are configured; add [connections] live = \"...\" to keyroute.toml or set KEYROUTE_DB_LIVE",
        )
    })
}

/// Runs the parsed command.
pub(crate) async fn run(cli: Cli) -> Result<(), CliError> {
    let path = config_path(cli.config.as_deref())?;
    let config = Config::load(path.as_deref())?;
    let out = Out { json: cli.json };
    match backend(&config)? {
        Kind::Sqlite => dispatch::<Sqlite>(cli.command, config, out).await,
        Kind::Postgres => dispatch::<Postgres>(cli.command, config, out).await,
        Kind::Mysql => dispatch::<Mysql>(cli.command, config, out).await,
    }
}

/// Builds the handle (keyroute's migrations applied when `init_schema` is on),
/// telling `listener` of every key stored.
pub(crate) async fn handle<B: Backend>(
    config: Config,
    listener: Option<std::sync::Arc<dyn KeyListener>>,
) -> Result<Keyroute<B>, CliError>
where
    SqlStore<B>: Store,
{
    let mut builder = Keyroute::<B>::builder().config(config);
    if let Some(listener) = listener {
        builder = builder.listener(listener);
    }
    Ok(builder.build().await?)
}

async fn dispatch<B: Backend>(command: Command, config: Config, out: Out) -> Result<(), CliError>
where
    SqlStore<B>: Store,
{
    match command {
        Command::Migrate { app } => ops::migrate::<B>(config, app.as_deref(), out).await,
        Command::Doctor => ops::doctor::<B>(config, out).await,
        Command::Backfill { batch } => ops::backfill::<B>(config, batch, out).await,
        Command::Verify => ops::verify::<B>(config, out).await,
        Command::Users(command) => {
            keys::users(&handle::<B>(config, None).await?, command, out).await
        }
        Command::Keys(command) => keys::keys(&handle::<B>(config, None).await?, command, out).await,
    }
}
