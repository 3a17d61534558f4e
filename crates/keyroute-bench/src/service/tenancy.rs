//! The `keyroute-rls` and `keyroute-schema` modes: `keyroute` (the front door on its
//! defaults, the `Connected` extractor, the same handler and query) with the
//! request's tenant bound in PostgreSQL, PostgreSQL only.
//!
//! Each mode is a front door of its own, built as a service would build it, from
//! `keyroute`'s configuration plus a `[tenancy]` section, over the same key store
//! (`shared_store`), so the same keys (every key has one of [`TENANTS`] tenants) are
//! resolved the same way; it is started, and its handle then let go, exactly as
//! `keyroute`'s is, once its resolver caches (its change feed went live: before
//! that a resolver serves every request from the store, which `keyroute`'s, started
//! long before its handle goes, never does here). Its connections go to a live and a test database of its own on
//! the same server, as a role made here without SUPERUSER or BYPASSRLS (the front
//! door refuses to start in row-security mode otherwise); the tables belong to the
//! server's superuser.
//!
//! - `keyroute-rls`: `[tenancy] mode = "row_security"`. One `orders` table per
//!   database with a `tenant_id` column, every tenant's orders 1..=N in it (primary
//!   key `(tenant_id, id)`), guarded by `keyroute::routing::row_security_sql`.
//! - `keyroute-schema`: `[tenancy] mode = "schema"`, `schema = "tenant_{tenant}"`. A
//!   schema per tenant, each with `keyroute`'s own `orders` table (orders 1..=N).
//!
//! So a request reads one of N orders of its tenant with the same SQL as `keyroute`'s
//! (`SELECT item FROM orders WHERE id = $1`): the policy or the `search_path` picks
//! the tenant's rows. On SQLite and MariaDB both modes are skipped: tenancy binds
//! the tenant in PostgreSQL (row-level security, `search_path`) only.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use diesel_async::SimpleAsyncConnection;
use keyroute::axum::AuthState;
use keyroute::routing::{ConnectionRouter, row_security_sql};
use keyroute::store::{Backend, DatabaseUrl, DbPool};
use keyroute::{Config, Keyroute};

use super::{BenchDb, KeyrouteState, routed};
use crate::{BenchError, Mode, Options};

/// The tenants keys are spread over, `t00` to `t19`; one schema each in
/// `keyroute-schema`.
pub const TENANTS: usize = 20;

/// The password of the role the tenancy modes connect as. Test data only.
const APP_PASSWORD: &str = "keyroute-bench-app";

/// The tenant of the `n`th user: `t00` to `t19` in turn, so the keys of every tenant
/// are as many (give or take one user).
pub fn tenant_of(n: usize) -> String {
    format!("t{:02}", n % TENANTS)
}

/// The databases the tenancy modes run on, as the server's superuser (PostgreSQL).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TenancyDatabases {
    /// `keyroute-rls`'s live and test databases.
    pub row_security: (DatabaseUrl, DatabaseUrl),
    /// `keyroute-schema`'s live and test databases.
    pub schema: (DatabaseUrl, DatabaseUrl),
    /// The role the modes connect as, made by the set-up (roles are per server).
    pub role: String,
}

impl TenancyDatabases {
    /// The tenancy modes' databases, and the name of the role to make for them.
    pub fn new(
        row_security: (DatabaseUrl, DatabaseUrl),
        schema: (DatabaseUrl, DatabaseUrl),
        role: impl Into<String>,
    ) -> Self {
        Self {
            row_security,
            schema,
            role: role.into(),
        }
    }
}

/// One tenancy mode set up: its front door's state and router, and the configuration
/// they were built from (the counted run builds a router of its own from it).
pub(super) struct TenancyMode<B: Backend> {
    pub(super) mode: Mode,
    pub(super) auth: AuthState,
    pub(super) router: ConnectionRouter<B>,
    pub(super) config: Config,
}

