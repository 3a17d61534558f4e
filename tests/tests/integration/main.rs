//! keyroute's cross-crate integration tests, apart from the HTTP (`axum_http`) and
//! tenancy (`tenancy`) ones: one test binary, a module per area. Each module was a
//! binary of its own; every one of them linked the whole stack (diesel for three
//! backends, the router, the store, proptest) and monomorphized its generic code
//! again, so one binary builds in a fraction of the time. A module's tests are
//! selected by its path: `cargo test -p keyroute-tests --test integration many_instances::`.
//!
//! The modules share the process: one PostgreSQL and one MariaDB container (each test
//! makes databases of its own on them, see keyroute-testing), and two tests at a time
//! by default, as within any test binary.

mod common;

mod adversarial;
mod audit_trail;
mod authority_properties;
mod front_door;
mod import;
mod isolation_at_scale;
mod key_hooks;
mod key_service;
mod many_instances;
mod one_endpoint;
mod pgbouncer;
mod replicas;
mod router_config;
