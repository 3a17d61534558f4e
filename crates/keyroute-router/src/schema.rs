//! Schema parity: an app's own diesel migrations applied to every configured
//! connection (live, test, every tenant's), and the versions each has applied compared,
//! so a TestDb that fell behind its LiveDb is reported instead of failing requests.
//!
//! keyroute's own migrations (on the key store's database) are left out of every
//! comparison: only the key store has them, by design.

use std::collections::BTreeSet;
use std::fmt;

use diesel::migration::MigrationSource;
use keyroute_core::StoreError;
use keyroute_pool::{Backend, BackendDb};

use crate::router::ConnectionRouter;

/// What one connection reported: the migration versions applied (by this call, or
/// recorded so far), or why they could not be had.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectionSchema {
    /// The connection's configured name.
    pub connection: String,
    /// The versions, oldest first, or the real cause (passwords redacted).
    pub versions: Result<Vec<String>, StoreError>,
}

/// Every configured connection's migrations, in name order.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SchemaReport {
    /// One entry per configured connection.
    pub connections: Vec<ConnectionSchema>,
    /// keyroute's own migration versions, left out of comparisons.
    pub keyroute_versions: Vec<String>,
}

/// Two connections whose applied app migrations differ.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SchemaDrift {
    /// The reference connection (`live` when configured).
    pub reference: String,
    /// The connection that differs from it.
    pub connection: String,
    /// Versions applied on the reference only.
    pub missing: Vec<String>,
    /// Versions applied on `connection` only.
    pub extra: Vec<String>,
}

impl fmt::Display for SchemaDrift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "'{}' differs from '{}': missing [{}], extra [{}]; run the app's migrations on every connection (keyroute migrate --app DIR)",
            self.connection,
            self.reference,
            self.missing.join(", "),
            self.extra.join(", ")
        )
    }
}

impl SchemaReport {
    /// Whether every connection answered.
    pub fn all_reachable(&self) -> bool {
        self.connections.iter().all(|c| c.versions.is_ok())
    }

    /// A connection's app migration versions (keyroute's own left out), if it answered.
    pub fn app_versions(&self, connection: &str) -> Option<Vec<String>> {
        let entry = self
            .connections
            .iter()
            .find(|c| c.connection == connection)?;
        let versions = entry.versions.as_ref().ok()?;
        Some(
            versions
                .iter()
                .filter(|v| !self.keyroute_versions.contains(v))
                .cloned()
                .collect(),
        )
    }

    /// Every reachable connection whose app migrations differ from the reference
    /// connection's (`live` when configured, else the first by name).
    pub fn drift(&self) -> Vec<SchemaDrift> {
        let reachable: Vec<&str> = self
            .connections
            .iter()
            .filter(|c| c.versions.is_ok())
            .map(|c| c.connection.as_str())
            .collect();
        let reference = if reachable.contains(&"live") {
            "live"
        } else {
            match reachable.first() {
                Some(first) => first,
                None => return Vec::new(),
            }
        };
        let reference_versions: BTreeSet<String> = self
            .app_versions(reference)
            .unwrap_or_default()
            .into_iter()
            .collect();
        let mut drifts = Vec::new();
        for name in reachable.iter().filter(|n| **n != reference) {
            let versions: BTreeSet<String> = self
                .app_versions(name)
                .unwrap_or_default()
                .into_iter()
                .collect();
            if versions != reference_versions {
                drifts.push(SchemaDrift {
                    reference: reference.to_owned(),
                    connection: (*name).to_owned(),
                    missing: reference_versions.difference(&versions).cloned().collect(),
                    extra: versions.difference(&reference_versions).cloned().collect(),
                });
            }
        }
        drifts
    }
}

impl<B: Backend> ConnectionRouter<B> {
    /// Applies the pending migrations of `source` (an app's `EmbeddedMigrations` or a
    /// `FileBasedMigrations` directory) to every configured connection, one after the
    /// other, and reports the versions each one applied. A connection that fails does
    /// not stop the others; check each entry.
    pub async fn migrate_each<S>(&self, source: S) -> SchemaReport
    where
        S: MigrationSource<BackendDb<B>> + Clone + Send + 'static,
    {
        self.report(|pool| {
            let source = source.clone();
            async move { pool.run_migrations_from(source).await }
        })
        .await
    }

    /// The migration versions every configured connection has applied, for
    /// [`SchemaReport::drift`]. An unreachable connection carries its real cause.
    pub async fn applied_migrations(&self) -> SchemaReport {
        self.report(|pool| async move { pool.applied_migrations().await })
            .await
    }

    /// Runs `each` on every configured connection's pool, in name order, and reports
    /// the versions each gives; an unreachable connection carries its real cause.
    async fn report<F, Fut>(&self, each: F) -> SchemaReport
    where
        F: Fn(std::sync::Arc<keyroute_pool::DbPool<B>>) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<String>, StoreError>>,
    {
        let mut connections = Vec::new();
        for name in self.connection_names() {
            let versions = match self.pool_named(&name) {
                Ok(pool) => each(pool).await,
                Err(e) => Err(StoreError::unavailable(e.to_string())),
            };
            connections.push(ConnectionSchema {
                connection: name,
                versions,
            });
        }
        SchemaReport {
            connections,
            keyroute_versions: self.inner.keyroute_versions.clone(),
        }
    }
}
