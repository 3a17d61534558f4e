//! The shared database servers: one container per backend per test binary.
//!
//! Containers are started and removed on this module's own Tokio runtime. A test's
//! runtime ends with the test, and a container (and its Docker client) created on it
//! could not be removed from another; this runtime lives as long as the process, and
//! an exit hook removes every container it started.
//!
//! Just past 500 lines on purpose: the server kinds, starting, readiness, creating,
//! copying and dropping databases and the exit hook all use this runtime and the
//! shared servers' private state, which splitting would have to expose crate-wide.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use diesel_async::{
    AsyncConnection, AsyncMysqlConnection, AsyncPgConnection, SimpleAsyncConnection,
};
use keyroute_pool::DatabaseUrl;
use testcontainers::core::{ContainerPort, Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{Image, ImageExt, TestcontainersError};
use tokio::sync::OnceCell;

/// Label on every container the harness starts, so leftovers of a killed test binary
/// can be found (`docker ps -a --filter label=org.keyroute.harness`).
pub(crate) const LABEL: &str = "org.keyroute.harness";
/// Label holding the id of the test process that started the container, so a check
/// can tell its own containers from those of test binaries running beside it.
pub(crate) const PID_LABEL: &str = "org.keyroute.harness.pid";
/// How long a container may take to print its ready line.
pub(crate) const STARTUP_LIMIT: Duration = Duration::from_secs(90);
/// How long a started server may take to answer `SELECT 1`.
pub(crate) const ANSWER_LIMIT: Duration = Duration::from_secs(30);
/// How often a database is tried to be dropped before it is left to the container.
const DROP_ATTEMPTS: usize = 20;
/// The password of the test servers' administrator. Test data only.
pub(crate) const PASSWORD: &str = "keyroute";

/// Why the harness could not hand out a database.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum HarnessError {
    /// No Docker engine answered.
    #[error(
        "no Docker engine answered at {docker_host}: {cause}\n\
         The container tests need one. keyroute's test command (`bash scripts/test`) installs and \
         starts Docker and builds the database images on its machines; elsewhere, start Docker or set \
         DOCKER_HOST to an engine that answers."
    )]
    NoEngine {
        /// Where the harness looked (`DOCKER_HOST`, or the default socket).
        docker_host: String,
        /// What the Docker client said.
        cause: String,
    },
    /// The image is not in the engine and cannot be pulled.
    #[error(
        "the image {image} is not in the Docker engine and cannot be pulled: {cause}\n\
         `bash scripts/test` builds local images when no registry is reachable; or set {image_var} \
         and {tag_var} to an image you have."
    )]
    ImageUnavailable {
        /// The image reference.
        image: String,
        /// The variable naming the image.
        image_var: &'static str,
        /// The variable naming the tag.
        tag_var: &'static str,
        /// What the engine said.
        cause: String,
    },
    /// The container did not start or never became ready.
    #[error("the {server} container did not become ready: {cause}")]
    Start {
        /// Which server.
        server: &'static str,
        /// What went wrong.
        cause: String,
    },
    /// A database could not be created, connected to or migrated.
    #[error("test database: {0}")]
    Database(String),
}

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Everything that differs between the servers.
pub(crate) struct ServerKind {
    pub(crate) name: &'static str,
    image_var: &'static str,
    tag_var: &'static str,
    default_image: &'static str,
    default_tag: &'static str,
    pub(crate) port: u16,
    pub(crate) env: &'static [(&'static str, &'static str)],
    /// Server options that make throwaway databases faster (no durability needed).
    args: &'static [&'static str],
    /// Where the server keeps its data: a tmpfs in the shared container, as a test
    /// server's data need not survive it and copying databases on memory is several
    /// times faster than on the container's overlay file system.
    data_dir: &'static str,
    /// Lines the real server prints on stderr, in order, once it listens.
    pub(crate) ready_lines: &'static [&'static str],
    pub(crate) scheme: &'static str,
    pub(crate) user: &'static str,
    pub(crate) admin_database: &'static str,
    /// Runs SQL on a fresh administrative connection.
    execute: fn(String, String) -> BoxFuture<Result<(), String>>,
    create_database: fn(&str) -> String,
    drop_database: fn(&str) -> String,
    server: OnceCell<Result<Server, HarnessError>>,
}

