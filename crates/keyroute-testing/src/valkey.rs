//! Redis-protocol servers (Valkey, Redis) for tests of what keyroute keeps in one:
//! this test binary's shared server, on which every [`valkey`] call gets a key
//! namespace of its own, and a [`DedicatedValkey`] a test owns alone and can stop and
//! start.
//!
//! The image is the official `redis:7.0` or keyroute's local stand-in for it
//! (`scripts/docker/`, Debian bookworm's Redis 7.0), or whatever `KEYROUTE_REDIS_IMAGE`
//! and `KEYROUTE_REDIS_TAG` name. Redis 7.0 speaks the protocol Valkey does, and every
//! such image keeps the official image's contract, so the harness has no special case:
//! port 6379 on all addresses, no protected mode, `Ready to accept connections` on
//! stdout once it listens. The servers keep nothing on disk (`--save ''
//! --appendonly no`): a restarted server starts empty.
//!
//! Containers are started, stopped and removed on the harness's own runtime, and
//! removed when the test binary exits, as the database servers are (see `server.rs`).

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use testcontainers::core::{ContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, Image, ImageExt, TestcontainersError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::OnceCell;

use crate::dedicated;
use crate::server::{self, HarnessError};

/// The server's name in errors.
const NAME: &str = "Valkey";
/// The variables naming the image, as `scripts/docker/lib.sh` exports them.
const IMAGE_VAR: &str = "KEYROUTE_REDIS_IMAGE";
const TAG_VAR: &str = "KEYROUTE_REDIS_TAG";
/// The official image, used when the variables are not set.
const DEFAULT_IMAGE: &str = "redis";
const DEFAULT_TAG: &str = "7.0";
/// The port the server listens on in the container.
const PORT: u16 = 6379;
/// The line the server prints on stdout once it listens (Redis 7.0; 7.2 and Valkey
/// append the listener, ` tcp`).
const READY_LINE: &str = "Ready to accept connections";
/// The server and its options: nothing kept on disk.
const COMMAND: [&str; 5] = ["redis-server", "--save", "", "--appendonly", "no"];
/// How long one PING may take to be answered.
const PING_LIMIT: Duration = Duration::from_secs(2);

/// A key namespace on this test binary's shared Redis-protocol server, from
/// [`valkey`]. Tests share the server; a test that keeps its keys in its namespace
/// (`namespace()` as their prefix, or [`key`](Self::key)) never sees another test's
/// keys. The keys stay until the server's container is removed, when the test binary
/// exits.
#[derive(Debug, Clone)]
pub struct TestValkey {
    url: String,
    namespace: String,
}

impl TestValkey {
    /// The server's URL, `redis://127.0.0.1:PORT`: its published port on the loopback
    /// address. No password, database 0.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// This namespace: a prefix no other [`valkey`] call is given, `kr_<pid>_<n>:`. It
    /// ends with `:`, so no namespace is a prefix of another, and
    /// `SCAN 0 MATCH <namespace>*` finds this namespace's keys only.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The key `name` in this namespace: the namespace followed by `name`.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.namespace)
    }
}

/// A fresh key namespace on this test binary's Redis-protocol server, which the first
/// call starts and every later call shares (as [`postgres`](crate::postgres) shares
/// its server). A failure to start it is kept: every later call fails at once with
/// the same error.
///
/// # Errors
/// [`HarnessError::NoEngine`] when no Docker engine answers,
/// [`HarnessError::ImageUnavailable`] when the image is missing and cannot be pulled,
/// [`HarnessError::Start`] when the server does not become ready or answer `PING`.
pub async fn valkey() -> Result<TestValkey, HarnessError> {
    static SHARED: OnceCell<Result<String, HarnessError>> = OnceCell::const_new();
    let url = SHARED
        .get_or_init(start_shared)
        .await
        .as_deref()
        .map_err(Clone::clone)?;
    Ok(TestValkey {
        url: url.to_owned(),
        namespace: unique_namespace(),
    })
}

