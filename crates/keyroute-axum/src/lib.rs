//! keyroute for axum and tower: the caller and their routed connection as extractors,
//! authentication as a layer, RFC 6750 / RFC 9457 rejections, and ServiceStack's key
//! services as routes.
//!
//! A complete service: an `orders` handler that never mentions environments (a test
//! key's order lands in the TestDb, a live key's in the LiveDb), guarded by the
//! `orders:write` scope for keys, next to the key routes and `/token`.
//!
//! ```no_run
//! use axum::{Router, routing::post};
//! use diesel_async::RunQueryDsl;
//! use keyroute::axum::{Connected, Scoped, key_routes, scope};
//! use keyroute::{Config, Keyroute};
//! use keyroute::store::Sqlite;
//!
//! scope!(OrdersWrite = "orders:write");
//!
//! async fn create_order(
//!     _guard: Scoped<OrdersWrite>,           // keys need orders:write; sessions pass
//!     Connected { caller, mut db }: Connected<Sqlite>, // who, and their database
//! ) -> Result<String, keyroute::axum::Problem> {
//!     diesel::sql_query("INSERT INTO orders (id) VALUES (lower(hex(randomblob(4))))")
//!         .execute(&mut *db)
//!         .await
//!         .map_err(|e| keyroute::axum::Problem::internal(&e))?;
//!     // live or test: not the handler's business
//!     Ok(format!("order for {:?} placed in {}\n", caller.user_id(), db.name()))
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let config = Config::load(Some("keyroute.toml".as_ref()))?;
//!     let keyroute = Keyroute::<Sqlite>::from_config(config).await?;
//!     keyroute.spawn_background()?;
//!     let app = Router::new()
//!         .route("/orders", post(create_order))
//!         .merge(key_routes())                  // /apikeys/... and /token
//!         .with_state(keyroute);
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//!     let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
//!     axum::serve(listener, app).await?;
//!     Ok(())
//! }
//! ```
//!
//! | item | what |
//! |---|---|
//! | [`Caller`] | the authenticated [`Principal`](keyroute_core::Principal) |
//! | [`Connected`] | the caller and a pooled connection to their environment's database |
//! | `Option<Caller>`, `Option<Connected<B>>` | the same, or `None` for a request with no credential; a bad one is still rejected |
//! | [`Connected<B, Option<Principal>>`](Connected) | the caller or nobody, with the anonymous route's connection for nobody |
//! | [`Scoped`], [`scope!`] | a per-route scope: keys must hold it, people's sessions pass |
//! | [`AuthLayer`] | authentication as a tower layer; puts the `Principal` into the extensions |
//! | [`Problem`] | every rejection: RFC 9457 body with a stable `code`, RFC 6750 challenge, `Retry-After` on 503 |
//! | [`http_status`] | the one map from keyroute's error classes ([`ErrorClass`](keyroute_core::ErrorClass)) to HTTP statuses |
//! | [`key_routes`], [`KeyRoutes`] | `GET/POST/DELETE /apikeys...` and `POST /token` |
//! | [`TlsConnection`], [`PeerAddr`] | what the server says about the socket |
//!
//! Extractors find keyroute in the app's state through [`FromRef`](axum_core::extract::FromRef):
//! they need an [`AuthState`] and, for connections, the
//! [`ConnectionRouter`](keyroute_router::ConnectionRouter). The facade's
//! `Keyroute<B>` provides both, so its handle can be the state itself.
//!
//! Depends on `keyroute-core` (principals, error kinds), `keyroute-router` (the
//! request pipeline), `keyroute-pool` only for the backend type of a routed connection,
//! `keyroute-jwt` with the `jwt` feature, and axum-core/axum and tower: HTTP only, no
//! domain rules, no key store.
//!
//! Whether a request is secure (unless `dangerous_accept_plain_http`) comes from the
//! server, never from what a client can write: a TLS acceptor inserts
//! [`TlsConnection`]; forwarded headers (`Forwarded`, `X-Forwarded-Proto`) count only
//! when the peer (axum's `ConnectInfo<SocketAddr>`, or [`PeerAddr`]) is in
//! `[resolver] trusted_proxies`, read from the right, one value per trusted hop.
//!
//! | feature | adds |
//! |---|---|
//! | `jwt` | `POST /token`: a key or session exchanged for a short-lived JWT |

// docs.rs (nightly, `--cfg docsrs`) marks each item with the features it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]
// Every public item is documented: a published crate's docs are its manual.
#![deny(missing_docs)]

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