pub(crate) static POSTGRES: ServerKind = ServerKind {
    name: "PostgreSQL",
    image_var: "KEYROUTE_POSTGRES_IMAGE",
    tag_var: "KEYROUTE_POSTGRES_TAG",
    default_image: "postgres",
    default_tag: "15",
    port: 5432,
    env: &[("POSTGRES_PASSWORD", PASSWORD)],
    args: &[
        "-c",
        "fsync=off",
        "-c",
        "synchronous_commit=off",
        "-c",
        "full_page_writes=off",
        // Every test of a binary has its own app with a few pools on this one server.
        "-c",
        "max_connections=500",
    ],
    data_dir: "/var/lib/postgresql/data",
    // The set-up server prints the same line on stdout; only the real one uses stderr.
    ready_lines: &["database system is ready to accept connections"],
    scheme: "postgres",
    user: "postgres",
    admin_database: "postgres",
    execute: |url, sql| {
        Box::pin(async move {
            let mut conn = AsyncPgConnection::establish(&url)
                .await
                .map_err(|e| e.to_string())?;
            conn.batch_execute(&sql).await.map_err(|e| e.to_string())
        })
    },
    create_database: |name| format!("CREATE DATABASE \"{name}\""),
    drop_database: |name| format!("DROP DATABASE IF EXISTS \"{name}\""),
    server: OnceCell::const_new(),
};

pub(crate) static MARIADB: ServerKind = ServerKind {
    name: "MariaDB",
    image_var: "KEYROUTE_MARIADB_IMAGE",
    tag_var: "KEYROUTE_MARIADB_TAG",
    default_image: "mariadb",
    default_tag: "10.11",
    port: 3306,
    env: &[("MARIADB_ROOT_PASSWORD", PASSWORD)],
    args: &[
        "--innodb-flush-log-at-trx-commit=0",
        "--max-connections=500",
    ],
    data_dir: "/var/lib/mysql",
    // The set-up server's line says "port: 0"; the real one's "port: 3306".
    ready_lines: &["mariadbd: ready for connections.", "port: 3306"],
    scheme: "mysql",
    user: "root",
    admin_database: "mysql",
    execute: |url, sql| {
        Box::pin(async move {
            let mut conn = AsyncMysqlConnection::establish(&url)
                .await
                .map_err(|e| e.to_string())?;
            conn.batch_execute(&sql).await.map_err(|e| e.to_string())
        })
    },
    create_database: |name| format!("CREATE DATABASE `{name}`"),
    drop_database: |name| format!("DROP DATABASE IF EXISTS `{name}`"),
    server: OnceCell::const_new(),
};

/// An image's name and tag: the variables `image_var` and `tag_var` (as
/// `scripts/docker/lib.sh` exports them) when set, else the defaults.
pub(crate) fn image_reference(
    (image_var, tag_var): (&str, &str),
    (default_image, default_tag): (&str, &str),
) -> (String, String) {
    let var =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    (var(image_var, default_image), var(tag_var, default_tag))
}

impl ServerKind {
    /// The image name and tag, from the environment or the defaults.
    pub(crate) fn reference(&self) -> (String, String) {
        image_reference(
            (self.image_var, self.tag_var),
            (self.default_image, self.default_tag),
        )
    }

    /// The image, with the shared servers' arguments; a dedicated server replaces
    /// them with its own (`with_cmd`).
    pub(crate) fn image(&'static self) -> ServerImage {
        let (name, tag) = self.reference();
        ServerImage {
            kind: self,
            name,
            tag,
            ports: [ContainerPort::Tcp(self.port)],
        }
    }
}

/// A server image as testcontainers sees it (shared and dedicated servers alike).
#[derive(Debug, Clone)]
pub(crate) struct ServerImage {
    kind: &'static ServerKind,
    name: String,
    tag: String,
    ports: [ContainerPort; 1],
}

impl std::fmt::Debug for ServerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl Image for ServerImage {
    fn name(&self) -> &str {
        &self.name
    }

