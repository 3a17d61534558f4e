//! The router's configuration and bounds: TOML and environment variables describe the
//! same router, routes fail closed, anonymous access is opt-in, and pools stay within
//! their bounds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::sync::Arc;

use crate::common::bearer;
use keyroute::auth::{AuthMethod, KeyResolver};
use keyroute::keys::{KeyOptions, KeyService, Tenant};
use keyroute::routing::Gateway;
use keyroute::sections::RouterConfig;
use keyroute::store::{MemoryStore, Sqlite};
use keyroute::{Config, ConfigError, Environment, IncomingRequest, NewUser, Principal, RouteError};

/// The router's sections of a TOML document, read through keyroute's one `Config`.
fn from_toml(toml: &str) -> Result<RouterConfig, ConfigError> {
    Config::from_toml_str(toml).map(|c| c.router)
}

/// The router's sections of these variables, read through keyroute's one `Config`.
fn from_env<'a>(
    vars: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<RouterConfig, ConfigError> {
    Config::from_env_vars(vars).map(|c| c.router)
}

fn principal(env: Environment, tenant: Option<&str>) -> Principal {
    Principal::from_claims(AuthMethod::ApiKey, env)
        .with_tenant(tenant.map(|t| Tenant::new(t).unwrap()))
}

/// A TOML file and environment variables configure the same router.
#[tokio::test]
async fn toml_and_environment_agree() {
    let (live, test) = (
        keyroute_testing::sqlite().unwrap(),
        keyroute_testing::sqlite().unwrap(),
    );
    let from_toml = from_toml(&format!(
        r#"
        [apikey]
        key_types = ["secret"]

        [connections]
        live = "{}"
        test = "{}"

        [pools]
        max_size = 4
        max_pools = 8
        "#,
        live.url().expose_secret(),
        test.url().expose_secret()
    ))
    .unwrap();
    let from_env = from_env([
        ("KEYROUTE_DB_LIVE", live.url().expose_secret()),
        ("KEYROUTE_DB_TEST", test.url().expose_secret()),
        ("KEYROUTE_POOLS_MAX_SIZE", "4"),
        ("KEYROUTE_POOLS_MAX_POOLS", "8"),
        ("HOME", "/root"),
    ])
    .unwrap();
    for config in [from_toml, from_env] {
        assert_eq!(
            config.connections.keys().collect::<Vec<_>>(),
            ["live", "test"]
        );
        let router = config.router::<Sqlite>().unwrap();
        let conn = router
            .connection(&principal(Environment::TEST, None))
            .await
            .unwrap();
        assert_eq!(conn.name(), "test");
        assert!(
            matches!(
                router
                    .connection(&principal(Environment::new("staging").unwrap(), None))
                    .await,
                Err(RouteError::NoRoute { .. })
            ),
            "an unconfigured environment has no route, and no fallback"
        );
    }
}

/// Variable names map to connection names; unknown and invalid settings are named.
#[test]
fn configuration_errors_name_the_setting() {
    let config = from_env([("KEYROUTE_DB_EU_LIVE", "eu.db")]).unwrap();
    assert!(config.connections.contains_key("eu-live"));
    for (var, value, needle) in [
        (
            "KEYROUTE_ROUTING_TEMPLAT",
            "{env}",
            "KEYROUTE_ROUTING_TEMPLAT",
        ),
        ("KEYROUTE_POOLS_MAX_SIZE", "many", "KEYROUTE_POOLS_MAX_SIZE"),
    ] {
        let err = from_env([(var, value)]).unwrap_err();
        assert!(err.to_string().contains(needle), "{err}");
    }
    let err = from_toml("[routing]\ntemplates = \"{env}\"").unwrap_err();
    assert!(err.to_string().contains("templates"), "{err}");
    let both = from_toml(
        "[connections]\nlive = \"x.db\"\n[routing]\ntemplate = \"{env}\"\ntable = { live = \"x\" }",
    )
    .unwrap();
    assert!(matches!(
        both.router::<Sqlite>(),
        Err(RouteError::Config(_))
    ));
    let dangling =
        from_toml("[connections]\nlive = \"x.db\"\n[routing]\nanonymous = \"public\"").unwrap();
    assert!(matches!(
        dangling.router::<Sqlite>(),
        Err(RouteError::Config(_))
    ));
    assert!(matches!(
        RouterConfig::default().router::<Sqlite>(),
        Err(RouteError::Config(_))
    ));
}