/// Starts the shared server and answers its URL once it answers `PING`.
async fn start_shared() -> Result<String, HarnessError> {
    let harness = server::harness()?;
    let started = harness.runtime.spawn(async move {
        let (container, address) = start_container(None).await?;
        harness
            .removals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Box::pin(async move {
                let _ = container.rm().await;
            }));
        address
    });
    let (host, port) = started.await.map_err(|e| start_error(e.to_string()))??;
    wait_for_pong(&host, port).await?;
    Ok(url(&host, port))
}

/// A Redis-protocol server container this test owns alone, from
/// [`valkey_restartable`]: on a fixed host port, so that [`stop`](Self::stop) and
/// [`start`](Self::start) leave its URL unchanged and a client reconnects to the same
/// address. A restarted server starts empty (nothing is kept on disk).
pub struct DedicatedValkey {
    url: String,
    host: String,
    port: u16,
    /// Lent out while the engine stops or starts it; taken for good at exit.
    container: Arc<Mutex<Option<ContainerAsync<ValkeyImage>>>>,
}

impl fmt::Debug for DedicatedValkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DedicatedValkey")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Something done to a container on the harness runtime (stop, start).
type ContainerAction = dedicated::ContainerActionOn<ValkeyImage>;

impl DedicatedValkey {
    /// The server's URL, `redis://127.0.0.1:PORT`, the same for the container's life.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The host port the server listens on (fixed for the container's life).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (`docker stop`): clients' connections break and new ones are
    /// refused. The container stays, with its port.
    ///
    /// # Errors
    /// [`HarnessError::Start`] when the engine refuses.
    pub async fn stop(&self) -> Result<(), HarnessError> {
        self.on_container(|c| Box::pin(async move { c.stop_with_timeout(Some(2)).await }))
            .await
    }

    /// Starts the stopped server again (`docker start`) on the same host port, and
    /// returns once it answers `PING` there. It starts empty.
    ///
    /// # Errors
    /// [`HarnessError::Start`] when the engine refuses, or the server does not answer.
    pub async fn start(&self) -> Result<(), HarnessError> {
        self.on_container(|c| Box::pin(async move { c.start().await }))
            .await?;
        wait_for_pong(&self.host, self.port).await
    }

    /// Runs `action` on the container, on the harness runtime that owns its client.
    async fn on_container(&self, action: ContainerAction) -> Result<(), HarnessError> {
        dedicated::on_container(&self.container, action, start_error).await
    }
}

/// A Redis-protocol server container for this test alone, on a host port fixed for
/// its life (a port the engine picks may change on restart), so the test can stop and
/// start it and its clients find it at the same URL. Removed when the test binary
/// exits.
///
/// # Errors
/// As [`valkey`]; also [`HarnessError::Start`] when no free host port can be had.
pub async fn valkey_restartable() -> Result<DedicatedValkey, HarnessError> {
    let harness = server::harness()?;
    let host_port =
        dedicated::free_port().map_err(|e| start_error(format!("no free host port: {e}")))?;
    let container = Arc::new(Mutex::new(None));
    let owned = Arc::clone(&container);
    let started = harness.runtime.spawn(async move {
        let (started, address) = start_container(Some(host_port)).await?;
        *owned.lock().unwrap_or_else(PoisonError::into_inner) = Some(started);
        dedicated::remove_at_exit(harness, owned);
        address
    });
    let (host, port) = started.await.map_err(|e| start_error(e.to_string()))??;
    wait_for_pong(&host, port).await?;
    Ok(DedicatedValkey {
        url: url(&host, port),
        host,
        port,
        container,
    })
}

/// The server image as testcontainers sees it.
#[derive(Debug, Clone)]
struct ValkeyImage {
    name: String,
    tag: String,
    ports: [ContainerPort; 1],
}

impl ValkeyImage {
    /// The image `KEYROUTE_REDIS_IMAGE:KEYROUTE_REDIS_TAG`, by default the official one.
    fn from_env() -> Self {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
        Self {
            name: var(IMAGE_VAR, DEFAULT_IMAGE),
            tag: var(TAG_VAR, DEFAULT_TAG),
            ports: [ContainerPort::Tcp(PORT)],
        }
    }
}

impl Image for ValkeyImage {
    fn name(&self) -> &str {
        &self.name
    }

    fn tag(&self) -> &str {
        &self.tag
    }

