//! keyroute's cross-crate integration tests live in `tests/`; this library is empty.
//!
//! They are a crate of their own so the root package's dev-dependencies stay small:
//! `cargo run --example quickstart` then builds no testcontainers or Docker client.
