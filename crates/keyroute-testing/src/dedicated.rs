//! Database containers a test owns alone: serving TLS with certificates made at test
//! start, or on a fixed host port so the test can stop and start the server and
//! reconnect to the same address.
//!
//! They keep the official images' contract, so the same code works on `postgres` and
//! `mariadb` and on keyroute's local stand-ins:
//!
//! - PostgreSQL takes TLS as server arguments (`-c ssl=on -c ssl_cert_file=...
//!   -c ssl_key_file=... -c hba_file=...`), with an hba file of `hostssl` lines only,
//!   so plaintext clients are refused. PostgreSQL refuses a key file others can read,
//!   and files copied into a container belong to root: the command installs the key
//!   for the `postgres` user with mode 0600, then hands over to the image's
//!   entrypoint (`docker-entrypoint.sh postgres ...`), as the official image's
//!   documentation suggests for keys from outside.
//! - MariaDB takes `--ssl-cert --ssl-key --ssl-ca --require-secure-transport=ON`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use keyroute_pool::{DatabaseUrl, DbPool, Mysql, PoolSettings, Postgres};
use testcontainers::CopyTargetOptions;
use testcontainers::core::ContainerPort;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, Image, ImageExt};

use crate::HarnessError;
use crate::server::{self, PASSWORD, ServerImage, ServerKind};

/// Where the certificate files go in the container.
const TLS_DIR: &str = "/etc/keyroute-tls";

/// A CA, a server certificate it signed for the name `localhost` only (so that
/// `127.0.0.1`, the same server by address, is a host name the certificate does not
/// name), and a second,
/// unrelated CA; made fresh by [`TestCerts::generate`] and written to a temporary
/// directory (deleted on drop) so connection strings can name the CA files.
pub struct TestCerts {
    /// The CA that signed the server's certificate (PEM).
    pub ca_pem: String,
    /// A CA that signed nothing the server has (PEM).
    pub other_ca_pem: String,
    /// The server's certificate (PEM).
    pub server_cert_pem: String,
    /// The server's private key (PEM). Test data only.
    server_key_pem: String,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for TestCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCerts")
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl TestCerts {
    /// Makes the certificates (rcgen, ECDSA P-256) and writes the two CA files.
    ///
    /// # Errors
    /// [`HarnessError::Database`] if a certificate or a file cannot be made.
    pub fn generate() -> Result<Self, HarnessError> {
        let fail =
            |e: &dyn std::fmt::Display| HarnessError::Database(format!("test certificates: {e}"));
        let ca =
            |name: &str| -> Result<rcgen::CertifiedIssuer<'static, rcgen::KeyPair>, HarnessError> {
                let mut params =
                    rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| fail(&e))?;
                params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
                params
                    .distinguished_name
                    .push(rcgen::DnType::CommonName, name);
                params.key_usages = vec![
                    rcgen::KeyUsagePurpose::KeyCertSign,
                    rcgen::KeyUsagePurpose::CrlSign,
                ];
                let key = rcgen::KeyPair::generate().map_err(|e| fail(&e))?;
                rcgen::CertifiedIssuer::self_signed(params, key).map_err(|e| fail(&e))
            };
        let issuer = ca("keyroute test CA")?;
        let other = ca("keyroute unrelated CA")?;
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned()]).map_err(|e| fail(&e))?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        let key = rcgen::KeyPair::generate().map_err(|e| fail(&e))?;
        let server_cert = params.signed_by(&key, &issuer).map_err(|e| fail(&e))?;
        let dir = tempfile::Builder::new()
            .prefix("keyroute-tls-")
            .tempdir()
            .map_err(|e| fail(&e))?;
        let certs = Self {
            ca_pem: issuer.pem(),
            other_ca_pem: other.pem(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: key.serialize_pem(),
            dir,
        };
        std::fs::write(certs.ca_path(), &certs.ca_pem).map_err(|e| fail(&e))?;
        std::fs::write(certs.other_ca_path(), &certs.other_ca_pem).map_err(|e| fail(&e))?;
        Ok(certs)
    }

    /// The file holding the CA that signed the server's certificate.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The file holding the unrelated CA.
    pub fn other_ca_path(&self) -> PathBuf {
        self.dir.path().join("other-ca.pem")
    }
}

