//! # keyroute
//!
//! API keys done right for Rust backends: keys that carry a type (secret, publishable),
//! an environment (live, test), scopes and an expiry; that are rejected offline when
//! mistyped or forged and validated in microseconds when genuine; and whose
//! environment picks the database a request reaches.
//!
//! This crate is the facade: it re-exports the workspace's crates behind features.
//!
//! | module | crate | feature |
//! |---|---|---|
//! | the crate root | `keyroute-core`: keys, tokens, credentials, principals, store traits | always |
//! | [`store`] | `keyroute-store`: the store backends | `memory`, `sqlite` (default), `postgres`, `mysql` |
//! | [`router`] | `keyroute-router`: the resolver and the connection router | always |
//! | [`jwt`] | `keyroute-jwt`: exchanged JWTs, JWTs as keys, sessions, the verifier | `jwt` (default) |
//!
//! ```
//! use keyroute::{KeyOptions, KeyService, NewUser, store::MemoryStore};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let service = KeyService::new(MemoryStore::new(), KeyOptions::default())?;
//! let registration = service.register_user(NewUser::named("ada")).await?;
//! assert_eq!(registration.keys.len(), 2); // a live and a test secret key
//! # Ok::<_, keyroute::Error>(())
//! # }).unwrap();
//! ```

pub use keyroute_core::*;

/// The store backends (`keyroute-store`).
pub mod store {
    pub use keyroute_store::*;
}

/// The resolver and the connection router (`keyroute-router`).
pub mod router {
    pub use keyroute_router::*;
}

/// JWTs (`keyroute-jwt`).
#[cfg(feature = "jwt")]
pub mod jwt {
    pub use keyroute_jwt::*;
}
