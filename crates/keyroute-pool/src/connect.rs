//! Opening PostgreSQL and MySQL connections with keyroute's TLS options, and
//! [`ConnectFailure`], the typed reason a connection could not be opened.

use std::fmt;

#[cfg(any(feature = "postgres", feature = "mysql"))]
use super::describe;
#[cfg(feature = "tls")]
use super::tls::TlsError;
#[cfg(any(feature = "postgres", feature = "mysql"))]
use super::tls::{TlsMode, TlsOptions};

/// Why a connection could not be opened: a TLS problem (typed, saying which option to
/// change) or anything else (refused, authentication, timeout), as text.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ConnectFailure {
    /// TLS set-up or handshake.
    #[cfg(feature = "tls")]
    Tls(TlsError),
    /// Anything else, described with its causes.
    Other(String),
}

impl ConnectFailure {
    /// This failure with `url`'s password scrubbed from its text.
    pub fn redacted(self, url: &super::DatabaseUrl) -> Self {
        match self {
            ConnectFailure::Other(text) => ConnectFailure::Other(url.redact(&text)),
            #[cfg(feature = "tls")]
            tls => tls,
        }
    }

    /// The typed error behind this failure, for `Error::source`: the `TlsError`
    /// when TLS is why (with the `tls` feature), none otherwise.
    pub(crate) fn typed(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            #[cfg(feature = "tls")]
            ConnectFailure::Tls(e) => Some(e),
            ConnectFailure::Other(_) => None,
        }
    }
}

impl fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            #[cfg(feature = "tls")]
            ConnectFailure::Tls(e) => e.fmt(f),
            ConnectFailure::Other(text) => f.write_str(text),
        }
    }
}

impl From<diesel::ConnectionError> for ConnectFailure {
    fn from(error: diesel::ConnectionError) -> Self {
        ConnectFailure::Other(super::describe(&error))
    }
}

#[cfg(feature = "tls")]
impl From<TlsError> for ConnectFailure {
    fn from(error: TlsError) -> Self {
        ConnectFailure::Tls(error)
    }
}

/// Opens a PostgreSQL connection: `sslmode` and `sslrootcert` are keyroute's, the rest
/// of the string is tokio-postgres', and the connection is handed to diesel-async
/// (whose own `establish` drops the cause of a failure and knows no TLS). Behind a
/// transaction pooler, see `postgres.rs` for what changes.
#[cfg(feature = "postgres")]
pub(crate) async fn postgres(
    url: String,
    pooler: super::Pooler,
) -> Result<diesel_async::AsyncPgConnection, ConnectFailure> {
    use diesel::connection::CacheSize;
    use diesel_async::{AsyncConnection as _, AsyncPgConnection, SimpleAsyncConnection as _};
    let (client, connection) = postgres_client(&url, |_| {}).await?;
    if pooler == super::Pooler::Session {
        return Ok(AsyncPgConnection::try_from_client_and_connection(client, connection).await?);
    }
    // diesel-async's set-up runs its `SET`s as named prepared statements: inside one
    // transaction each `Parse` and its `Bind` reach the same server connection.
    // Turning the cache off drops (and so closes) them before the `COMMIT`. The
    // connection is driven here rather than by diesel-async, which only takes it
    // together with the client and would run the set-up before the `BEGIN`; it ends
    // when the client is dropped.
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("keyroute: a PostgreSQL connection ended: {e}");
        }
    });
    let failed = |e: tokio_postgres::Error| ConnectFailure::Other(describe(&e));
    client.batch_execute("BEGIN").await.map_err(failed)?;
    let mut conn = AsyncPgConnection::try_from(client).await?;
    conn.set_prepared_statement_cache_size(CacheSize::Disabled);
    conn.batch_execute("COMMIT")
        .await
        .map_err(|e| ConnectFailure::Other(describe(&e)))?;
    Ok(conn)
}

