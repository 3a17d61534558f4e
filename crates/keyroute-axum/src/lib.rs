#![doc = include_str!("../README.md")]

mod extract;
mod layer;
mod problem;
mod routes;
mod state;

pub use extract::{Caller, Connected, ScopeName, Scoped};
pub use layer::{AuthLayer, AuthService};
pub use problem::{Problem, http_status};
pub use routes::{KeyRoute, KeyRoutes, MAX_BODY_BYTES, key_routes};
pub use state::{AuthState, PeerAddr, TlsConnection};
