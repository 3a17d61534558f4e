//! keyroute over real HTTP: the example service (`examples/service.rs`) and the axum
//! extractors, layer and key routes, served on `127.0.0.1` and driven by a real client
//! and the real `curl`. One test binary, a module per area (each was a binary of its
//! own, linking and monomorphizing the whole axum and diesel stack again). A module's
//! tests are selected by its path: `cargo test -p keyroute-tests --test axum_http axum_limits::`.
//!
//! Named `axum_http`, not `axum`: a test target's crate name is its own, and one named
//! `axum` would share its name with the axum crate it uses.

mod axum_support;
// Tenancy over HTTP (`axum_tenancy`) sets up its PostgreSQL database as the tenancy
// tests do; the rest of `tenant_support` goes unused here.
#[path = "../tenancy/tenant_support/mod.rs"]
mod tenant_support;

mod axum_audit;
mod axum_authority;
mod axum_authority_table;
mod axum_concurrency;
mod axum_key_routes;
mod axum_layer;
mod axum_leaks;
mod axum_limits;
mod axum_rejections;
mod axum_service;
mod axum_tenancy;
mod axum_update;
mod axum_users;
