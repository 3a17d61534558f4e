//! What the tenancy tests share: tenants and environments, the generated-request
//! counters and generator, principals, PostgreSQL databases with an app role (row
//! security or a schema per tenant), and the panic hook that keeps the runs' deliberate
//! panics out of the log.
// Declared in the `tenancy` binary, and in `axum_http` for `axum_tenancy`'s PostgreSQL
// set-up, which uses a small part of it: unused items are expected there.
#![allow(dead_code)]
// Test code: a failed unwrap is a failed test, and the runs panic on purpose
// (`panic_any(EXPECTED_PANIC)`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use keyroute::routing::row_security_sql;
use keyroute::store::{DatabaseUrl, Postgres};
use keyroute::{Environment, Principal};
use keyroute_testing::TestDatabase;

pub(crate) const TENANTS: usize = 20;
pub(crate) const ENVS: [&str; 2] = ["live", "test"];
pub(crate) const APP_PASSWORD: &str = "tenant-app-pw";

pub(crate) const WORKERS: u64 = 8;

#[derive(QueryableByName)]
pub(crate) struct Body {
    #[diesel(sql_type = Text)]
    pub(crate) body: String,
}

#[derive(QueryableByName)]
pub(crate) struct Count {
    #[diesel(sql_type = BigInt)]
    pub(crate) n: i64,
}

pub(crate) fn tenant(i: usize) -> String {
    format!("t{i:02}")
}

pub(crate) fn principal(env: &str, tenant: Option<&str>) -> Principal {
    Principal::from_claims(
        keyroute::auth::AuthMethod::ApiKey,
        Environment::new(env).unwrap(),
    )
    .with_tenant(tenant.map(|t| keyroute::keys::Tenant::new(t).unwrap()))
}

/// `url` with the app role's credentials instead of the superuser's.
pub(crate) fn as_role(url: &DatabaseUrl, role: &str) -> DatabaseUrl {
    let text = url.expose_secret();
    let (scheme, rest) = text.split_once("://").unwrap();
    let (_, host) = rest.split_once('@').unwrap();
    DatabaseUrl::new(format!("{scheme}://{role}:{APP_PASSWORD}@{host}"))
}

pub(crate) async fn superuser(db: &TestDatabase<Postgres>) -> AsyncPgConnection {
    AsyncPgConnection::establish(db.url().expose_secret())
        .await
        .unwrap()
}

/// A role of this database's own (roles are per server), no superuser, no BYPASSRLS.
pub(crate) async fn app_role(conn: &mut AsyncPgConnection, db: &TestDatabase<Postgres>) -> String {
    let role = format!("app_{}", db.name());
    conn.batch_execute(&format!(
        "CREATE ROLE \"{role}\" LOGIN PASSWORD '{APP_PASSWORD}' NOSUPERUSER NOBYPASSRLS"
    ))
    .await
    .unwrap();
    role
}

/// Shared `notes` table guarded by keyroute's row-security SQL, owned by the
/// superuser, usable by the app role.
pub(crate) async fn row_security_database(db: &TestDatabase<Postgres>) -> DatabaseUrl {
    let mut conn = superuser(db).await;
    let role = app_role(&mut conn, db).await;
    conn.batch_execute(&format!(
        "CREATE TABLE notes (id BIGSERIAL PRIMARY KEY, \
           tenant_id TEXT NOT NULL DEFAULT current_setting('keyroute.tenant', true), body TEXT NOT NULL);\n\
         {}\
         GRANT SELECT, INSERT, UPDATE, DELETE ON notes TO \"{role}\";\n\
         GRANT USAGE ON SEQUENCE notes_id_seq TO \"{role}\";",
        row_security_sql("notes", "tenant_id")
    ))
    .await
    .unwrap();
    as_role(db.url(), &role)
}

/// A schema per tenant, each with its own `notes`, and none in `public`.
pub(crate) async fn schema_database(db: &TestDatabase<Postgres>) -> DatabaseUrl {
    let mut conn = superuser(db).await;
    let role = app_role(&mut conn, db).await;
    let mut sql = String::new();
    for i in 0..TENANTS {
        let schema = format!("tenant_{}", tenant(i));
        sql.push_str(&format!(
            "CREATE SCHEMA \"{schema}\";\
             CREATE TABLE \"{schema}\".notes (id BIGSERIAL PRIMARY KEY, tenant_id TEXT NOT NULL, body TEXT NOT NULL);\
             GRANT USAGE ON SCHEMA \"{schema}\" TO \"{role}\";\
             GRANT SELECT, INSERT, UPDATE, DELETE ON \"{schema}\".notes TO \"{role}\";\
             GRANT USAGE ON SEQUENCE \"{schema}\".notes_id_seq TO \"{role}\";"
        ));
    }
    conn.batch_execute(&sql).await.unwrap();
    as_role(db.url(), &role)
}

