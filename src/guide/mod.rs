//! The guide: keyroute chapter by chapter, each with examples that run as doctests.
//!
//! | chapter | what it covers |
//! |---|---|
//! | [`keys`] | the key format, credentials, resolving keys, the key service, key options |
//! | [`authority`] | who may manage which keys: the rules and what each caller may do |
//! | [`configuration`] | `keyroute.toml`, `KEYROUTE_*` variables, every option |
//! | [`routing`] | a request's path, routing connections, TLS, failing fast, the stores |
//! | [`jwt`] | exchanged tokens, JWTs as keys, sessions, revocation |
//! | [`many_instances`] | the change feed and the revocation bound across instances |
//! | [`tenancy`] | one tenant never sees another's rows: row-level security, schema per tenant, database per tenant; read replicas |
//! | [`poolers`] | behind PgBouncer in transaction mode: the setting, what changes, the cost |
//! | [`limits`] | rate limits and credits: the pipeline step, the engines, their guarantees |
//! | [`testing`] | real databases in tests, and keyroute's own test suite |
//!
//! HTTP has its own crate and its own guide: [`crate::axum`] (feature `axum`).
//! What revocation guarantees and how to report a vulnerability: `SECURITY.md`.
//! Measured figures: `BENCHMARKS.md`.
//!
//! # Known limits
//!
//!
//! - MySQL / MariaDB `ssl-mode=VERIFY_CA` checks the host name as well, like
//!   `VERIFY_IDENTITY`: mysql_async 0.36 skips the name check by matching a message text
//!   that rustls 0.23 no longer prints. The error says so. PostgreSQL's `verify-ca`
//!   checks the chain only, as it should.
//! - Client certificates (`sslcert`, `sslkey`) are not supported yet.
//! - Outside keyroute-axum, refusing plain HTTP trusts the caller to say whether
//!   a request came over TLS (`IncomingRequest::over_tls`); keyroute-axum reads it from
//!   the server's `TlsConnection` marker and from trusted proxies only.
//! - On MySQL/MariaDB, a transaction that holds its `keyroute_events` id for more than
//!   30 s before committing could have its event skipped by pollers (see
//!   [Many instances](many_instances)); keyroute's own transactions insert the event
//!   as their last write.
//! - Dropping a SQLite query future while its query runs waits, in the drop, for that
//!   one statement to finish on its connection's thread: the connection is shared with
//!   the running query until then.
//! - A connection name with `_` (as `{tenant}_{env}` templates make) cannot be set
//!   through `KEYROUTE_DB_<NAME>`, which turns `_` into `-`; set it in the file.

#[doc = include_str!("keys.md")]
pub mod keys {}

#[doc = include_str!("authority.md")]
pub mod authority {}

#[doc = include_str!("configuration.md")]
pub mod configuration {}

#[doc = include_str!("routing.md")]
pub mod routing {}

#[cfg(feature = "jwt")]
#[doc = include_str!("jwt.md")]
pub mod jwt {}

#[doc = include_str!("many_instances.md")]
pub mod many_instances {}

#[doc = include_str!("tenancy.md")]
pub mod tenancy {}

#[doc = include_str!("poolers.md")]
pub mod poolers {}

#[doc = include_str!("limits.md")]
pub mod limits {}

#[doc = include_str!("testing.md")]
pub mod testing {}
