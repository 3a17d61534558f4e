//! TLS to database servers, on rustls (ring) only: the connection-string options,
//! the certificate checks they ask for, and [`TlsError`], which says what to change.
//!
//! PostgreSQL takes libpq's `sslmode` and `sslrootcert`; MySQL and MariaDB take the
//! `mysql` client's `ssl-mode` and `ssl-ca`. Both are read here and removed from the
//! string before the driver sees it (tokio-postgres knows only some `sslmode` values,
//! mysql_async none of these names). Without a CA file, certificates are checked
//! against the operating system's roots (rustls-native-certs), read once per process.
//!
//! Past 500 lines on purpose: the options, the verifiers they choose and the errors
//! they classify into are one decision table, read together; about 150 of the lines
//! are its tests and about 30 the `cfg` lines saying which backend uses what, and the
//! option-string parsing (`strip_options`) is the part to move out first if it grows.

// What compiles when: `TlsMode` and `TlsError` with the `tls` feature; reading the
// options and classifying failures with either server backend; the rustls client
// configuration and its verifiers with `postgres` only (mysql_async builds its own
// from `SslOpts`). Each item says which, so no feature set leaves dead code behind.

#[cfg(any(feature = "postgres", feature = "mysql"))]
use std::path::Path;
use std::path::PathBuf;
#[cfg(feature = "postgres")]
use std::sync::Arc;
#[cfg(any(feature = "postgres", feature = "mysql"))]
use std::sync::OnceLock;

#[cfg(any(feature = "postgres", feature = "mysql"))]
use rustls::CertificateError;
#[cfg(feature = "postgres")]
use rustls::client::WebPkiServerVerifier;
#[cfg(feature = "postgres")]
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
#[cfg(feature = "postgres")]
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
#[cfg(any(feature = "postgres", feature = "mysql"))]
use rustls::pki_types::CertificateDer;
#[cfg(feature = "postgres")]
use rustls::pki_types::{ServerName, UnixTime};
#[cfg(feature = "postgres")]
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore};

/// How much TLS a connection asks for, from none to a fully checked certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsMode {
    /// Never TLS (`sslmode=disable`, `ssl-mode=DISABLED`).
    Disable,
    /// TLS when the server offers it, certificate not checked (`prefer`, `PREFERRED`).
    /// The default of both backends, as in libpq and the `mysql` client.
    Prefer,
    /// TLS or no connection; the certificate is not checked unless a CA file is given,
    /// in which case it is checked as by `VerifyCa` (libpq's rule) (`require`, `REQUIRED`).
    Require,
    /// TLS, and the certificate chain must lead to a trusted root; the host name is
    /// not checked (`verify-ca`, `VERIFY_CA`).
    VerifyCa,
    /// TLS, a trusted chain, and a certificate naming the host connected to
    /// (`verify-full`, `VERIFY_IDENTITY`).
    VerifyFull,
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
/// The TLS options of one connection string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TlsOptions {
    /// The mode asked for.
    pub(crate) mode: TlsMode,
    /// The CA file (`sslrootcert` / `ssl-ca`), if any.
    pub(crate) root_cert: Option<PathBuf>,
    /// The names of the options, for messages: (`sslmode`, `sslrootcert`) or
    /// (`ssl-mode`, `ssl-ca`).
    pub(crate) names: OptionNames,
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
/// The spelling of the TLS options on one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OptionNames {
    /// The mode option.
    pub(crate) mode: &'static str,
    /// The CA file option.
    pub(crate) root_cert: &'static str,
    /// The weakest value that insists on TLS, for "set ... or stronger".
    pub(crate) require: &'static str,
    /// The value that checks the chain only.
    pub(crate) verify_ca: &'static str,
    /// Every mode value, for "expected one of".
    pub(crate) modes: &'static str,
}

#[cfg(feature = "postgres")]
/// PostgreSQL's (libpq's) option names.
pub(crate) const POSTGRES_NAMES: OptionNames = OptionNames {
    mode: "sslmode",
    root_cert: "sslrootcert",
    require: "require",
    verify_ca: "verify-ca",
    modes: "disable, prefer, require, verify-ca, verify-full",
};

#[cfg(feature = "mysql")]
/// MySQL's and MariaDB's option names.
pub(crate) const MYSQL_NAMES: OptionNames = OptionNames {
    mode: "ssl-mode",
    root_cert: "ssl-ca",
    require: "REQUIRED",
    verify_ca: "VERIFY_CA",
    modes: "DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY",
};

