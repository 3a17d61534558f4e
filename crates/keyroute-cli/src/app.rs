//! Loads the configuration, picks the backend its connection URLs name, and runs the
//! command on a [`Keyroute`] handle of that backend.

use std::path::{Path, PathBuf};

use keyroute::keys::KeyListener;
use keyroute::store::{BackendKind, DatabaseUrl, Mysql, Postgres, Sqlite, StoreBackend};
use keyroute::{Config, Keyroute};

use crate::output::{CliError, Out};
use crate::{Cli, Command, keys, ops};

/// The backend `url` names, or an error naming the option it was set by; `what` is
/// that option (`[connections] live (KEYROUTE_DB_LIVE)`, `[store] url`). Never the URL.
fn kind_of(url: &DatabaseUrl, what: &str) -> Result<BackendKind, CliError> {
    url.backend()
        .map_err(|e| CliError::failed(format!("configuration {what}: {e}")))
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
fn backend(config: &Config) -> Result<BackendKind, CliError> {
    let connections = config.router.connections.iter().map(|(name, url)| {
        let variable = name.to_ascii_uppercase().replace('-', "_");
        (
            format!("[connections] {name} (KEYROUTE_DB_{variable})"),
            url,
        )
    });
    let store = config
        .store
        .url
        .iter()
        .map(|url| ("[store] url (KEYROUTE_STORE_URL)".to_owned(), url));
    let mut kind = None;
    for (what, url) in connections.chain(store) {
        let this = kind_of(url, &what)?;
        match kind {
            None => kind = Some(this),
            Some(k) if k != this => {
                return Err(CliError::failed(format!(
                    "configuration {what} is a {} database and the others {}; keyroute routes to one kind at a time",
                    this.name(),
                    k.name()
                )));
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
    if let Command::Verify { presented } = &cli.command
        && !presented.is_empty()
    {
        return Err(crate::args::verify_argument());
    }
    let path = config_path(cli.config.as_deref())?;
    let config = Config::load(path.as_deref())?;
    let out = Out {
        json: cli.json,
        // One path for the life of the process, so `Out` stays `Copy`.
        config: cli
            .config
            .map(|p| &*Box::leak::<'static>(p.into_boxed_path())),
    };
    match backend(&config)? {
        BackendKind::Sqlite => dispatch::<Sqlite>(cli.command, config, out).await,
        BackendKind::Postgres => dispatch::<Postgres>(cli.command, config, out).await,
        BackendKind::Mysql => dispatch::<Mysql>(cli.command, config, out).await,
        other => Err(CliError::failed(format!(
            "{} databases are not supported by this build of the keyroute command",
            other.name()
        ))),
    }
}

/// Builds the handle (keyroute's migrations applied when `init_schema` is on),
/// telling `listener` of every key stored.
pub(crate) async fn handle<B: StoreBackend>(
    config: Config,
    listener: Option<std::sync::Arc<dyn KeyListener>>,
) -> Result<Keyroute<B>, CliError> {
    // The command administers: it serves no request on a routed connection, and
    // migrations run as the tables' owner, whom row-level security exempts by design,
    // so the request-time row-security check (a role that bypasses the policies) is
    // not this handle's; `keyroute doctor` reports it for the service's configuration.
    // Schema tenancy stays: `migrate --app` applies the app's migrations per schema.
    let mut config = config;
    if config.router.tenancy.mode == keyroute::sections::TenancyMode::RowSecurity {
        config.router.tenancy.mode = keyroute::sections::TenancyMode::None;
    }
    let mut builder = Keyroute::<B>::builder().config(config);
    if let Some(listener) = listener {
        builder = builder.listener(listener);
    }
    Ok(builder.build().await?)
}

async fn dispatch<B: StoreBackend>(
    command: Command,
    config: Config,
    out: Out,
) -> Result<(), CliError> {
    match command {
        Command::Migrate { app } => ops::migrate::<B>(config, app.as_deref(), out).await,
        Command::Doctor => ops::doctor::<B>(config, out).await,
        Command::Backfill { batch } => ops::backfill::<B>(config, batch, out).await,
        Command::Verify { .. } => crate::verify::verify::<B>(config, out).await,
        Command::Users(command) => {
            keys::users(&handle::<B>(config, None).await?, command, out).await
        }
        Command::Keys(command) => keys::keys(&handle::<B>(config, None).await?, command, out).await,
        Command::Audit(options) => {
            crate::audit::audit(&handle::<B>(config, None).await?, options, out).await
        }
    }
}