/// Without credentials a request gets a connection only from an explicit anonymous
/// route; a bad credential never falls back to it.
#[tokio::test]
async fn anonymous_access_is_opt_in() {
    let (public, live) = (
        keyroute_testing::sqlite().unwrap(),
        keyroute_testing::sqlite().unwrap(),
    );
    let store = Arc::new(MemoryStore::new());
    let resolver = KeyResolver::builder(Arc::clone(&store), KeyOptions::default())
        .build()
        .unwrap();
    let config = from_env([
        ("KEYROUTE_DB_LIVE", live.url().expose_secret()),
        ("KEYROUTE_DB_PUBLIC", public.url().expose_secret()),
    ])
    .unwrap();
    let closed = Gateway::new(resolver.clone(), config.router::<Sqlite>().unwrap());
    let no_credentials = http::HeaderMap::new();
    let request = IncomingRequest::new(&no_credentials);
    assert!(matches!(
        closed.connect_or_anonymous(&request).await,
        Err(RouteError::Anonymous)
    ));

    let open = Gateway::new(
        resolver,
        config
            .builder::<Sqlite>()
            .unwrap()
            .anonymous_route("public")
            .build()
            .unwrap(),
    );
    let (who, conn) = open.connect_or_anonymous(&request).await.unwrap();
    assert!(who.is_none());
    assert_eq!(conn.name(), "public");
    let forged = bearer("sk_live_not-a-real-key-at-all-but-long-enough");
    let rejected = open
        .connect_or_anonymous(&IncomingRequest::new(&forged))
        .await;
    assert!(matches!(rejected, Err(RouteError::Auth(_))), "{rejected:?}");
}

/// With more tenants than open pools allowed, the least recently used pool closes.
#[tokio::test]
async fn open_pools_stay_within_their_bound() {
    let dbs: Vec<_> = (0..3)
        .map(|_| keyroute_testing::sqlite().unwrap())
        .collect();
    let mut config =
        from_toml("[routing]\ntemplate = \"{tenant}_{env}\"\n[pools]\nmax_pools = 2").unwrap();
    for (tenant, db) in ["a", "b", "c"].iter().zip(&dbs) {
        config
            .connections
            .insert(format!("{tenant}_live"), db.url().clone());
    }
    let router = config.router::<Sqlite>().unwrap();
    for tenant in ["a", "b", "a", "c"] {
        let conn = router
            .connection(&principal(Environment::LIVE, Some(tenant)))
            .await
            .unwrap();
        assert_eq!(conn.name(), format!("{tenant}_live"));
    }
    assert_eq!(
        router.open_pools(),
        ["a_live", "c_live"],
        "b was the least recently used"
    );
    let err = router
        .connection(&principal(Environment::LIVE, None))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RouteError::NoRoute { .. }),
        "a template needing a tenant fails closed: {err}"
    );
}

/// A key whose tenant has no connection gets NoRoute, with the tenant named.
#[tokio::test]
async fn tenants_without_a_connection_have_no_route() {
    let acme = keyroute_testing::sqlite().unwrap();
    let store = Arc::new(MemoryStore::new());
    let mut options = KeyOptions::default();
    options.dangerous_accept_plain_http = true;
    let service = KeyService::new(Arc::clone(&store), options.clone()).unwrap();
    let globex = service
        .register_user(NewUser::named("g").with_tenant(Tenant::new("globex").unwrap()))
        .await
        .unwrap();
    let config = from_toml(&format!(
        "[connections]\nacme_live = \"{}\"\n[routing]\ntemplate = \"{{tenant}}_{{env}}\"",
        acme.url().expose_secret()
    ))
    .unwrap();
    let gateway = Gateway::new(
        KeyResolver::builder(store, options).build().unwrap(),
        config.router::<Sqlite>().unwrap(),
    );
    let headers = bearer(globex.keys[0].plaintext.expose_secret());
    match gateway.connect(&IncomingRequest::new(&headers)).await {
        Err(e @ RouteError::NoRoute { .. }) => {
            assert!(e.to_string().contains("globex"), "{e}");
            assert_eq!(
                keyroute::axum::http_status(e.class()),
                http::StatusCode::FORBIDDEN
            );
        }
        other => panic!("expected NoRoute, got {other:?}"),
    }
}

