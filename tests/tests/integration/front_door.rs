//! The front door: one `Keyroute` handle built from one `Config`, which checks every
//! cross-reference before the first request, applies keyroute's migrations, and wires
//! every listener itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::common::bearer;
use keyroute::sections::ConfigErrorKind;
use keyroute::store::{MemoryStore, Sqlite};
use keyroute::test_util::CountingStore;
use keyroute::{
    AuthError, BuildError, Config, ConfigError, Environment, IncomingRequest, KeyType, Keyroute,
    NewUser, RouteError,
};

/// A TOML document naming two SQLite files in `dir`, followed by `extra`.
fn toml(dir: &Path, extra: &str) -> String {
    format!(
        "[connections]\nlive = {:?}\ntest = {:?}\n{extra}",
        dir.join("live.db"),
        dir.join("test.db")
    )
}

/// The front door over a memory store that counts its calls (so a test can count
/// lookups and last-used writes), configured by `toml(dir, extra)`.
async fn counted_app(
    dir: &Path,
    extra: &str,
) -> (Keyroute<Sqlite>, Arc<CountingStore<MemoryStore>>) {
    let store = Arc::new(CountingStore::new(MemoryStore::new()));
    let config = Config::from_toml_str(&toml(dir, extra)).unwrap();
    let app = Keyroute::<Sqlite>::builder()
        .config(config)
        .shared_store(store.clone())
        .build()
        .await
        .unwrap();
    (app, store)
}

fn config_error(result: Result<Keyroute<Sqlite>, BuildError>) -> ConfigError {
    match result {
        Err(BuildError::Config(e)) => e,
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

/// A routing table naming a connection that does not exist is refused at build time,
/// naming `[routing] table`, not answered with NoRoute on every test request.
#[tokio::test]
async fn a_route_to_a_missing_connection_is_refused_at_build() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_toml_str(&toml(
        dir.path(),
        "[routing]\ntable = { live = \"live\", test = \"TestDb\" }",
    ))
    .unwrap();
    let e = config_error(Keyroute::<Sqlite>::from_config(config).await);
    assert_eq!(
        (e.section.as_str(), e.option.as_str()),
        ("routing", "table")
    );
    assert!(e.to_string().contains("TestDb"), "{e}");
}

/// Routing by environment needs a connection per accepted environment: a missing
/// `test` connection is named.
#[tokio::test]
async fn a_missing_environment_connection_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_toml_str(&format!(
        "[connections]\nlive = {:?}",
        dir.path().join("live.db")
    ))
    .unwrap();
    let e = config_error(Keyroute::<Sqlite>::from_config(config).await);
    assert_eq!(
        (e.section.as_str(), e.option.as_str()),
        ("connections", "test")
    );
    assert_eq!(e.kind, ConfigErrorKind::Missing);
}

/// An environment in routing, or accepted by the resolver, that keys are not issued
/// for is refused, naming the option.
#[tokio::test]
async fn environments_must_be_ones_keys_are_issued_for() {
    let dir = tempfile::tempdir().unwrap();
    for (extra, section, option) in [
        (
            "[routing]\ntable = { live = \"live\", test = \"test\", staging = \"test\" }",
            "routing",
            "table",
        ),
        (
            "[resolver]\naccept_environments = [\"live\", \"staging\"]",
            "resolver",
            "accept_environments",
        ),
    ] {
        let config = Config::from_toml_str(&toml(dir.path(), extra)).unwrap();
        let e = config_error(Keyroute::<Sqlite>::from_config(config).await);
        assert_eq!(
            (e.section.as_str(), e.option.as_str()),
            (section, option),
            "{e}"
        );
    }
}

/// An unknown table (`[pool]` for `[pools]`) is an error naming it, not ignored.
#[test]
fn an_unknown_table_is_refused() {
    let e = Config::from_toml_str("[pool]\nmax_size = 4").unwrap_err();
    assert_eq!(e.kind, ConfigErrorKind::Unknown);
    assert_eq!(e.section, "pool");
    assert!(
        e.to_string().contains("pools"),
        "lists the real sections: {e}"
    );
}