/// Something asked of a container on the harness runtime (its bridge address).
pub(crate) type ContainerQueryOn<I, T> =
    fn(Arc<ContainerAsync<I>>) -> server::BoxFuture<Result<T, testcontainers::TestcontainersError>>;
/// Something done to a container on the harness runtime (stop, start).
pub(crate) type ContainerActionOn<I> = ContainerQueryOn<I, ()>;
type ContainerAction = ContainerActionOn<ServerImage>;

/// Runs `action` on the container in `slot`, on the harness runtime that owns its
/// client; `fail` words an error. The container is borrowed out and put back: `rm` at
/// exit needs to own it.
pub(crate) async fn on_container<I: Image + 'static>(
    slot: &std::sync::Mutex<Option<ContainerAsync<I>>>,
    action: ContainerActionOn<I>,
    fail: impl Fn(String) -> HarnessError,
) -> Result<(), HarnessError> {
    query_container(slot, action, fail).await
}

/// [`on_container`] for an action that answers something.
pub(crate) async fn query_container<I: Image + 'static, T: Send + 'static>(
    slot: &std::sync::Mutex<Option<ContainerAsync<I>>>,
    action: ContainerQueryOn<I, T>,
    fail: impl Fn(String) -> HarnessError,
) -> Result<T, HarnessError> {
    let harness = server::harness()?;
    let container = slot
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
        .ok_or_else(|| fail("the container is gone".into()))?;
    let shared = Arc::new(container);
    let result = harness
        .runtime
        .spawn(action(Arc::clone(&shared)))
        .await
        .map_err(|e| fail(e.to_string()))
        .and_then(|r| r.map_err(|e| fail(e.to_string())));
    if let Ok(container) = Arc::try_unwrap(shared) {
        *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(container);
    }
    result
}

/// A database server container this test owns.
pub struct DedicatedServer {
    kind: &'static ServerKind,
    port: u16,
    container: Arc<std::sync::Mutex<Option<ContainerAsync<ServerImage>>>>,
    /// The container's address on the Docker bridge network (or why it could not be
    /// read), read when it starts: asking the engine later would lend the container
    /// out of `container`, where a concurrent caller would find it gone.
    bridge_ip: std::sync::Mutex<Result<IpAddr, HarnessError>>,
}

impl std::fmt::Debug for DedicatedServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DedicatedServer")
            .field("server", &self.kind.name)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl DedicatedServer {
    /// The host port the server listens on (fixed for the container's life).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for the administrative database on `host` (`127.0.0.1`, `localhost`, ...)
    /// with `options` appended as the query string (`sslmode=verify-full&...`).
    pub fn url(&self, host: &str, options: &str) -> DatabaseUrl {
        self.database_url(host, self.kind.admin_database, options)
    }

    /// A URL for `database` on `host` with `options` as the query string.
    pub fn database_url(&self, host: &str, database: &str, options: &str) -> DatabaseUrl {
        let k = self.kind;
        let query = if options.is_empty() {
            String::new()
        } else {
            format!("?{options}")
        };
        DatabaseUrl::new(format!(
            "{}://{}:{PASSWORD}@{host}:{}/{database}{query}",
            k.scheme, k.user, self.port
        ))
    }

    /// Stops the server (the container stays, with its data and port).
    ///
    /// # Errors
    /// [`HarnessError::Start`] when the engine refuses.
    pub async fn stop(&self) -> Result<(), HarnessError> {
        self.on_container(|c| Box::pin(async move { c.stop_with_timeout(Some(2)).await }))
            .await
    }

    /// Starts the stopped server again, on the same host port.
    ///
    /// # Errors
    /// [`HarnessError::Start`] when the engine refuses.
    pub async fn start(&self) -> Result<(), HarnessError> {
        self.on_container(|c| Box::pin(async move { c.start().await }))
            .await?;
        // The engine may have given it another address.
        let kind = self.kind;
        let ip = query_container(
            &self.container,
            |c| Box::pin(async move { c.get_bridge_ip_address().await }),
            |cause| bridge_error(kind, &cause),
        )
        .await;
        *self
            .bridge_ip
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = ip;
        Ok(())
    }

    /// Runs `action` on the container, on the harness runtime that owns its client.
    async fn on_container(&self, action: ContainerAction) -> Result<(), HarnessError> {
        let name = self.kind.name;
        on_container(&self.container, action, |cause| HarnessError::Start {
            server: name,
            cause,
        })
        .await
    }

    /// Which server this is.
    pub(crate) fn kind(&self) -> &'static ServerKind {
        self.kind
    }

    /// Where another container (a pooler) reaches the server: its address on the
    /// Docker bridge network and its port in the container. The engine may give the
    /// container another address when it starts again after [`stop`](Self::stop); this
    /// answers the one of its latest start.
    pub(crate) fn bridge_address(&self) -> Result<SocketAddr, HarnessError> {
        let ip = self
            .bridge_ip
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()?;
        Ok(SocketAddr::new(ip, self.kind.port))
    }
}

