//! keyroute's cross-crate integration tests live in `tests/tests/`; this library is
//! empty.
//!
//! They are a package of their own (keyroute-tests, unpublished, at the workspace's
//! top-level `tests/`) so the root package's dev-dependencies stay small:
//! `cargo run --example quickstart` then builds no testcontainers or Docker client.
//! They may depend on every keyroute crate.