/// An unknown option in a known table is an error naming section and option.
#[test]
fn an_unknown_option_is_refused() {
    for (doc, section, option) in [
        ("[pools]\nmax_sise = 4", "pools", "max_sise"),
        ("[apikey]\nkeysize = 32", "apikey", "keysize"),
        ("[resolver]\ntrust_proxy = true", "resolver", "trust_proxy"),
        ("[jwt]\nlifetime = \"1h\"", "jwt", "lifetime"),
        ("[store]\ndatabase = \"x\"", "store", "database"),
    ] {
        let e = Config::from_toml_str(doc).unwrap_err();
        assert_eq!(e.kind, ConfigErrorKind::Unknown, "{doc}");
        assert_eq!((e.section.as_str(), e.option.as_str()), (section, option));
    }
}

/// A bad value in an environment variable is an error naming section, option and the
/// variable.
#[test]
fn a_bad_environment_variable_is_named() {
    for (var, value, section, option) in [
        ("KEYROUTE_POOLS_MAX_SIZE", "many", "pools", "max_size"),
        (
            "KEYROUTE_APIKEY_SESSION_CACHE_DURATION",
            "2000years",
            "apikey",
            "session_cache_duration",
        ),
        (
            "KEYROUTE_RESOLVER_DANGEROUS_TRUST_ANY_PROXY",
            "perhaps",
            "resolver",
            "dangerous_trust_any_proxy",
        ),
        (
            "KEYROUTE_JWT_EXCHANGE_LIFETIME",
            "soon",
            "jwt",
            "exchange_lifetime",
        ),
    ] {
        let e = Config::from_env_vars([(var, value)]).unwrap_err();
        assert_eq!(
            (e.section.as_str(), e.option.as_str()),
            (section, option),
            "{var}"
        );
        assert!(e.to_string().contains(var), "{e}");
    }
    // Variables of sections keyroute does not read are left alone.
    Config::from_env_vars([("KEYROUTE_POSTGRES_IMAGE", "postgres"), ("HOME", "/root")]).unwrap();
}

/// A TOML file and environment variables set the `[apikey]` options the same way.
#[test]
fn toml_and_environment_agree_on_key_options() {
    let from_toml = Config::from_toml_str(
        r#"
        [apikey]
        key_types = ["secret", "publishable"]
        key_size_bytes = 32
        session_cache_duration = "10m"
        dangerous_accept_plain_http = true
        type_prefixes = { secret = "sk", publishable = "pk" }
        "#,
    )
    .unwrap();
    let from_env = Config::from_env_vars([
        ("KEYROUTE_APIKEY_KEY_TYPES", "secret, publishable"),
        ("KEYROUTE_APIKEY_KEY_SIZE_BYTES", "32"),
        ("KEYROUTE_APIKEY_SESSION_CACHE_DURATION", "10m"),
        ("KEYROUTE_APIKEY_DANGEROUS_ACCEPT_PLAIN_HTTP", "true"),
        ("KEYROUTE_APIKEY_TYPE_PREFIXES", "secret=sk,publishable=pk"),
        ("PATH", "/usr/bin"),
    ])
    .unwrap();
    for config in [&from_toml, &from_env] {
        let o = &config.apikey;
        assert_eq!(o.key_types, [KeyType::SECRET, KeyType::PUBLISHABLE]);
        assert_eq!(o.key_size_bytes, 32);
        assert_eq!(o.session_cache_duration, Some(Duration::from_secs(600)));
        assert!(o.dangerous_accept_plain_http);
    }
}