/// The message of the panics the runs cause on purpose.
pub(crate) const EXPECTED_PANIC: &str = "a handler panics holding its connection";

/// Keeps the panics the runs cause on purpose out of the log (thousands of
/// backtraces), and reports every other panic as the default hook does.
pub(crate) fn quiet_expected_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&EXPECTED_PANIC) {
                default(info);
            }
        }));
    });
}

/// What the property run saw.
#[derive(Default)]
pub(crate) struct Counts {
    pub(crate) requests: AtomicU64,
    pub(crate) reads: AtomicU64,
    pub(crate) rows_read: AtomicU64,
    pub(crate) writes: AtomicU64,
    pub(crate) foreign_writes_refused: AtomicU64,
    pub(crate) tampered: AtomicU64,
    pub(crate) fail_closed: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) panicked: AtomicU64,
    pub(crate) leaks: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counts {
    /// One read that returned `bodies`: each must be the reader's `marker`
    /// (`tenant|env`), or it is a leak, counted and told.
    pub(crate) fn read<'b>(&self, marker: &str, bodies: impl IntoIterator<Item = &'b str>) {
        bump(&self.reads);
        for body in bodies {
            bump(&self.rows_read);
            if body != marker {
                bump(&self.leaks);
                eprintln!("LEAK: {marker} read {body}");
            }
        }
    }

    /// A generated request that never finishes: its future dropped mid-query
    /// (`dropped`), or its handler panicking while it holds the connection.
    pub(crate) async fn interrupted<B: keyroute::store::Backend>(
        &self,
        router: &keyroute::routing::ConnectionRouter<B>,
        principal: Principal,
        dropped: bool,
    ) {
        if dropped {
            let read = "SELECT body FROM notes".to_owned();
            dropped_mid_query(
                router,
                principal,
                read,
                std::time::Duration::from_micros(50),
            )
            .await;
            bump(&self.dropped);
        } else {
            panics_holding(router, principal, None).await;
            bump(&self.panicked);
        }
    }
}

/// Checks the rows stored in the database of connection `name` (`{tenant}_{env}`):
/// each was written by that tenant in that environment. Returns how many there are.
pub(crate) fn stored_in(name: &str, rows: &[Body]) -> u64 {
    let (tenant, env) = name.split_once('_').unwrap();
    for row in rows {
        assert_eq!(
            row.body,
            format!("{tenant}|{env}"),
            "a row in {name} written by another tenant"
        );
    }
    rows.len() as u64
}

/// A small deterministic generator (xorshift), seeded per worker: reproducible runs.
pub(crate) struct Gen(pub(crate) u64);

impl Gen {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A request whose future is dropped `after` into running `sql` on its connection (a
/// client that went away mid-query).
pub(crate) async fn dropped_mid_query<B: keyroute::store::Backend>(
    router: &keyroute::routing::ConnectionRouter<B>,
    principal: Principal,
    sql: String,
    after: std::time::Duration,
) {
    let router = router.clone();
    let _ = tokio::time::timeout(after, async move {
        let mut conn = router.connection(&principal).await.unwrap();
        conn.batch_execute(&sql).await
    })
    .await;
}

/// A handler that runs `sql` (when given) on its connection and then panics holding
/// it; the panic is the expected one, kept out of the log.
pub(crate) async fn panics_holding<B: keyroute::store::Backend>(
    router: &keyroute::routing::ConnectionRouter<B>,
    principal: Principal,
    sql: Option<String>,
) {
    let router = router.clone();
    let handler = tokio::spawn(async move {
        let mut conn = router.connection(&principal).await.unwrap();
        if let Some(sql) = sql {
            conn.batch_execute(&sql).await.unwrap();
        }
        std::panic::panic_any(EXPECTED_PANIC);
    });
    assert!(handler.await.unwrap_err().is_panic());
}
