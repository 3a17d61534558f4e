//! keyroute's cross-crate integration tests live in `tests/tests/`; this library is
//! empty.
//!
//! They are three test binaries, each a directory with a `main.rs` and a module per
//! area: `integration` (the front door, keys, instances, poolers, isolation at scale),
//! `axum_http` (everything over real HTTP) and `tenancy`. Three, not one per area:
//! every test binary links the whole stack and monomorphizes its generic code again.
//! Select a module's tests by its path:
//! `cargo test -p keyroute-tests --test integration many_instances::`.
//!
//! They are a package of their own (keyroute-tests, unpublished, at the workspace's
//! top-level `tests/`) so the root package's dev-dependencies stay small:
//! `cargo run --example quickstart` then builds no testcontainers or Docker client.
//! They may depend on every keyroute crate.