/// Every component option is reachable from the file, `dangerous_trust_any_proxy` included.
#[test]
fn resolver_options_are_reachable_from_the_file() {
    let config = Config::from_toml_str(
        "[resolver]\ndangerous_trust_any_proxy = true\nnegative_cache_ttl = \"5s\"\napi_key_header = \"x-key\"\n\
         [pools]\ncheck = \"fast\"\nconnection_timeout = \"250ms\"",
    )
    .unwrap();
    assert!(config.resolver.dangerous_trust_any_proxy);
    assert_eq!(config.resolver.negative_cache_ttl, Duration::from_secs(5));
    assert_eq!(config.resolver.api_key_header.as_deref(), Some("x-key"));
    assert_eq!(
        config.router.pools.settings.connection_timeout,
        Duration::from_millis(250)
    );
}

/// With `init_schema` on (the default), building the handle creates keyroute's tables:
/// the first registration works with no `init` call.
#[tokio::test]
async fn init_schema_applies_the_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_toml_str(&toml(dir.path(), "")).unwrap();
    let app = Keyroute::<Sqlite>::from_config(config).await.unwrap();
    let ada = app
        .keys()
        .register_user(NewUser::named("ada"))
        .await
        .unwrap();
    assert_eq!(ada.keys.len(), 2);

    let config = Config::from_toml_str(&toml(
        &dir.path().join("none"),
        "[apikey]\ninit_schema = false",
    ));
    // Off, nothing is created and the store says so when used.
    std::fs::create_dir_all(dir.path().join("none")).unwrap();
    let app = Keyroute::<Sqlite>::from_config(config.unwrap())
        .await
        .unwrap();
    assert!(
        app.keys()
            .register_user(NewUser::named("bo"))
            .await
            .is_err()
    );
}

/// A key revoked through the handle's key service is rejected on the very next
/// request, with the cache on and no listener registered by the test.
#[tokio::test]
async fn a_revoked_key_is_rejected_at_once_with_the_cache_on() {
    let dir = tempfile::tempdir().unwrap();
    let (app, store) = counted_app(
        dir.path(),
        "[apikey]\nsession_cache_duration = \"1h\"\ndangerous_accept_plain_http = true",
    )
    .await;
    // The cache is used only while the change feed runs (in the background work).
    let background = app.spawn_background().unwrap();
    while !app.resolver().is_caching() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let ada = app
        .keys()
        .register_user(NewUser::named("ada"))
        .await
        .unwrap();
    let key = ada.key(&KeyType::SECRET, &Environment::TEST).unwrap();
    let headers = bearer(key.plaintext.expose_secret());
    let request = IncomingRequest::new(&headers);
    app.authenticate(&request).await.unwrap();
    let lookups = store.lookups();
    app.authenticate(&request).await.unwrap();
    assert_eq!(
        store.lookups(),
        lookups,
        "the second request was served from the cache"
    );

    app.keys().revoke(&key.key.id).await.unwrap();
    assert!(matches!(
        app.connect(&request).await,
        Err(RouteError::Auth(AuthError::Revoked))
    ));
    background.abort();
}

/// Without the background work (no change feed), the default cache is not used: every
/// request looks its key up, so no other instance's revocation can be missed.
#[tokio::test]
async fn without_background_work_requests_are_served_uncached() {
    let dir = tempfile::tempdir().unwrap();
    let (app, store) =
        counted_app(dir.path(), "[apikey]\ndangerous_accept_plain_http = true").await;
    let ada = app
        .keys()
        .register_user(NewUser::named("ada"))
        .await
        .unwrap();
    let key = ada.key(&KeyType::SECRET, &Environment::TEST).unwrap();
    let headers = bearer(key.plaintext.expose_secret());
    let request = IncomingRequest::new(&headers);
    let lookups = store.lookups();
    for _ in 0..3 {
        app.authenticate(&request).await.unwrap();
    }
    assert!(!app.resolver().is_caching());
    assert_eq!(store.lookups(), lookups + 3, "one lookup per request");
}

