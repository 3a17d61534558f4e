//! `build()` refuses, naming each, every way a request could get around PostgreSQL's
//! row-level security with `[tenancy] mode = "row_security"`: a superuser, a
//! `BYPASSRLS` role, a table the role owns without `FORCE ROW LEVEL SECURITY`, a tenant
//! table with row security off or without a policy; with all of them mended it builds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use crate::tenant_support::{row_security_database, superuser};
use diesel_async::SimpleAsyncConnection;
use keyroute::store::{DatabaseUrl, Postgres};
use keyroute::{BuildError, Config, Keyroute};

fn config(url: &DatabaseUrl, store: &str) -> Config {
    Config::from_toml_str(&format!(
        "[apikey]\ndangerous_accept_plain_http = true\n\
         [store]\nurl = {store:?}\n\
         [connections]\nlive = {:?}\ntest = {:?}\n\
         [tenancy]\nmode = \"row_security\"\n",
        url.expose_secret(),
        url.expose_secret(),
    ))
    .unwrap()
}

/// Builds keyroute with its connections at `url` (keys in the superuser's database).
async fn build_findings(url: &DatabaseUrl, store: &DatabaseUrl) -> Result<(), String> {
    match Keyroute::<Postgres>::builder()
        .config(config(url, store.expose_secret()))
        .build()
        .await
    {
        Ok(_) => Ok(()),
        Err(BuildError::RowSecurity(findings)) => {
            Err(BuildError::RowSecurity(findings).to_string())
        }
        Err(e) => panic!("not a row-security refusal: {e}"),
    }
}

/// `build()` refuses each way around the policies, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_refuses_roles_and_tables_that_bypass_row_security() {
    let db = keyroute_testing::postgres().await.unwrap();
    let app = row_security_database(&db).await;
    let mut su = superuser(&db).await;
    let role = format!("app_{}", db.name());

    // The superuser itself.
    let refused = build_findings(db.url(), db.url()).await.unwrap_err();
    assert!(refused.contains("is a superuser"), "{refused}");

    // BYPASSRLS.
    su.batch_execute(&format!("ALTER ROLE \"{role}\" BYPASSRLS"))
        .await
        .unwrap();
    let refused = build_findings(&app, db.url()).await.unwrap_err();
    assert!(refused.contains("has BYPASSRLS"), "{refused}");
    su.batch_execute(&format!("ALTER ROLE \"{role}\" NOBYPASSRLS"))
        .await
        .unwrap();

    // The app role owns a tenant table that does not force row security.
    su.batch_execute(&format!(
        "CREATE TABLE owned (id INT, tenant_id TEXT);\
         ALTER TABLE owned ENABLE ROW LEVEL SECURITY;\
         CREATE POLICY p ON owned USING (tenant_id = current_setting('keyroute.tenant', true));\
         ALTER TABLE owned OWNER TO \"{role}\";"
    ))
    .await
    .unwrap();
    let refused = build_findings(&app, db.url()).await.unwrap_err();
    assert!(refused.contains("owns table public.owned"), "{refused}");
    assert!(refused.contains("FORCE ROW LEVEL SECURITY"), "{refused}");
    su.batch_execute("ALTER TABLE owned FORCE ROW LEVEL SECURITY")
        .await
        .unwrap();

    // A tenant table without row security, and one with it but no policy.
    su.batch_execute(
        "CREATE TABLE open_table (tenant_id TEXT);\
         CREATE TABLE no_policy (tenant_id TEXT); ALTER TABLE no_policy ENABLE ROW LEVEL SECURITY;",
    )
    .await
    .unwrap();
    let refused = build_findings(&app, db.url()).await.unwrap_err();
    assert!(
        refused.contains("public.open_table has the tenant column but row-level security is off"),
        "{refused}"
    );
    assert!(
        refused.contains("public.no_policy has the tenant column but no policy"),
        "{refused}"
    );
    assert!(refused.contains("connection 'live'"), "{refused}");
    su.batch_execute("DROP TABLE open_table; DROP TABLE no_policy")
        .await
        .unwrap();

    // Everything guarded: it builds.
    build_findings(&app, db.url()).await.unwrap();
}

/// A tenancy mode with `[routing] url_template` is refused, naming `[tenancy] mode`:
/// each tenant already has a database of its own, which opens on first use, so the
/// row-security check could not have looked at any of them before requests came.
#[test]
fn a_tenancy_mode_with_a_url_template_is_refused() {
    for mode in ["row_security", "schema"] {
        let config = Config::from_toml_str(&format!(
            "[routing]\nurl_template = \"postgres://app:secret@db/{{tenant}}_{{env}}\"\n\
             [tenancy]\nmode = \"{mode}\"\n"
        ))
        .unwrap();
        let err = config.router.router::<Postgres>().unwrap_err().to_string();
        assert!(err.contains("[tenancy] option `mode`"), "{mode}: {err}");
        assert!(err.contains("url_template"), "{mode}: {err}");
        assert!(!err.contains("secret"), "{mode}: {err}");
    }
}
