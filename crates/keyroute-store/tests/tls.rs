//! Databases over TLS: containers serving a certificate made at test start (a CA and a
//! server certificate for the name `localhost`, and an unrelated CA), one
//! PostgreSQL and one MariaDB container for this binary, each refusing plaintext.
//!
//! The matrix, on both: verify-full with the right CA connects and a query runs; the
//! wrong CA, the wrong host name, and plaintext each fail with a typed error that
//! says what to change.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use keyroute_core::{ApiKeyStore, ErrorKind, StoreError};
use keyroute_pool::{TlsError, tls_error};
use keyroute_store::{MysqlStore, PoolSettings, PostgresStore};
use keyroute_testing::dedicated::{self, DedicatedServer, TestCerts};
use tokio::sync::OnceCell;

/// The certificates and the two servers, made once for this binary.
struct Servers {
    certs: TestCerts,
    postgres: DedicatedServer,
    mariadb: DedicatedServer,
}

async fn servers() -> &'static Servers {
    static SERVERS: OnceCell<Servers> = OnceCell::const_new();
    SERVERS
        .get_or_init(|| async {
            let certs = TestCerts::generate().expect("test certificates");
            let (postgres, mariadb) = tokio::join!(
                dedicated::postgres_tls(&certs),
                dedicated::mariadb_tls(&certs)
            );
            let servers = Servers {
                postgres: postgres.expect("PostgreSQL serving TLS"),
                mariadb: mariadb.expect("MariaDB serving TLS"),
                certs,
            };
            // Migrated once, here: tests running in parallel only query.
            let pg = servers.postgres.url("localhost", "sslmode=require");
            PostgresStore::connect_with(pg, settings())
                .await
                .unwrap()
                .migrate()
                .await
                .unwrap();
            let my = servers.mariadb.url("localhost", "ssl-mode=REQUIRED");
            MysqlStore::connect_with(my, settings())
                .await
                .unwrap()
                .migrate()
                .await
                .unwrap();
            servers
        })
        .await
}

fn settings() -> PoolSettings {
    let mut settings = PoolSettings::default();
    settings.max_size = 2;
    settings.connection_timeout = Duration::from_secs(10);
    settings
}

/// The hash of no key: a lookup that must run on the server and find nothing.
fn absent_hash() -> keyroute_core::KeyHash {
    keyroute_core::KeyHash::from_bytes([7; 32])
}

fn tls_of(error: &StoreError) -> &TlsError {
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    tls_error(error).unwrap_or_else(|| panic!("no typed TLS error behind: {error}"))
}

fn path(p: std::path::PathBuf) -> String {
    p.to_string_lossy().into_owned()
}

/// URL options naming a CA file: `with_ca("sslmode=verify-full&sslrootcert", ca)`.
fn with_ca(options: &str, ca: std::path::PathBuf) -> String {
    format!("{options}={}", path(ca))
}

