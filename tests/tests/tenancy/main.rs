//! Tenancy, attacked: PostgreSQL row security and schema per tenant, what `build()`
//! refuses, a database per tenant on SQLite and on MariaDB. One test binary, a module
//! per area (each was a binary of its own, linking the whole stack again). The
//! property runs print their counts: `cargo test -p keyroute-tests --test tenancy --
//! --nocapture _keeps_every_tenant_to_its_`.
//!
//! Their deliberate handler panics are kept out of the log by a process-wide panic hook
//! (`tenant_support::quiet_expected_panics`), which hides only the payload those runs
//! panic with: any other test's panic is reported as before.

mod tenant_support;

mod tenancy;
mod tenancy_build;
mod tenancy_databases;
mod tenancy_mariadb;
