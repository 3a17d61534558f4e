//! PgBouncer in front of a test's own PostgreSQL server, for tests of keyroute behind a
//! connection pooler: [`pgbouncer`] starts one, in transaction pooling mode unless
//! [`PgBouncerOptions`] asks for another, whose backend is a [`DedicatedServer`], and
//! answers the URLs through it, around it, and of its admin console.
//!
//! The image is keyroute's local stand-in (`scripts/docker/`, Debian bookworm's
//! PgBouncer 1.18), or whatever `KEYROUTE_PGBOUNCER_IMAGE` and `KEYROUTE_PGBOUNCER_TAG`
//! name; by default the community image `edoburu/pgbouncer:1.18.0` (PgBouncer has no
//! official image), whose environment variables the local one takes. The harness sets
//! every variable it relies on, so neither image's own defaults matter. The client
//! authentication is `plain`: edoburu's 1.18.0 entrypoint writes the password in clear
//! into the userlist only for `plain` (an md5 hash otherwise), and PgBouncer needs it in
//! clear to answer PostgreSQL's SCRAM challenge. The connections are on loopback and
//! the password is test data.
//!
//! PgBouncer reaches PostgreSQL container to container: at the server container's
//! address on the Docker bridge network and its port in the container (5432). Tests
//! reach both only on the loopback address, at their published ports.
//!
//! PgBouncer 1.18 does not track prepared statements in transaction mode (that came
//! with 1.21's `max_prepared_statements`): a named statement prepared on one server
//! connection is missing on the next, and two clients' statements of the same name
//! collide on a shared one. Session state (`SET`, advisory locks, `LISTEN`) is shared
//! with whichever client gets the server connection next.
//!
//! The container is started on the harness's own runtime and removed when the test
//! binary exits, as every container of the harness is (see `server.rs`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use keyroute_pool::DatabaseUrl;
use testcontainers::core::{ContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, Image, ImageExt, TestcontainersError};
use tokio_postgres::{NoTls, SimpleQueryMessage};

use crate::dedicated::{self, DedicatedServer};
use crate::server::{self, HarnessError, PASSWORD};

/// The pooler's name in errors.
const NAME: &str = "PgBouncer";
/// The variables naming the image, as `scripts/docker/lib.sh` exports them.
const IMAGE_VAR: &str = "KEYROUTE_PGBOUNCER_IMAGE";
const TAG_VAR: &str = "KEYROUTE_PGBOUNCER_TAG";
/// The image used when the variables are not set: the community image the local one
/// stands in for, at the PgBouncer version Debian bookworm ships.
const DEFAULT_IMAGE: &str = "edoburu/pgbouncer";
const DEFAULT_TAG: &str = "1.18.0";
/// The port PgBouncer listens on in the container (`LISTEN_PORT`; PgBouncer's own
/// default, which edoburu's image changes to 5432 unless told).
const PORT: u16 = 6432;
/// What PgBouncer prints on stderr once it listens (after `listening on ...`).
const READY_LINE: &str = "process up: PgBouncer";
/// The admin console's database.
const ADMIN_DATABASE: &str = "pgbouncer";
/// The database [`TestPgBouncer::url`] names: PostgreSQL's administrative one, which
/// every server has.
const DATABASE: &str = "postgres";
/// How long one `SELECT 1` through the pooler may take (a pooler whose backend does not
/// answer holds a query for `query_wait_timeout`, two minutes).
const ATTEMPT_LIMIT: Duration = Duration::from_secs(5);

/// How PgBouncer lends server connections to its clients (its `pool_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PoolMode {
    /// A server connection for as long as the client stays connected.
    Session,
    /// A server connection for one transaction, or one statement outside a transaction;
    /// between them it serves other clients. The mode of most production poolers.
    #[default]
    Transaction,
    /// A server connection for one statement; transactions of several statements are
    /// refused.
    Statement,
}

impl PoolMode {
    /// The mode as PgBouncer's configuration and `SHOW POOLS` spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Transaction => "transaction",
            Self::Statement => "statement",
        }
    }
}