/// A TLS set-up or handshake failure, saying which option to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// An option has a value keyroute does not know.
    #[error("{option}={value:?} is not a valid value; expected one of {expected}")]
    InvalidOption {
        /// The option (`sslmode`, `ssl-mode`).
        option: &'static str,
        /// The value given (never secret).
        value: String,
        /// The values accepted.
        expected: &'static str,
    },
    /// The CA file cannot be read or holds no certificate.
    #[error("cannot use {option}={path}: {reason}; point {option} at a PEM file of CA certificates", path = .path.display())]
    RootCert {
        /// The option (`sslrootcert`, `ssl-ca`).
        option: &'static str,
        /// The file named.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The server's certificate chain does not lead to a trusted CA.
    #[error(
        "the server's certificate is not signed by {roots} ({detail}); set {option} to the CA certificate that signed the server's certificate"
    )]
    UnknownIssuer {
        /// The CA option to change.
        option: &'static str,
        /// Where the trusted roots came from: `sslrootcert=<path>` or the system's roots.
        roots: String,
        /// rustls' words.
        detail: String,
    },
    /// The certificate is trusted but does not name the host connected to.
    #[error(
        "the server's certificate is not valid for the host name connected to ({detail}); connect with a host name the certificate names, or set {option}={verify_ca} to check the chain only"
    )]
    HostMismatch {
        /// The mode option.
        option: &'static str,
        /// The value that skips the host name check.
        verify_ca: &'static str,
        /// rustls' words (the names the certificate holds).
        detail: String,
    },
    /// The connection was plaintext and the server accepts only TLS.
    #[error("the server accepts only TLS connections; set {option}={require} or stronger")]
    ServerRequiresTls {
        /// The mode option.
        option: &'static str,
        /// The weakest value that insists on TLS.
        require: &'static str,
    },
    /// TLS was required and the server does not offer it.
    #[error(
        "{option} asks for TLS but the server does not offer it; enable TLS on the server, or lower {option}"
    )]
    ServerWithoutTls {
        /// The mode option.
        option: &'static str,
    },
    /// Any other handshake failure (expired certificate, protocol mismatch).
    #[error("TLS handshake failed: {detail}")]
    Handshake {
        /// rustls' words.
        detail: String,
    },
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
impl TlsMode {
    fn parse(names: OptionNames, value: &str) -> Result<Self, TlsError> {
        let lower = value.trim().to_ascii_lowercase().replace('_', "-");
        let mode = match lower.as_str() {
            "disable" | "disabled" => TlsMode::Disable,
            "prefer" | "preferred" | "allow" => TlsMode::Prefer,
            "require" | "required" => TlsMode::Require,
            "verify-ca" => TlsMode::VerifyCa,
            "verify-full" | "verify-identity" => TlsMode::VerifyFull,
            _ => {
                return Err(TlsError::InvalidOption {
                    option: names.mode,
                    value: value.to_owned(),
                    expected: names.modes,
                });
            }
        };
        Ok(mode)
    }

    /// Whether the server's certificate is checked at all.
    fn verifies(self, root_cert: Option<&Path>) -> bool {
        match self {
            TlsMode::Disable | TlsMode::Prefer => false,
            TlsMode::Require => root_cert.is_some(),
            TlsMode::VerifyCa | TlsMode::VerifyFull => true,
        }
    }
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
impl TlsOptions {
    /// Reads and removes the TLS options of `conn` (a URL or a libpq key-value
    /// string), returning them and the rest of the string for the driver.
    pub(crate) fn take(conn: &str, names: OptionNames) -> Result<(Self, String), TlsError> {
        let mut options = TlsOptions {
            mode: TlsMode::Prefer,
            root_cert: None,
            names,
        };
        let mut mode = None;
        let rest = strip_options(conn, &[names.mode, names.root_cert], |key, value| {
            if key.eq_ignore_ascii_case(names.mode) {
                mode = Some(value.to_owned());
            } else {
                options.root_cert = Some(PathBuf::from(percent_decode(value)));
            }
        });
        if let Some(mode) = mode {
            options.mode = TlsMode::parse(names, &mode)?;
        }
        Ok((options, rest))
    }

    /// Whether the certificate is checked (for the choice of message on failure).
    pub(crate) fn verifies(&self) -> bool {
        self.mode.verifies(self.root_cert.as_deref())
    }

    /// Where the trusted roots come from, for messages.
    pub(crate) fn roots_description(&self) -> String {
        match &self.root_cert {
            Some(path) => format!("{}={}", self.names.root_cert, path.display()),
            None => "any of the system's root certificates".to_owned(),
        }
    }