    fn tag(&self) -> &str {
        &self.tag
    }

    fn ready_conditions(&self) -> Vec<WaitFor> {
        self.kind
            .ready_lines
            .iter()
            .map(WaitFor::message_on_stderr)
            .collect()
    }

    fn env_vars(
        &self,
    ) -> impl IntoIterator<Item = (impl Into<Cow<'_, str>>, impl Into<Cow<'_, str>>)> {
        self.kind.env.iter().copied()
    }

    fn cmd(&self) -> impl IntoIterator<Item = impl Into<Cow<'_, str>>> {
        self.kind.args.iter().copied()
    }

    fn expose_ports(&self) -> &[ContainerPort] {
        &self.ports
    }
}

/// A running, answering server.
#[derive(Debug)]
pub(crate) struct Server {
    kind: &'static ServerKind,
    host: String,
    port: u16,
}

impl Server {
    fn url(&self, database: &str) -> DatabaseUrl {
        let k = self.kind;
        DatabaseUrl::new(format!(
            "{}://{}:{PASSWORD}@{}:{}/{database}",
            k.scheme, k.user, self.host, self.port
        ))
    }

    /// The URL of database `name` on this server.
    pub(crate) fn database_url(&self, name: &str) -> DatabaseUrl {
        self.url(name)
    }

    /// Creates an empty database.
    pub(crate) async fn create_database(&self, name: &str) -> Result<(), HarnessError> {
        let admin = self
            .url(self.kind.admin_database)
            .expose_secret()
            .to_owned();
        (self.kind.execute)(admin, (self.kind.create_database)(name))
            .await
            .map_err(|e| {
                HarnessError::Database(format!("CREATE DATABASE {name} on {}: {e}", self.kind.name))
            })
    }

