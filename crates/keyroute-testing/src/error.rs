//! [`TestAppError`]: why a test's keyroute app could not be built or used.

use std::path::PathBuf;

use keyroute::{BuildError, ConfigError, KeyServiceError, RouteError};

use crate::HarnessError;

/// Why [`TestApp`](crate::TestApp) could not build a test's app, or one of its helpers
/// failed. Each message names what to change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestAppError {
    /// No database could be had (no engine, no image, a container that did not start).
    #[error(transparent)]
    Harness(#[from] HarnessError),
    /// The migrations directory is missing or is not a diesel migrations directory.
    #[error(
        "migrations directory {}: {reason}; give `migrations(..)` a diesel migrations directory \
         (one folder per migration, each with an up.sql), relative to the crate's Cargo.toml",
        path.display()
    )]
    MigrationsDir {
        /// The directory given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A migration's SQL failed on one of the test's databases.
    #[error("migration {} failed on the {connection} database: {cause}", file.display())]
    Migration {
        /// The failing migration's `up.sql` (the directory when it cannot be told).
        file: PathBuf,
        /// The connection whose database refused it.
        connection: String,
        /// What the database said.
        cause: String,
    },
    /// The configuration given to the builder (`config`, `config_file`) is invalid.
    #[error("the test's keyroute configuration: {0}")]
    Config(#[from] ConfigError),
    /// A tenant name given to `tenants(..)` is not a valid tenant.
    #[error("tenants(..): {tenant:?} is not a tenant name: {reason}")]
    Tenant {
        /// The name given.
        tenant: String,
        /// Why it is refused.
        reason: String,
    },
    /// A key helper was given a name keyroute refuses (environment, key type, scope).
    #[error("{what} {value:?}: {reason}")]
    Name {
        /// What the name was for (`environment`, `key type`, `scope`, `tenant`).
        what: &'static str,
        /// The name given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// keyroute refused the configuration or could not open its store.
    #[error("building keyroute for the test: {0}")]
    Build(#[from] BuildError),
    /// The key service refused a helper's request.
    #[error("key service: {0}")]
    Keys(#[from] KeyServiceError),
    /// A connection the test asked for does not exist or cannot be had.
    #[error("connection: {0}")]
    Route(#[from] RouteError),
    /// The app could not be served on 127.0.0.1.
    #[error("serving the app on 127.0.0.1: {0}")]
    Serve(#[from] std::io::Error),
}
