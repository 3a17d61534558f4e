#![doc = include_str!("../README.md")]
// docs.rs (nightly, `--cfg docsrs`) marks each item with the features it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]
// Every public item is documented: a published crate's docs are its manual.
#![deny(missing_docs)]

mod extract;
mod layer;
mod limits;
mod problem;
mod routes;
mod state;

pub use extract::{Caller, Connected, ConnectedRead, ScopeName, Scoped};
pub use layer::{AuthLayer, AuthService};
pub use limits::{RATELIMIT, RATELIMIT_POLICY, RequestCost};
pub use problem::{Problem, http_status};
pub use routes::{
    KeyRoute, KeyRoutes, MAX_ALERT_BYTES, MAX_BODY_BYTES, ScanningKeysError, SecretScanning,
    key_routes,
};
pub use state::{AuthState, PeerAddr, TlsConnection};