/// The handle is one cheap clone for app state; test keys reach `test`, live keys
/// `live`, through the handle's own `connect`.
#[tokio::test]
async fn the_handle_routes_each_environment() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_toml_str(&toml(
        dir.path(),
        "[apikey]\ndangerous_accept_plain_http = true",
    ))
    .unwrap();
    let app = Keyroute::<Sqlite>::from_config(config).await.unwrap();
    let state = app.clone();
    let ada = state
        .keys()
        .register_user(NewUser::named("ada"))
        .await
        .unwrap();
    for environment in [Environment::LIVE, Environment::TEST] {
        let key = ada.key(&KeyType::SECRET, &environment).unwrap();
        let headers = bearer(key.plaintext.expose_secret());
        let (caller, db) = app.connect(&IncomingRequest::new(&headers)).await.unwrap();
        assert_eq!(caller.environment(), &environment);
        assert_eq!(db.name(), environment.as_str());
    }
}

/// The background work is a future the app spawns; it writes last-used times and ends
/// when the handle is dropped.
#[tokio::test(start_paused = true)]
async fn background_work_is_started_by_the_app_and_ends_with_the_handle() {
    let dir = tempfile::tempdir().unwrap();
    let (app, store) = counted_app(
        dir.path(),
        "[apikey]\ndangerous_accept_plain_http = true\n[resolver]\nlast_used_interval = \"1s\"",
    )
    .await;
    let ada = app
        .keys()
        .register_user(NewUser::named("ada"))
        .await
        .unwrap();
    let headers = bearer(ada.keys[0].plaintext.expose_secret());
    app.authenticate(&IncomingRequest::new(&headers))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(store.touches(), 0, "nothing runs until the app spawns it");

    let task = app.spawn_background().unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(store.touches(), 1, "the noted use was written in one batch");
    drop(app);
    tokio::time::timeout(Duration::from_secs(700), task)
        .await
        .expect("the background work ends once the handle is gone")
        .unwrap();
}

/// Outside a Tokio runtime, building is a typed misuse error, not a panic.
#[test]
fn building_outside_a_runtime_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_toml_str(&toml(dir.path(), "")).unwrap();
    let built = futures_lite_block_on(Keyroute::<Sqlite>::from_config(config));
    assert!(matches!(built, Err(BuildError::NoRuntime)), "{built:?}");
}

/// Polls a future to completion on this thread, with no Tokio runtime.
fn futures_lite_block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut future = std::pin::pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
}

/// The feed's options come from the file, the environment and code through the same
/// parser; a zero poll interval is refused naming the option.
#[test]
fn feed_options_from_every_source() {
    let from_toml = Config::from_toml_str(
        "[resolver]\nfeed_poll_interval = \"100ms\"\nfeed_retention = \"2h\"",
    )
    .unwrap();
    let from_env = Config::from_env_vars([
        ("KEYROUTE_RESOLVER_FEED_POLL_INTERVAL", "100ms"),
        ("KEYROUTE_RESOLVER_FEED_RETENTION", "2h"),
    ])
    .unwrap();
    let mut in_code = Config::default();
    in_code.resolver.set("feed_poll_interval", "100ms").unwrap();
    in_code.resolver.set("feed_retention", "2h").unwrap();
    for config in [&from_toml, &from_env, &in_code] {
        assert_eq!(
            config.resolver.feed_poll_interval,
            Duration::from_millis(100)
        );
        assert_eq!(config.resolver.feed_retention, Duration::from_secs(7200));
    }
    let defaults = Config::default();
    assert_eq!(
        defaults.resolver.feed_poll_interval,
        Duration::from_millis(250)
    );
    let e = Config::from_toml_str("[resolver]\nfeed_poll_interval = \"0s\"").unwrap_err();
    assert_eq!(
        (e.section.as_str(), e.option.as_str()),
        ("resolver", "feed_poll_interval")
    );
}