    /// The trusted roots: the CA file's certificates, or the system's.
    #[cfg(feature = "postgres")]
    pub(crate) fn roots(&self) -> Result<Arc<RootCertStore>, TlsError> {
        match &self.root_cert {
            Some(path) => {
                let certs = read_pem_certs(self.names.root_cert, path)?;
                let mut store = RootCertStore::empty();
                for cert in certs {
                    store.add(cert).map_err(|e| TlsError::RootCert {
                        option: self.names.root_cert,
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                }
                Ok(Arc::new(store))
            }
            None => Ok(system_roots()),
        }
    }

    /// The rustls configuration for this mode: a verifier that checks what the mode
    /// asks for, on the ring provider.
    #[cfg(feature = "postgres")]
    pub(crate) fn client_config(&self) -> Result<ClientConfig, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let handshake = |e: rustls::Error| TlsError::Handshake {
            detail: e.to_string(),
        };
        let verifier: Arc<dyn ServerCertVerifier> = if self.verifies() {
            let webpki =
                WebPkiServerVerifier::builder_with_provider(self.roots()?, Arc::clone(&provider))
                    .build()
                    .map_err(|e| TlsError::RootCert {
                        option: self.names.root_cert,
                        path: self
                            .root_cert
                            .clone()
                            .unwrap_or_else(|| PathBuf::from("(system roots)")),
                        reason: e.to_string(),
                    })?;
            match self.mode {
                TlsMode::VerifyFull => webpki,
                _ => Arc::new(ChainOnly(webpki)),
            }
        } else {
            Arc::new(Unchecked(Arc::clone(&provider)))
        };
        Ok(ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(handshake)?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth())
    }

    /// The typed error for a failed connection, if TLS is why.
    pub(crate) fn classify(&self, error: &(dyn std::error::Error + 'static)) -> Option<TlsError> {
        let rustls_error = find_rustls_error(error)?;
        Some(match rustls_error {
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
                TlsError::UnknownIssuer {
                    option: self.names.root_cert,
                    roots: self.roots_description(),
                    detail: rustls_error.to_string(),
                }
            }
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            ) => TlsError::HostMismatch {
                option: self.names.mode,
                verify_ca: self.names.verify_ca,
                detail: rustls_error.to_string(),
            },
            other => TlsError::Handshake {
                detail: other.to_string(),
            },
        })
    }
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
/// The system's root certificates, read once per process (rustls-native-certs).
pub(crate) fn system_root_certs() -> &'static [CertificateDer<'static>] {
    static CERTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    CERTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::warn!(%error, "keyroute: could not read some system root certificates");
        }
        found.certs
    })
}

#[cfg(feature = "postgres")]
/// The system's roots as a rustls store, built once per process.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    Arc::clone(ROOTS.get_or_init(|| {
        let mut store = RootCertStore::empty();
        let (_added, _ignored) =
            store.add_parsable_certificates(system_root_certs().iter().cloned());
        Arc::new(store)
    }))
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
/// The certificates of a PEM file.
pub(crate) fn read_pem_certs(
    option: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    use rustls::pki_types::pem::PemObject as _;
    let fail = |reason: String| TlsError::RootCert {
        option,
        path: path.to_owned(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(format!("not a PEM certificate file ({e})")))?;
    if certs.is_empty() {
        return Err(fail("it holds no PEM certificate".into()));
    }
    Ok(certs)
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
/// A rustls error anywhere in `error`'s chain, looking inside I/O errors too (their
/// `source` skips the error they wrap).
pub(crate) fn find_rustls_error<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            && let Some(found) = find_rustls_error(inner)
        {
            return Some(found);
        }
        current = e.source();
    }
    None
}

#[cfg(feature = "postgres")]
/// `verify-ca`: the chain must lead to a trusted root; the host name is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

#[cfg(feature = "postgres")]
impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain before the name: a name error means the chain passed.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(feature = "postgres")]
/// `prefer` and `require` without a CA file (libpq's meaning): encrypted, certificate
/// not checked. Handshake signatures are still verified.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