/// Why the bridge network address of a `kind` server could not be read.
fn bridge_error(kind: &ServerKind, cause: &dyn std::fmt::Display) -> HarnessError {
    HarnessError::Start {
        server: kind.name,
        cause: format!("its bridge network address: {cause}"),
    }
}

/// A PostgreSQL container serving TLS only (`hostssl`) with `certs`' server certificate.
///
/// # Errors
/// As [`crate::postgres`].
pub async fn postgres_tls(certs: &TestCerts) -> Result<DedicatedServer, HarnessError> {
    let key = format!("{TLS_DIR}/server.key");
    let installed = "/var/lib/postgresql/keyroute-tls";
    let command = format!(
        "install -d -o postgres -g postgres -m 0700 {installed} && \
         install -o postgres -g postgres -m 0600 {key} {TLS_DIR}/server.crt {installed}/ && \
         exec docker-entrypoint.sh postgres -c fsync=off -c ssl=on \
         -c ssl_cert_file={installed}/server.crt -c ssl_key_file={installed}/server.key \
         -c hba_file={TLS_DIR}/pg_hba.conf"
    );
    let files = vec![
        ("server.crt", certs.server_cert_pem.clone()),
        ("server.key", certs.server_key_pem.clone()),
        ("ca.crt", certs.ca_pem.clone()),
        // The set-up server uses the socket; clients over TCP must use TLS.
        (
            "pg_hba.conf",
            "local all all trust\nhostssl all all all scram-sha-256\n".to_owned(),
        ),
    ];
    start(
        &server::POSTGRES,
        vec!["bash".into(), "-c".into(), command],
        files,
        None,
        "sslmode=require",
    )
    .await
}

/// A MariaDB container that requires TLS (`--require-secure-transport=ON`) with
/// `certs`' server certificate.
///
/// # Errors
/// As [`crate::postgres`].
pub async fn mariadb_tls(certs: &TestCerts) -> Result<DedicatedServer, HarnessError> {
    let args = vec![
        format!("--ssl-cert={TLS_DIR}/server.crt"),
        format!("--ssl-key={TLS_DIR}/server.key"),
        format!("--ssl-ca={TLS_DIR}/ca.crt"),
        "--require-secure-transport=ON".to_owned(),
        "--innodb-flush-log-at-trx-commit=0".to_owned(),
    ];
    let files = vec![
        ("server.crt", certs.server_cert_pem.clone()),
        ("server.key", certs.server_key_pem.clone()),
        ("ca.crt", certs.ca_pem.clone()),
    ];
    start(&server::MARIADB, args, files, None, "ssl-mode=REQUIRED").await
}

/// A plaintext PostgreSQL container on a fixed host port, so a test can stop and start
/// it and its clients find it at the same address (a port testcontainers picks may
/// change on restart).
///
/// # Errors
/// As [`crate::postgres`].
pub async fn postgres_restartable() -> Result<DedicatedServer, HarnessError> {
    let port = free_port().map_err(|e| HarnessError::Database(format!("no free port: {e}")))?;
    let args = ["-c", "fsync=off", "-c", "synchronous_commit=off"]
        .map(str::to_owned)
        .to_vec();
    start(&server::POSTGRES, args, Vec::new(), Some(port), "").await
}

