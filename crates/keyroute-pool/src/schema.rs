//! Schema reports: the migration versions each of several databases has applied (an
//! app's own, run on each by [`DbPool::run_migrations_from`](crate::DbPool::run_migrations_from),
//! or recorded so far), and the drift between them, so a TestDb that fell behind its
//! LiveDb is reported instead of failing requests.
//!
//! keyroute's own migrations (on the key store's database) are left out of every
//! comparison: only the key store has them, by design. Whoever builds a report says
//! which versions those are ([`SchemaReport::keyroute_versions`]); this crate knows
//! no key store.

use std::collections::BTreeSet;
use std::fmt;

use keyroute_core::StoreError;

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

impl ConnectionSchema {
    /// What connection `connection` reported.
    pub fn new(connection: impl Into<String>, versions: Result<Vec<String>, StoreError>) -> Self {
        Self {
            connection: connection.into(),
            versions,
        }
    }
}

impl SchemaReport {
    /// A report of `connections`, leaving `keyroute_versions` (keyroute's own
    /// migrations, which only the key store's database has) out of every comparison.
    pub fn new(connections: Vec<ConnectionSchema>, keyroute_versions: Vec<String>) -> Self {
        Self {
            connections,
            keyroute_versions,
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn versions(v: &[&str]) -> Result<Vec<String>, StoreError> {
        Ok(v.iter().map(|s| (*s).to_owned()).collect())
    }

    /// keyroute's own versions on one connection are no drift; an app version missing
    /// from a connection is, named against `live`; an unreachable connection is left
    /// out of the comparison.
    #[test]
    fn drift_leaves_keyroute_versions_out_and_names_the_rest() {
        let report = SchemaReport::new(
            vec![
                ConnectionSchema::new("live", versions(&["k1", "a1", "a2"])),
                ConnectionSchema::new("test", versions(&["a1"])),
                ConnectionSchema::new("tenant", versions(&["a1", "a2"])),
                ConnectionSchema::new("down", Err(StoreError::unavailable("refused"))),
            ],
            vec!["k1".to_owned()],
        );
        assert!(!report.all_reachable());
        assert_eq!(
            report.app_versions("live"),
            Some(vec!["a1".into(), "a2".into()])
        );
        let drift = report.drift();
        assert_eq!(drift.len(), 1, "{drift:?}");
        assert_eq!(drift[0].reference, "live");
        assert_eq!(drift[0].connection, "test");
        assert_eq!(drift[0].missing, ["a2"]);
        assert!(drift[0].extra.is_empty());
    }
}