#[cfg(feature = "postgres")]
impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
/// `conn` without the options named in `keys`, calling `found` with each one removed.
/// Handles URL query strings (`?a=1&sslmode=require`) and libpq key-value strings
/// (`host=db sslmode=require`, values optionally quoted).
fn strip_options(conn: &str, keys: &[&str], mut found: impl FnMut(&str, &str)) -> String {
    let is_key = |k: &str| keys.iter().any(|key| key.eq_ignore_ascii_case(k));
    if let Some(scheme_end) = conn.find("://") {
        // The query starts at the first `?` after the user-info (a password may hold one).
        let after = conn
            .get(scheme_end..)
            .and_then(|s| s.rfind('@'))
            .map_or(scheme_end, |at| scheme_end.saturating_add(at));
        let Some(q) = conn.get(after..).and_then(|s| s.find('?')) else {
            return conn.to_owned();
        };
        let q = after.saturating_add(q);
        let (base, query) = conn.split_at(q);
        let query = query.get(1..).unwrap_or_default();
        let (query, fragment) = match query.find('#') {
            Some(h) => query.split_at(h),
            None => (query, ""),
        };
        let kept: Vec<&str> = query
            .split('&')
            .filter(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                if is_key(k) {
                    found(k, v);
                    false
                } else {
                    !pair.is_empty()
                }
            })
            .collect();
        let mut out = base.to_owned();
        if !kept.is_empty() {
            out.push('?');
            out.push_str(&kept.join("&"));
        }
        out.push_str(fragment);
        return out;
    }
    // libpq key-value: `key = value` pairs separated by spaces.
    let mut out = String::with_capacity(conn.len());
    let mut rest = conn;
    while !rest.trim_start().is_empty() {
        let trimmed = rest.trim_start();
        let key_len = trimmed
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(trimmed.len());
        let (key, after_key) = trimmed.split_at(key_len);
        let after_eq = after_key.trim_start();
        let Some(value_part) = after_eq.strip_prefix('=') else {
            // Not a pair: keep it as it is and let the driver report it.
            out.push_str(rest);
            return out;
        };
        let value_part = value_part.trim_start();
        let (value, value_len) = key_value(value_part);
        let (_, next) = value_part.split_at(value_len);
        if is_key(key) {
            found(key, &value);
        } else {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(key);
            out.push('=');
            out.push_str(value_part.get(..value_len).unwrap_or_default());
        }
        rest = next;
    }
    out
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
/// A key-value string's value at the start of `s`: its text (escapes resolved) and
/// its length in `s`, quotes included.
fn key_value(s: &str) -> (String, usize) {
    let mut value = String::new();
    let quoted = s.starts_with('\'');
    let mut chars = s.char_indices().skip(usize::from(quoted));
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            '\'' if quoted => return (value, i.saturating_add(1)),
            c if !quoted && c.is_whitespace() => return (value, i),
            c => value.push(c),
        }
    }
    (value, s.len())
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
/// `%XX` escapes decoded (a path in a URL may be encoded); the text as is otherwise.
fn percent_decode(text: &str) -> String {
    super::secrets::percent_decoded(text).unwrap_or_else(|| text.to_owned())
}

// The tests read both backends' options.
#[cfg(all(test, feature = "postgres", feature = "mysql"))]
mod tests {
    use super::*;

    #[test]
    fn url_options_are_read_and_removed() {
        let (tls, rest) = TlsOptions::take(
            "postgres://app:p%40ss@db:5432/keys?sslmode=verify-full&application_name=x&sslrootcert=/etc/ca%20x.pem",
            POSTGRES_NAMES,
        )
        .unwrap();
        assert_eq!(tls.mode, TlsMode::VerifyFull);
        assert_eq!(tls.root_cert, Some(PathBuf::from("/etc/ca x.pem")));
        assert_eq!(
            rest,
            "postgres://app:p%40ss@db:5432/keys?application_name=x"
        );

        let (tls, rest) =
            TlsOptions::take("mysql://u:p?w@db/keys?ssl-mode=VERIFY_CA", MYSQL_NAMES).unwrap();
        assert_eq!(tls.mode, TlsMode::VerifyCa);
        assert_eq!(rest, "mysql://u:p?w@db/keys");

        let (tls, rest) = TlsOptions::take("postgres://db/keys", POSTGRES_NAMES).unwrap();
        assert_eq!(tls.mode, TlsMode::Prefer);
        assert_eq!(rest, "postgres://db/keys");
    }

    #[test]
    fn key_value_options_are_read_and_removed() {
        let (tls, rest) = TlsOptions::take(
            "host=db password='a b\\'c' sslmode = require sslrootcert='/ca dir/ca.pem' dbname=k",
            POSTGRES_NAMES,
        )
        .unwrap();
        assert_eq!(tls.mode, TlsMode::Require);
        assert!(
            tls.verifies(),
            "require with a CA file checks the chain, as in libpq"
        );
        assert_eq!(tls.root_cert, Some(PathBuf::from("/ca dir/ca.pem")));
        assert_eq!(rest, "host=db password='a b\\'c' dbname=k");
    }

    #[test]
    fn unknown_modes_name_the_option() {
        let err = TlsOptions::take("postgres://db/k?sslmode=verify", POSTGRES_NAMES).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("sslmode=\"verify\""), "{text}");
        assert!(text.contains("verify-full"), "{text}");
        let err = TlsOptions::take("mysql://db/k?ssl-mode=ON", MYSQL_NAMES).unwrap_err();
        assert!(err.to_string().contains("VERIFY_IDENTITY"), "{err}");
    }

    #[test]
    fn a_missing_ca_file_says_which_option() {
        let (tls, _) = TlsOptions::take(
            "postgres://db/k?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
            POSTGRES_NAMES,
        )
        .unwrap();
        let err = tls.client_config().unwrap_err();
        assert!(
            matches!(
                err,
                TlsError::RootCert {
                    option: "sslrootcert",
                    ..
                }
            ),
            "{err}"
        );
    }
}