/// Asserts that the typed TLS error behind `$err` matches `$pattern`.
macro_rules! assert_tls {
    ($err:expr, $pattern:pat) => {{
        let tls = tls_of($err);
        assert!(matches!(tls, $pattern), "{tls:?}");
    }};
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_verify_full_with_the_right_ca_connects() {
    let s = servers().await;
    let url = s.postgres.url(
        "localhost",
        &with_ca("sslmode=verify-full&sslrootcert", s.certs.ca_path()),
    );
    let store = PostgresStore::connect_with(url, settings()).await.unwrap();
    assert!(!store.api_key_exists(&absent_hash()).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_require_encrypts_without_checking() {
    let s = servers().await;
    // libpq's meaning: no CA given, so the certificate is not checked.
    let store =
        PostgresStore::connect_with(s.postgres.url("127.0.0.1", "sslmode=require"), settings())
            .await
            .unwrap();
    assert!(!store.api_key_exists(&absent_hash()).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_wrong_ca_is_a_typed_error() {
    let s = servers().await;
    let url = s.postgres.url(
        "localhost",
        &with_ca("sslmode=verify-full&sslrootcert", s.certs.other_ca_path()),
    );
    let err = PostgresStore::connect_with(url, settings())
        .await
        .unwrap_err();
    assert_tls!(
        &err,
        TlsError::UnknownIssuer {
            option: "sslrootcert",
            ..
        }
    );
    let text = err.to_string();
    assert!(text.contains("not signed by sslrootcert="), "{text}");
    assert!(
        !text.contains("keyroute@") && !text.contains(":keyroute"),
        "password in: {text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_wrong_host_name_is_a_typed_error_and_verify_ca_accepts_it() {
    let s = servers().await;
    let ca = path(s.certs.ca_path());
    // 127.0.0.1 reaches the same server but is not in its certificate.
    let url = s.postgres.url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let err = PostgresStore::connect_with(url, settings())
        .await
        .unwrap_err();
    assert_tls!(
        &err,
        TlsError::HostMismatch {
            option: "sslmode",
            ..
        }
    );
    assert!(err.to_string().contains("sslmode=verify-ca"), "{err}");

    let url = s
        .postgres
        .url("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={ca}"));
    let store = PostgresStore::connect_with(url, settings()).await.unwrap();
    assert!(!store.api_key_exists(&absent_hash()).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_plaintext_to_a_tls_only_server_says_what_to_set() {
    let s = servers().await;
    let err =
        PostgresStore::connect_with(s.postgres.url("127.0.0.1", "sslmode=disable"), settings())
            .await
            .unwrap_err();
    assert_tls!(&err, TlsError::ServerRequiresTls { .. });
    assert!(
        err.to_string().contains("set sslmode=require or stronger"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_unknown_sslmode_names_the_option() {
    let s = servers().await;
    let err =
        PostgresStore::connect_with(s.postgres.url("127.0.0.1", "sslmode=strict"), settings())
            .await
            .unwrap_err();
    assert_tls!(
        &err,
        TlsError::InvalidOption {
            option: "sslmode",
            ..
        }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_verify_identity_with_the_right_ca_connects() {
    let s = servers().await;
    let url = s.mariadb.url(
        "localhost",
        &with_ca("ssl-mode=VERIFY_IDENTITY&ssl-ca", s.certs.ca_path()),
    );
    let store = MysqlStore::connect_with(url, settings()).await.unwrap();
    assert!(!store.api_key_exists(&absent_hash()).await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_wrong_ca_is_a_typed_error() {
    let s = servers().await;
    let url = s.mariadb.url(
        "localhost",
        &with_ca("ssl-mode=VERIFY_IDENTITY&ssl-ca", s.certs.other_ca_path()),
    );
    let err = MysqlStore::connect_with(url, settings()).await.unwrap_err();
    assert_tls!(
        &err,
        TlsError::UnknownIssuer {
            option: "ssl-ca",
            ..
        }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_wrong_host_name_is_a_typed_error() {
    let s = servers().await;
    let url = s.mariadb.url(
        "127.0.0.1",
        &with_ca("ssl-mode=VERIFY_IDENTITY&ssl-ca", s.certs.ca_path()),
    );
    let err = MysqlStore::connect_with(url, settings()).await.unwrap_err();
    assert_tls!(
        &err,
        TlsError::HostMismatch {
            option: "ssl-mode",
            ..
        }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_plaintext_to_a_tls_only_server_says_what_to_set() {
    let s = servers().await;
    let err = MysqlStore::connect_with(s.mariadb.url("127.0.0.1", "ssl-mode=DISABLED"), settings())
        .await
        .unwrap_err();
    assert_tls!(&err, TlsError::ServerRequiresTls { .. });
    assert!(
        err.to_string()
            .contains("set ssl-mode=REQUIRED or stronger"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_verify_ca_checks_the_host_name_too_and_says_so() {
    let s = servers().await;
    // A documented limit of mysql_async 0.36 on rustls 0.23 (see the guide, Known limits).
    let url = s.mariadb.url(
        "127.0.0.1",
        &with_ca("ssl-mode=VERIFY_CA&ssl-ca", s.certs.ca_path()),
    );
    let err = MysqlStore::connect_with(url, settings()).await.unwrap_err();
    assert_tls!(&err, TlsError::Handshake { .. });
    assert!(
        err.to_string()
            .contains("VERIFY_CA checks the host name as well"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_required_encrypts_without_checking() {
    let s = servers().await;
    let store =
        MysqlStore::connect_with(s.mariadb.url("127.0.0.1", "ssl-mode=REQUIRED"), settings())
            .await
            .unwrap();
    assert!(!store.api_key_exists(&absent_hash()).await.unwrap());
}