/// Outside a Tokio runtime a pool cannot be opened; that is a typed misuse error (500,
/// never a 503 "try again later"), not a panic.
#[test]
fn opening_a_pool_outside_a_runtime_is_an_error() {
    let db = keyroute_testing::sqlite().unwrap();
    let router = from_env([("KEYROUTE_DB_LIVE", db.url().expose_secret())])
        .unwrap()
        .router::<Sqlite>()
        .unwrap();
    let misuse = router.pool_named("live").unwrap_err();
    assert!(matches!(misuse, RouteError::Misuse(_)), "{misuse:?}");
    assert_eq!(
        keyroute::axum::http_status(misuse.class()),
        http::StatusCode::INTERNAL_SERVER_ERROR
    );
    assert!(matches!(
        router.pool_named("nope"),
        Err(RouteError::Config(_))
    ));
}

/// The fast-failure settings (issue 13) are reachable from the file and the
/// environment, and a bad value names its option.
#[test]
fn fast_failure_settings_are_configurable() {
    use std::time::Duration;
    let config = from_toml(
        "[pools]\nconnect_timeout = \"1s\"\nretry_backoff = \"100ms\"\nretry_backoff_max = \"2s\"",
    )
    .unwrap();
    assert_eq!(
        config.pools.settings.connect_timeout,
        Duration::from_secs(1)
    );
    assert_eq!(
        config.pools.settings.retry_backoff,
        Duration::from_millis(100)
    );
    assert_eq!(
        config.pools.settings.retry_backoff_max,
        Duration::from_secs(2)
    );
    let config = from_env([("KEYROUTE_POOLS_RETRY_BACKOFF", "50ms")]).unwrap();
    assert_eq!(
        config.pools.settings.retry_backoff,
        Duration::from_millis(50)
    );
    let err = from_toml("[pools]\nretry_backoff = \"soon\"").unwrap_err();
    assert!(err.to_string().contains("retry_backoff"), "{err}");
}

/// `[tenancy]` reads from the file and from `KEYROUTE_TENANCY_*`, and every mistake
/// names its option: an unknown mode, a schema template without `{tenant}`, a tenancy
/// mode on a backend that cannot bind (SQLite).
#[test]
fn tenancy_is_configured_and_checked() {
    use keyroute::sections::TenancyMode;

    let env = from_env([
        ("KEYROUTE_TENANCY_MODE", "schema"),
        ("KEYROUTE_TENANCY_SCHEMA", "t_{tenant}"),
    ])
    .unwrap();
    assert_eq!(env.tenancy.mode, TenancyMode::Schema);
    assert_eq!(env.tenancy.schema, "t_{tenant}");
    let file = from_toml("[tenancy]\nmode = \"row_security\"\ncolumn = \"org_id\"").unwrap();
    assert_eq!(file.tenancy.mode, TenancyMode::RowSecurity);
    assert_eq!(file.tenancy.column, "org_id");

    let err = from_toml("[tenancy]\nmode = \"rls\"").unwrap_err();
    assert!(err.to_string().contains("mode"), "{err}");
    let no_tenant = from_toml(
        "[connections]\nlive = \"x.db\"\n[tenancy]\nmode = \"schema\"\nschema = \"shared\"",
    )
    .unwrap();
    let err = no_tenant.router::<Sqlite>().unwrap_err();
    assert!(
        err.to_string().contains("[tenancy] option `schema`"),
        "{err}"
    );
    let on_sqlite =
        from_toml("[connections]\nlive = \"x.db\"\n[tenancy]\nmode = \"row_security\"").unwrap();
    let err = on_sqlite.router::<Sqlite>().unwrap_err();
    assert!(err.to_string().contains("[tenancy] option `mode`"), "{err}");
    assert!(err.to_string().contains("SQLite"), "{err}");
}