/// Removes the container in `slot` (if it is there then) when the test binary exits.
pub(crate) fn remove_at_exit<I: Image + 'static>(
    harness: &server::Harness,
    slot: Arc<std::sync::Mutex<Option<ContainerAsync<I>>>>,
) {
    harness
        .removals
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Box::pin(async move {
            let taken = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let Some(container) = taken {
                let _ = container.rm().await;
            }
        }));
}

/// A port nobody listens on now (the kernel's choice, released at once).
pub(crate) fn free_port() -> std::io::Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
}

async fn start(
    kind: &'static ServerKind,
    cmd: Vec<String>,
    files: Vec<(&'static str, String)>,
    host_port: Option<u16>,
    check_options: &'static str,
) -> Result<DedicatedServer, HarnessError> {
    let harness = server::harness()?;
    let started = harness.runtime.spawn(async move {
        let image = kind.image();
        let reference = format!("{}:{}", image.name(), image.tag());
        // The default bridge network, named: testcontainers' get_bridge_ip_address()
        // looks up the container's network by the name its host config gives, and
        // a container started without one is in the engine's `default` mode, which
        // Docker 20.10 (Debian bookworm's) does not answer to by that name.
        let mut request = image
            .with_cmd(cmd)
            .with_network("bridge")
            .with_label(server::LABEL, "1")
            .with_label(server::PID_LABEL, std::process::id().to_string())
            .with_startup_timeout(server::STARTUP_LIMIT);
        for (file, text) in files {
            request = request.with_copy_to(
                CopyTargetOptions::new(format!("{TLS_DIR}/{file}")).with_mode(0o644),
                text.into_bytes(),
            );
        }
        if let Some(port) = host_port {
            request = request.with_mapped_port(port, ContainerPort::Tcp(kind.port));
        }
        let container = request
            .start()
            .await
            .map_err(|e| server::classify(kind, &reference, e))?;
        let port = container.get_host_port_ipv4(kind.port).await;
        let bridge_ip = container
            .get_bridge_ip_address()
            .await
            .map_err(|e| bridge_error(kind, &e));
        Ok::<_, HarnessError>((container, port, bridge_ip))
    });
    let (container, port, bridge_ip) = started.await.map_err(|e| HarnessError::Start {
        server: kind.name,
        cause: e.to_string(),
    })??;
    let container = Arc::new(std::sync::Mutex::new(Some(container)));
    remove_at_exit(harness, Arc::clone(&container));
    let port = port.map_err(|e| HarnessError::Start {
        server: kind.name,
        cause: e.to_string(),
    })?;
    let server = DedicatedServer {
        kind,
        port,
        container,
        bridge_ip: std::sync::Mutex::new(bridge_ip),
    };
    server.wait_until_answering(check_options).await?;
    Ok(server)
}

impl DedicatedServer {
    /// Proves the server answers, through keyroute's own pool (which speaks TLS).
    pub async fn wait_until_answering(&self, options: &str) -> Result<(), HarnessError> {
        let url = self.url("127.0.0.1", options);
        let deadline = tokio::time::Instant::now() + server::ANSWER_LIMIT;
        let mut settings = PoolSettings::default();
        settings.max_size = 1;
        settings.retry_backoff = Duration::from_millis(50);
        loop {
            let outcome = match self.kind.scheme {
                "postgres" => DbPool::<Postgres>::connect(url.clone(), settings.clone())
                    .await
                    .map(drop),
                _ => DbPool::<Mysql>::connect(url.clone(), settings.clone())
                    .await
                    .map(drop),
            };
            match outcome {
                Ok(()) => return Ok(()),
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(HarnessError::Start {
                        server: self.kind.name,
                        cause: format!("no answer within {:?}: {e}", server::ANSWER_LIMIT),
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
            }
        }
    }
}