/// The two modes, or why they are skipped, and what they mean.
pub(super) struct TenancyModes<B: Backend> {
    pub(super) modes: Result<Vec<TenancyMode<B>>, String>,
    /// One line per mode for the run's settings.
    pub(super) settings: String,
}

impl<B: BenchDb> TenancyModes<B> {
    /// Sets both modes up on `databases` over `keyroute`'s store, from `toml` (the
    /// configuration `keyroute` was built from, without connections); skipped with
    /// the reason when there are no databases for them (not PostgreSQL).
    ///
    /// # Errors
    /// [`BenchError::Setup`] when PostgreSQL refuses the set-up or a front door
    /// refuses to build (a row-security finding, say).
    pub(super) async fn set_up(
        databases: Option<&TenancyDatabases>,
        keyroute: &Keyroute<B>,
        toml: &str,
        options: &Options,
    ) -> Result<Self, BenchError> {
        let databases = match databases {
            Some(databases) if B::BINDS_TENANTS => databases,
            _ => {
                let reason = not_served(B::BINDS_TENANTS, B::NAME);
                let settings =
                    format!("keyroute-rls: skipped: {reason}\nkeyroute-schema: skipped: {reason}");
                return Ok(Self {
                    modes: Err(reason),
                    settings,
                });
            }
        };
        let fail = |reason: String| BenchError::Setup {
            backend: B::NAME,
            reason,
        };
        let role = &databases.role;
        let (rls_live, rls_test) = &databases.row_security;
        let (schema_live, schema_test) = &databases.schema;
        as_superuser::<B>(
            rls_live,
            &format!(
                "CREATE ROLE \"{role}\" LOGIN PASSWORD '{APP_PASSWORD}' NOSUPERUSER NOBYPASSRLS"
            ),
        )
        .await
        .map_err(&fail)?;
        for url in [rls_live, rls_test] {
            as_superuser::<B>(url, &row_security_tables(options.orders, role))
                .await
                .map_err(&fail)?;
        }
        for url in [schema_live, schema_test] {
            as_superuser::<B>(url, &schema_tables::<B>(options.orders, role))
                .await
                .map_err(&fail)?;
        }
        let mut modes = Vec::new();
        for (mode, section, (live, test)) in [
            (
                Mode::KeyrouteRls,
                "[tenancy]\nmode = \"row_security\"\n",
                &databases.row_security,
            ),
            (
                Mode::KeyrouteSchema,
                "[tenancy]\nmode = \"schema\"\nschema = \"tenant_{tenant}\"\n",
                &databases.schema,
            ),
        ] {
            let mut config = Config::from_toml_str(&format!("{toml}{section}"))
                .map_err(|e| fail(e.to_string()))?;
            let login = Some((role.as_str(), APP_PASSWORD));
            for (name, url) in [("live", live), ("test", test)] {
                let url = rewrite(url, login, None).map_err(&fail)?;
                config.router.connections.insert(name.to_owned(), url);
            }
            let front_door = Keyroute::<B>::builder()
                .config(config.clone())
                .shared_store(Arc::clone(keyroute.store()))
                .build()
                .await
                .map_err(|e| fail(format!("building {}: {e}", mode.name())))?;
            front_door
                .spawn_background()
                .map_err(|e| fail(e.to_string()))?;
            caching(&front_door.axum_state())
                .await
                .map_err(|e| fail(format!("{}: {e}", mode.name())))?;
            modes.push(TenancyMode {
                mode,
                auth: front_door.axum_state(),
                router: front_door.router().clone(),
                config,
            });
        }
        let check = modes
            .first()
            .and_then(|m| m.router.pool_named("live").ok())
            .map(|pool| format!("{:?}", pool.settings().recycling_check))
            .unwrap_or_else(|| "unknown".to_owned());
        let settings = format!(
            "keyroute-rls: keyroute's settings + [tenancy] mode = \"row_security\": one `orders` table per database ({TENANTS} tenants x {} orders, primary key (tenant_id, id)) guarded by row_security_sql; keys spread over the {TENANTS} tenants; as role {role} (NOSUPERUSER NOBYPASSRLS; the tables the superuser's); checkout check {check}\n\
             keyroute-schema: keyroute's settings + [tenancy] mode = \"schema\", schema = \"tenant_{{tenant}}\": {TENANTS} schemas per database, each with keyroute's `orders` ({} orders); as role {role}; checkout check {check}",
            options.orders, options.orders,
        );
        Ok(Self {
            modes: Ok(modes),
            settings,
        })
    }

