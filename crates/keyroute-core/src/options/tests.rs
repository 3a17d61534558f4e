//! Unit tests of [`KeyOptions`](super::KeyOptions): parsing, sources and validation.

use super::*;

/// The defaults are ServiceStack's.
#[test]
fn defaults() {
    let o = KeyOptions::default();
    assert_eq!(o.environments, [Environment::LIVE, Environment::TEST]);
    assert_eq!(o.key_types, [KeyType::SECRET]);
    assert_eq!(o.key_size_bytes, 24);
    assert!(o.require_secure_connection && o.init_schema);
    assert!(o.expire_keys_after.is_none() && o.session_cache_duration.is_none());
    o.validate().unwrap();
}

/// A TOML file and environment variables set the same options the same way.
#[test]
fn toml_and_env_agree() {
    let from_toml = KeyOptions::from_toml_str(
        r#"
        [apikey]
        key_types = ["secret", "publishable"]
        key_size_bytes = 32
        session_cache_duration = "10m"
        require_secure_connection = false
        type_prefixes = { secret = "sk", publishable = "pk" }

        [connections]
        live = "ignored here"
        "#,
    )
    .unwrap();
    let from_env = KeyOptions::default()
        .apply_env_vars([
            ("KEYROUTE_APIKEY_KEY_TYPES", "secret, publishable"),
            ("KEYROUTE_APIKEY_KEY_SIZE_BYTES", "32"),
            ("KEYROUTE_APIKEY_SESSION_CACHE_DURATION", "10m"),
            ("KEYROUTE_APIKEY_REQUIRE_SECURE_CONNECTION", "false"),
            ("KEYROUTE_APIKEY_TYPE_PREFIXES", "secret=sk,publishable=pk"),
            ("PATH", "/usr/bin"),
        ])
        .unwrap();
    for o in [&from_toml, &from_env] {
        assert_eq!(o.key_types, [KeyType::SECRET, KeyType::PUBLISHABLE]);
        assert_eq!(o.key_size_bytes, 32);
        assert_eq!(o.session_cache_duration, Some(Duration::from_secs(600)));
        assert!(!o.require_secure_connection);
    }
}

/// Invalid values are typed errors naming the option.
#[test]
fn invalid_values_name_the_option() {
    let cases = [
        ("KEYROUTE_APIKEY_KEY_SIZE_BYTES", "8", "key_size_bytes"),
        ("KEYROUTE_APIKEY_KEY_SIZE_BYTES", "lots", "key_size_bytes"),
        ("KEYROUTE_APIKEY_ENVIRONMENTS", "live,Live", "environments"),
        ("KEYROUTE_APIKEY_ENVIRONMENTS", "live,live", "environments"),
        ("KEYROUTE_APIKEY_ENVIRONMENTS", "", "environments"),
        ("KEYROUTE_APIKEY_KEY_TYPES", "secret,gold", "type_prefixes"),
        (
            "KEYROUTE_APIKEY_EXPIRE_KEYS_AFTER",
            "soon",
            "expire_keys_after",
        ),
        ("KEYROUTE_APIKEY_INIT_SCHEMA", "maybe", "init_schema"),
        (
            "KEYROUTE_APIKEY_TYPE_PREFIXES",
            "secret=sk,publishable=sk",
            "type_prefixes",
        ),
    ];
    for (var, value, option) in cases {
        match KeyOptions::default().apply_env_vars([(var, value)]) {
            Err(ConfigError::InvalidOption { option: o, .. }) => {
                assert_eq!(o, option, "{var}={value}")
            }
            other => panic!("{var}={value}: expected InvalidOption({option}), got {other:?}"),
        }
    }
    assert!(matches!(
        KeyOptions::default().apply_env_vars([("KEYROUTE_APIKEY_KEYSIZE", "32")]),
        Err(ConfigError::UnknownOption(o)) if o == "keysize"
    ));
    assert!(matches!(
        KeyOptions::from_toml_str("[apikey]\nkey_size_bytes = [1, {a = 1}]"),
        Err(ConfigError::InvalidOption { option, .. }) if option == "key_size_bytes"
    ));
    assert!(matches!(
        KeyOptions::from_toml_str("[apikey"),
        Err(ConfigError::Toml(_))
    ));
}
