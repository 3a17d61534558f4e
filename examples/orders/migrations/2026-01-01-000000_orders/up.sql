-- Portable SQL: the same migration runs on PostgreSQL and SQLite.
CREATE TABLE orders (
    id TEXT PRIMARY KEY NOT NULL,
    tenant TEXT NOT NULL,
    item TEXT NOT NULL,
    quantity INTEGER NOT NULL CHECK (quantity > 0)
);