/// A PostgreSQL client and the connection that drives it, opened with keyroute's TLS
/// options; `adjust` may change the rest of the configuration first (the change
/// feed's listener names itself and bounds its connect time). The pool and the
/// listener open their connections here, so both speak TLS alike.
#[cfg(feature = "postgres")]
pub async fn postgres_client(
    url: &str,
    adjust: impl FnOnce(&mut tokio_postgres::Config),
) -> Result<(tokio_postgres::Client, PgConnection), ConnectFailure> {
    use tokio_postgres::config::SslMode;
    let (tls, rest) = TlsOptions::take(url, super::tls::POSTGRES_NAMES)?;
    let mut config: tokio_postgres::Config = rest
        .parse()
        .map_err(|e: tokio_postgres::Error| ConnectFailure::Other(describe(&e)))?;
    config.ssl_mode(match tls.mode {
        TlsMode::Disable => SslMode::Disable,
        TlsMode::Prefer => SslMode::Prefer,
        _ => SslMode::Require,
    });
    adjust(&mut config);
    let connector = tokio_postgres_rustls::MakeRustlsConnect::new(tls.client_config()?);
    config
        .connect(connector)
        .await
        .map_err(|e| postgres_failure(&tls, &e))
}

/// The connection half of [`postgres_client`]: a socket, plain or in rustls.
#[cfg(feature = "postgres")]
pub type PgConnection = tokio_postgres::Connection<
    tokio_postgres::Socket,
    <tokio_postgres_rustls::MakeRustlsConnect as tokio_postgres::tls::MakeTlsConnect<
        tokio_postgres::Socket,
    >>::Stream,
>;

#[cfg(feature = "postgres")]
fn postgres_failure(tls: &TlsOptions, error: &tokio_postgres::Error) -> ConnectFailure {
    if let Some(typed) = tls.classify(error) {
        return ConnectFailure::Tls(typed);
    }
    let text = describe(error);
    if text.contains("server does not support TLS") {
        return ConnectFailure::Tls(TlsError::ServerWithoutTls {
            option: tls.names.mode,
        });
    }
    // pg_hba.conf has only `hostssl` lines for this client: "no pg_hba.conf entry for
    // host ..., no encryption" (SQLSTATE 28000).
    if let Some(db) = error.as_db_error()
        && *db.code() == tokio_postgres::error::SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        && db.message().contains("no encryption")
    {
        return ConnectFailure::Tls(TlsError::ServerRequiresTls {
            option: tls.names.mode,
            require: tls.names.require,
        });
    }
    ConnectFailure::Other(text)
}

/// Opens a MySQL / MariaDB connection: `ssl-mode` and `ssl-ca` become mysql_async's
/// `SslOpts` (rustls); the rest of the URL is mysql_async's.
#[cfg(feature = "mysql")]
pub(crate) async fn mysql(
    url: String,
) -> Result<diesel_async::AsyncMysqlConnection, ConnectFailure> {
    use mysql_async::{Opts, OptsBuilder};
    // mysql_async builds its rustls configuration on the process's default provider:
    // make it ring (the only one keyroute compiles) before the first connection.
    static PROVIDER: std::sync::Once = std::sync::Once::new();
    PROVIDER.call_once(|| {
        let _already_set = rustls::crypto::ring::default_provider().install_default();
    });
    let (tls, rest) = TlsOptions::take(&url, super::tls::MYSQL_NAMES)?;
    let opts = Opts::from_url(&mysql_scheme(&rest))
        .map_err(|e| ConnectFailure::Other(format!("the MySQL URL is invalid: {e}")))?;
    // What diesel-async's `establish` sets; `try_from` runs its set-up queries.
    let builder = OptsBuilder::from_opts(opts)
        .stmt_cache_size(0)
        .client_found_rows(true);
    let ssl = match tls.mode {
        TlsMode::Disable => None,
        _ => Some(mysql_ssl_opts(&tls)?),
    };
    let first = mysql_async::Conn::new(builder.clone().ssl_opts(ssl)).await;
    let conn = match first {
        Err(mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer))
            if tls.mode == TlsMode::Prefer =>
        {
            mysql_async::Conn::new(builder.ssl_opts(None)).await
        }
        // MariaDB answers a plaintext client under `require_secure_transport` with
        // "access denied", as for a wrong password: if the same account gets in over
        // TLS, plaintext was the problem, and the message should say so.
        Err(mysql_async::Error::Server(denied))
            if tls.mode == TlsMode::Disable && denied.code == 1045 =>
        {
            let unchecked = mysql_async::SslOpts::default().with_danger_accept_invalid_certs(true);
            if let Ok(conn) = mysql_async::Conn::new(builder.ssl_opts(Some(unchecked))).await {
                let _closed = conn.disconnect().await;
                return Err(ConnectFailure::Tls(TlsError::ServerRequiresTls {
                    option: tls.names.mode,
                    require: tls.names.require,
                }));
            }
            Err(mysql_async::Error::Server(denied))
        }
        other => other,
    }
    .map_err(|e| mysql_failure(&tls, &e))?;
    Ok(diesel_async::AsyncMysqlConnection::try_from(conn).await?)
}

