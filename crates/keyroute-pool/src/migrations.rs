//! An app's own diesel migrations on a pool's database, and the versions a database
//! has applied: the pieces of schema parity between live and test databases.
//!
//! diesel's migration harness is synchronous, so each call takes a pooled connection
//! and runs the harness on a blocking thread through diesel-async's
//! `AsyncMigrationHarness`, as the store does for keyroute's own migrations.

use diesel::migration::MigrationSource;
use keyroute_core::{StoreError, StoreResult};

use super::{Backend, BackendDb, DbPool};

impl<B: Backend> DbPool<B> {
    /// Applies the pending migrations of `source` (an app's `EmbeddedMigrations`, or a
    /// `FileBasedMigrations` directory) to this database and returns the versions
    /// applied, oldest first; none when it was current. Idempotent.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when no connection can be had;
    /// [`StoreError::Migration`] when a migration fails (earlier ones stay applied,
    /// the failing one is rolled back where the database allows).
    pub async fn run_migrations_from<S>(&self, source: S) -> StoreResult<Vec<String>>
    where
        S: MigrationSource<BackendDb<B>> + Send + 'static,
    {
        let conn = self.get_owned().await?;
        tokio::task::spawn_blocking(move || B::run_migrations_from(conn, source))
            .await
            .map_err(StoreError::migration)?
            .map_err(|e| self.migration_error(e))
    }

    /// As [`run_migrations_from`](Self::run_migrations_from), in PostgreSQL schema
    /// `schema` (created when missing): the connection's `search_path` is that schema
    /// alone while the harness runs, so the migrations' tables and diesel's record of
    /// them (`__diesel_schema_migrations`) are the schema's own, and a second run
    /// applies only what is pending there. It runs on a connection of its own, closed
    /// afterwards, so the `search_path` reaches nothing else.
    ///
    /// # Errors
    /// As [`run_migrations_from`](Self::run_migrations_from);
    /// [`StoreError::Misuse`] on a backend without schemas.
    pub async fn run_migrations_in_schema<S>(
        &self,
        source: S,
        schema: &str,
    ) -> StoreResult<Vec<String>>
    where
        S: MigrationSource<BackendDb<B>> + Send + 'static,
    {
        let conn = self.in_schema(schema, true).await?;
        tokio::task::spawn_blocking(move || B::run_migrations_from(conn, source))
            .await
            .map_err(StoreError::migration)?
            .map_err(|e| self.migration_error(e))
    }

    /// The migration versions recorded in PostgreSQL schema `schema`, oldest first,
    /// read as [`run_migrations_in_schema`](Self::run_migrations_in_schema) writes them.
    ///
    /// # Errors
    /// As [`applied_migrations`](Self::applied_migrations); a schema that does not
    /// exist is an error.
    pub async fn applied_migrations_in_schema(&self, schema: &str) -> StoreResult<Vec<String>> {
        let conn = self.in_schema(schema, false).await?;
        tokio::task::spawn_blocking(move || B::applied_migrations(conn))
            .await
            .map_err(StoreError::migration)?
            .map_err(|e| self.migration_error(e))
    }

    /// A connection of its own (its pool of one is dropped with it) with `schema` alone
    /// on its `search_path`, the schema created first when `create`.
    async fn in_schema(
        &self,
        schema: &str,
        create: bool,
    ) -> StoreResult<crate::OwnedConnection<B>> {
        use diesel_async::SimpleAsyncConnection;
        if !B::BINDS_TENANTS {
            return Err(StoreError::Misuse(format!(
                "{}: migrations per tenant schema need PostgreSQL",
                B::NAME
            )));
        }
        let mut settings = self.settings.clone();
        settings.max_size = 1;
        settings.min_idle = None;
        let own = Self::lazy(self.url.clone(), settings)?;
        let mut conn = own.get_owned().await?;
        let schema = crate::quote_identifier(schema);
        let create = if create {
            format!("CREATE SCHEMA IF NOT EXISTS {schema}; ")
        } else {
            String::new()
        };
        conn.batch_execute(&format!("{create}SET search_path TO {schema}"))
            .await
            .map_err(|e| self.migration_error(e))?;
        Ok(conn)
    }

    /// Every migration version recorded in diesel's `__diesel_schema_migrations` on
    /// this database (keyroute's own included when the key store lives here), oldest
    /// first. Creates the (empty) table when the database has none.
    ///
    /// # Errors
    /// As [`run_migrations_from`](Self::run_migrations_from).
    pub async fn applied_migrations(&self) -> StoreResult<Vec<String>> {
        if self.transaction_pooled() {
            // Not diesel's harness: behind a transaction pooler its prepare and
            // execute, two exchanges outside a transaction, can reach two server
            // connections ("prepared statement \"s5\" does not exist" in `keyroute
            // doctor`). A unit keeps them on one.
            let mut unit = self.unit().await?;
            let mut versions = B::applied_versions(&mut unit)
                .await
                .map_err(|e| self.migration_error(e))?;
            unit.commit().await.map_err(|e| self.migration_error(e))?;
            versions.sort();
            return Ok(versions);
        }
        let conn = self.get_owned().await?;
        tokio::task::spawn_blocking(move || B::applied_migrations(conn))
            .await
            .map_err(StoreError::migration)?
            .map_err(|e| self.migration_error(e))
    }

    /// A migration failure, its message redacted of the pool's URL.
    fn migration_error(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::migration(self.url().redact(&e.to_string()))
    }
}
