//! Runs the orders service on PostgreSQL: reads `keyroute.toml` (and `KEYROUTE_*`
//! variables, e.g. `KEYROUTE_CONNECTIONS_ACME_LIVE`), applies the service's
//! migrations to every connection, and listens on `ORDERS_ADDR` (default
//! 127.0.0.1:8080).
#![allow(clippy::print_stdout)] // a server says where it listens

use std::net::SocketAddr;
use std::path::Path;

use keyroute::store::Postgres;
use keyroute::{Config, Keyroute};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::load(Some(Path::new("keyroute.toml")))?;
    let keyroute = Keyroute::<Postgres>::from_config(config).await?;
    keyroute.spawn_background()?;
    let report = keyroute.router().migrate_each(orders::MIGRATIONS).await;
    for connection in &report.connections {
        if let Err(e) = &connection.versions {
            return Err(format!("migrating {}: {e}", connection.connection).into());
        }
    }
    let addr = std::env::var("ORDERS_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("orders on http://{}", listener.local_addr()?);
    let service = orders::router(keyroute).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, service).await?;
    Ok(())
}