    fn ready_conditions(&self) -> Vec<WaitFor> {
        vec![WaitFor::message_on_stdout(READY_LINE)]
    }

    fn cmd(&self) -> impl IntoIterator<Item = impl Into<Cow<'_, str>>> {
        COMMAND
    }

    fn expose_ports(&self) -> &[ContainerPort] {
        &self.ports
    }
}

/// Starts a container (on the harness runtime: call it there), labelled like every
/// container of the harness, on `host_port` when given; answers it and its address
/// (the loopback host, the published port). The container is returned even when its
/// address cannot be read, so the caller can have it removed.
async fn start_container(
    host_port: Option<u16>,
) -> Result<
    (
        ContainerAsync<ValkeyImage>,
        Result<(String, u16), HarnessError>,
    ),
    HarnessError,
> {
    let image = ValkeyImage::from_env();
    let reference = format!("{}:{}", image.name, image.tag);
    let mut request = image
        .with_label(server::LABEL, "1")
        .with_label(server::PID_LABEL, std::process::id().to_string())
        .with_startup_timeout(server::STARTUP_LIMIT);
    if let Some(port) = host_port {
        request = request.with_mapped_port(port, ContainerPort::Tcp(PORT));
    }
    let container = request.start().await.map_err(|e| classify(&reference, e))?;
    let address = async {
        let host = container.get_host().await?.to_string();
        let port = container.get_host_port_ipv4(PORT).await?;
        Ok::<_, TestcontainersError>((host, port))
    }
    .await
    .map_err(|e| start_error(e.to_string()));
    Ok((container, address))
}

/// Tells a missing engine from a missing image from a container that failed, as the
/// database servers do.
fn classify(reference: &str, error: TestcontainersError) -> HarnessError {
    server::classify_image((NAME, IMAGE_VAR, TAG_VAR), reference, error)
}

fn start_error(cause: String) -> HarnessError {
    HarnessError::Start {
        server: NAME,
        cause,
    }
}

fn url(host: &str, port: u16) -> String {
    format!("redis://{host}:{port}")
}

/// Proves the server answers: `PING` over TCP until `+PONG` comes back, for at most
/// as long as a database server may take to answer `SELECT 1`.
async fn wait_for_pong(host: &str, port: u16) -> Result<(), HarnessError> {
    let deadline = tokio::time::Instant::now() + server::ANSWER_LIMIT;
    loop {
        match ping(host, port).await {
            Ok(()) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(start_error(format!(
                    "no +PONG to PING at {host}:{port} within {:?}: {e}",
                    server::ANSWER_LIMIT
                )));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// One `PING` on a new connection; `Err` says what happened instead of `+PONG`.
async fn ping(host: &str, port: u16) -> Result<(), String> {
    let exchange = async {
        let mut stream = TcpStream::connect((host, port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        stream
            .write_all(b"*1\r\n$4\r\nPING\r\n")
            .await
            .map_err(|e| format!("send: {e}"))?;
        // One line back: `+PONG`, or an error such as `-LOADING ...` or `-DENIED ...`.
        let mut reply = Vec::new();
        let mut buf = [0_u8; 256];
        while !reply.ends_with(b"\r\n") && reply.len() < 4096 {
            let n = stream
                .read(&mut buf)
                .await
                .map_err(|e| format!("receive: {e}"))?;
            if n == 0 {
                return Err(format!(
                    "the server closed the connection after {:?}",
                    String::from_utf8_lossy(&reply)
                ));
            }
            reply.extend_from_slice(&buf[..n]);
        }
        match reply.as_slice() {
            b"+PONG\r\n" => Ok(()),
            other => Err(format!(
                "it answered {:?}",
                String::from_utf8_lossy(other).trim_end()
            )),
        }
    };
    tokio::time::timeout(PING_LIMIT, exchange)
        .await
        .map_err(|_| format!("no answer within {PING_LIMIT:?}"))?
}

/// `kr_<pid>_<n>:`: unique among this binary's namespaces (by the counter) and those
/// of binaries running beside it (by the process id), and readable in `MONITOR`.
fn unique_namespace() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "kr_{}_{}:",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