    /// The routes of the modes set up (none when skipped).
    pub(super) fn routes(&self) -> Router {
        let mut app = Router::new();
        for mode in self.modes.iter().flatten() {
            app = app.merge(
                Router::new()
                    .route(
                        &format!("/{}/orders/{{id}}", mode.mode.name()),
                        get(routed::<B>),
                    )
                    .with_state(KeyrouteState {
                        auth: mode.auth.clone(),
                        router: mode.router.clone(),
                    }),
            );
        }
        app
    }

    /// The modes skipped, with why.
    pub(super) fn skipped(&self) -> Vec<(Mode, String)> {
        match &self.modes {
            Ok(_) => Vec::new(),
            Err(reason) => [Mode::KeyrouteRls, Mode::KeyrouteSchema]
                .into_iter()
                .map(|mode| (mode, reason.clone()))
                .collect(),
        }
    }
}

/// How long a front door's change feed may take to go live.
const FEED_LIVE_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

/// Waits until `auth`'s resolver serves from its cache (its change feed is live).
///
/// # Errors
/// When it does not within [`FEED_LIVE_WITHIN`].
async fn caching(auth: &AuthState) -> Result<(), String> {
    let started = std::time::Instant::now();
    while !auth.resolver().is_caching() {
        if started.elapsed() > FEED_LIVE_WITHIN {
            return Err(format!(
                "the resolver does not cache after {FEED_LIVE_WITHIN:?}: its change feed is not live"
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Runs `sql` on `url` as it is (the server's superuser), on a connection of its own.
async fn as_superuser<B: BenchDb>(url: &DatabaseUrl, sql: &str) -> Result<(), String> {
    let mut settings = keyroute::store::PoolSettings::default();
    settings.max_size = 1;
    let pool = DbPool::<B>::connect(url.clone(), settings)
        .await
        .map_err(|e| format!("connecting as the superuser: {e}"))?;
    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
    let first = sql.lines().next().unwrap_or_default();
    conn.batch_execute(sql)
        .await
        .map_err(|e| format!("{first}...: {e}"))
}

/// `keyroute-rls`'s table: every tenant's orders 1..=`n` in one table, row-level
/// security enabled, forced and a policy (`row_security_sql`), readable by `role`.
fn row_security_tables(n: u64, role: &str) -> String {
    let last = TENANTS - 1;
    format!(
        "CREATE TABLE orders (tenant_id TEXT NOT NULL, id BIGINT NOT NULL, item TEXT NOT NULL, \
         PRIMARY KEY (tenant_id, id));\n\
         INSERT INTO orders (tenant_id, id, item) SELECT 't' || lpad(t::text, 2, '0'), i, 'order ' || i \
         FROM generate_series(0, {last}) AS t, generate_series(1, {n}) AS i;\n\
         ANALYZE orders;\n\
         {}\
         GRANT SELECT ON orders TO \"{role}\";",
        row_security_sql("orders", "tenant_id")
    )
}

/// `keyroute-schema`'s tables: a schema per tenant with `keyroute`'s own `orders`
/// (the same statement makes and fills it), readable by `role`.
fn schema_tables<B: BenchDb>(n: u64, role: &str) -> String {
    let mut sql = String::new();
    for t in 0..TENANTS {
        let schema = format!("tenant_{}", tenant_of(t));
        let _ = write!(
            sql,
            "CREATE SCHEMA \"{schema}\";\nSET search_path TO \"{schema}\";\n{}\n\
             GRANT USAGE ON SCHEMA \"{schema}\" TO \"{role}\";\n\
             GRANT SELECT ON orders TO \"{role}\";\n",
            B::orders_sql(n)
        );
    }
    sql.push_str("RESET search_path;");
    sql
}

/// `url` with its user and password replaced by `login`, and its `host:port` by
/// `authority`, where given.
///
/// # Errors
/// When `url` is not `scheme://[user[:password]@]host[:port][/...]`.
pub(super) fn rewrite(
    url: &DatabaseUrl,
    login: Option<(&str, &str)>,
    authority: Option<&str>,
) -> Result<DatabaseUrl, String> {
    let (scheme, user, host, path) = split_url(url)?;
    let user = login.map_or_else(|| user.to_owned(), |(u, p)| format!("{u}:{p}"));
    let at = if user.is_empty() { "" } else { "@" };
    let host = authority.unwrap_or(host);
    Ok(DatabaseUrl::new(format!(
        "{scheme}://{user}{at}{host}{path}"
    )))
}

/// The `host:port` of `url`.
///
/// # Errors
/// As [`rewrite`].
pub(super) fn host_of(url: &DatabaseUrl) -> Result<String, String> {
    split_url(url).map(|(_, _, host, _)| host.to_owned())
}

/// `(scheme, user info, host:port, the rest)` of `url`.
fn split_url(url: &DatabaseUrl) -> Result<(&str, &str, &str, &str), String> {
    let text = url.expose_secret();
    let (scheme, rest) = text
        .split_once("://")
        .ok_or_else(|| "a database URL without `://`".to_owned())?;
    let (user, rest) = rest.split_once('@').unwrap_or(("", rest));
    let (host, path) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    if host.is_empty() {
        return Err("a database URL without a host".to_owned());
    }
    Ok((scheme, user, host, path))
}

/// Why the tenancy modes are not served on backend `name`: the backend cannot bind a
/// tenant, or (PostgreSQL, whose databases for them are made only when `--modes`
/// names one) they were not asked for.
fn not_served(binds_tenants: bool, name: &str) -> String {
    if binds_tenants {
        "not asked for (--modes names neither keyroute-rls nor keyroute-schema)".to_owned()
    } else {
        format!(
            "PostgreSQL only: [tenancy] binds the tenant in PostgreSQL (row-level security, search_path); on {name} a tenant gets a database of its own ([routing] template)"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On PostgreSQL the modes are left out only when not asked for, and the reason
    /// says so rather than "PostgreSQL only"; elsewhere it names the backend.
    #[test]
    fn unserved_tenancy_modes_say_why() {
        let postgres = not_served(true, "PostgreSQL");
        assert!(postgres.starts_with("not asked for"), "{postgres}");
        assert!(!postgres.contains("PostgreSQL only"), "{postgres}");
        let sqlite = not_served(false, "SQLite");
        assert!(sqlite.starts_with("PostgreSQL only"), "{sqlite}");
        assert!(sqlite.contains("on SQLite a tenant"), "{sqlite}");
    }

    /// Logins and hosts are replaced apart, and the rest of the URL is kept.
    #[test]
    fn urls_are_rewritten() {
        let url = DatabaseUrl::new("postgres://postgres:pw@db.local:5432/bench_1?sslmode=prefer");
        let app = rewrite(&url, Some(("app", "secret")), None).unwrap();
        assert_eq!(
            app.expose_secret(),
            "postgres://app:secret@db.local:5432/bench_1?sslmode=prefer"
        );
        let relayed = rewrite(&app, None, Some("127.0.0.1:4000")).unwrap();
        assert_eq!(
            relayed.expose_secret(),
            "postgres://app:secret@127.0.0.1:4000/bench_1?sslmode=prefer"
        );
        assert_eq!(host_of(&url).unwrap(), "db.local:5432");
        assert!(rewrite(&DatabaseUrl::new("nope"), None, None).is_err());
    }

    /// Tenants run `t00` to `t19` and then again.
    #[test]
    fn tenants_take_turns() {
        assert_eq!(tenant_of(0), "t00");
        assert_eq!(tenant_of(19), "t19");
        assert_eq!(tenant_of(20), "t00");
    }
}
