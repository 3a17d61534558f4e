//! An app's diesel migrations directory, read before any database is made, applied to
//! each of a test's databases, and a failure traced back to its `up.sql`.

use std::path::{Path, PathBuf};

use diesel_migrations::FileBasedMigrations;
use keyroute::store::Backend;

use crate::{TestAppError, TestDatabase};

/// A checked migrations directory.
#[derive(Clone)]
pub(crate) struct AppMigrations {
    dir: PathBuf,
    /// diesel's source over `dir`, found once and cloned for each database.
    source: FileBasedMigrations,
    /// Each migration's folder name and folder.
    folders: Vec<(String, PathBuf)>,
}

impl AppMigrations {
    /// Reads `dir`: it must exist, and every folder in it must hold an `up.sql`.
    pub(crate) fn open(dir: &Path) -> Result<Self, TestAppError> {
        let refuse = |reason: String| TestAppError::MigrationsDir {
            path: dir.to_path_buf(),
            reason,
        };
        let entries = std::fs::read_dir(dir).map_err(|e| refuse(e.to_string()))?;
        let mut folders = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| refuse(e.to_string()))?.path();
            if !path.is_dir() {
                continue;
            }
            let up = path.join("up.sql");
            if !up.is_file() {
                return Err(refuse(format!("{} has no up.sql", path.display())));
            }
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            folders.push((name, path));
        }
        if folders.is_empty() {
            return Err(refuse("it holds no migration folders".to_owned()));
        }
        let source = FileBasedMigrations::from_path(dir).map_err(|e| refuse(e.to_string()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            source,
            folders,
        })
    }

    /// The directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Applies every pending migration to `db`, the test's connection `connection`.
    pub(crate) async fn apply<B: Backend>(
        &self,
        db: &TestDatabase<B>,
        connection: &str,
    ) -> Result<(), TestAppError> {
        db.apply_migrations(self.source.clone())
            .await
            .map_err(|e| {
                let cause = e.to_string();
                TestAppError::Migration {
                    file: self.file_named_in(&cause),
                    connection: connection.to_owned(),
                    cause,
                }
            })?;
        Ok(())
    }

    /// The `up.sql` of the migration diesel names in `message` ("Failed to run
    /// 2024-02-01-000000_gadgets with: ..."), or the directory when none is named.
    fn file_named_in(&self, message: &str) -> PathBuf {
        self.folders
            .iter()
            .filter(|(name, _)| !name.is_empty() && message.contains(name.as_str()))
            .max_by_key(|(name, _)| name.len())
            .map_or_else(|| self.dir.clone(), |(_, folder)| folder.join("up.sql"))
    }
}