    /// Creates a database as a copy of `template` (PostgreSQL's `CREATE DATABASE ...
    /// TEMPLATE`): far quicker than migrating each new database. Both names are the
    /// harness's own (`kr_<pid>_<n>`), never a test's input.
    pub(crate) async fn copy_database(
        &self,
        name: &str,
        template: &str,
    ) -> Result<(), HarnessError> {
        let admin = self
            .url(self.kind.admin_database)
            .expose_secret()
            .to_owned();
        (self.kind.execute)(
            admin,
            format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""),
        )
        .await
        .map_err(|e| {
            HarnessError::Database(format!(
                "CREATE DATABASE {name} TEMPLATE {template} on {}: {e}",
                self.kind.name
            ))
        })
    }

    /// Drops database `name` in the background, on the harness's runtime: retried for
    /// a few seconds while its last connections close (a pool's connections end a
    /// moment after the pool drops), then left to go with the container.
    pub(crate) fn drop_database_later(&'static self, name: String) {
        let Ok(harness) = harness() else {
            return;
        };
        let admin = self
            .url(self.kind.admin_database)
            .expose_secret()
            .to_owned();
        let sql = (self.kind.drop_database)(&name);
        harness.runtime.spawn(async move {
            for _ in 0..DROP_ATTEMPTS {
                if (self.kind.execute)(admin.clone(), sql.clone())
                    .await
                    .is_ok()
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
    }

    /// Proves the server answers queries, retrying while it finishes starting.
    async fn wait_until_answering(&self) -> Result<(), HarnessError> {
        let admin = self
            .url(self.kind.admin_database)
            .expose_secret()
            .to_owned();
        let deadline = tokio::time::Instant::now() + ANSWER_LIMIT;
        loop {
            match (self.kind.execute)(admin.clone(), "SELECT 1".to_owned()).await {
                Ok(()) => return Ok(()),
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(HarnessError::Start {
                        server: self.kind.name,
                        cause: format!("no answer to SELECT 1 within {ANSWER_LIMIT:?}: {e}"),
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
}

/// The harness runtime and the removals it owes at exit.
pub(crate) struct Harness {
    pub(crate) runtime: tokio::runtime::Runtime,
    pub(crate) removals: Mutex<Vec<BoxFuture<()>>>,
}

static HARNESS: OnceLock<Result<Harness, String>> = OnceLock::new();

pub(crate) fn harness() -> Result<&'static Harness, HarnessError> {
    HARNESS
        .get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("keyroute-testing")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            Ok(Harness {
                runtime,
                removals: Mutex::new(Vec::new()),
            })
        })
        .as_ref()
        .map_err(|e| HarnessError::Start {
            server: "harness",
            cause: format!("cannot build its runtime: {e}"),
        })
}

/// Removes the containers this test binary started, when it exits. Runs after `main`,
/// so it does its work on a fresh thread, with none of the main thread's state.
#[dtor::dtor(unsafe)]
fn remove_containers() {
    let Some(Ok(harness)) = HARNESS.get() else {
        return;
    };
    let removals = std::mem::take(
        &mut *harness
            .removals
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    );
    if removals.is_empty() {
        return;
    }
    let remover = std::thread::spawn(move || {
        harness.runtime.block_on(async {
            for removal in removals {
                // A remove that hangs must not hold the test binary open forever.
                let _ = tokio::time::timeout(Duration::from_secs(30), removal).await;
            }
        });
    });
    let _ = remover.join();
}

/// The shared server of `kind`, started on first use. A failure is kept, so every
/// later test fails at once with the same error instead of retrying.
pub(crate) async fn shared_server(
    kind: &'static ServerKind,
) -> Result<&'static Server, HarnessError> {
    kind.server
        .get_or_init(|| start(kind))
        .await
        .as_ref()
        .map_err(Clone::clone)
}

async fn start(kind: &'static ServerKind) -> Result<Server, HarnessError> {
    let harness = harness()?;
    let started = harness.runtime.spawn(async move {
        let image = kind.image();
        let reference = format!("{}:{}", image.name, image.tag);
        let request = image
            .with_label(LABEL, "1")
            .with_label(PID_LABEL, std::process::id().to_string())
            .with_mount(Mount::tmpfs_mount(kind.data_dir))
            .with_startup_timeout(STARTUP_LIMIT);
        let container = request
            .start()
            .await
            .map_err(|e| classify(kind, &reference, e))?;
        let address = async {
            let host = container.get_host().await?.to_string();
            let port = container.get_host_port_ipv4(kind.port).await?;
            Ok::<_, TestcontainersError>((host, port))
        }
        .await;
        harness
            .removals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Box::pin(async move {
                let _ = container.rm().await;
            }));
        let (host, port) = address.map_err(|e| HarnessError::Start {
            server: kind.name,
            cause: e.to_string(),
        })?;
        let server = Server { kind, host, port };
        server.wait_until_answering().await?;
        Ok(server)
    });
    started.await.map_err(|e| HarnessError::Start {
        server: kind.name,
        cause: e.to_string(),
    })?
}

/// Tells a missing engine from a missing image from a container that failed.
pub(crate) fn classify(
    kind: &'static ServerKind,
    reference: &str,
    error: TestcontainersError,
) -> HarnessError {
    classify_image((kind.name, kind.image_var, kind.tag_var), reference, error)
}

/// [`classify`] for any server: its name and the variables that choose its image.
pub(crate) fn classify_image(
    (name, image_var, tag_var): (&'static str, &'static str, &'static str),
    reference: &str,
    error: TestcontainersError,
) -> HarnessError {
    use testcontainers::core::error::ClientError;
    let cause = error.to_string();
    let unreachable = [
        "connect",
        "socket not found",
        "no such file",
        "timeout",
        "timed out",
    ]
    .iter()
    .any(|needle| cause.to_ascii_lowercase().contains(needle));
    match error {
        TestcontainersError::Client(ClientError::PullImage { .. }) if !unreachable => {
            HarnessError::ImageUnavailable {
                image: reference.to_owned(),
                image_var,
                tag_var,
                cause,
            }
        }
        TestcontainersError::Client(_) => HarnessError::NoEngine {
            docker_host: std::env::var("DOCKER_HOST")
                .unwrap_or_else(|_| "the default socket".to_owned()),
            cause,
        },
        _ => HarnessError::Start {
            server: name,
            cause,
        },
    }
}