/// `url` with a `mariadb://` scheme spelt `mysql://`, the only one mysql_async reads
/// (keyroute accepts both, see [`DatabaseUrl::backend`](super::DatabaseUrl::backend)).
#[cfg(feature = "mysql")]
fn mysql_scheme(url: &str) -> std::borrow::Cow<'_, str> {
    match url.get(..10) {
        Some(scheme) if scheme.eq_ignore_ascii_case("mariadb://") => {
            std::borrow::Cow::Owned(format!("mysql://{}", url.get(10..).unwrap_or_default()))
        }
        _ => std::borrow::Cow::Borrowed(url),
    }
}

#[cfg(feature = "mysql")]
fn mysql_ssl_opts(tls: &TlsOptions) -> Result<mysql_async::SslOpts, TlsError> {
    use mysql_async::SslOpts;
    let opts = SslOpts::default();
    if !tls.verifies() {
        // Encrypted, certificate not checked (mysql_async keeps its built-in roots,
        // unused, since it cannot build a verifier without any).
        return Ok(opts.with_danger_accept_invalid_certs(true));
    }
    let roots = match &tls.root_cert {
        Some(path) => super::tls::read_pem_certs(tls.names.root_cert, path)?,
        None => super::tls::system_root_certs().to_vec(),
    };
    let roots = roots.into_iter().map(|der| der.to_vec().into()).collect();
    Ok(opts
        .with_root_certs(roots)
        .with_disable_built_in_roots(true)
        .with_danger_skip_domain_validation(tls.mode != TlsMode::VerifyFull))
}

#[cfg(feature = "mysql")]
fn mysql_failure(tls: &TlsOptions, error: &mysql_async::Error) -> ConnectFailure {
    match tls.classify(error) {
        // mysql_async 0.36 skips the host name check by matching "NotValidForName" in
        // rustls' message, which rustls 0.23 no longer prints: VERIFY_CA (and REQUIRED
        // with ssl-ca) check the name too, so "set VERIFY_CA" would be no advice.
        Some(TlsError::HostMismatch { detail, .. }) if tls.mode != TlsMode::VerifyFull => {
            return ConnectFailure::Tls(TlsError::Handshake {
                detail: format!(
                    "{detail}; with MySQL and MariaDB, ssl-mode=VERIFY_CA checks the host \
                     name as well (a limit of the mysql_async driver): connect with a host \
                     name the certificate names"
                ),
            });
        }
        Some(typed) => return ConnectFailure::Tls(typed),
        None => {}
    }
    match error {
        mysql_async::Error::Driver(mysql_async::DriverError::NoClientSslFlagFromServer) => {
            ConnectFailure::Tls(TlsError::ServerWithoutTls {
                option: tls.names.mode,
            })
        }
        // MySQL 3159, MariaDB 4036: "Connections using insecure transport are prohibited".
        mysql_async::Error::Server(server)
            if matches!(server.code, 3159 | 4036)
                || server.message.contains("insecure transport") =>
        {
            ConnectFailure::Tls(TlsError::ServerRequiresTls {
                option: tls.names.mode,
                require: tls.names.require,
            })
        }
        other => ConnectFailure::Other(describe(other)),
    }
}

#[cfg(all(test, feature = "mysql"))]
mod tests {
    /// `mariadb://` reaches mysql_async as `mysql://`; other URLs pass unchanged.
    #[test]
    fn mariadb_urls_are_spelt_mysql() {
        assert_eq!(
            super::mysql_scheme("mariadb://u:p@db/k"),
            "mysql://u:p@db/k"
        );
        assert_eq!(super::mysql_scheme("MariaDB://db"), "mysql://db");
        assert_eq!(super::mysql_scheme("mysql://db/k"), "mysql://db/k");
        assert_eq!(super::mysql_scheme("maria"), "maria");
    }
}
