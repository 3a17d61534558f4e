//! The orders service: `POST /orders` and `GET /orders` on the caller's tenant's live or
//! test database, chosen by the key alone, and keyroute's key routes under
//! `/apikeys`. Handlers never mention environments or tenants to pick a database.
//!
//! It runs on PostgreSQL in production (`src/main.rs`) and is tested on SQLite and
//! PostgreSQL (`tests/orders.rs`, with keyroute-testing): the queries are written once
//! and implemented for both by the `orders_db!` macro.

use std::future::Future;

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use diesel::{Insertable, QueryDsl, QueryResult, Queryable, Selectable, SelectableHelper};
use keyroute::axum::{Connected, Problem, Scoped, key_routes, scope};
use keyroute::routing::RoutedConnection;
use keyroute::store::{Postgres, Sqlite, StoreBackend};
use keyroute::{KeyId, Keyroute};
use serde::{Deserialize, Serialize};

/// The service's diesel migrations, compiled in.
pub const MIGRATIONS: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("migrations");

diesel::table! {
    /// One order, in the database of its tenant and environment.
    orders (id) {
        /// A random id.
        id -> Text,
        /// The tenant of the key that placed it.
        tenant -> Text,
        /// What was ordered.
        item -> Text,
        /// How many.
        quantity -> Integer,
    }
}

scope!(
    /// Reading orders.
    pub OrdersRead = "orders:read"
);
scope!(
    /// Placing orders.
    pub OrdersWrite = "orders:write"
);

/// An order as stored and as returned.
#[derive(
    Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, Serialize, Deserialize,
)]
#[diesel(table_name = orders)]
pub struct Order {
    /// A random id.
    pub id: String,
    /// The tenant of the key that placed it.
    pub tenant: String,
    /// What was ordered.
    pub item: String,
    /// How many.
    pub quantity: i32,
}

/// The body of `POST /orders`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewOrder {
    /// What to order: 1 to 200 characters.
    pub item: String,
    /// How many: 1 to 1000.
    pub quantity: i32,
}

/// What `POST /orders` answers: the order and the database it landed in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Placed {
    /// The stored order.
    pub order: Order,
    /// The connection the key was routed to (`acme_test`).
    pub database: String,
}

/// The two queries the service runs, for each backend it runs on.
pub trait OrdersDb: StoreBackend {
    /// Stores `order`.
    fn insert_order<'a>(
        db: &'a mut RoutedConnection<Self>,
        order: &'a Order,
    ) -> impl Future<Output = QueryResult<usize>> + Send + 'a;

    /// Every order, oldest id first.
    fn list_orders(
        db: &mut RoutedConnection<Self>,
    ) -> impl Future<Output = QueryResult<Vec<Order>>> + Send + '_;
}

/// Implements [`OrdersDb`] for backends whose diesel-async connections take the same
/// query code: one body, compiled for each connection type.
macro_rules! orders_db {
    ($($backend:ty),*) => {$(
        impl OrdersDb for $backend {
            fn insert_order<'a>(
                db: &'a mut RoutedConnection<Self>,
                order: &'a Order,
            ) -> impl Future<Output = QueryResult<usize>> + Send + 'a {
                use diesel_async::RunQueryDsl;
                async move {
                    diesel::insert_into(orders::table)
                        .values(order)
                        .execute(&mut **db)
                        .await
                }
            }

            fn list_orders(
                db: &mut RoutedConnection<Self>,
            ) -> impl Future<Output = QueryResult<Vec<Order>>> + Send + '_ {
                use diesel_async::RunQueryDsl;
                async move {
                    orders::table
                        .select(Order::as_select())
                        .order(orders::id)
                        .load(&mut **db)
                        .await
                }
            }
        }
    )*};
}
orders_db!(Sqlite, Postgres);

/// `POST /orders`: stores the order in the caller's database.
async fn place<B: OrdersDb>(
    _scope: Scoped<OrdersWrite>,
    Connected { caller, mut db }: Connected<B>,
    Json(new): Json<NewOrder>,
) -> Result<(StatusCode, Json<Placed>), Problem> {
    let item = new.item.trim();
    if item.is_empty() || item.chars().count() > 200 {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_item",
            "item must be 1 to 200 characters",
        ));
    }
    if !(1..=1000).contains(&new.quantity) {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_quantity",
            "quantity must be 1 to 1000",
        ));
    }
    let order = Order {
        id: KeyId::random().to_string(),
        tenant: caller
            .tenant()
            .map(|t| t.as_str().to_owned())
            .unwrap_or_default(),
        item: item.to_owned(),
        quantity: new.quantity,
    };
    B::insert_order(&mut db, &order)
        .await
        .map_err(|e| Problem::internal(&e))?;
    let database = db.name().to_owned();
    Ok((StatusCode::CREATED, Json(Placed { order, database })))
}

/// `GET /orders`: the orders in the caller's database.
async fn list<B: OrdersDb>(
    _scope: Scoped<OrdersRead>,
    Connected { mut db, .. }: Connected<B>,
) -> Result<Json<Vec<Order>>, Problem> {
    let orders = B::list_orders(&mut db)
        .await
        .map_err(|e| Problem::internal(&e))?;
    Ok(Json(orders))
}

/// The service's routes: orders, and keyroute's key routes (`/apikeys`, `/token` when
/// JWTs are on).
pub fn router<B: OrdersDb>(keyroute: Keyroute<B>) -> Router {
    Router::new()
        .route("/orders", post(place::<B>).get(list::<B>))
        .merge(key_routes())
        .with_state(keyroute)
}