impl fmt::Display for PoolMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How [`pgbouncer`] configures PgBouncer: start from `PgBouncerOptions::default()`
/// (transaction mode, PgBouncer's own limits) and change fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PgBouncerOptions {
    /// `pool_mode`; [`PoolMode::Transaction`] by default.
    pub pool_mode: PoolMode,
    /// `default_pool_size`: the most server connections for one database and user; 20
    /// by default (PgBouncer's). With 1, every client of a database shares one server
    /// connection.
    pub default_pool_size: u32,
    /// `max_client_conn`: the most client connections PgBouncer accepts; 100 by default
    /// (PgBouncer's).
    pub max_client_conn: u32,
}

impl Default for PgBouncerOptions {
    fn default() -> Self {
        Self {
            pool_mode: PoolMode::Transaction,
            default_pool_size: 20,
            max_client_conn: 100,
        }
    }
}

/// One row of the admin console's answer: column name to value, as text. A `NULL` value
/// is left out.
pub type ConsoleRow = BTreeMap<String, String>;

/// A PgBouncer container in front of a test's PostgreSQL server, from [`pgbouncer`].
/// Every database of the server is reachable through it (PgBouncer's `*` entry), each
/// pooled on its own. Removed when the test binary exits.
pub struct TestPgBouncer {
    host: String,
    port: u16,
    pooled: DatabaseUrl,
    direct: DatabaseUrl,
    /// The PostgreSQL server's published port, for direct URLs of other databases.
    server_port: u16,
    admin: DatabaseUrl,
    backend: SocketAddr,
    options: PgBouncerOptions,
    /// Owned here for the record; the exit hook takes it to remove the container.
    _container: Arc<Mutex<Option<ContainerAsync<PgBouncerImage>>>>,
}

impl fmt::Debug for TestPgBouncer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestPgBouncer")
            .field("pooled", &self.pooled)
            .field("direct", &self.direct)
            .field("backend", &self.backend)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl TestPgBouncer {
    /// The pooled URL of the server's `postgres` database:
    /// `postgres://postgres:PASSWORD@127.0.0.1:PORT/postgres`, PgBouncer's published
    /// port on the loopback address.
    pub fn url(&self) -> &DatabaseUrl {
        &self.pooled
    }

    /// The pooled URL of `database` on the server (one the test created, say).
    pub fn database_url(&self, database: &str) -> DatabaseUrl {
        url(&self.host, self.port, database)
    }

    /// The server's `postgres` database directly, around PgBouncer: the PostgreSQL
    /// container's own published port on the loopback address.
    pub fn direct_url(&self) -> &DatabaseUrl {
        &self.direct
    }

    /// Creates the database `name` on the server (directly, around PgBouncer) and
    /// answers its pooled URL (through PgBouncer) and its direct one. `name` is
    /// ASCII letters, digits and `_`, starting with a letter.
    ///
    /// # Errors
    /// [`HarnessError::Database`] for another name, or when the server refuses.
    pub async fn create_database(
        &self,
        name: &str,
    ) -> Result<(DatabaseUrl, DatabaseUrl), HarnessError> {
        let plain = name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !plain {
            return Err(HarnessError::Database(format!(
                "a test database name is ASCII letters, digits and _, starting with a letter: {name:?}"
            )));
        }
        let fail = |e: tokio_postgres::Error| {
            HarnessError::Database(format!("CREATE DATABASE {name}: {e}"))
        };
        connect(&self.direct)
            .await
            .map_err(fail)?
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .map_err(fail)?;
        Ok((
            self.database_url(name),
            url(&self.host, self.server_port, name),
        ))
    }

    /// PgBouncer's admin console (its `pgbouncer` database), where the server's user is
    /// an admin and stats user: `SHOW POOLS`, `SHOW STATS`, `SHOW SERVERS`, `SHOW
    /// CLIENTS`, `PAUSE`, `RESUME`, ... It speaks only the simple query protocol (with
    /// tokio-postgres: `simple_query`, `batch_execute`); see also [`show`](Self::show).
    pub fn admin_url(&self) -> &DatabaseUrl {
        &self.admin
    }

    /// PgBouncer's published port on the loopback address.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where PgBouncer reaches PostgreSQL: the server container's address on the Docker
    /// bridge network and its port in the container, as they were when [`pgbouncer`]
    /// started PgBouncer (a server that is stopped and started again may get another
    /// address, which this PgBouncer does not follow).
    pub fn backend(&self) -> SocketAddr {
        self.backend
    }

    /// The options PgBouncer was started with.
    pub fn options(&self) -> &PgBouncerOptions {
        &self.options
    }

    /// Runs `SHOW <what>` on the admin console (`what`: `POOLS`, `STATS`, `SERVERS`,
    /// `CLIENTS`, `CONFIG`, ...) on a new connection, and answers its rows.
    ///
    /// # Errors
    /// [`HarnessError::Database`] when the console cannot be reached or refuses.
    pub async fn show(&self, what: &str) -> Result<Vec<ConsoleRow>, HarnessError> {
        let fail = |e: &dyn fmt::Display| {
            HarnessError::Database(format!("PgBouncer's admin console, SHOW {what}: {e}"))
        };
        let client = connect(&self.admin).await.map_err(|e| fail(&e))?;
        let messages = client
            .simple_query(&format!("SHOW {what}"))
            .await
            .map_err(|e| fail(&e))?;
        Ok(messages
            .iter()
            .filter_map(|message| match message {
                SimpleQueryMessage::Row(row) => Some(
                    row.columns()
                        .iter()
                        .enumerate()
                        .filter_map(|(i, column)| {
                            row.get(i)
                                .map(|value| (column.name().to_owned(), value.to_owned()))
                        })
                        .collect(),
                ),
                _ => None,
            })
            .collect())
    }

    /// Proves PgBouncer answers and reaches the server: `SELECT 1` through it, retried
    /// for as long as a database server may take to answer.
    async fn wait_until_answering(&self) -> Result<(), HarnessError> {
        let deadline = tokio::time::Instant::now() + server::ANSWER_LIMIT;
        loop {
            let attempt = tokio::time::timeout(ATTEMPT_LIMIT, select_one(&self.pooled)).await;
            let error = match attempt {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no answer within {ATTEMPT_LIMIT:?}"),
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(start_error(format!(
                    "no answer to SELECT 1 through it (backend {}) within {:?}: {error}",
                    self.backend,
                    server::ANSWER_LIMIT
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Starts PgBouncer in front of `postgres`, a PostgreSQL server of this test's own
/// (such as [`postgres_restartable`](crate::dedicated::postgres_restartable)'s), and
/// returns once a query through it reaches the server. PgBouncer logs in to PostgreSQL
/// as the server's administrator with its password, and accepts the same user and
/// password from clients (`AUTH_TYPE=plain`); it ignores the start-up parameters
/// `extra_float_digits` and `options` that some clients send.
///
/// # Errors
/// [`HarnessError::NoEngine`] when no Docker engine answers,
/// [`HarnessError::ImageUnavailable`] when the image is missing and cannot be pulled,
/// [`HarnessError::Start`] when `postgres` is not a PostgreSQL server, its bridge
/// address cannot be read, or PgBouncer does not become ready or pass a query through.
pub async fn pgbouncer(
    postgres: &DedicatedServer,
    options: PgBouncerOptions,
) -> Result<TestPgBouncer, HarnessError> {
    let kind = postgres.kind();
    if !std::ptr::eq(kind, &server::POSTGRES) {
        return Err(start_error(format!(
            "PgBouncer pools PostgreSQL connections; its backend was given a {} server",
            kind.name
        )));
    }
    let backend = postgres.bridge_address()?;
    let harness = server::harness()?;
    let image = PgBouncerImage::new(backend, &options);
    let container = Arc::new(Mutex::new(None));
    let owned = Arc::clone(&container);
    let started = harness.runtime.spawn(async move {
        let reference = format!("{}:{}", image.name, image.tag);
        let started = image
            .with_label(server::LABEL, "1")
            .with_label(server::PID_LABEL, std::process::id().to_string())
            .with_startup_timeout(server::STARTUP_LIMIT)
            .start()
            .await
            .map_err(|e| server::classify_image((NAME, IMAGE_VAR, TAG_VAR), &reference, e))?;
        let address = async {
            let host = started.get_host().await?.to_string();
            let port = started.get_host_port_ipv4(PORT).await?;
            Ok::<_, TestcontainersError>((host, port))
        }
        .await
        .map_err(|e| start_error(e.to_string()));
        *owned.lock().unwrap_or_else(PoisonError::into_inner) = Some(started);
        dedicated::remove_at_exit(harness, owned);
        address
    });
    let (host, port) = started.await.map_err(|e| start_error(e.to_string()))??;
    let bouncer = TestPgBouncer {
        pooled: url(&host, port, DATABASE),
        admin: url(&host, port, ADMIN_DATABASE),
        direct: postgres.url(&host, ""),
        server_port: postgres.port(),
        host,
        port,
        backend,
        options,
        _container: container,
    };
    bouncer.wait_until_answering().await?;
    Ok(bouncer)
}

/// The PgBouncer image as testcontainers sees it, configured by its environment.
#[derive(Debug, Clone)]
struct PgBouncerImage {
    name: String,
    tag: String,
    env: Vec<(&'static str, String)>,
    ports: [ContainerPort; 1],
}

impl PgBouncerImage {
    /// The image `KEYROUTE_PGBOUNCER_IMAGE:KEYROUTE_PGBOUNCER_TAG` (by default
    /// edoburu's), in front of the server at `backend`.
    fn new(backend: SocketAddr, options: &PgBouncerOptions) -> Self {
        let (name, tag) =
            server::image_reference((IMAGE_VAR, TAG_VAR), (DEFAULT_IMAGE, DEFAULT_TAG));
        let user = server::POSTGRES.user;
        let env = vec![
            ("DB_HOST", backend.ip().to_string()),
            ("DB_PORT", backend.port().to_string()),
            ("DB_USER", user.to_owned()),
            ("DB_PASSWORD", PASSWORD.to_owned()),
            // No DB_NAME: `*`, every database of the server.
            ("AUTH_TYPE", "plain".to_owned()),
            ("POOL_MODE", options.pool_mode.as_str().to_owned()),
            ("DEFAULT_POOL_SIZE", options.default_pool_size.to_string()),
            ("MAX_CLIENT_CONN", options.max_client_conn.to_string()),
            ("LISTEN_PORT", PORT.to_string()),
            ("ADMIN_USERS", user.to_owned()),
            ("STATS_USERS", user.to_owned()),
            (
                "IGNORE_STARTUP_PARAMETERS",
                "extra_float_digits,options".to_owned(),
            ),
        ];
        Self {
            name,
            tag,
            env,
            ports: [ContainerPort::Tcp(PORT)],
        }
    }
}

impl Image for PgBouncerImage {
    fn name(&self) -> &str {
        &self.name
    }

    fn tag(&self) -> &str {
        &self.tag
    }

    fn ready_conditions(&self) -> Vec<WaitFor> {
        vec![WaitFor::message_on_stderr(READY_LINE)]
    }

    fn env_vars(
        &self,
    ) -> impl IntoIterator<Item = (impl Into<Cow<'_, str>>, impl Into<Cow<'_, str>>)> {
        self.env.iter().map(|(name, value)| (*name, value.as_str()))
    }

    fn expose_ports(&self) -> &[ContainerPort] {
        &self.ports
    }
}

/// `postgres://USER:PASSWORD@host:port/database`, in the server's user and password,
/// as the server's own URLs are.
fn url(host: &str, port: u16, database: &str) -> DatabaseUrl {
    let user = server::POSTGRES.user;
    DatabaseUrl::new(format!(
        "postgres://{user}:{PASSWORD}@{host}:{port}/{database}"
    ))
}

/// A new tokio-postgres connection to `url`, driven on the caller's runtime until the
/// client drops.
async fn connect(url: &DatabaseUrl) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url.expose_secret(), NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// `SELECT 1` on a new connection, by the simple query protocol (no prepared
/// statement, which transaction pooling could not keep).
async fn select_one(url: &DatabaseUrl) -> Result<(), tokio_postgres::Error> {
    connect(url).await?.batch_execute("SELECT 1").await
}

fn start_error(cause: String) -> HarnessError {
    HarnessError::Start {
        server: NAME,
        cause,
    }
}
